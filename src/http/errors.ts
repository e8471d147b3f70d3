// The one place errors become HTTP: `{ error: { code, message, fields? } }` with the right status.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { AppError, type ErrorCode, type FieldError } from '../core/errors.js';
import { StoreUnavailableError, type Logger } from '../core/ports.js';
import { zodFieldErrors } from '../config/validation.js';

const STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  validation_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  internal: 500,
  store_unavailable: 503,
  dependency_unavailable: 503,
};

export const statusFor = (code: ErrorCode): ContentfulStatusCode => STATUS[code];

export interface ErrorBody {
  error: { code: ErrorCode; message: string; fields?: FieldError[] };
}

export function errorBody(code: ErrorCode, message: string, fields?: FieldError[]): ErrorBody {
  return { error: fields && fields.length > 0 ? { code, message, fields } : { code, message } };
}

export function errorResponse(c: Context, err: AppError): Response {
  return c.json(errorBody(err.code, err.message, err.fields), statusFor(err.code));
}

/** Hono onError: known errors keep their meaning; anything else is a 500 without internals. */
export function makeOnError(logger: Logger) {
  return (err: Error, c: Context): Response => {
    if (err instanceof AppError) return errorResponse(c, err);
    if (err instanceof StoreUnavailableError) {
      logger.error({ err: err.message }, 'store unavailable');
      return c.json(errorBody('store_unavailable', 'The store is unreachable; try again shortly'), 503);
    }
    if (err instanceof z.ZodError) {
      return c.json(errorBody('validation_failed', 'Validation failed', zodFieldErrors(err)), 400);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      const code: ErrorCode =
        status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : status === 404 ? 'not_found' : status === 413 ? 'payload_too_large' : status === 429 ? 'rate_limited' : status >= 500 ? 'internal' : 'validation_failed';
      return c.json(errorBody(code, err.message || 'Request refused'), status as ContentfulStatusCode);
    }
    logger.error({ err: err.message, stack: err.stack, path: c.req.path }, 'unhandled error');
    return c.json(errorBody('internal', 'Internal error'), 500);
  };
}

/** zod-openapi defaultHook: a failed request validation becomes a 400 naming each field. */
export function validationHook(
  result: { success: true } | { success: false; error: z.ZodError; target: string },
  c: Context,
): Response | undefined {
  if (result.success) return undefined;
  const fields = zodFieldErrors(result.error, result.target === 'json' || result.target === 'form' ? [] : [result.target]);
  if (result.target === 'json' && result.error.issues.length === 1 && result.error.issues[0]?.code === 'invalid_type' && result.error.issues[0].path.length === 0) {
    return c.json(errorBody('validation_failed', 'The body must be a JSON object', [{ path: '(body)', message: 'must be a JSON object' }]), 400);
  }
  return c.json(errorBody('validation_failed', `Validation failed: ${fields.map((f) => `${f.path} ${f.message}`).join('; ')}`, fields), 400);
}
