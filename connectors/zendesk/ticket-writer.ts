// Per-ticket write queue: coalesces status/assignee/group/comment writes into one Update Ticket call and
// keeps each ticket under Zendesk's 30 updates per 10 minutes.
import { ConnectorError } from '../contract.js';
import type { CustomFieldValue, TicketPatch } from './mapping.js';

/** How long a write waits for others on the same ticket before the update is sent. */
export const COALESCE_WINDOW_MS = 25;

/** Zendesk's Update Ticket limit per user and ticket. */
export const TICKET_UPDATE_LIMIT = { updates: 30, windowMs: 10 * 60_000 } as const;

export interface WriteOutcome {
  commentId?: string;
}

interface PendingWrite {
  patch: TicketPatch;
  resolve(outcome: WriteOutcome): void;
  reject(err: unknown): void;
}

interface TicketQueue {
  writes: PendingWrite[];
  timer: ReturnType<typeof setTimeout> | undefined;
  running: boolean;
}

function mergeFields(a: CustomFieldValue[] | undefined, b: CustomFieldValue[] | undefined): CustomFieldValue[] | undefined {
  if (!a) return b;
  if (!b) return a;
  const byId = new Map(a.map((f) => [f.id, f.value]));
  for (const f of b) byId.set(f.id, f.value);
  return [...byId].map(([id, value]) => ({ id, value }));
}

/**
 * Takes the longest prefix of `writes` that fits in one update: fields are last-write-wins, and a ticket
 * update carries at most one comment, so a second comment starts the next update.
 */
export function takeBatch(writes: readonly { patch: TicketPatch }[]): { count: number; patch: TicketPatch } {
  const patch: TicketPatch = {};
  let count = 0;
  for (const w of writes) {
    if (w.patch.comment && patch.comment) break;
    count++;
    if (w.patch.status !== undefined) patch.status = w.patch.status;
    if (w.patch.assigneeId !== undefined) patch.assigneeId = w.patch.assigneeId;
    if (w.patch.groupId !== undefined) patch.groupId = w.patch.groupId;
    const fields = mergeFields(patch.customFields, w.patch.customFields);
    if (fields) patch.customFields = fields;
    if (w.patch.comment) patch.comment = w.patch.comment;
  }
  return { count, patch };
}

export interface TicketWriterOptions {
  /** Sends one (merged) update; throws a ConnectorError. */
  send(recordId: string, patch: TicketPatch): Promise<WriteOutcome>;
  now(): number;
  windowMs?: number;
}

/** Errors after which the ticket's other queued writes cannot succeed now either. */
function stopsTheQueue(err: unknown): boolean {
  return err instanceof ConnectorError && (err.kind === 'rate_limited' || err.kind === 'conflict' || err.kind === 'auth' || err.kind === 'not_found');
}

export class TicketWriter {
  private readonly queues = new Map<string, TicketQueue>();
  /** Times of our updates per ticket within the last window (the 30 / 10 min budget). */
  private readonly sent = new Map<string, number[]>();
  private readonly windowMs: number;

  constructor(private readonly opts: TicketWriterOptions) {
    this.windowMs = opts.windowMs ?? COALESCE_WINDOW_MS;
  }

  /** Queues a write; resolves when the update that carried it succeeded. */
  write(recordId: string, patch: TicketPatch): Promise<WriteOutcome> {
    return new Promise<WriteOutcome>((resolve, reject) => {
      let q = this.queues.get(recordId);
      if (!q) {
        q = { writes: [], timer: undefined, running: false };
        this.queues.set(recordId, q);
      }
      q.writes.push({ patch, resolve, reject });
      if (!q.running && q.timer === undefined) {
        q.timer = setTimeout(() => void this.drain(recordId), this.windowMs);
      }
    });
  }

  /** Updates sent to this ticket within the last 10 minutes (for tests and metrics). */
  updatesInWindow(recordId: string): number {
    return this.recent(recordId).length;
  }

  private recent(recordId: string): number[] {
    const since = this.opts.now() - TICKET_UPDATE_LIMIT.windowMs;
    const times = (this.sent.get(recordId) ?? []).filter((t) => t > since);
    if (times.length > 0) this.sent.set(recordId, times);
    else this.sent.delete(recordId);
    return times;
  }

  private async drain(recordId: string): Promise<void> {
    const q = this.queues.get(recordId);
    if (!q) return;
    q.timer = undefined;
    q.running = true;
    try {
      while (q.writes.length > 0) {
        const { count, patch } = takeBatch(q.writes);
        const batch = q.writes.splice(0, count);
        try {
          const times = this.recent(recordId);
          const oldest = times[0];
          if (times.length >= TICKET_UPDATE_LIMIT.updates && oldest !== undefined) {
            const retryAfterMs = oldest + TICKET_UPDATE_LIMIT.windowMs - this.opts.now();
            throw new ConnectorError('rate_limited', `zendesk: ticket ${recordId} had ${times.length} updates in 10 minutes (limit ${TICKET_UPDATE_LIMIT.updates})`, Math.max(1000, retryAfterMs));
          }
          this.sent.set(recordId, [...times, this.opts.now()]);
          const outcome = await this.opts.send(recordId, patch);
          for (const w of batch) w.resolve(outcome);
        } catch (err) {
          for (const w of batch) w.reject(err);
          if (stopsTheQueue(err)) {
            for (const w of q.writes.splice(0)) w.reject(err);
          }
        }
      }
    } finally {
      q.running = false;
      if (q.writes.length === 0) this.queues.delete(recordId);
      else q.timer = setTimeout(() => void this.drain(recordId), this.windowMs);
    }
  }
}
