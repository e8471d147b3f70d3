// POST /api/uploads (SPEC §11b): one multipart file, size-limited; replies and auto-replies reference its id.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import type { UploadsService } from '../../app/uploads-service.js';
import { AppError } from '../../core/errors.js';
import type { AuthEnv } from '../auth.js';
import { errorResponses, security, tooLargeResponse } from '../schemas.js';

export const UploadSchema = z
  .object({
    id: z.string().openapi({ example: 'upl_7k2m9qx4tb3n5p8r' }),
    filename: z.string(),
    contentType: z.string(),
    size: z.number().int(),
    sha256: z.string(),
    createdAt: z.string(),
  })
  .openapi('Upload');

const postUpload = createRoute({
  method: 'post',
  path: '/api/uploads',
  tags: ['uploads'],
  summary: 'Upload one file (multipart/form-data, field `file`) for later use as an attachment',
  security,
  request: {
    body: {
      required: true,
      content: { 'multipart/form-data': { schema: z.object({ file: z.any().openapi({ type: 'string', format: 'binary' }) }) } },
    },
  },
  responses: {
    201: { description: 'Stored', content: { 'application/json': { schema: UploadSchema } } },
    ...errorResponses,
    ...tooLargeResponse,
  },
});

export function uploadRoutes(app: OpenAPIHono<AuthEnv>, uploads: UploadsService): void {
  // Any authenticated caller (admin or agent) may upload. The limit leaves room for multipart framing.
  app.use(
    '/api/uploads',
    bodyLimit({
      maxSize: uploads.maxBytes + 64 * 1024,
      onError: () => {
        throw new AppError('payload_too_large', `The upload is larger than ${uploads.maxBytes} bytes`, [{ path: 'file', message: `larger than ${uploads.maxBytes} bytes` }]);
      },
    }),
  );
  app.openapi(postUpload, async (c) => {
    const type = c.req.header('content-type') ?? '';
    if (!type.toLowerCase().startsWith('multipart/form-data')) {
      throw new AppError('validation_failed', 'Send the file as multipart/form-data with a field named "file"', [{ path: 'file', message: 'required (multipart/form-data)' }]);
    }
    let body: Record<string, string | File | (string | File)[]>;
    try {
      body = await c.req.parseBody({ all: true });
    } catch {
      throw new AppError('validation_failed', 'The multipart body could not be read', [{ path: 'file', message: 'malformed multipart body' }]);
    }
    const file = body['file'];
    if (Array.isArray(file)) throw new AppError('validation_failed', 'Send exactly one file per upload', [{ path: 'file', message: 'exactly one file per request' }]);
    if (!(file instanceof File)) throw new AppError('validation_failed', 'A file field named "file" is required', [{ path: 'file', message: 'required' }]);
    const meta = await uploads.save({ filename: file.name, contentType: file.type, bytes: new Uint8Array(await file.arrayBuffer()) });
    return c.json(meta, 201);
  });
}
