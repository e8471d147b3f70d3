// Strips quoted history, forwarded blocks and signatures from a reply body for CRM comments and previews (approach: line classes + pattern rules, after discourse/email_reply_trimmer, MIT, Copyright (c) Discourse).

/** Input beyond this many characters is ignored (the tail of a huge mail is history, not new text). */
export const MAX_TRIM_INPUT_CHARS = 1_000_000;
/** Lines beyond this many are ignored. */
export const MAX_TRIM_LINES = 10_000;
/** Lines longer than this are always plain text: no pattern runs over them. */
const MAX_CLASSIFIED_LINE = 1_000;
/** An "On … wrote:" marker, once its wrapped lines are joined, is never longer than this. */
const MAX_MARKER_CHARS = 400;
/** A wrapped marker spans at most this many physical lines (blank lines included). */
const MAX_MARKER_LINES = 5;
/** Text after an embedded quote that is shorter than this many lines is taken as the quoted mail's footer. */
const MAX_FOOTER_TEXT_LINES = 7;

/**
 * Line classes: e empty, t text, q quote, b embedded-email marker ("On … wrote:", "-----Original Message-----"),
 * h header of an embedded email (From:/Sent:/To:/Subject: block), d delimiter (signature separator), s mobile signature.
 */
type LineClass = 'e' | 't' | 'q' | 'b' | 'h' | 'd' | 's';

interface Line {
  text: string;
  cls: LineClass;
}

// ---------------------------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------------------------

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const alternation = (words: readonly string[]): string =>
  [...words].sort((a, b) => b.length - a.length).map(escapeRe).join('|');

/** "wrote" in the languages mail clients localise their reply headers into (matched as whole words). */
const WROTE_WORDS = [
  'wrote', 'writes', 'has written',
  'a écrit', 'a ecrit', 'écrit',
  'schrieb', 'hat geschrieben',
  'schreef', 'geschreven',
  'escribió', 'escribio', 'ha escrito',
  'ha scritto', 'scrisse',
  'escreveu',
  'skrev', 'skrifaði',
  'napisał(a)', 'napisał', 'napisała', 'napisal', 'napsal', 'napsala', 'napísal', 'napisao', 'napisala', 'napisa',
  'написал(а)', 'написала', 'написал', 'написав', 'написала', 'пише', 'писал', 'написа',
  'pisze', 'pisał', 'пишет', 'kirjoitti', 'írta', 'yazdı', 'έγραψε', 'a scris', 'va escriure', 'menulis', 'đã viết', 'kirjutas', 'rašė', 'rakstīja',
  'כתב', 'كتب',
];
/** The same for scripts without word spaces (matched anywhere). */
const WROTE_CJK = ['写道', '寫道', 'のメール', 'のメッセージ', 'は書きました', '님이 작성', '작성'];
/** Verbs that come before the name in Thunderbird-style headers ("Am 05.06.2017 um 12:22 schrieb Hans Müller:"). */
const VERB_BEFORE_NAME = new Set(['schrieb', 'schreef', 'skrev', 'napsal', 'napsala', 'napisał', 'napisał(a)', 'pisze']);
const WROTE_RE = new RegExp(
  `(?<![\\p{L}\\p{N}])(?:${alternation(WROTE_WORDS)})(?![\\p{L}])|(?:${alternation(WROTE_CJK)})`,
  'giu',
);

/** Words a localised "On <date>, <name> wrote:" starts with. */
const INTRO_RE =
  /^(?:on|le|am|el|il giorno|il|op|em|den|dnia|w dniu|at|dne|dňa|pada|vào lúc|vào|на|в|во|у|στις|kl\.|dana|sur|在|於|于)(?=[\s,.:]|$)/iu;
/** "понедельник, 6 …", "pon., 5 …", "ma 5. …": a short word (weekday) and then a number. */
const WEEKDAY_START_RE = /^\p{L}{1,12}\.?,?\s+\d/u;

