// The session thread as a PDF (R-CRM-3): GET /api/sessions/:id/transcript.pdf, for agent and admin tokens.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { AppError } from '../../core/errors.js';
import type { TranscriptService } from '../../app/transcript.js';
import type { AuthEnv } from '../auth.js';
import { errorResponses, IdParamSchema, notFoundResponse, security } from '../schemas.js';

const transcriptPdf = createRoute({
  method: 'get',
  path: '/api/sessions/{id}/transcript.pdf',
  tags: ['sessions'],
  summary: 'The thread as it stands, as a PDF (header, every message, inline images, attachment list)',
  description: 'Rendered without any network access: remote images and styles in customer mail are never fetched. 503 where no browser runs (Cloudflare Workers).',
  security,
  request: { params: IdParamSchema },
  responses: {
    200: { description: 'The PDF, as an attachment named `<sessionId>.pdf`', content: { 'application/pdf': { schema: z.string().openapi({ format: 'binary' }) } } },
    ...errorResponses,
    ...notFoundResponse,
  },
});

export function transcriptRoutes(app: OpenAPIHono<AuthEnv>, transcripts: TranscriptService | undefined): void {
  app.openapi(transcriptPdf, async (c) => {
    if (!transcripts) throw new AppError('dependency_unavailable', 'PDF transcripts are not available in this deployment');
    const { id } = c.req.valid('param');
    const pdf = await transcripts.pdf(id);
    return c.body(new Uint8Array(pdf), 200, {
      'content-type': 'application/pdf',
      'content-disposition': `attachment; filename="${id}.pdf"`,
      'cache-control': 'no-store',
    });
  });
}
