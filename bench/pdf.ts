// npm run bench:pdf — PDFs per second for a 10-message thread: html-pdf-node (wrapped) vs the shipped playwright-core
// path, in the same run, same Chromium, same pool size. Writes bench/results/pdf.json. Usage: npm run bench:pdf [-- --n 30 --pages 2]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createChromiumPdfRenderer } from '../src/adapters/pdf/chromium-pdf.js';
import { createHtmlPdfNodeRenderer } from '../src/adapters/pdf/html-pdf-node.js';
import { transcriptHtml, type TranscriptSession } from '../src/app/transcript.js';

const args = process.argv.slice(2);
const arg = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const N = arg('n', 30);
const PAGES = arg('pages', 2);
const WARMUP = arg('warmup', 3);
const EXECUTABLE = '/usr/bin/chromium';
const root = resolve(import.meta.dirname, '..');

const GIF = 'data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///ywAAAAAAQABAAACAUwAOw==';

/** A realistic 10-message thread: quoted replies, a table, an inline image, a text-only message, attachments. */
function thread(): TranscriptSession {
  const at = (i: number) => new Date(Date.UTC(2025, 0, 10, 9, i * 7)).toISOString();
  const customer = { address: 'ann@example.com', name: 'Ann Customer' };
  const agent = { address: 'help@shop.example', name: 'Shop Support' };
  const para = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. ';
  return {
    id: 'S7K2M9QX4TB',
    subject: 'Printer broken',
    customer,
    queueId: 'q_support',
    status: 'active',
    createdAt: at(0),
    updatedAt: at(9),
    lastActivityAt: at(9),
    ticketId: '4711',
    messages: Array.from({ length: 10 }, (_, i) => {
      const inbound = i % 2 === 0;
      return {
        id: `msg_${i + 1}`,
        direction: inbound ? ('inbound' as const) : ('outbound' as const),
        messageId: `m${i + 1}@example.com`,
        from: inbound ? customer : agent,
        to: [inbound ? agent : customer],
        cc: i === 2 ? [{ address: 'boss@example.com', name: 'The Boss' }] : [],
        subject: i === 0 ? 'Printer broken' : 'Re: Printer broken',
        date: at(i),
        receivedAt: at(i),
        arrivedAt: at(i),
        text: `Message ${i + 1}\n${para.repeat(4)}`,
        html:
          i === 6
            ? null
            : `<p>Hello {{name}},</p><p>${para.repeat(3)}</p><table border="1" cellpadding="4"><tr><td>Order</td><td>#${1000 + i}</td></tr><tr><td>Status</td><td>open</td></tr></table><p><img src="${GIF}" alt="logo" width="40" height="40"></p><blockquote style="border-left:2px solid #ccc;padding-left:6px">${para.repeat(2)}</blockquote>`,
        attachments: i % 3 === 1 ? [{ filename: `invoice-${i}.pdf`, contentType: 'application/pdf', size: 48_213 + i, inline: false, sha256: 'x' }] : [],
        size: 6000,
        accountId: 'acc_1',
        flags: [],
      };
    }),
  };
}

const mb = (bytes: number) => Math.round((bytes / (1024 * 1024)) * 10) / 10;

/**
 * Memory of this process and every process under it (the browsers), in bytes: the sum of PSS (shared pages split
 * between the processes that map them; summing RSS would count Chromium's binary once per process).
 */
