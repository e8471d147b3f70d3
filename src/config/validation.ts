// Turns zod issues into the API's field errors (`fields[].path` as dotted paths).
import type { z } from 'zod';
import { validationError, type AppError, type FieldError } from '../core/errors.js';

export function zodFieldErrors(error: z.ZodError, prefix: string[] = []): FieldError[] {
  return error.issues.map((issue) => {
    const path = [...prefix, ...issue.path.map(String)];
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      return { path: [...path, ...issue.keys].join('.') || '(body)', message: `unknown field${issue.keys.length > 1 ? 's' : ''}` };
    }
    if (message.startsWith('Invalid input: expected')) message = message.replace('Invalid input: ', '');
    return { path: path.join('.') || '(body)', message };
  });
}

/** Parses or throws a 400 AppError naming every field at fault. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, prefix: string[] = []): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw toValidationError(result.error, prefix);
  return result.data;
}

export function toValidationError(error: z.ZodError, prefix: string[] = []): AppError {
  return validationError(zodFieldErrors(error, prefix));
}
