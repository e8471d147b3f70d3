// Writes to a stored message after it was created (delivery state, Sent-folder copy, archive reference, bounce,
// retention purge) come from different jobs at once: each is a revision-checked commit, so none overwrites another's
// field. Messages carry `rev` (1 at creation); documents written before revisions existed get one on their first change.
import { CommitConflictError, type JobSpec, type Store, type WriteOp } from '../core/ports.js';
import { messageKey } from '../core/session/store-layout.js';
import type { StoredMessage } from './ingest-message.js';

/** The ops that replace `prev` by `next` only if nobody changed `prev` meanwhile (bumps `rev`). */
export function messageWriteOps(prev: StoredMessage, next: StoredMessage): WriteOp[] {
  const key = messageKey(prev.id);
  const rev = prev.rev ?? 0;
  return [...(prev.rev !== undefined ? [{ op: 'check' as const, key, rev: prev.rev }] : []), { op: 'put', key, value: { ...next, rev: rev + 1 } }];
}

/**
 * Applies `change` to the current message and commits it with `extra` ops and `jobs` (built from the same read), retrying
 * on a concurrent change. `change` returning null leaves the message as it is. Returns the message as written (or as found).
 */
export async function patchMessage(
  store: Store,
  id: string,
  change: (m: StoredMessage) => StoredMessage | null,
  extra: (m: StoredMessage, next: StoredMessage) => Promise<{ ops?: WriteOp[]; jobs?: JobSpec[] }> = async () => ({}),
  attempts = 8,
): Promise<StoredMessage | undefined> {
  for (let i = 0; i < attempts; i++) {
    const m = await store.get<StoredMessage>(messageKey(id));
    if (!m) return undefined;
    const next = change(m);
    if (!next) return m;
    const more = await extra(m, next);
    try {
      await store.commit([...messageWriteOps(m, next), ...(more.ops ?? [])], more.jobs ?? []);
      return { ...next, rev: (m.rev ?? 0) + 1 };
    } catch (err) {
      if (!(err instanceof CommitConflictError)) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 20 * (i + 1)));
    }
  }
  throw new Error(`message ${id} kept changing concurrently; the change will be tried again`);
}
