// Node entry: `npm start` — HTTP server (@hono/node-server) plus, in later issues, the mailbox workers.
import { serve } from '@hono/node-server';
import { parseEnv } from '../config/env.js';
import { createServices } from './services.js';

async function main(): Promise<void> {
  const env = parseEnv(process.env);
  const services = await createServices(env);
  const { logger } = services;
  const server = serve({ fetch: services.app.fetch, port: env.PORT, hostname: env.HOST }, (info) => {
    const shownHost = env.HOST === '0.0.0.0' || env.HOST === '::' ? 'localhost' : env.HOST;
    const lines = [
      `email-channel ${'listening'} on http://${shownHost}:${info.port}`,
      `store: ${services.storeDescription}`,
      services.generatedAdminToken
        ? `admin token (generated, saved in ${services.adminTokenFile}): ${services.generatedAdminToken}`
        : services.adminTokenFile
          ? `admin token: in ${services.adminTokenFile}`
          : 'admin token: from ADMIN_TOKEN',
    ];
    // Plain lines on stdout for the person starting the service; structured logs go through pino.
    process.stdout.write(`${lines.join('\n')}\n`);
    logger.info({ port: info.port, store: services.storeDescription }, 'started');
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    server.close(() => {
      services
        .close()
        .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'error while stopping'))
        .finally(() => process.exit(0));
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`email-channel could not start: ${(err as Error).message}\n`);
  process.exit(1);
});
