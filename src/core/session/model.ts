// The email session (R-SES-1, R-SES-3): one conversation thread, its status and its interactions.

export const SESSION_STATUSES = ['unopened', 'active', 'paused', 'resolved', 'closed', 'reopened'] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/** "Active sessions" for assignment (R-SES-3): Unopened, Reopened or Active. */
export const ACTIVE_FOR_ASSIGNMENT: readonly SessionStatus[] = ['unopened', 'reopened', 'active'];

export type InteractionType =
  | 'message_received'
  | 'entered_queue'
  | 'agent_assigned'
  | 'agent_unassigned'
  | 'agent_replied'
  | 'transferred'
  | 'status_changed'
  | 'auto_reply_sent'
  | 'participant_added'
  | 'crm_agent_reply'
  | 'delivery_failed'
  | 'closed';

export interface Interaction {
  type: InteractionType;
  at: number;
  /** `customer`, `system`, `agent:<id>`, `crm`, `timer:<name>`. */
  actor: string;
  data?: Record<string, unknown>;
}

export interface Participant {
  address: string;
  name?: string;
}

export interface Session {
  id: string;
  status: SessionStatus;
  queueId: string | null;
  assigneeId: string | null;
  subject: string;
  customer: Participant;
  /** Everyone who wrote in the thread besides the customer (Cc'd colleagues, a new sender on a token match). */
  participants: Participant[];
  ticketId: string | null;
  /** Session this one continues (new activity on a closed session past its reopen window). */
  linkedFrom: string | null;
  /** Imported from before the account was added: no auto-reply, no auto-assignment. */
  imported: boolean;
  createdAt: number;
  updatedAt: number;
  /** When the status last changed (timers Paused→Closed, Resolved→Closed, Closed→Reopened count from here). */
  statusChangedAt: number;
  /** Last inbound or outbound message (timer Active→Paused counts from here). */
  lastActivityAt: number;
  messageCount: number;
  interactions: Interaction[];
  /** Who started it: a customer's mail (default, also for sessions stored before this field) or an agent (R-AGT-2). */
  origin?: 'customer' | 'agent';
}
