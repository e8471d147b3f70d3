// Tests of the auto-reply loop guard: every automated corpus mail is withheld, ordinary customer mail never is, plus per-rule, age and rate-limit units.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMail } from '../../adapters/parse/mail-parser.js';
import type { InboundMail } from '../mail/inbound.js';
import {
  AUTO_REPLY_HEADERS,
  DEFAULT_MAX_ARRIVAL_AGE_MS,
  DEFAULT_RATE_LIMIT,
  arrivalTooOld,
  automatedReason,
  automatedSignals,
  rateKey,
  rateSender,
  reasonFamily,
  robotLocalPart,
  shouldAutoReply,
  withinRate,
} from './loop-guard.js';

const CORPUS = join(import.meta.dirname, '../../../../shared/corpus');
const AUTOMATED_DIR = join(CORPUS, 'automated');
const MALFORMED_DIR = join(CORPUS, 'malformed');
const OURS = ['support@shop.example', 'sales@shop.example'];
const NOW = Date.UTC(2025, 2, 14, 10, 0, 0);

function emlFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.toLowerCase().endsWith('.eml'))
    .sort();
}

/** A minimal InboundMail for rule tests: a person writing to support. */
function mail(over: Partial<InboundMail> = {}): InboundMail {
  return {
    messageId: 'abc@mail.example.com',
    inReplyTo: [],
    references: [],
    subject: 'Question about my order 4711',
    from: { address: 'jane.doe@example.com', name: 'Jane Doe' },
    replyTo: [],
    to: [{ address: 'support@shop.example' }],
    cc: [],
    deliveredTo: [],
    date: NOW - 60_000,
    headers: { 'return-path': '<jane.doe@example.com>', 'content-type': 'text/plain; charset=utf-8' },
    text: 'Hello, where is my parcel? Thanks, Jane',
    html: null,
    attachments: [],
    size: 1000,
    sha256: '0'.repeat(64),
    ...over,
  };
}
const withHeaders = (headers: Record<string, string>, over: Partial<InboundMail> = {}): InboundMail =>
  mail({ ...over, headers: { 'return-path': '<jane.doe@example.com>', 'content-type': 'text/plain; charset=utf-8', ...headers } });
const reason = (m: InboundMail): string | null => automatedReason(m, { ourAddresses: OURS });

// ---------------------------------------------------------------------------------------------------------

