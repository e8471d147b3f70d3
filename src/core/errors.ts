// Stable error codes of the product, mapped to HTTP statuses in one place (src/http/errors.ts).

export type ErrorCode =
  | 'validation_failed'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'rate_limited'
  | 'store_unavailable'
  | 'dependency_unavailable'
  | 'internal';

export interface FieldError {
  /** Dotted path of the field, e.g. `timers.pausedToClosed.days`. */
  path: string;
  message: string;
}

/** An error meant for the API caller: code, message and (for validation) the fields at fault. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly fields?: FieldError[],
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const validationError = (fields: FieldError[], message = 'Validation failed'): AppError =>
  new AppError('validation_failed', `${message}: ${fields.map((f) => `${f.path} ${f.message}`).join('; ')}`, fields);

export const notFound = (what: string, id: string): AppError => new AppError('not_found', `${what} ${id} does not exist`);

export const conflict = (message: string): AppError => new AppError('conflict', message);
