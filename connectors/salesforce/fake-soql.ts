// The SOQL subset the Salesforce fake understands: SELECT fields FROM object [WHERE …] [ORDER BY …] [LIMIT n] (test support).

/** A SOQL error as Salesforce reports it (400 with this errorCode). */
export class SoqlError extends Error {
  constructor(
    readonly errorCode: 'MALFORMED_QUERY' | 'INVALID_FIELD' | 'INVALID_TYPE',
    message: string,
  ) {
    super(message);
  }
}

export type SoqlValue = string | number | boolean | null | { dateTime: number };

export type SoqlCondition =
  | { kind: 'and' | 'or'; left: SoqlCondition; right: SoqlCondition }
  | { kind: 'not'; inner: SoqlCondition }
  | { kind: 'cmp'; field: string[]; op: '=' | '!=' | '<' | '<=' | '>' | '>='; value: SoqlValue };

export interface SoqlOrder {
  field: string[];
  desc: boolean;
}

export interface SoqlQuery {
  fields: string[][];
  object: string;
  where: SoqlCondition | null;
  orderBy: SoqlOrder[];
  limit: number | null;
}

type Token =
  | { t: 'word'; v: string }
  | { t: 'str'; v: string }
  | { t: 'num'; v: number }
  | { t: 'dt'; v: number }
  | { t: 'op'; v: string }
  | { t: 'punct'; v: string };

const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2})/;

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const dt = DATETIME.exec(src.slice(i));
    if (dt) {
      const ms = Date.parse(dt[0]);
      if (!Number.isFinite(ms)) throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${dt[0]}'`);
      out.push({ t: 'dt', v: ms });
      i += dt[0].length;
      continue;
    }
    if (c === "'") {
      let v = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new SoqlError('MALFORMED_QUERY', 'unterminated string literal');
        const ch = src[i] as string;
        if (ch === '\\') {
          const next = src[i + 1];
          if (next === undefined) throw new SoqlError('MALFORMED_QUERY', 'bad escape');
          v += next === 'n' ? '\n' : next === 't' ? '\t' : next;
          i += 2;
          continue;
        }
        if (ch === "'") {
          i++;
          break;
        }
        v += ch;
        i++;
      }
      out.push({ t: 'str', v });
      continue;
    }
    const num = /^-?\d+(?:\.\d+)?/.exec(src.slice(i));
    if (num && !/[A-Za-z_]/.test(src[i + num[0].length] ?? '')) {
      out.push({ t: 'num', v: Number(num[0]) });
      i += num[0].length;
      continue;
    }
    const op = /^(?:!=|<>|<=|>=|=|<|>)/.exec(src.slice(i));
    if (op) {
      out.push({ t: 'op', v: op[0] === '<>' ? '!=' : op[0] });
      i += op[0].length;
      continue;
    }
    if ('(),.'.includes(c)) {
      out.push({ t: 'punct', v: c });
      i++;
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (word) {
      out.push({ t: 'word', v: word[0] });
      i += word[0].length;
      continue;
    }
    throw new SoqlError('MALFORMED_QUERY', `unexpected character '${c}' at ${i}`);
  }
  return out;
}

const KEYWORDS = new Set(['SELECT', 'FROM', 'WHERE', 'ORDER', 'BY', 'LIMIT', 'AND', 'OR', 'NOT', 'ASC', 'DESC', 'NULLS', 'FIRST', 'LAST']);

/** Parses the subset; anything else is MALFORMED_QUERY, as Salesforce would say of a bad query. */
export function parseSoql(src: string): SoqlQuery {
  const toks = tokenize(src);
  let p = 0;
  const peek = (): Token | undefined => toks[p];
  const isKw = (kw: string, tok = peek()): boolean => tok?.t === 'word' && tok.v.toUpperCase() === kw;
  const expectKw = (kw: string): void => {
    if (!isKw(kw)) throw new SoqlError('MALFORMED_QUERY', `expecting '${kw}', found '${describe(peek())}'`);
    p++;
  };
  const describe = (tok: Token | undefined): string => (tok === undefined ? 'EOF' : String(tok.v));
  const ident = (): string => {
    const tok = peek();
    if (tok?.t !== 'word' || KEYWORDS.has(tok.v.toUpperCase())) throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${describe(tok)}'`);
    p++;
    return tok.v;
  };
  const path = (): string[] => {
    const parts = [ident()];
    while (peek()?.t === 'punct' && peek()?.v === '.') {
      p++;
      parts.push(ident());
    }
    return parts;
  };
  const value = (): SoqlValue => {
    const tok = peek();
    if (!tok) throw new SoqlError('MALFORMED_QUERY', 'unexpected EOF');
    p++;
    if (tok.t === 'str' || tok.t === 'num') return tok.v;
    if (tok.t === 'dt') return { dateTime: tok.v };
    if (tok.t === 'word') {
      const w = tok.v.toLowerCase();
      if (w === 'null') return null;
      if (w === 'true') return true;
      if (w === 'false') return false;
    }
    throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${describe(tok)}'`);
  };
  const factor = (): SoqlCondition => {
    if (isKw('NOT')) {
      p++;
      return { kind: 'not', inner: factor() };
    }
    const tok = peek();
    if (tok?.t === 'punct' && tok.v === '(') {
      p++;
      const inner = orCond();
      const close = peek();
      if (close?.t !== 'punct' || close.v !== ')') throw new SoqlError('MALFORMED_QUERY', `expecting ')', found '${describe(close)}'`);
      p++;
      return inner;
    }
    const field = path();
    const op = peek();
    if (op?.t !== 'op') throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${describe(op)}'`);
    p++;
    return { kind: 'cmp', field, op: op.v as '=' | '!=' | '<' | '<=' | '>' | '>=', value: value() };
  };
  const andCond = (): SoqlCondition => {
    let left = factor();
    while (isKw('AND')) {
      p++;
      left = { kind: 'and', left, right: factor() };
    }
    return left;
  };
  const orCond = (): SoqlCondition => {
    let left = andCond();
    while (isKw('OR')) {
      p++;
      left = { kind: 'or', left, right: andCond() };
    }
    return left;
  };

  expectKw('SELECT');
  const fields = [path()];
  while (peek()?.t === 'punct' && peek()?.v === ',') {
    p++;
    fields.push(path());
  }
  expectKw('FROM');
  const object = ident();
  let where: SoqlCondition | null = null;
  if (isKw('WHERE')) {
    p++;
    where = orCond();
  }
  const orderBy: SoqlOrder[] = [];
  if (isKw('ORDER')) {
    p++;
    expectKw('BY');
    for (;;) {
      const field = path();
      let desc = false;
      if (isKw('ASC')) p++;
      else if (isKw('DESC')) {
        p++;
        desc = true;
      }
      if (isKw('NULLS')) {
        p++;
        if (isKw('FIRST') || isKw('LAST')) p++;
        else throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${describe(peek())}'`);
      }
      orderBy.push({ field, desc });
      if (peek()?.t === 'punct' && peek()?.v === ',') {
        p++;
        continue;
      }
      break;
    }
  }
  let limit: number | null = null;
  if (isKw('LIMIT')) {
    p++;
    const tok = peek();
    if (tok?.t !== 'num' || !Number.isInteger(tok.v) || tok.v < 0) throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${describe(tok)}'`);
    p++;
    limit = tok.v;
  }
  if (p !== toks.length) throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${describe(peek())}'`);
  return { fields, object, where, orderBy, limit };
}

