// Inbound routing (R-QUE-2): the queue owning the address a mail was sent to gets the session.

export interface RoutableAccount {
  id: string;
  address: string;
  aliases: string[];
}

export interface RoutingInput {
  /** Recipients in order of trust: To, then Cc, then Delivered-To / X-Original-To. */
  to: string[];
  cc: string[];
  deliveredTo: string[];
  /** The account whose mailbox the mail was read from. */
  mailboxAccountId: string;
}

export interface RoutingTables {
  accounts: RoutableAccount[];
  /** Which queue owns each account (an account belongs to at most one queue). */
  queueOfAccount: ReadonlyMap<string, string>;
  /** `routing.defaultQueueId` from settings. */
  defaultQueueId: string | null;
}

export interface RouteDecision {
  queueId: string | null;
  /** The account (address) the mail was matched to: the sender of our replies. */
  accountId: string;
  via: 'recipient' | 'default_queue' | 'mailbox';
  address: string | null;
}

export function routeInbound(input: RoutingInput, tables: RoutingTables): RouteDecision {
  const byAddress = new Map<string, RoutableAccount>();
  for (const a of tables.accounts) {
    byAddress.set(a.address.toLowerCase(), a);
    for (const alias of a.aliases) if (!byAddress.has(alias.toLowerCase())) byAddress.set(alias.toLowerCase(), a);
  }
  // First pass: a recipient owned by an account that belongs to a queue.
  for (const list of [input.to, input.cc, input.deliveredTo]) {
    for (const raw of list) {
      const account = byAddress.get(raw.toLowerCase());
      const queueId = account ? tables.queueOfAccount.get(account.id) : undefined;
      if (account && queueId) return { queueId, accountId: account.id, via: 'recipient', address: raw.toLowerCase() };
    }
  }
  if (tables.defaultQueueId) return { queueId: tables.defaultQueueId, accountId: input.mailboxAccountId, via: 'default_queue', address: null };
  return { queueId: tables.queueOfAccount.get(input.mailboxAccountId) ?? null, accountId: input.mailboxAccountId, via: 'mailbox', address: null };
}
