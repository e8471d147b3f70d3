// Queues and addresses [R-QUE-1, R-QUE-2, R-ACC-3]: an account belongs to at most one queue; an
// outbound-only account cannot be a queue's default address; hours are validated in the queue's zone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let closedPort: number;
beforeAll(async () => {
  svc = await startTestService();
  closedPort = await freePort(); // nothing listens: account checks answer "unreachable" at once
});
afterAll(async () => {
  await svc?.stop();
});

async function account(address: string, outboundOnly = false): Promise<string> {
  const res = await svc.call('POST', '/api/accounts', {
    address,
    password: 'x',
    outboundOnly,
    ...(outboundOnly ? {} : { imap: { host: '127.0.0.1', port: closedPort, secure: false, starttls: 'off' } }),
    smtp: { host: '127.0.0.1', port: closedPort, secure: false, starttls: 'off' },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

describe('queue addresses', () => {
  it('refuses an outbound-only account as the default (first) address, accepts it after', async () => {
    const inbound = await account('in@shop.example');
    const sender = await account('noreply@shop.example', true);
    const refused = await svc.call('POST', '/api/queues', { name: 'Q1', language: 'en', email: { addresses: [sender] } });
    expect(refused.status).toBe(400);
    expect(refused.body.error.fields[0].path).toBe('email.addresses.0');
    const ok = await svc.call('POST', '/api/queues', { name: 'Q1', language: 'en', email: { addresses: [inbound, sender] } });
    expect(ok.status).toBe(201);
    expect(ok.body.email.addressCount).toBe(2);
  });
  it('gives an account to at most one queue (409 naming the address)', async () => {
    const a = await account('shared@shop.example');
    expect((await svc.call('POST', '/api/queues', { name: 'Q2', language: 'en', email: { addresses: [a] } })).status).toBe(201);
    const second = await svc.call('POST', '/api/queues', { name: 'Q3', language: 'en', email: { addresses: [a] } });
    expect(second.status).toBe(409);
    expect(second.body.error.fields[0].path).toBe('email.addresses.0');
  });
  it('validates hours of operation with field paths, and keeps valid ones', async () => {
    const bad = await svc.call('POST', '/api/queues', { name: 'Q4', language: 'fr', hours: { timeZone: 'Mars/Olympus', weekly: { mon: [['09:00', '17:00']] } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields[0].path).toBe('hours.timeZone');
    const overlap = await svc.call('POST', '/api/queues', { name: 'Q4', language: 'fr', hours: { timeZone: 'Europe/Paris', weekly: { mon: [['09:00', '12:00'], ['11:00', '17:00']] } } });
    expect(overlap.status).toBe(400);
    const good = await svc.call('POST', '/api/queues', { name: 'Q4', language: 'fr', hours: { timeZone: 'Europe/Paris', weekly: { mon: [['09:00', '12:00'], ['14:00', '18:00']] }, holidays: ['2026-12-25'] } });
    expect(good.status).toBe(201);
    expect(good.body.hours.weekly.tue).toEqual([]);
    expect(good.body.hours.holidays).toEqual(['2026-12-25']);
  });
});
