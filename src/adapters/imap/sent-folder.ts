// Appends the exact bytes of a sent message to the account's Sent folder over IMAP (R-AGT-3), with bounded timeouts.
import { createClient, type ImapConnectionOptions } from './mailbox-worker.js';
import type { ListResponse } from 'imapflow';

/** How to reach and log in to a mailbox: the IMAP worker's connection options (its timeouts apply). */
export type SentFolderConnection = ImapConnectionOptions;

/** Names tried, in order, when the server marks no folder `\Sent` (case-insensitive). */
export const SENT_FOLDER_NAMES: readonly string[] = ['Sent', 'Sent Items', 'Sent Messages', 'INBOX.Sent', 'INBOX/Sent', 'Sent Mail'];

class ImapDeadlineError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(what: string, ms: number) {
    super(`${what}: no answer within ${ms} ms`);
    this.name = 'ImapDeadlineError';
  }
}

async function withTimeout<T>(work: Promise<T>, ms: number, what: string, abort: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort();
      reject(new ImapDeadlineError(what, ms));
    }, ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Pure: the Sent folder among a LIST answer. The server's own `\Sent` special-use flag wins; then a
 * well-known name (imapflow's name-based guess included); null when there is none.
 */
export function pickSentFolder(list: Pick<ListResponse, 'path' | 'flags' | 'specialUse' | 'specialUseSource'>[]): string | null {
  const flagged = list.find((m) => m.flags.has('\\Sent') || (m.specialUse === '\\Sent' && m.specialUseSource === 'extension'));
  if (flagged) return flagged.path;
  for (const name of SENT_FOLDER_NAMES) {
    const hit = list.find((m) => m.path.toLowerCase() === name.toLowerCase() && !m.flags.has('\\Noselect') && !m.flags.has('\\NonExistent'));
    if (hit) return hit.path;
  }
  const guessed = list.find((m) => m.specialUse === '\\Sent' && !m.flags.has('\\Noselect'));
  return guessed ? guessed.path : null;
}

/**
 * Logs in, finds the Sent folder and appends `raw` with `\Seen`. Returns the folder, or null when the
 * server has no Sent folder. Throws on connection/login/append failure (the caller retries).
 */
export async function appendToSent(conn: SentFolderConnection, raw: Uint8Array): Promise<{ folder: string } | null> {
  const connectMs = Math.min(conn.connectTimeoutMs ?? 10_000, 15_000);
  const greetingMs = Math.min(conn.greetingTimeoutMs ?? 10_000, 15_000);
  const commandMs = Math.min(conn.commandTimeoutMs ?? 30_000, 120_000);
  const client = createClient(conn, Math.min(conn.socketTimeoutMs ?? 30_000, 60_000));
  client.on('error', (err: unknown) => conn.logger?.debug({ host: conn.imap.host, err: (err as Error)?.message }, 'imap sent-folder connection error'));
  const abort = () => {
    try {
      client.close();
    } catch {
      // already closed
    }
  };
  try {
    await withTimeout(client.connect(), connectMs + greetingMs + commandMs, 'IMAP connect', abort);
    const list = await withTimeout(client.list(), commandMs, 'LIST', abort);
    const folder = pickSentFolder(list);
    if (!folder) {
      conn.logger?.info({ host: conn.imap.host }, 'no Sent folder on the server; not appended');
      return null;
    }
    const content = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const res = await withTimeout(client.append(folder, content, ['\\Seen']), commandMs, 'APPEND', abort);
    if (!res) throw new Error(`APPEND to ${folder} failed`);
    conn.logger?.debug({ folder, uid: res.uid }, 'appended to Sent');
    await withTimeout(client.logout(), commandMs, 'LOGOUT', abort).catch(abort);
    return { folder };
  } finally {
    abort();
  }
}
