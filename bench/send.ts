// npm run bench:send — outbound mail through the durable outbox: new outbound sessions accepted per second (the API
// call: checks, MailComposer, one commit with the send, CRM and archive jobs) and mails delivered per second to a
// private SMTP server (smtp-server on loopback), with the accept latency. Embedded store, local connector and archive.
// Writes bench/results/send.json. Usage: npm run bench:send [-- --mails 500 --concurrency 8]
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { startDovecot } from '../test/helpers/dovecot.js';
import { startSmtpServer } from '../test/helpers/smtp-server.js';
import { startTestService } from '../test/helpers/service.js';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? def) : def;
};
const MAILS = Number(arg('mails', '500'));
const CONCURRENCY = Number(arg('concurrency', '8'));
const root = resolve(import.meta.dirname, '..');
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

async function main(): Promise<void> {
  const user = { user: 'bench@shop.example', password: 'bench-pass-1' };
  const [dovecot, smtp] = await Promise.all([startDovecot({ users: [user] }), startSmtpServer({ users: [user] })]);
  const svc = await startTestService();
  try {
    if ((await svc.call('PUT', '/api/settings', { emailChannel: { enabled: true }, company: { name: 'Bench Inc' } })).status !== 200) throw new Error('settings');
    const account = await svc.call('POST', '/api/accounts', {
      address: user.user,
      password: user.password,
      imap: { host: dovecot.host, port: dovecot.port, secure: false, starttls: 'off' },
      smtp: { host: smtp.host, port: smtp.port, secure: false, starttls: 'off' },
    });
    const agent = await svc.call('POST', '/api/agents', { name: 'Bench Agent', firstName: 'Bench', email: 'agent@shop.example', company: 'Bench Inc' });
    const queue = await svc.call('POST', '/api/queues', {
      name: 'Bench',
      language: 'en',
      email: { enabled: true, addresses: [account.body.id], agents: [agent.body.id] },
      signature: { enabled: true, html: '<p><b>@{agent_name}</b> — @{company}</p>' },
    });
    if (queue.status !== 201) throw new Error(`queue: ${JSON.stringify(queue.body)}`);
    const body = (i: number) => ({
      agentId: agent.body.id,
      queueId: queue.body.id,
      to: [{ address: `customer${i}@example.com`, name: `Customer ${i}` }],
      subject: `Your order ${i}`,
      html: `<p>Hello Customer ${i},</p><p>your order has shipped. ${'Details follow. '.repeat(20)}</p>`,
    });
    // Warm-up (first transport, JIT).
    for (let i = 0; i < 10; i++) await svc.call('POST', '/api/sessions', body(-1 - i));
    while (smtp.received.length < 10) await new Promise((r) => setTimeout(r, 20));

    const before = smtp.received.length;
    const latencies: number[] = [];
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (;;) {
          const i = next++;
          if (i >= MAILS) return;
          const t = performance.now();
          const res = await svc.call('POST', '/api/sessions', body(i));
          if (res.status !== 202) throw new Error(`accept ${i}: ${res.status} ${JSON.stringify(res.body)}`);
          latencies.push(performance.now() - t);
        }
      }),
    );
    const acceptedAt = performance.now();
    const deadline = Date.now() + 10 * 60_000;
    while (smtp.received.length - before < MAILS) {
      if (Date.now() > deadline) throw new Error(`only ${smtp.received.length - before} of ${MAILS} delivered`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const deliveredAt = performance.now();
    latencies.sort((a, b) => a - b);
    const result = {
      when: new Date().toISOString(),
      machine: { cpus: cpus().length, node: process.version, loadavg: loadavg().map((x) => round(x, 2)) },
      mails: MAILS,
      concurrency: CONCURRENCY,
      acceptedPerSec: round(MAILS / ((acceptedAt - started) / 1000)),
      acceptLatencyMs: { p50: round(pct(latencies, 50)), p99: round(pct(latencies, 99)), max: round(latencies.at(-1) ?? 0) },
      deliveredPerSec: round(MAILS / ((deliveredAt - started) / 1000)),
      secondsToDeliverAll: round((deliveredAt - started) / 1000, 2),
      note: 'Each accept composes the MIME, commits message + raw bytes + session + send/CRM/archive jobs in one SQLite transaction (fsync); sends use 2 pooled SMTP connections per account.',
    };
    mkdirSync(join(root, 'bench', 'results'), { recursive: true });
    writeFileSync(join(root, 'bench', 'results', 'send.json'), `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await svc.stop();
    await Promise.all([dovecot.stop(), smtp.stop()]);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
