// Prometheus metrics (prom-client): one registry per process; later issues add their counters here.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  contentType: string;
  render(): Promise<string>;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  messagesIngested: Counter<'outcome'>;
  ingestLatency: Histogram<string>;
  /** Archive backlog and last error, read from `source` at each scrape (R-STO-4). */
  watchArchive(source: () => Promise<{ backlog: number; lastErrorAt: string | null }>): void;
}

export function createMetrics(opts: { defaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry, prefix: 'email_channel_' });
  const httpRequests = new Counter({
    name: 'email_channel_http_requests_total',
    help: 'HTTP requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'email_channel_http_request_duration_seconds',
    help: 'HTTP request duration by method and route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const messagesIngested = new Counter({
    name: 'email_channel_messages_ingested_total',
    help: 'Inbound messages handled, by outcome (stored, duplicate, quarantined)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const ingestLatency = new Histogram({
    name: 'email_channel_ingest_latency_seconds',
    help: 'From arrival in the mailbox (IMAP INTERNALDATE, 1 s resolution) to the message being stored',
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  let archiveSource: (() => Promise<{ backlog: number; lastErrorAt: string | null }>) | undefined;
  const archiveRead = async () => (archiveSource ? archiveSource().catch(() => null) : null);
  new Gauge({
    name: 'email_channel_archive_backlog',
    help: 'Archive writes waiting or being retried (messages, PDFs, metadata, transcripts)',
    registers: [registry],
    async collect() {
      const a = await archiveRead();
      if (a) this.set(a.backlog);
    },
  });
  new Gauge({
    name: 'email_channel_archive_last_error_timestamp_seconds',
    help: 'When an archive write last failed (0 = never)',
    registers: [registry],
    async collect() {
      const a = await archiveRead();
      if (a) this.set(a.lastErrorAt ? Date.parse(a.lastErrorAt) / 1000 : 0);
    },
  });
  return {
    registry,
    watchArchive: (source) => {
      archiveSource = source;
    },
    messagesIngested,
    ingestLatency,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    httpRequests,
    httpDuration,
  };
}
