// Shared OpenAPI schemas of the API conventions (SPEC §11b): errors, lists and cursors, ids.
import { z } from '@hono/zod-openapi';
import { DEFAULT_LIMIT, MAX_LIMIT } from '../core/paging.js';

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'validation_failed' }),
      message: z.string(),
      fields: z.array(z.object({ path: z.string().openapi({ example: 'timers.pausedToClosed.days' }), message: z.string() })).optional(),
    }),
  })
  .openapi('Error');

const err = (description: string) => ({ description, content: { 'application/json': { schema: ErrorSchema } } });

/** The error responses every authenticated route may give. */
export const errorResponses = {
  400: err('Validation failed; `fields` names each path'),
  401: err('Missing or unknown bearer token'),
  403: err('The token lacks the right for this call'),
  503: err('The store or a dependency is unavailable'),
} as const;
export const notFoundResponse = { 404: err('Unknown id') } as const;
export const conflictResponse = { 409: err('Illegal transition or concurrent change') } as const;
export const tooLargeResponse = { 413: err('Too large') } as const;

export const ListQuerySchema = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_LIMIT)
    .default(DEFAULT_LIMIT)
    .openapi({ param: { name: 'limit', in: 'query' }, example: DEFAULT_LIMIT, description: `1–${MAX_LIMIT}, default ${DEFAULT_LIMIT}` }),
  cursor: z
    .string()
    .max(512)
    .optional()
    .openapi({ param: { name: 'cursor', in: 'query' }, description: 'The `nextCursor` of the previous page' }),
});

/** `{ items: [...], nextCursor }`, newest first. */
export function listOf<T extends z.ZodType>(item: T, name: string) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() }).openapi(name);
}

export const IdParamSchema = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_-]+$/)
    .openapi({ param: { name: 'id', in: 'path' } }),
});

export const security = [{ bearerAuth: [] as string[] }];
