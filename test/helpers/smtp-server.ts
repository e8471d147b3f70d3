// Starts a private SMTP server (the `smtp-server` package) on a random loopback port; records what it receives.
import { SMTPServer } from 'smtp-server';
import { freePort } from './ports.js';

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: Buffer;
}

export interface SmtpServerHandle {
  host: '127.0.0.1';
  port: number;
  received: ReceivedMail[];
  stop(): Promise<void>;
}

export async function startSmtpServer(opts: { users?: { user: string; password: string }[] } = {}): Promise<SmtpServerHandle> {
  const port = await freePort();
  const received: ReceivedMail[] = [];
  const users = opts.users ?? [];
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    authOptional: users.length === 0,
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, cb) {
      const ok = users.some((u) => u.user === auth.username && u.password === auth.password);
      cb(ok ? null : Object.assign(new Error('Invalid username or password'), { responseCode: 535 }), ok ? { user: auth.username } : undefined);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    host: '127.0.0.1',
    port,
    received,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