describe('automated corpus (R-ARP-6)', () => {
  it('withholds an auto-reply from every message in shared/corpus/automated', async () => {
    expect(existsSync(AUTOMATED_DIR), `corpus folder missing: ${AUTOMATED_DIR}`).toBe(true);
    const files = emlFiles(AUTOMATED_DIR);
    expect(files.length).toBeGreaterThan(0);

    const missed: string[] = [];
    const contentOnly: string[] = [];
    /** rule → files with any signal of that rule / files decided by it. */
    const anyHit = new Map<string, number>();
    const decided = new Map<string, number>();
    const byFamily = new Map<string, number>();
    for (const file of files) {
      const parsed = await parseMail(readFileSync(join(AUTOMATED_DIR, file)));
      const signals = automatedSignals(parsed, { ourAddresses: OURS });
      expect(automatedReason(parsed, { ourAddresses: OURS })).toBe(signals[0] ?? null);
      const first = signals[0];
      if (first === undefined) {
        missed.push(`${file} (subject ${JSON.stringify(parsed.subject)}, from ${parsed.from?.address ?? 'none'})`);
        continue;
      }
      const rules = new Set(signals.map((s) => s.split(':', 1)[0] ?? s));
      for (const r of rules) anyHit.set(r, (anyHit.get(r) ?? 0) + 1);
      const rule = first.split(':', 1)[0] ?? first;
      decided.set(rule, (decided.get(rule) ?? 0) + 1);
      const family = reasonFamily(first);
      byFamily.set(family, (byFamily.get(family) ?? 0) + 1);
      if (family === 'content') contentOnly.push(`${file}: ${signals.join(', ')} (subject ${JSON.stringify(parsed.subject)})`);
    }

    const rows = [...anyHit.keys()]
      .sort((a, b) => (anyHit.get(b) ?? 0) - (anyHit.get(a) ?? 0))
      .map((r) => ({ rule: r, family: reasonFamily(`${r}:x`), filesMatching: anyHit.get(r) ?? 0, decidedBy: decided.get(r) ?? 0 }));
    console.log(`loop guard on ${files.length} automated corpus mails: ${files.length - missed.length} withheld`);
    console.table(rows);
    console.table([...byFamily].map(([family, files]) => ({ family, decidedBy: files })));
    console.log(contentOnly.length ? `caught only by the content fallback:\n  ${contentOnly.join('\n  ')}` : 'none caught only by the content fallback');

    expect(missed).toEqual([]);
  });

  it('never throws on the malformed corpus (either way is fine)', async () => {
    if (!existsSync(MALFORMED_DIR)) return;
    for (const file of emlFiles(MALFORMED_DIR)) {
      let parsed: InboundMail;
      try {
        parsed = await parseMail(readFileSync(join(MALFORMED_DIR, file)));
      } catch {
        continue; // quarantined by the parser: no auto-reply question arises
      }
      expect(() => automatedSignals(parsed, { ourAddresses: OURS }), file).not.toThrow();
      expect(() => shouldAutoReply({ mail: parsed, imported: false, internalDate: NOW, now: NOW, ourAddresses: OURS }), file).not.toThrow();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Ordinary customer mail, written by hand in the shapes real clients produce.

interface RawSpec {
  from: string;
  subject: string;
  headers?: string[];
  /** Complete body part including its own Content-Type headers; default: a text/plain body. */
  mime?: { contentType: string; body: string };
  body?: string;
  returnPath?: string;
}

function raw(spec: RawSpec): string {
  const addr = /<([^>]+)>/.exec(spec.from)?.[1] ?? spec.from;
  const lines = [
    `Return-Path: ${spec.returnPath ?? `<${addr}>`}`,
    'Received: from mail-out.example.net (mail-out.example.net [198.51.100.7]) by mx.shop.example with ESMTPS id 4Z1; Fri, 14 Mar 2025 09:58:12 +0000',
    `From: ${spec.from}`,
    'To: Shop Support <support@shop.example>',
    `Subject: ${spec.subject}`,
    'Date: Fri, 14 Mar 2025 10:58:00 +0100',
    `Message-ID: <${Math.abs(hash(spec.subject + spec.from))}.${spec.subject.length}@mail.example.net>`,
    'MIME-Version: 1.0',
    ...(spec.headers ?? []),
  ];
  if (spec.mime) lines.push(`Content-Type: ${spec.mime.contentType}`, '', spec.mime.body);
  else lines.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', spec.body ?? 'Hello,\n\nplease help.\n\nThanks');
  return lines.join('\r\n').replace(/(?<!\r)\n/g, '\r\n');
}

function hash(s: string): number {
  let h = 7;
  for (const ch of s) h = (h * 31 + (ch.codePointAt(0) ?? 0)) | 0;
  return h;
}

const ALT = (text: string, html: string, boundary = 'alt-b0undary'): { contentType: string; body: string } => ({
  contentType: `multipart/alternative; boundary="${boundary}"`,
  body: [
    `--${boundary}`,
    'Content-Type: text/plain; charset="UTF-8"',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    text,
    '',
    `--${boundary}`,
    'Content-Type: text/html; charset="UTF-8"',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    html,
    '',
    `--${boundary}--`,
    '',
  ].join('\n'),
});

const WITH_ATTACHMENT = (text: string, filename: string, type: string, b64: string): { contentType: string; body: string } => ({
  contentType: 'multipart/mixed; boundary="mixed-9f8e"',
  body: [
    '--mixed-9f8e',
    'Content-Type: text/plain; charset=utf-8',
    '',
    text,
    '',
    '--mixed-9f8e',
    `Content-Type: ${type}; name="${filename}"`,
    `Content-Disposition: attachment; filename="${filename}"`,
    'Content-Transfer-Encoding: base64',
    '',
    b64,
    '',
    '--mixed-9f8e--',
    '',
  ].join('\n'),
});

const OUTLOOK_HEADERS = [
  'Thread-Topic: Lieferung Bestellung 100234',
  'Thread-Index: AQHbk2V1c2VyLWxpZWZlcnVuZy0xMDAyMzQ=',
  'Accept-Language: de-DE, en-US',
  'Content-Language: de-DE',
  'X-MS-Has-Attach:',
  'X-MS-TNEF-Correlator:',
  'X-MS-Exchange-Organization-SCL: 1',
  'X-MS-Exchange-CrossTenant-OriginalArrivalTime: 14 Mar 2025 09:58:00.0000 (UTC)',
  'X-MS-Exchange-CrossTenant-id: 3f0a5b1c-1111-2222-3333-444455556666',
  'X-MS-Exchange-Transport-CrossTenantHeadersStamped: AM0PR01MB1234',
  'x-ms-publictraffictype: Email',
  'X-Mailer: Microsoft Outlook 16.0',
];
const GMAIL_HEADERS = [
  'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=gmail.com; s=20230601; h=to:subject:message-id:date:from:mime-version; bh=abc=; b=def=',
  'X-Google-DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=1e100.net; s=20230601; bh=abc=; b=def=',
  'X-Gm-Message-State: AOJu0YzExampleState',
  'X-Google-Smtp-Source: AGHT+IExampleSource',
  'X-Received: by 2002:a05:6402:1234 with SMTP id abc; Fri, 14 Mar 2025 02:58:01 -0700 (PDT)',
];

const ORDINARY: ReadonlyArray<readonly [string, string]> = [
  ['gmail plain', raw({ from: 'Jane Doe <jane.doe@gmail.com>', subject: 'Question about order #4711', headers: GMAIL_HEADERS, body: 'Hi,\n\nmy order #4711 has not arrived yet. Can you check?\n\nJane' })],
  [
    'gmail multipart/alternative',
    raw({
      from: 'Tom Baker <tom.baker@gmail.com>',
      subject: 'Wrong size delivered',
      headers: GMAIL_HEADERS,
      mime: ALT('Hello, I received size M instead of L. Tom', '<div dir="ltr">Hello, I received size M instead of L. Tom</div>', '000000000000a1b2c3'),
    }),
  ],
  [
    'outlook / exchange with Thread-Index',
    raw({
      from: 'Müller, Klaus <klaus.mueller@firma.example.de>',
      subject: 'AW: Lieferung Bestellung 100234',
      headers: OUTLOOK_HEADERS,
      body: 'Sehr geehrte Damen und Herren,\n\ndie Lieferung ist unvollständig.\n\nMit freundlichen Grüßen\nKlaus Müller\n\n-----Ursprüngliche Nachricht-----\nVon: Shop Support <support@shop.example>\nGesendet: Donnerstag, 13. März 2025 16:02\nBetreff: Lieferung Bestellung 100234',
    }),
  ],
  [
    'outlook.com RE: reply',
    raw({
      from: 'Sam Lee <sam.lee@outlook.com>',
      subject: 'RE: Your return request',
      headers: ['Thread-Topic: Your return request', 'Thread-Index: AQHbkabcdefghijk', 'X-MS-Exchange-Organization-AuthAs: Anonymous', 'X-OriginatorOrg: outlook.com'],
      body: 'Thanks, I have sent the parcel back today.\n\n________________________________\nFrom: Shop Support <support@shop.example>\nSent: 13 March 2025 15:00\nSubject: Your return request',
    }),
  ],
  [
    'apple mail',
    raw({
      from: 'Claire Martin <claire.martin@icloud.com>',
      subject: 'Réponse à votre commande',
      headers: ['X-Mailer: Apple Mail (2.3774.300.61.1.2)', 'Content-Language: fr'],
      mime: ALT('Bonjour,\n\nmerci pour votre réponse.\n\nClaire', '<html><body><div>Bonjour,<br>merci pour votre réponse.</div></body></html>', 'Apple-Mail=_1A2B3C4D'),
    }),
  ],
  [
    'thunderbird',
    raw({
      from: 'Piotr Nowak <piotr@nowak.example.pl>',
      subject: 'Invoice for order 5512',
      headers: ['User-Agent: Mozilla Thunderbird', 'Content-Language: en-US'],
      body: 'Hello,\n\ncould you send me an invoice with my VAT number PL1234567890?\n\nRegards,\nPiotr',
    }),
  ],
  ['iphone', raw({ from: 'Mia <mia.k@icloud.com>', subject: 'Re: Delivery', headers: ['X-Mailer: iPhone Mail (21D61)'], body: 'Ok thank you!\n\nSent from my iPhone' })],
  ['android / gmail app', raw({ from: 'Ravi Kumar <ravi.kumar@gmail.com>', subject: 'Refund', headers: GMAIL_HEADERS, body: 'When will I get my refund?\n\nSent from my Galaxy' })],
  ['outlook for ios', raw({ from: 'Ana Souza <ana.souza@hotmail.com>', subject: 'Re: Troca de produto', headers: ['X-MS-Exchange-Organization-SCL: 1'], body: 'Olá, quero trocar o produto.\n\nGet Outlook for iOS' })],
  ['yahoo webmail', raw({ from: 'Bob <bob_1984@yahoo.com>', subject: 'coupon code not working', headers: ['X-Mailer: WebService/1.1.22111 YMailNorrin'], body: 'The code SPRING10 does not work at checkout.' })],
  ['german AW:', raw({ from: 'Eva Schmidt <eva.schmidt@web.de>', subject: 'AW: Ihre Bestellung', body: 'Danke, passt so.' })],
  ['lotus notes style "Antwort:"', raw({ from: 'Jens Becker <jens.becker@firma.example.de>', subject: 'Antwort: Lieferung', body: 'Die Lieferung kam heute an, danke.' })],
  ['french "RE :"', raw({ from: 'Luc Bernard <luc.bernard@orange.fr>', subject: 'RE : commande 8812', body: "Bonjour, je n'ai pas reçu la facture." })],
  ['japanese subject with 自動車', raw({ from: '山田太郎 <yamada@example.co.jp>', subject: 'Re: 自動車の見積もり', body: '見積もりをありがとうございます。来週お伺いします。' })],
  [
    'forwarded Fwd:',
    raw({
      from: 'Nina Petrova <nina.petrova@gmail.com>',
      subject: 'Fwd: Your order confirmation #99812',
      headers: GMAIL_HEADERS,
      body: 'See below, the address is wrong.\n\n---------- Forwarded message ---------\nFrom: Shop <orders@shop.example>\nDate: Thu, 13 Mar 2025\nSubject: Your order confirmation #99812\n\nThank you for your order.',
    }),
  ],
  [
    'html only',
    raw({
      from: 'Olivia Green <olivia@green.example.com>',
      subject: 'Broken item',
      mime: { contentType: 'text/html; charset=utf-8', body: '<html><body><p>Hi,</p><p>the <b>vase</b> arrived broken.</p><p>Olivia</p></body></html>' },
    }),
  ],
  [
    'with a photo attachment',
    raw({
      from: 'Mark Twain <mark.twain@example.org>',
      subject: 'Damaged parcel photo',
      mime: WITH_ATTACHMENT('Photo attached.', 'IMG_2031.jpg', 'image/jpeg', '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDAoKCw0='),
    }),
  ],
  [
    'with a pdf attachment',
    raw({
      from: 'Accounts Payable <ap@customer-corp.example.com>',
      subject: 'Invoice INV-2025-0311 query',
      mime: WITH_ATTACHMENT('Please see the attached remittance advice.', 'remittance.pdf', 'application/pdf', 'JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4='),
    }),
  ],
  ['subject mentions delivery', raw({ from: 'Karl <karl@example.net>', subject: 'Delivery of my order is late', body: 'The delivery was promised for Monday.' })],
  ['subject delivery status (customer)', raw({ from: 'Ines <ines@example.es>', subject: 'Delivery status of order 4711?', body: 'Hi, what is the delivery status? I paid 450 euros last week.' })],
  ['subject delivery failure of a parcel', raw({ from: 'Hugo <hugo@example.fr>', subject: 'Delivery failure - parcel sent back?', body: 'The courier says delivery failed twice. Can you resend it?' })],
  ['subject out of stock', raw({ from: 'Lena <lena@example.se>', subject: 'Out of stock - when back?', body: 'The blue jacket is out of stock, when will it be back?' })],
  ['automatic transmission', raw({ from: 'Dave <dave.r@example.com>', subject: 'Question about automatic transmission fluid', body: 'Which fluid fits the 2015 model with automatic transmission?' })],
  ['Precedence: normal', raw({ from: 'Greta <greta@example.at>', subject: 'Rückfrage Rechnung', headers: ['Precedence: normal'], body: 'Bitte Rechnung an neue Adresse.' })],
  ['Auto-Submitted: no', raw({ from: 'Omar <omar@example.ae>', subject: 'Exchange request', headers: ['Auto-Submitted: no'], body: 'I would like to exchange my shoes.' })],
  ['a customer named Postmaster', raw({ from: 'Max Postmaster <max.postmaster@example.com>', subject: 'Order 7781', body: 'Hello, please cancel order 7781. Max Postmaster' })],
  ['out of office hours question', raw({ from: 'Ann <ann@example.ie>', subject: 'Out of office hours support?', body: 'Do you answer the phone out of office hours?' })],
  ['customer away next week', raw({ from: 'Paul <paul@example.nl>', subject: 'Levering volgende week', body: 'Ik ben volgende week afwezig, kunt u dinsdag leveren?' })],
  ['japanese parcel missed-delivery slip', raw({ from: '佐藤花子 <hanako@example.jp>', subject: '不在票が入っていました', body: '再配達をお願いします。' })],
  ['spanish re:', raw({ from: 'Carmen <carmen@example.es>', subject: 'RE: Devolución pedido 3321', body: 'Gracias por su ayuda.' })],
  ['cc to a colleague, sales alias', raw({ from: 'Yuki Tanaka <yuki@example.jp>', subject: 'Bulk order quote', headers: ['Cc: boss@example.jp'], body: 'We would like a quote for 500 units. Is a bulk discount possible?' })],
];

describe('ordinary customer mail is never withheld', () => {
  it('has at least 25 hand-written cases', () => {
    expect(ORDINARY.length).toBeGreaterThanOrEqual(25);
  });

  for (const [label, source] of ORDINARY) {
    it(label, async () => {
      const parsed = await parseMail(new TextEncoder().encode(source));
      expect(parsed.from?.address).toBeTruthy();
      expect(automatedSignals(parsed, { ourAddresses: OURS })).toEqual([]);
      expect(shouldAutoReply({ mail: parsed, imported: false, internalDate: NOW - 120_000, now: NOW, ourAddresses: OURS })).toEqual({ ok: true });
    });
  }

  it('real human reply bodies (shared/corpus/quotes, ~15 languages, with quoted history) trip no content clue', () => {
    const dir = join(CORPUS, 'quotes', 'emails');
    if (!existsSync(dir)) return;
    for (const file of readdirSync(dir).sort()) {
      const text = readFileSync(join(dir, file), 'utf8');
      expect(automatedSignals(mail({ subject: 'Re: your question', text }), { ourAddresses: OURS }), file).toEqual([]);
    }
  });

  it('our own auto-reply, if it comes back, is recognized by the headers we put on it', async () => {
    const source = raw({
      from: 'Shop Support <support@shop.example>',
      subject: 'RE: Question about order #4711',
      headers: Object.entries(AUTO_REPLY_HEADERS).map(([k, v]) => `${k}: ${v}`),
      body: 'Thank you, we will answer within one working day.',
    });
    const parsed = await parseMail(new TextEncoder().encode(source));
    expect(automatedSignals(parsed, { ourAddresses: OURS })).toEqual(
      expect.arrayContaining(['auto_submitted:auto-replied', 'autoresponder:x-auto-response-suppress', 'own_address:from']),
    );
    expect(AUTO_REPLY_HEADERS).toEqual({ 'Auto-Submitted': 'auto-replied', 'X-Auto-Response-Suppress': 'All' });
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('header rules', () => {
  it('Auto-Submitted: anything but "no"', () => {
    expect(reason(withHeaders({ 'auto-submitted': 'auto-replied' }))).toBe('auto_submitted:auto-replied');
    expect(reason(withHeaders({ 'auto-submitted': 'auto-generated (failure)' }))).toBe('auto_submitted:auto-generated');
    expect(reason(withHeaders({ 'auto-submitted': 'Auto-Notified; owner-email="a@b"' }))).toBe('auto_submitted:auto-notified');
    expect(reason(withHeaders({ 'auto-submitted': '' }))).toBe('auto_submitted:empty');
    expect(reason(withHeaders({ 'auto-submitted': 'No' }))).toBeNull();
    expect(reason(withHeaders({ 'auto-submitted': ' no ' }))).toBeNull();
  });

  it('null return path and mailer-daemon return path', () => {
    expect(reason(withHeaders({ 'return-path': '<>' }))).toBe('dsn:null-return-path');
    expect(reason(withHeaders({ 'return-path': '< >' }))).toBe('dsn:null-return-path');
    expect(reason(withHeaders({ 'return-path': '<MAILER-DAEMON@mx.example.com>' }))).toBe('dsn:return-path-mailer-daemon');
    // ESP / SRS envelope senders are not bounces by themselves (forwarded customer mail carries them).
    expect(reason(withHeaders({ 'return-path': '<bounces+SRS=abc12=34@tenant.onmicrosoft.com>' }))).toBeNull();
  });

  it('report content types at the top level or as parts (DSN, MDN, ARF)', () => {
    expect(reason(withHeaders({ 'content-type': 'multipart/report; report-type=delivery-status; boundary="x"' }))).toBe('dsn:multipart/report');
    expect(reason(withHeaders({ 'content-type': 'message/delivery-status' }))).toBe('dsn:message/delivery-status');
    const part = (contentType: string): InboundMail =>
      mail({ attachments: [{ filename: 'details.txt', contentType, size: 100, inline: false, sha256: '' }] });
    expect(reason(part('message/delivery-status'))).toBe('dsn:message/delivery-status');
    expect(reason(part('message/global-delivery-status'))).toBe('dsn:message/global-delivery-status');
    expect(reason(part('text/rfc822-headers'))).toBe('dsn:text/rfc822-headers');
    expect(reason(part('message/disposition-notification'))).toBe('mdn:message/disposition-notification');
    expect(reason(part('message/feedback-report'))).toBe('arf:message/feedback-report');
    expect(reason(withHeaders({ 'feedback-type': 'abuse' }))).toBe('arf:feedback-type');
    // A forwarded mail as an attachment is ordinary.
    expect(reason(part('message/rfc822'))).toBeNull();
  });

  it('X-Failed-Recipients and Exchange NDR marker', () => {
    expect(reason(withHeaders({ 'x-failed-recipients': 'nobody@example.org' }))).toBe('dsn:x-failed-recipients');
    expect(reason(withHeaders({ 'x-ms-exchange-message-is-ndr': '' }))).toBe('dsn:x-ms-exchange-message-is-ndr');
  });

  it('Precedence bulk/list/junk/auto_reply, not normal/urgent', () => {
    for (const p of ['bulk', 'list', 'junk', 'auto_reply', 'Bulk']) expect(reason(withHeaders({ precedence: p }))).toBe(`precedence:${p.toLowerCase()}`);
    for (const p of ['normal', 'urgent', 'first-class']) expect(reason(withHeaders({ precedence: p }))).toBeNull();
  });

  it('mailing-list headers', () => {
    expect(reason(withHeaders({ 'list-id': 'Cats <cats.lists.example.org>' }))).toBe('list:list-id');
    expect(reason(withHeaders({ 'list-unsubscribe': '<mailto:leave@lists.example.org>' }))).toBe('list:list-unsubscribe');
    expect(reason(withHeaders({ 'list-post': '<mailto:cats@lists.example.org>' }))).toBe('list:list-post');
    expect(reason(withHeaders({ 'mailing-list': 'contact cats-help@example.org; run by ezmlm' }))).toBe('list:mailing-list');
  });

  it('auto-responder headers', () => {
    expect(reason(withHeaders({ 'x-autoreply': 'yes' }))).toBe('autoresponder:x-autoreply');
    expect(reason(withHeaders({ 'x-autorespond': 'Out of office' }))).toBe('autoresponder:x-autorespond');
    expect(reason(withHeaders({ 'x-autogenerated': 'Reply' }))).toBe('autoresponder:x-autogenerated');
    expect(reason(withHeaders({ 'x-auto-reply': '1' }))).toBe('autoresponder:x-auto-reply');
    expect(reason(withHeaders({ 'x-autoreply': 'no' }))).toBeNull();
    expect(reason(withHeaders({ 'x-apple-action': 'VACATION' }))).toBe('autoresponder:x-apple-action');
  });

  it('X-Auto-Response-Suppress asking for no auto-replies (All / OOF / AutoReply)', () => {
    for (const v of ['All', 'OOF', 'DR, RN, NRN, OOF, AutoReply', 'autoreply'])
      expect(reason(withHeaders({ 'x-auto-response-suppress': v }))).toBe('autoresponder:x-auto-response-suppress');
    // Only delivery/read receipts suppressed: an auto-reply was not refused.
    expect(reason(withHeaders({ 'x-auto-response-suppress': 'DR, RN, NRN' }))).toBeNull();
  });

  it('Exchange generated / inbox-rule loop headers', () => {
    expect(reason(withHeaders({ 'x-ms-exchange-generated-message-source': 'Mailbox Rules Agent' }))).toBe('ms_exchange:generated-message-source');
    expect(reason(withHeaders({ 'x-ms-exchange-inbox-rules-loop': 'someone@example.com' }))).toBe('ms_exchange:inbox-rules-loop');
  });

  it('X-Loop naming us or a mail daemon, not an unrelated one', () => {
    expect(reason(withHeaders({ 'x-loop': 'support@shop.example' }))).toBe('loop:x-loop');
    expect(reason(withHeaders({ 'x-loop': 'MAILER-DAEMON@example.co.jp' }))).toBe('loop:x-loop');
    expect(reason(withHeaders({ 'x-loop': 'procmail@home.example.net' }))).toBeNull();
  });

  it('reports every signal, headers before the sender', () => {
    const m = withHeaders({ 'auto-submitted': 'auto-replied', precedence: 'bulk' }, { from: { address: 'noreply@example.com' } });
    expect(automatedSignals(m, { ourAddresses: OURS })).toEqual(['auto_submitted:auto-replied', 'precedence:bulk', 'sender:no-reply']);
  });
});

describe('sender rules', () => {
  it('robot local parts', () => {
    const cases: Array<[string, string | null]> = [
      ['MAILER-DAEMON@mx.example.com', 'mailer-daemon'],
      ['mailer-daemon@example.com', 'mailer-daemon'],
      ['Mail.Delivery.System@example.com', 'mailer-daemon'],
      ['postmaster@example.com', 'postmaster'],
      ['post_master@vtext.example.com', 'postmaster'],
      ['no-reply@example.com', 'no-reply'],
      ['noreply@example.com', 'no-reply'],
      ['no_reply@example.com', 'no-reply'],
      ['do-not-reply@example.com', 'no-reply'],
      ['donotreply@example.com', 'no-reply'],
      ['shipment-tracking-noreply@example.com', 'no-reply'],
      ['noreply+orders@example.com', 'no-reply'],
      ['bounce@example.com', 'bounce'],
      ['bounces@example.com', 'bounce'],
      ['bounce-1234-abc@mail.example.com', 'bounce'],
      ['bounces+12ab34@em.example.com', 'bounce'],
      ['auto-reply@example.com', 'auto-reply'],
      ['autoreply@example.com', 'auto-reply'],
      // People.
      ['max.postmaster@example.com', null],
      ['postmasterson@example.com', null],
      ['bounce.house@example.com', null],
      ['replyguy@example.com', null],
      ['noreen@example.com', null],
      ['daemon.fan@example.com', null],
    ];
    for (const [address, expected] of cases) expect(robotLocalPart(address), address).toBe(expected);
  });

  it('From a robot, no From at all, robot display names', () => {
    expect(reason(mail({ from: { address: 'mailer-daemon@mx.example.com', name: 'Mail Delivery System' } }))).toBe('sender:mailer-daemon');
    expect(reason(mail({ from: null }))).toBe('sender:missing');
    expect(reason(mail({ from: { address: 'system@mx.example.com', name: 'Mail Delivery Subsystem' } }))).toBe('sender:name-mail-delivery-subsystem');
    expect(reason(mail({ from: { address: 'max.postmaster@example.com', name: 'Max Postmaster' } }))).toBeNull();
  });

  it('mail from our own addresses (From, Reply-To, Return-Path), case and +tag insensitive', () => {
    expect(reason(mail({ from: { address: 'support@shop.example' } }))).toBe('own_address:from');
    expect(reason(mail({ from: { address: 'Support+queue1@Shop.Example' } }))).toBe('own_address:from');
    expect(reason(mail({ replyTo: [{ address: 'sales@shop.example' }] }))).toBe('own_address:reply-to');
    expect(reason(withHeaders({ 'return-path': '<support@shop.example>' }))).toBe('own_address:return-path');
    expect(automatedReason(mail({ from: { address: 'support@shop.example' } }), { ourAddresses: [] })).toBeNull();
  });
});

describe('content fallback (only when no header or sender rule matched)', () => {
  const subj = (subject: string, text = 'Nyaan'): string | null => reason(mail({ subject, text }));

  it('bounce subjects in several languages', () => {
    for (const s of [
      'Undelivered Mail Returned to Sender',
      'Delivery Status Notification (Failure)',
      'Delivery Status Notification (Delay)',
      'Mail delivery failed: returning message to sender',
      'Mail Delivery Failure',
      'Returned mail: see transcript for details',
      'Fwd: Returned mail: User unknown',
      'failure notice',
      'Undeliverable: Meeting tomorrow',
      'Undeliverable Mail',
      '[Postmaster] Email Delivery Failure',
      'Message delivery has failed',
      'Sorry, your message could not be delivered',
      'Warning: could not send message for past 4 hours',
      'Delivery Notification: Delivery has failed',
      'Non remis : Votre commande',
      'Non recapitabile: Ordine',
      'Unzustellbar: Rechnung',
      'No se puede entregar: Pedido',
      'Onbestelbaar: Factuur',
      'Ваше сообщение не доставлено',
      '配信不能: ご注文',
      'メールエラー通知',
      '无法投递: 订单',
    ])
      expect(subj(s), s).toBe('subject:bounce');
  });

  it('vacation subjects in several languages', () => {
    for (const s of [
      'Automatic reply: Order 4711',
      'Auto reply: Nyaan',
      'Auto-Reply: your message',
      'AutoReply: Re: invoice',
      'Out of Office: Re: invoice',
      'Out of the office until Monday',
      'Abwesenheitsnotiz: Ihre Bestellung',
      'Automatische Antwort: Rechnung',
      'Réponse automatique : commande',
      'Respuesta automática: pedido',
      'Risposta automatica: ordine',
      'Automatisch antwoord: bestelling',
      'Resposta automática: pedido',
      'Automatiskt svar: order',
      'Автоматический ответ: заказ',
      '自動応答: ご注文',
      '【自動返信】お問い合わせありがとうございます',
      '自动回复: 订单',
      'Re: order 4711 (Auto-Reply)',
    ])
      expect(subj(s), s).toBe('subject:vacation');
  });

  it('bounce and report bodies', () => {
    expect(subj('Nyaan', 'This is the mail system at host mx.example.com.\n\nI\'m sorry to have to inform you...')).toBe('body:bounce');
    expect(subj('Hello', 'Delivery to the following recipient failed permanently:\n\n  kijitora@example.jp')).toBe('body:bounce');
    expect(subj('Hi', 'Hi. This is the qmail-send program at mx.example.org.\nI\'m afraid I wasn\'t able to deliver your message')).toBe('body:bounce');
    expect(subj('x', 'Reporting-MTA: dns; mx.example.com\nFinal-Recipient: rfc822; a@b.example')).toBe('body:bounce');
    expect(subj('Report', 'This is an email abuse report for an email message received from IP 192.0.2.1')).toBe('body:feedback-report');
    expect(subj('complaint about message from 192.0.2.222')).toBe('subject:feedback-report');
  });

  it('ambiguous subjects need a technical body clue', () => {
    expect(subj('Delivery failure', 'Unable to route: 550 5.1.1 <a@b.example>: Recipient address rejected')).toBe('subject+body:bounce');
    expect(subj('Delivery failure', 'The courier tried twice, nobody was home.')).toBeNull();
  });

  it('is not consulted when a header already decided', () => {
    expect(reason(withHeaders({ 'auto-submitted': 'auto-replied' }, { subject: 'Out of Office: hi' }))).toBe('auto_submitted:auto-replied');
    expect(reasonFamily('subject:vacation')).toBe('content');
    expect(reasonFamily('body:bounce')).toBe('content');
    expect(reasonFamily('sender:mailer-daemon')).toBe('sender');
    expect(reasonFamily('list:list-id')).toBe('header');
  });
});

describe('arrival age, imports, combined decision', () => {
  it('arrivalTooOld uses INTERNALDATE with a 24 h default', () => {
    expect(DEFAULT_MAX_ARRIVAL_AGE_MS).toBe(86_400_000);
    expect(arrivalTooOld(NOW - 86_400_000, NOW)).toBe(false);
    expect(arrivalTooOld(NOW - 86_400_001, NOW)).toBe(true);
    expect(arrivalTooOld(NOW - 3_600_000, NOW, 1_800_000)).toBe(true);
    expect(arrivalTooOld(NOW + 60_000, NOW)).toBe(false);
    expect(arrivalTooOld(null, NOW)).toBe(false);
    expect(arrivalTooOld(Number.NaN, NOW)).toBe(false);
  });

  it('shouldAutoReply: imported, then too old, then automated', () => {
    const base = { mail: mail(), imported: false, internalDate: NOW - 1000, now: NOW, ourAddresses: OURS };
    expect(shouldAutoReply(base)).toEqual({ ok: true });
    expect(shouldAutoReply({ ...base, imported: true })).toEqual({ ok: false, reason: 'imported' });
    expect(shouldAutoReply({ ...base, internalDate: NOW - 2 * 86_400_000 })).toEqual({ ok: false, reason: 'arrival_too_old' });
    expect(shouldAutoReply({ ...base, internalDate: NOW - 7_200_000, maxAgeMs: 3_600_000 })).toEqual({ ok: false, reason: 'arrival_too_old' });
    expect(shouldAutoReply({ ...base, mail: withHeaders({ precedence: 'bulk' }) })).toEqual({ ok: false, reason: 'precedence:bulk' });
    // A mail whose Date header is ancient but that just arrived is answered.
    expect(shouldAutoReply({ ...base, mail: mail({ date: NOW - 30 * 86_400_000 }) })).toEqual({ ok: true });
  });
});

describe('per-sender rate limit', () => {
  it('defaults to 3 per hour', () => {
    expect(DEFAULT_RATE_LIMIT).toEqual({ max: 3, windowMs: 3_600_000 });
  });

  it('fixed windows: same key within a window, a new key in the next', () => {
    const hour = 3_600_000;
    const start = Math.floor(NOW / hour) * hour;
    const k = rateKey('jane@example.com', start);
    expect(k).toBe(`autoreply-rate:jane@example.com:${start / hour}`);
    expect(rateKey('jane@example.com', start + hour - 1)).toBe(k);
    expect(rateKey('jane@example.com', start + hour)).not.toBe(k);
    expect(rateKey('jane@example.com', start - 1)).not.toBe(k);
    expect(rateKey('jane@example.com', start, 60_000)).toBe(`autoreply-rate:jane@example.com:${start / 60_000}`);
  });

  it('one bucket per sender, case / brackets / +tag insensitive, no stray colons', () => {
    expect(rateKey('<Jane+promo@Example.COM>', NOW)).toBe(rateKey('jane@example.com', NOW));
    expect(rateKey('bob@example.com', NOW)).not.toBe(rateKey('jane@example.com', NOW));
    expect(rateSender('"we:ird"@example.com')).not.toContain(':');
    expect(() => rateKey('a@b.example', NOW, 0)).toThrow(RangeError);
  });

  it('withinRate counts the current reply: up to max allowed', () => {
    expect([1, 2, 3, 4, 10].map((n) => withinRate(n))).toEqual([true, true, true, false, false]);
    expect(withinRate(1, { max: 0, windowMs: 1000 })).toBe(false);
    expect(withinRate(5, { max: 5, windowMs: 1000 })).toBe(true);
    expect(withinRate(Number.NaN)).toBe(false);
  });
});
