// /api/settings on both store backends [R-GLB-1..4, R-CRM-1..4, R-SES-4, R-API-1, R-API-2].
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServerHandle } from '../helpers/redis-server.js';
import { startTestService, type TestService } from '../helpers/service.js';

const DEFAULTS = {
  emailChannel: { enabled: false },
  subject: { addSessionId: false, agentsCanEdit: false },
  crm: {
    inbound: true,
    outbound: true,
    comments: { enabled: true, frequency: 'session_end' },
    pdf: { enabled: true, frequency: 'session_end' },
    metadataFile: false,
  },
  timers: {
    pausedToClosed: { enabled: true, days: 60 },
    resolvedToClosed: { enabled: true, days: 30 },
    activeToPaused: { enabled: true, days: 30 },
    closedToReopened: { enabled: true, days: 30 },
  },
  company: { name: '' },
  connector: { id: 'local', config: {} },
  routing: { defaultQueueId: null },
  threading: { subjectWindowMinutes: 0 },
};

let redis: RedisServerHandle;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

for (const backend of ['embedded', 'redis'] as const) {
  describe(`settings API on the ${backend} store`, () => {
    let svc: TestService;
    beforeAll(async () => {
      svc = await startTestService(backend === 'redis' ? { redisUrl: `${redis.url}/${1}` } : {});
    });
    afterAll(async () => {
      await svc?.stop();
    });

    it('answers the spec defaults on a fresh install', async () => {
      const res = await svc.call('GET', '/api/settings');
      expect(res.status).toBe(200);
      expect(res.body).toEqual(DEFAULTS);
    });

    it('refuses a missing or wrong token with 401 and a JSON error [R-API-2]', async () => {
      const none = await svc.call('GET', '/api/settings', undefined, null);
      expect(none.status).toBe(401);
      expect(none.body.error.code).toBe('unauthorized');
      const wrong = await svc.call('GET', '/api/settings', undefined, 'not-the-token-at-all-123');
      expect(wrong.status).toBe(401);
      const put = await svc.call('PUT', '/api/settings', { emailChannel: { enabled: true } }, null);
      expect(put.status).toBe(401);
      expect((await svc.call('GET', '/api/settings')).body.emailChannel.enabled).toBe(false);
    });

    it('refuses both subject options on, naming both fields [R-GLB-4]', async () => {
      const res = await svc.call('PUT', '/api/settings', { subject: { addSessionId: true, agentsCanEdit: true } });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      const paths = res.body.error.fields.map((f: { path: string }) => f.path);
      expect(paths).toEqual(expect.arrayContaining(['subject.addSessionId', 'subject.agentsCanEdit']));
      expect((await svc.call('GET', '/api/settings')).body.subject).toEqual(DEFAULTS.subject);
    });

    it('refuses turning on the second subject option while the first is on [R-GLB-4]', async () => {
      expect((await svc.call('PUT', '/api/settings', { subject: { addSessionId: true } })).status).toBe(200);
      const res = await svc.call('PUT', '/api/settings', { subject: { agentsCanEdit: true } });
      expect(res.status).toBe(400);
      expect(res.body.error.fields.map((f: { path: string }) => f.path)).toEqual(expect.arrayContaining(['subject.addSessionId', 'subject.agentsCanEdit']));
      expect((await svc.call('PUT', '/api/settings', { subject: { addSessionId: false, agentsCanEdit: true } })).status).toBe(200);
      await svc.call('PUT', '/api/settings', { subject: { agentsCanEdit: false } });
    });

    it.each([0, 1001, 1.5, -3, '30'])('refuses timer days %s with the field path [R-SES-4]', async (days) => {
      const res = await svc.call('PUT', '/api/settings', { timers: { pausedToClosed: { days } } });
      expect(res.status).toBe(400);
      expect(res.body.error.fields[0].path).toBe('timers.pausedToClosed.days');
    });

    it('accepts the bounds 1 and 1000 and merges a partial update', async () => {
      const res = await svc.call('PUT', '/api/settings', { timers: { activeToPaused: { days: 1 }, closedToReopened: { days: 1000, enabled: false } } });
      expect(res.status).toBe(200);
      expect(res.body.timers).toEqual({
        pausedToClosed: { enabled: true, days: 60 },
        resolvedToClosed: { enabled: true, days: 30 },
        activeToPaused: { enabled: true, days: 1 },
        closedToReopened: { enabled: false, days: 1000 },
      });
      expect(res.body.crm).toEqual(DEFAULTS.crm);
    });

    it('refuses unknown fields and bad enums, naming them', async () => {
      const unknown = await svc.call('PUT', '/api/settings', { crm: { comments: { frequency: 'each_reply', colour: 'red' } } });
      expect(unknown.status).toBe(400);
      expect(unknown.body.error.fields.map((f: { path: string }) => f.path)).toContain('crm.comments.colour');
      const top = await svc.call('PUT', '/api/settings', { nonsense: true });
      expect(top.status).toBe(400);
      expect(top.body.error.fields[0].path).toBe('nonsense');
      const freq = await svc.call('PUT', '/api/settings', { crm: { pdf: { frequency: 'hourly' } } });
      expect(freq.status).toBe(400);
      expect(freq.body.error.fields[0].path).toBe('crm.pdf.frequency');
      expect((await svc.call('GET', '/api/settings')).body.crm.comments.frequency).toBe('session_end');
    });

    it('refuses a body that is not JSON, and an unknown connector id', async () => {
      const notJson = await svc.call('PUT', '/api/settings', '{"emailChannel":');
      expect(notJson.status).toBe(400);
      expect(notJson.body.error.code).toBe('validation_failed');
      const arr = await svc.call('PUT', '/api/settings', [1, 2]);
      expect(arr.status).toBe(400);
      const connector = await svc.call('PUT', '/api/settings', { connector: { id: 'nosuchcrm' } });
      expect(connector.status).toBe(400);
      expect(connector.body.error.fields[0].path).toBe('connector.id');
    });

    it('keeps a valid change across a restart', async () => {
      const res = await svc.call('PUT', '/api/settings', {
        emailChannel: { enabled: true },
        crm: { comments: { frequency: 'each_reply' }, metadataFile: true },
        company: { name: 'Acme Support' },
      });
      expect(res.status).toBe(200);
      await svc.restart();
      const after = await svc.call('GET', '/api/settings');
      expect(after.body.emailChannel.enabled).toBe(true);
      expect(after.body.crm.comments).toEqual({ enabled: true, frequency: 'each_reply' });
      expect(after.body.crm.metadataFile).toBe(true);
      expect(after.body.company.name).toBe('Acme Support');
    });

    it('applies concurrent partial updates without losing any', async () => {
      const results = await Promise.all([
        svc.call('PUT', '/api/settings', { crm: { inbound: false } }),
        svc.call('PUT', '/api/settings', { crm: { outbound: false } }),
        svc.call('PUT', '/api/settings', { company: { name: 'Concurrent' } }),
        svc.call('PUT', '/api/settings', { timers: { resolvedToClosed: { days: 7 } } }),
      ]);
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      const after = (await svc.call('GET', '/api/settings')).body;
      expect(after.crm.inbound).toBe(false);
      expect(after.crm.outbound).toBe(false);
      expect(after.company.name).toBe('Concurrent');
      expect(after.timers.resolvedToClosed.days).toBe(7);
    });
  });
}