function treeMemory(): number {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of rows) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  let total = 0;
  const stack = [process.pid];
  while (stack.length) {
    const pid = stack.pop() as number;
    try {
      const pss = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      total += Number(pss?.[1] ?? 0) * 1024;
    } catch {
      /* exited meanwhile */
    }
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

interface Renderer {
  render(html: string): Promise<Uint8Array>;
  close(): Promise<void>;
  stats(): Record<string, number>;
}

async function measure(name: string, make: () => Renderer, html: string) {
  const rssBefore = process.memoryUsage().rss;
  const treeBefore = treeMemory();
  let peakTree = treeBefore;
  const sampler = setInterval(() => (peakTree = Math.max(peakTree, treeMemory())), 100);
  const renderer = make();
  const failures: string[] = [];
  /** One render: its bytes, or null (the failure is recorded; the run goes on). */
  const attempt = (): Promise<Uint8Array | null> =>
    renderer.render(html).then(
      (pdf) => {
        if (Buffer.from(pdf.subarray(0, 5)).toString('latin1') !== '%PDF-') throw new Error('output is not a PDF');
        return pdf;
      },
      (err: Error) => {
        failures.push(err.message);
        return null;
      },
    );
  try {
    for (let i = 0; i < WARMUP; i++) await attempt();
    const warmupFailures = failures.length;
    // Sequential: the latency of one PDF when nothing else runs.
    const latencies: number[] = [];
    for (let i = 0; i < Math.min(N, 10); i++) {
      const t = performance.now();
      if (await attempt()) latencies.push(performance.now() - t);
    }
    latencies.sort((a, b) => a - b);
    // Throughput: N PDFs submitted at once through the pool.
    const started = performance.now();
    const pdfs = (await Promise.all(Array.from({ length: N }, attempt))).filter((p): p is Uint8Array => p !== null);
    const seconds = (performance.now() - started) / 1000;
    return {
      name,
      ok: pdfs.length > 0,
      pdfsPerSecond: Math.round((pdfs.length / seconds) * 100) / 100,
      succeeded: pdfs.length,
      seconds: Math.round(seconds * 100) / 100,
      sequentialMs: { p50: Math.round(latencies[Math.floor(latencies.length / 2)] ?? 0), max: Math.round(latencies[latencies.length - 1] ?? 0) },
      failures: { warmup: warmupFailures, measured: failures.length - warmupFailures, messages: [...new Set(failures)] },
      pdfBytes: pdfs[0]?.byteLength ?? 0,
      stats: renderer.stats(),
      memory: { rssBeforeMb: mb(rssBefore), rssAfterMb: mb(process.memoryUsage().rss), processTreePssBeforeMb: mb(treeBefore), processTreePssPeakMb: mb(peakTree) },
    };
  } finally {
    clearInterval(sampler);
    await renderer.close();
  }
}

const html = transcriptHtml(thread(), { companyName: 'Shop & Co', generatedAt: Date.UTC(2025, 0, 11) });
const chromiumVersion = execFileSync(EXECUTABLE, ['--version'], { encoding: 'utf8' }).trim();
console.log(`PDF bench: ${N} renders (after ${WARMUP} warm-up) of a 10-message thread (${html.length} bytes of HTML), pool of ${PAGES}, ${chromiumVersion}`);

// html-pdf-node prints a line per PDF with console.log; count them instead of flooding the output.
let consoleLines = 0;
const log = console.log;
console.log = (...a: unknown[]) => {
  if (a[0] === 'Compiling the template with handlebars') consoleLines++;
  else log(...a);
};
const htmlPdfNode = await measure('html-pdf-node 1.0.8 (puppeteer 10, wrapped)', () => createHtmlPdfNodeRenderer({ executablePath: EXECUTABLE, pages: PAGES }), html);
console.log = log;
const shipped = await measure('playwright-core + system Chromium (shipped)', () => createChromiumPdfRenderer({ executablePath: EXECUTABLE, pages: PAGES }), html);

const ratio = htmlPdfNode.ok && shipped.ok && htmlPdfNode.pdfsPerSecond > 0 ? Math.round((shipped.pdfsPerSecond / htmlPdfNode.pdfsPerSecond) * 10) / 10 : null;
const results = {
  date: new Date().toISOString(),
  node: process.version,
  chromium: chromiumVersion,
  thread: { messages: 10, htmlBytes: html.length },
  renders: N,
  warmup: WARMUP,
  pool: PAGES,
  htmlPdfNode: { ...htmlPdfNode, consoleLinesPrinted: consoleLines },
  shipped,
  ratio: {
    /** PDFs per second, N submitted at once through the same pool size (html-pdf-node's failed renders count as time spent). */
    shippedOverHtmlPdfNode: ratio,
    /** One PDF at a time: html-pdf-node's median latency over the shipped path's. */
    sequentialLatency: shipped.sequentialMs.p50 > 0 ? Math.round((htmlPdfNode.sequentialMs.p50 / shipped.sequentialMs.p50) * 10) / 10 : null,
  },
};
mkdirSync(resolve(root, 'bench', 'results'), { recursive: true });
const out = resolve(root, 'bench', 'results', 'pdf.json');
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
for (const r of [htmlPdfNode, shipped]) {
  const failed = r.failures.warmup + r.failures.measured;
  console.log(
    `${r.name}: ${r.pdfsPerSecond} PDFs/s (${r.succeeded}/${N} at once; sequential p50 ${r.sequentialMs.p50} ms), process tree peak ${r.memory.processTreePssPeakMb} MB PSS${failed ? `, ${failed} failed: ${r.failures.messages.join('; ')}` : ''}`,
  );
}
console.log(`ratio shipped / html-pdf-node: ${ratio ?? 'n/a'} PDFs/s, ${results.ratio.sequentialLatency ?? 'n/a'}× sequential latency — wrote ${out}`);