/** Every field path a query mentions (for INVALID_FIELD checks). */
export function fieldsOf(q: SoqlQuery): string[][] {
  const out = [...q.fields, ...q.orderBy.map((o) => o.field)];
  const walk = (c: SoqlCondition | null): void => {
    if (!c) return;
    if (c.kind === 'cmp') out.push(c.field);
    else if (c.kind === 'not') walk(c.inner);
    else {
      walk(c.left);
      walk(c.right);
    }
  };
  walk(q.where);
  return out;
}

const ID_LIKE = /^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/;

/** Compares a stored value with a literal the way SOQL does (text equality is case-insensitive; ids match 15/18). */
function compare(stored: unknown, value: SoqlValue): number | null {
  if (value === null || stored === null || stored === undefined) return null;
  if (typeof value === 'object') {
    const ms = typeof stored === 'string' ? Date.parse(stored) : NaN;
    return Number.isFinite(ms) ? Math.sign(ms - value.dateTime) : null;
  }
  if (typeof value === 'boolean') return stored === value ? 0 : 1;
  if (typeof value === 'number') return typeof stored === 'number' ? Math.sign(stored - value) : null;
  if (typeof stored !== 'string') return null;
  if (ID_LIKE.test(stored) && ID_LIKE.test(value)) {
    const a = stored.slice(0, 15);
    const b = value.slice(0, 15);
    return a === b ? 0 : a < b ? -1 : 1;
  }
  const a = stored.toLowerCase();
  const b = value.toLowerCase();
  return a === b ? 0 : a < b ? -1 : 1;
}

export function matches(c: SoqlCondition | null, get: (path: string[]) => unknown): boolean {
  if (!c) return true;
  switch (c.kind) {
    case 'and':
      return matches(c.left, get) && matches(c.right, get);
    case 'or':
      return matches(c.left, get) || matches(c.right, get);
    case 'not':
      return !matches(c.inner, get);
    case 'cmp': {
      const stored = get(c.field);
      const isNull = stored === null || stored === undefined;
      if (c.value === null) {
        if (c.op === '=') return isNull;
        if (c.op === '!=') return !isNull;
        return false;
      }
      const cmp = compare(stored, c.value);
      if (c.op === '!=') return cmp !== 0;
      if (cmp === null) return false;
      switch (c.op) {
        case '=':
          return cmp === 0;
        case '<':
          return cmp < 0;
        case '<=':
          return cmp <= 0;
        case '>':
          return cmp > 0;
        case '>=':
          return cmp >= 0;
      }
    }
  }
}

/** Sorts rows by ORDER BY (nulls first ascending, as SOQL does by default). */
export function sortRows<R>(rows: R[], orderBy: SoqlOrder[], get: (row: R, path: string[]) => unknown): R[] {
  if (orderBy.length === 0) return rows;
  const key = (v: unknown): string | number | null => {
    if (v === null || v === undefined) return null;
    if (typeof v === 'number' || typeof v === 'boolean') return Number(v);
    const s = String(v);
    const ms = /^\d{4}-\d{2}-\d{2}T/.test(s) ? Date.parse(s) : NaN;
    return Number.isFinite(ms) ? ms : s;
  };
  return [...rows].sort((x, y) => {
    for (const o of orderBy) {
      const a = key(get(x, o.field));
      const b = key(get(y, o.field));
      if (a === b) continue;
      let r: number;
      if (a === null) r = -1;
      else if (b === null) r = 1;
      else r = a < b ? -1 : 1;
      return o.desc ? -r : r;
    }
    return 0;
  });
}
