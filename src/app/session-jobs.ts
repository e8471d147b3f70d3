// A Store decorator that adds the durable jobs a session change causes (CRM record policies) to every
// commit that writes a session, so each use case that saves sessions (status changes, assignment,
// transfer) gets them in the same commit without knowing about the CRM.
import type { JobSpec, Store, WriteOp } from '../core/ports.js';
import type { Session } from '../core/session/model.js';

export type SessionJobsFor = (change: { prev: Session | null; next: Session }) => Promise<JobSpec[]>;

const SESSION_KEY = /^session:[^:]+$/;

export function withSessionJobs(store: Store, jobsFor: SessionJobsFor): Store {
  const commit = async (ops: WriteOp[], jobs: JobSpec[] = []): Promise<void> => {
    const puts = ops.filter((op): op is Extract<WriteOp, { op: 'put' }> => op.op === 'put' && SESSION_KEY.test(op.key));
    if (puts.length === 0) return store.commit(ops, jobs);
    const prevs = await store.getMany<Session>(puts.map((p) => p.key));
    const extra: JobSpec[] = [];
    for (let i = 0; i < puts.length; i++) extra.push(...(await jobsFor({ prev: prevs[i] ?? null, next: puts[i]?.value as Session })));
    return store.commit(ops, [...jobs, ...extra]);
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'commit') return commit;
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