/** Separator lines of Outlook/Gmail/Thunderbird/Apple Mail forwards and replies ("-----Original Message-----"). */
const SEPARATOR_PHRASES = new Set(
  [
    'original message', 'original e-mail', 'original email', 'forwarded message', 'forwarded e-mail', 'forwarded email',
    'begin forwarded message', 'message d\'origine', 'message original', 'message transféré', 'courriel original',
    'début du message réexpédié', 'début du message transféré',
    'ursprüngliche nachricht', 'originalnachricht', 'weitergeleitete nachricht', 'anfang der weitergeleiteten nachricht',
    'mensaje original', 'mensaje reenviado', 'inicio del mensaje reenviado', 'comienzo del mensaje reenviado',
    'messaggio originale', 'messaggio inoltrato', 'inizio messaggio inoltrato',
    'oorspronkelijk bericht', 'origineel bericht', 'doorgestuurd bericht', 'begin doorgestuurd bericht',
    'mensagem original', 'mensagem encaminhada', 'início da mensagem reencaminhada', 'início da mensagem encaminhada',
    'oryginalna wiadomość', 'wiadomość oryginalna', 'przekazana wiadomość', 'wiadomość przekazana',
    'исходное сообщение', 'пересылаемое сообщение', 'пересланное сообщение', 'оригинальное сообщение',
    'начало переадресованного сообщения', 'оригінальне повідомлення', 'переслане повідомлення',
    'original meddelelse', 'videresendt meddelelse', 'opprinnelig melding', 'videresendt melding',
    'ursprungligt meddelande', 'vidarebefordrat meddelande', 'vidarebefordrat brev',
    'alkuperäinen viesti', 'välitetty viesti', 'původní zpráva', 'přeposlaná zpráva', 'pôvodná správa',
    'eredeti üzenet', 'továbbított üzenet', 'orijinal mesaj', 'iletilen mesaj', 'αρχικό μήνυμα', 'mesaj original',
    '原始邮件', '原始郵件', '转发邮件', '转发的邮件', '轉寄郵件', '元のメッセージ', '転送されたメッセージ', '원본 메시지', '전달된 메시지',
  ].map((p) => p.normalize('NFC')),
);

type HeaderCategory = 'from' | 'sent' | 'to' | 'cc' | 'subject' | 'replyto';

/** Header names of an embedded email as Outlook and friends print them, by language. */
const HEADER_KEYS: Record<HeaderCategory, readonly string[]> = {
  from: [
    'from', 'von', 'de', 'da', 'van', 'från', 'fra', 'od', 'от', 'від', 'lähettäjä', 'feladó', 'kimden', 'από',
    'expéditeur', 'remitente', 'mittente', 'afzender', 'avsändare', 'nadawca', 'odesílatel',
    '差出人', '发件人', '寄件者', '보낸 사람',
  ],
  sent: [
    'sent', 'date', 'sent on', 'date sent', 'gesendet', 'datum', 'envoyé', 'envoyé le', 'enviado', 'enviado el',
    'enviada em', 'enviada', 'fecha', 'inviato', 'data', 'verzonden', 'skickat', 'sendt', 'wysłano', 'data wysłania',
    'отправлено', 'дата', 'надіслано', 'lähetetty', 'päivämäärä', 'elküldve', 'dátum', 'odesláno', 'gönderildi',
    'tarih', 'στάλθηκε', 'ημερομηνία', '送信日時', '日付', '发送时间', '日期', '寄件日期', '보낸 날짜',
  ],
  to: [
    'to', 'an', 'à', 'a', 'para', 'aan', 'till', 'til', 'do', 'кому', 'vastaanottaja', 'címzett', 'komu', 'kime',
    'προς', 'destinataire', 'destinatario', 'empfänger', '宛先', '收件人', '收件者', '받는 사람',
  ],
  cc: ['cc', 'bcc', 'kopie', 'copie', 'copia', 'kopia', 'копия', 'kopio', 'másolatot kap', 'bilgi', '抄送', '副本', '참조', 'κοιν'],
  subject: [
    'subject', 'betreff', 'objet', 'sujet', 'asunto', 'oggetto', 'onderwerp', 'ämne', 'emne', 'temat', 'тема', 'aihe',
    'tárgy', 'předmět', 'konu', 'assunto', 'θέμα', '件名', '主题', '主旨', '제목',
  ],
  replyto: [
    'reply-to', 'reply to', 'antwort an', 'antworten an', 'répondre à', 'responder a', 'rispondi a', 'risposta',
    'beantwoorden', 'svara till', 'svar til', 'odpowiedź do',
  ],
};
const HEADER_CATEGORY = new Map<string, HeaderCategory>();
for (const [cat, keys] of Object.entries(HEADER_KEYS) as Array<[HeaderCategory, readonly string[]]>) {
  for (const k of keys) HEADER_CATEGORY.set(k.normalize('NFC'), cat);
}
const HEADER_ALTERNATION = alternation([...HEADER_CATEGORY.keys()]);
/** "From: …", "*From:* …", "De : …" at the start of a line. */
const HEADER_LINE_RE = new RegExp(`^[\\s*]*(${HEADER_ALTERNATION})[\\s*]*[:：]`, 'iu');
/** Header names anywhere in a line ("From: a Sent: b Subject: c" flattened onto one line). */
const HEADER_ANYWHERE_RE = new RegExp(`(?:^|[\\s*])(${HEADER_ALTERNATION})[\\s*]*[:：]`, 'giu');

