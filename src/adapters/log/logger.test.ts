// Logs are structured JSON and never carry passwords, tokens or mail bodies [R-REL-4].
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

describe('createLogger', () => {
  it('redacts secrets and bodies at the top level and one level down', () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const log = createLogger({ level: 'info', destination: sink });
    log.info({ password: 'hunter2', account: { password: 'p', user: 'bob' }, message: { html: '<p>private</p>', subject: 'Hi' }, token: 'abc' }, 'saved');
    const out = lines.join('');
    expect(out).not.toMatch(/hunter2|"p"|private|abc/);
    const parsed = JSON.parse(out);
    expect(parsed).toMatchObject({ msg: 'saved', account: { user: 'bob', password: '[redacted]' }, message: { subject: 'Hi' } });
  });
});