/** Mobile and webmail signatures ("Sent from my iPhone") in several languages. */
const SIGNATURE_RES: readonly RegExp[] = [
  /^[(<[\s]*sent (?:wirelessly )?(?:from|via|with|using|by) \S.{0,90}$/i,
  /^\S+(?: \S+)? from (?:my )?mobile\b/i,
  /^from my (?:iphone|ipad|ipod|android|mobile|phone|cell|samsung|galaxy|blackberry|htc|nokia|pixel|huawei|xiaomi|motorola|sony|tablet|smartphone)\b/i,
  /^get \[?outlook for (?:ios|android)/i,
  /^envoy[ée] (?:depuis|de|avec|à partir de) (?:mon|ma|l['’]|yahoo|outlook)/i,
  /^von meinem .{1,40} gesendet/i,
  /^gesendet (?:von|mit|über) (?:meinem|meiner|der|dem|einem|mobil|iphone|ipad|outlook|blackberry|gmx|web\.de)/i,
  /^diese nachricht wurde von .{1,80} gesendet/i,
  /^inviato da (?:iphone|ipad|il mio|mio|outlook|yahoo|samsung|android|libero|smartphone)/i,
  /^enviado (?:desde|con|de) (?:mi|el|outlook|yahoo|samsung)/i,
  /^enviado (?:do|a partir do|através do) meu\b/i,
  /^(?:verzonden|verstuurd) (?:met|vanaf|van|vanuit) /i,
  /^sendt fra (?:min|mi|outlook|yahoo)/i,
  /^skickat från (?:min|outlook|yahoo)/i,
  /^lähetetty \S{1,30}(?:sta|stä)$/i,
  /^wysłane (?:z|ze) /i,
  /^отправлено (?:с|из) /i,
  /^надіслано (?:з|із) /i,
  /^odesláno z /i,
  /^\S{1,30} gönderildi$/i,
  /^.{1,40}から送信$/,
  /^(?:发自|發自|寄自)我的/,
  /^(?:从|從)我的.{1,40}(?:发送|發送|傳送)$/,
  /^.{1,30}에서 보냄$/,
];

// ---------------------------------------------------------------------------------------------------------------
// Line classification
// ---------------------------------------------------------------------------------------------------------------

const isBlank = (line: string): boolean => /^\s*$/.test(line);

/** "> …", ">> …", and supercite-style "C> …" / "JD> …". */
const QUOTE_RE = /^[ \t]*(?:>|[A-Z][A-Za-z]?>)/;
const QUOTE_PREFIX_RE = /^(?:[ \t]*(?:>|[A-Z][A-Za-z]?>))+[ \t]?/;

/** A signature separator or rule: "-- ", "__________", "======", "ᐧ" (Gmail tracking), "—". */
const DELIMITER_RE = /^[ \t]*(?:[-_=~*+]{2,}|[\u2014\u2015\u2500\u2501]+|\u1427)[ \t]*$/;

const hasEmail = (s: string): boolean => /[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+/u.test(s);
const hasDateOrTime = (s: string): boolean =>
  /(?:^|\D)(?:19|20)\d{2}(?!\d)/.test(s) || /\d{1,2}[:.h]\d{2}(?!\d)/.test(s) || /\d{1,2}[./-]\d{1,2}[./-]\d{2,4}/.test(s);

/** Cleans a marker candidate: HTML entities some clients leave, no-break spaces, bold/italic markup around it. */
function normalizeMarker(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .replace(/[\u00a0\u2007\u202f\u200b\ufeff]/g, ' ')
    .trim()
    .replace(/^[*_]+|[*_]+$/g, '')
    .trim()
    .normalize('NFC');
}

/** "-----Original Message-----", "---------- Forwarded message ---------", "Begin forwarded message:". */
function isSeparatorMarker(s: string): boolean {
  const decorated = /^[-=_~]{2,}/.test(s) || /[:：]$/.test(s);
  if (!decorated) return false;
  const core = s
    .replace(/^[\s\-=_~*#]+/, '')
    .replace(/[\s\-=_~*#:：]+$/, '')
    .replace(/\s+/g, ' ')
    .toLowerCase();
  return SEPARATOR_PHRASES.has(core);
}

/** "On <date>, <name> wrote:", "Am <date> schrieb <name>:", "<name> <email> schrieb am <date>:", "… 写道：". */
function isWroteMarker(marker: string): boolean {
  let s = marker;
  const dashed = /^-{2,}\s*(.*?)\s*-{2,}$/.exec(s); // Zoho: "---- On … wrote ----"
  if (dashed) s = dashed[1] ?? '';
  else if (/[:：]$/.test(s)) s = s.slice(0, -1).trimEnd();
  else return false;
  let last: RegExpExecArray | null = null;
  WROTE_RE.lastIndex = 0;
  for (let m = WROTE_RE.exec(s); m; m = WROTE_RE.exec(s)) {
    last = m;
    if (m[0].length === 0) WROTE_RE.lastIndex++;
  }
  if (!last) return false;
  const head = s.slice(0, last.index).trim();
  const tail = s.slice(last.index + last[0].length).trim();
  if (!head || tail.length > 100) return false;
  // After the verb only an address/date may follow ("schrieb am …", "schrieb Max <…>"), never prose; a bare
  // capitalised name only after verbs that precede it ("… schrieb Hans Müller:").
  const nameOnly =
    VERB_BEFORE_NAME.has(last[0].toLowerCase()) &&
    tail.length <= 60 &&
    /^["'«(]?\p{Lu}/u.test(tail) &&
    !/[.!?;]/.test(tail) &&
    tail.split(/\s+/).length <= 5;
  if (tail && !/^\(a\)$/.test(tail) && !/[\d@<]/.test(tail) && !nameOnly) return false;
  if (!(hasDateOrTime(head) || hasEmail(head) || (tail !== '' && (hasDateOrTime(tail) || hasEmail(tail))))) return false;
  // Lotus Notes: "John Doe/ACME wrote on 06/05/2017 12:22:34 PM:".
  const dateAfterVerb = /^(?:on|am|le|el|il|op|em|den|dnia|at)\s/i.test(tail) && hasDateOrTime(tail);
  return INTRO_RE.test(s) || /^\d/.test(s) || WEEKDAY_START_RE.test(s) || hasEmail(head) || dateAfterVerb;
}

/** Horde/IMP: "Quoting John Doe <john@example.com>:", "Zitat von …:", "Citando …:". */
function isQuotingMarker(s: string): boolean {
  return s.length <= 200 && /^(?:quoting|zitat von|citando|cytowanie|citation de|citazione di)\s.*[:：]$/i.test(s) && hasEmail(s);
}

/** Gmail in some locales: "2016-10-24 15:36 GMT+02:00 Name <mail>:", "2013/7/20 Name <mail>", "2016年12月12日(月) 20:45 Name <mail>:". */
function isDateEmailMarker(s: string): boolean {
  if (s.length > 250) return false;
  if (!(/^\d/.test(s) || /^\p{L}{1,4}\.?,?\s+\d/u.test(s)) || !hasDateOrTime(s)) return false;
  if (/^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\s+\d{1,2}:\d{2}(?::\d{2})?\s*(?:GMT|UTC)\s*[+-]\d{1,2}(?::?\d{2})?\s+\S/.test(s)) {
    return true;
  }
  return /<\s*[^<>\s]+@[^<>\s]+\s*>\s*[:：]?$/.test(s);
}

/** An Outlook header block flattened onto one line: "From: a Sent: b To: c Subject: d". */
function isInlineHeaderMarker(s: string): boolean {
  const first = HEADER_LINE_RE.exec(s);
  if (!first || HEADER_CATEGORY.get((first[1] ?? '').toLowerCase()) !== 'from') return false;
  const seen = new Set<HeaderCategory>();
  HEADER_ANYWHERE_RE.lastIndex = 0;
  for (let m = HEADER_ANYWHERE_RE.exec(s); m; m = HEADER_ANYWHERE_RE.exec(s)) {
    const cat = HEADER_CATEGORY.get((m[1] ?? '').toLowerCase());
    if (cat) seen.add(cat);
  }
  return seen.has('from') && seen.has('sent') && seen.has('subject');
}

function isMarker(candidate: string, wrapped = false): boolean {
  if (candidate.length > MAX_MARKER_CHARS * 2) return false;
  const s = normalizeMarker(candidate);
  if (s.length === 0 || s.length > MAX_MARKER_CHARS) return false;
  return (
    isSeparatorMarker(s) ||
    isWroteMarker(s) ||
    isDateEmailMarker(s) ||
    isQuotingMarker(s) ||
    (!wrapped && isInlineHeaderMarker(s))
  );
}

/** A line that opens like a reply header: "On …", "Le …", a date, a weekday and a number. */
function opensLikeMarker(s: string): boolean {
  return INTRO_RE.test(s) || /^\d/.test(s) || WEEKDAY_START_RE.test(s);
}

/** Whether a line could be the first line of a marker wrapped over several lines. */
function mayStartMarker(line: string): boolean {
  const s = normalizeMarker(line);
  if (s.length === 0 || s.length > MAX_MARKER_CHARS) return false;
  return opensLikeMarker(s) || /[<@]/.test(s) || /^-{2,}/.test(s);
}

function quoteDepth(line: string): { depth: number; rest: string } {
  const m = QUOTE_PREFIX_RE.exec(line);
  if (!m) return { depth: 0, rest: line };
  return { depth: (m[0].match(/>/g) ?? []).length, rest: line.slice(m[0].length) };
}

/** Removes `depth` levels of ">" from a continuation line, or returns undefined when it is quoted less deeply. */
function stripQuoteLevels(line: string, depth: number): string | undefined {
  let rest = line;
  for (let i = 0; i < depth; i++) {
    const m = /^[ \t]*(?:>|[A-Z][A-Za-z]?>)[ \t]?/.exec(rest);
    if (!m) return isBlank(rest) ? '' : undefined;
    rest = rest.slice(m[0].length);
  }
  return rest;
}

/** A marker that ends in ":" (or Zoho's "----") is complete; "2013/7/20 Name <mail>" may still go on. */
const endsComplete = (s: string): boolean => /(?:[:：]|-{2,})$/.test(normalizeMarker(s));

/**
 * If a marker starts at line i (possibly wrapped over the following lines), the index of its last line; else -1.
 * With `preferLater`, a join whose marker really opens on a later line (the first line being text) is refused.
 */
function markerEnd(raw: readonly string[], fenced: readonly boolean[], i: number, preferLater = true): number {
  const first = raw[i] ?? '';
  if (first.length > MAX_CLASSIFIED_LINE || isBlank(first)) return -1;
  const { depth, rest } = quoteDepth(first);
  let best = isMarker(rest) ? i : -1;
  if (best === i && endsComplete(rest)) return i;
  if (best < 0 && !mayStartMarker(rest)) return -1;
  let joined = rest.trim();
  for (let j = i + 1; j < raw.length && j < i + MAX_MARKER_LINES; j++) {
    if (fenced[j]) break;
    const next = stripQuoteLevels(raw[j] ?? '', depth);
    if (next === undefined || next.length > MAX_CLASSIFIED_LINE) break;
    if (isBlank(next)) continue;
    if (headerCategory(next) !== undefined || DELIMITER_RE.test(next)) break;
    joined += ` ${next.trim()}`;
    if (joined.length > MAX_MARKER_CHARS * 2) break;
    if (!isMarker(joined, true)) continue;
    // An incomplete marker only grows into one that ends in ":".
    if (best >= 0 && !endsComplete(joined)) continue;
    if (preferLater) {
      // "Regards, 2016\nOn Mon, … wrote:": the marker opens on the later line; the first one is text.
      for (let k = i + 1; k <= j; k++) {
        const later = stripQuoteLevels(raw[k] ?? '', depth) ?? '';
        if (!isBlank(later) && opensLikeMarker(normalizeMarker(later)) && markerEnd(raw, fenced, k, false) === j) {
          return best;
        }
      }
    }
    best = j;
    if (endsComplete(joined)) return j;
  }
  return best;
}

function isSignature(line: string): boolean {
  const s = normalizeMarker(line);
  if (s.length === 0 || s.length > 120) return false;
  return SIGNATURE_RES.some((re) => re.test(s));
}

function headerCategory(line: string): HeaderCategory | undefined {
  if (line.length > MAX_CLASSIFIED_LINE) return undefined;
  const m = HEADER_LINE_RE.exec(line.replace(/[\u00a0\u202f]/g, ' '));
  return m ? HEADER_CATEGORY.get((m[1] ?? '').normalize('NFC').toLowerCase()) : undefined;
}

/** Lines inside closed ``` fences are code: never quotes, markers or delimiters. */
function fencedLines(raw: readonly string[]): boolean[] {
  const fenced = raw.map(() => false);
  let open = -1;
  raw.forEach((line, i) => {
    if (!/^\s*```/.test(line)) return;
    if (open < 0) {
      open = i;
    } else {
      for (let k = open; k <= i; k++) fenced[k] = true;
      open = -1;
    }
  });
  return fenced;
}

function classify(raw: readonly string[]): Line[] {
  const fenced = fencedLines(raw);
  const out: Line[] = [];
  const headerCats: Array<HeaderCategory | undefined> = [];
  for (let i = 0; i < raw.length; i++) {
    const text = raw[i] ?? '';
    let cls: LineClass;
    let cat: HeaderCategory | undefined;
    if (fenced[i]) cls = 't';
    else if (isBlank(text)) cls = 'e';
    else if (text.length > MAX_CLASSIFIED_LINE) cls = QUOTE_RE.test(text) ? 'q' : 't';
    else if (!QUOTE_RE.test(text) && DELIMITER_RE.test(text)) cls = 'd';
    else if (!QUOTE_RE.test(text) && isSignature(text)) cls = 's';
    else {
      const end = markerEnd(raw, fenced, i);
      if (end >= 0) {
        out.push({ text: raw.slice(i, end + 1).join('\n'), cls: 'b' });
        headerCats.push(undefined);
        i = end;
        continue;
      }
      if (QUOTE_RE.test(text)) cls = 'q';
      else if ((cat = headerCategory(text))) cls = 'h';
      else cls = 't';
    }
    out.push({ text, cls });
    headerCats.push(cls === 'h' ? cat : undefined);
  }
  markHeaderBlocks(out, headerCats);
  return out;
}

/**
 * Keeps 'h' only for real embedded-email header blocks (at least three header lines of three kinds, one a From
 * with a Subject or an address; wrapped values and single blank lines allowed in between); a lone "From:" is text.
 */
function markHeaderBlocks(lines: Line[], cats: ReadonlyArray<HeaderCategory | undefined>): void {
  let i = 0;
  while (i < lines.length) {
    if (lines[i]?.cls !== 'h') {
      i++;
      continue;
    }
    let end = i;
    let j = i + 1;
    while (j < lines.length) {
      const cls = lines[j]?.cls;
      if (cls === 'h') {
        end = j;
        j++;
        continue;
      }
      if (cls !== 't' && cls !== 'e') break;
      // A wrapped value or one blank line, only when another header line follows right after.
      let k = j;
      let blanks = 0;
      while (k < lines.length && k < j + 3 && (lines[k]?.cls === 't' || lines[k]?.cls === 'e')) {
        if (lines[k]?.cls === 'e') blanks++;
        k++;
      }
      if (k < lines.length && k <= j + 2 && lines[k]?.cls === 'h' && blanks <= 1) {
        j = k;
        continue;
      }
      break;
    }
    const found = new Set<HeaderCategory>();
    let headerLines = 0;
    let fromAddress = false;
    for (let k = i; k <= end; k++) {
      const cat = cats[k];
      if (lines[k]?.cls === 'h' && cat) {
        found.add(cat);
        headerLines++;
        if (cat === 'from' && (hasEmail(lines[k]?.text ?? '') || /[<[]|mailto:/i.test(lines[k]?.text ?? ''))) {
          fromAddress = true;
        }
      }
    }
    const valid = headerLines >= 3 && found.has('from') && found.size >= 3 && (found.has('subject') || fromAddress);
    for (let k = i; k <= end; k++) {
      const line = lines[k];
      if (!line) continue;
      if (valid) line.cls = 'h';
      else if (line.cls === 'h') line.cls = 't';
    }
    i = end + 1;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Pattern rules
// ---------------------------------------------------------------------------------------------------------------

const patternOf = (lines: readonly Line[]): string => lines.map((l) => l.cls).join('');

/** Index of the last non-'e' class before index i, or -1. */
function prevNonEmpty(p: string, i: number): number {
  let k = i - 1;
  while (k >= 0 && p[k] === 'e') k--;
  return k;
}

function applyRules(input: Line[]): Line[] {
  // Everything after the first delimiter that follows some content is signature or history.
  let lines: Line[] = [];
  let seenContent = false;
  for (const line of input) {
    if (line.cls === 'd') {
      if (seenContent) break;
      continue;
    }
    if (line.cls === 't' || line.cls === 'q') seenContent = true;
    lines.push(line);
  }

  // Mobile signatures go when nothing but blank lines, quotes or history follows them; otherwise they are prose.
  const nextContent: Array<LineClass | undefined> = new Array<LineClass | undefined>(lines.length);
  for (let i = lines.length - 1, next: LineClass | undefined; i >= 0; i--) {
    nextContent[i] = next;
    const cls = lines[i]?.cls;
    if (cls !== 'e' && cls !== 's') next = cls;
  }
  lines = lines.filter((line, i) => {
    if (line.cls !== 's') return true;
    const next = nextContent[i];
    if (next === undefined || next === 'b' || next === 'h' || next === 'q') return false;
    line.cls = 't';
    return true;
  });

  let p = patternOf(lines);

  // The reply is at the end, below the quoted history: keep only the reply.
  if (/^e*b[bqeh]*t[te]*$/.test(p)) {
    return finishPattern(lines.slice(p.indexOf('t')));
  }

  // Text, then a marker followed by unquoted history: keep the text.
  const startsWithUnquotedHistory = /^e*b[^q]*$/.test(p);
  if (!startsWithUnquotedHistory) {
    const lastQuote = p.lastIndexOf('q');
    for (let i = Math.max(lastQuote + 1, 0); i < p.length; i++) {
      if (p[i] !== 'b') continue;
      const before = prevNonEmpty(p, i);
      if (before >= 0 && p[before] === 't') {
        lines = lines.slice(0, before + 1);
        p = patternOf(lines);
        break;
      }
    }
  }

  // Text, then a marker with quoted history and at most a short footer: keep the text.
  {
    let m = p.length;
    while (m > 0 && (p[m - 1] === 't' || p[m - 1] === 'e')) m--;
    let r = m;
    while (r > 0 && 'eqbh'.includes(p[r - 1] ?? '')) r--;
    const firstInRun = p.slice(r, m).replace(/^e+/, '')[0];
    const footerText = (p.slice(m).match(/t/g) ?? []).length;
    if (m > 0 && r > 0 && r < m && p[r - 1] === 't' && firstInRun === 'b' && footerText < MAX_FOOTER_TEXT_LINES) {
      lines = lines.slice(0, r);
      p = patternOf(lines);
    }
  }

  // Text followed by a trailing block of quotes/markers: drop the block (a quote-only message is kept whole).
  {
    let m = p.length;
    while (m > 0 && 'qbe'.includes(p[m - 1] ?? '')) m--;
    if (m > 0 && m < p.length) {
      lines = lines.slice(0, m);
      p = patternOf(lines);
    }
  }

  return finishPattern(lines);
}

function finishPattern(input: Line[]): Line[] {
  // Remaining markers are removed, their surroundings kept.
  let lines = input.filter((l) => l.cls !== 'b');
  let p = patternOf(lines);

  // Header blocks: below some text they start the history; at the top (a bare forward) only the block goes.
  for (let i = p.indexOf('h'); i >= 0; i = p.indexOf('h')) {
    let before = i - 1;
    while (before >= 0 && (p[before] === 'e' || p[before] === 'q')) before--;
    if (before >= 0 && p[before] === 't') {
      lines = lines.slice(0, before + 1);
    } else {
      let end = i;
      while (end < p.length && p[end] === 'h') end++;
      lines = [...lines.slice(0, i), ...lines.slice(end)];
    }
    p = patternOf(lines);
  }

  // Trailing quotes go when there is some text.
  if (p.includes('t')) {
    let m = p.length;
    while (m > 0 && (p[m - 1] === 'e' || p[m - 1] === 'q')) m--;
    lines = lines.slice(0, m);
  }
  return lines;
}

/** "John Smith wrote:" without date or address: too weak for a marker, but not kept once the quote below it is gone. */
function dropDanglingIntro(all: readonly Line[], kept: Line[]): void {
  let last = kept.length - 1;
  while (last >= 0 && kept[last]?.cls === 'e') last--;
  const line = kept[last];
  if (!line || line.cls !== 't') return;
  const s = normalizeMarker(line.text);
  if (s.length > 100 || !/[:：]$/.test(s)) return;
  const body = s.slice(0, -1).trimEnd();
  let verbEnd = -1;
  WROTE_RE.lastIndex = 0;
  for (let m = WROTE_RE.exec(body); m; m = WROTE_RE.exec(body)) verbEnd = m.index + m[0].length;
  if (verbEnd < 0 || !/^\s*(?:\(a\))?$/.test(body.slice(verbEnd))) return;
  let k = all.indexOf(line) + 1;
  while (k < all.length && all[k]?.cls === 'e') k++;
  if (all[k]?.cls === 'q' || all[k]?.cls === 'b') kept.length = last;
}

// ---------------------------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------------------------

/**
 * The new text of a reply: quoted history ("> …", "On … wrote:" in many languages, Outlook header blocks,
 * forwarded messages) and signatures ("-- ", mobile "Sent from my …") removed. Leading blank lines and trailing
 * whitespace are dropped; indentation and inner blank lines are kept. Returns "" when nothing new remains.
 * Work is bounded: only the first MAX_TRIM_INPUT_CHARS characters and MAX_TRIM_LINES lines are read.
 */
export function trimReply(text: string): string {
  if (typeof text !== 'string' || text.length === 0) return '';
  let input = text.length > MAX_TRIM_INPUT_CHARS ? text.slice(0, MAX_TRIM_INPUT_CHARS) : text;
  input = input.replace(/^\ufeff/, '').replace(/\r\n?/g, '\n');
  let raw = input.split('\n');
  if (raw.length > MAX_TRIM_LINES) raw = raw.slice(0, MAX_TRIM_LINES);
  if (raw.every(isBlank)) return '';

  const lines = classify(raw);
  const kept = applyRules(lines);
  dropDanglingIntro(lines, kept);
  let start = 0;
  while (start < kept.length && isBlank(kept[start]?.text ?? '')) start++;
  const result = kept
    .slice(start)
    .map((l) => l.text)
    .join('\n')
    .trimEnd();
  // Bare ">" lines left over from removed history are no reply.
  return /^[\s>]*$/.test(result) ? '' : result;
}

/** The trimmed reply collapsed onto one line and cut to at most `maxChars` characters (with "…"), for list previews. */
export function previewText(text: string, maxChars = 200): string {
  const limit = Number.isFinite(maxChars) ? Math.max(0, Math.floor(maxChars)) : 200;
  if (limit === 0) return '';
  const flat = trimReply(text).replace(/\s+/gu, ' ').trim();
  const chars = Array.from(flat);
  if (chars.length <= limit) return flat;
  return `${chars.slice(0, limit - 1).join('').trimEnd()}…`;
}
