// The install metadata in manifests/salesforce: well-formed XML (a tiny parser) with the elements the connector relies on.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SESSION_ID_FIELD, STATUS_FIELD, API_VERSION, EXTERNAL_ID_MAX } from './mapping.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'manifests', 'salesforce');
const SOURCE = join(ROOT, 'force-app', 'main', 'default');
const METADATA_NS = 'http://soap.sforce.com/2006/04/metadata';

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** A strict little XML parser: prolog, comments, elements, attributes, text and the five entities; throws on anything unbalanced. */
export function parseXml(src: string): XmlElement {
  let i = 0;
  const fail = (msg: string): never => {
    const line = src.slice(0, i).split('\n').length;
    throw new Error(`XML line ${line}: ${msg}`);
  };
  const decode = (s: string): string => {
    if (/&(?!(?:lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(s)) fail(`bare & in "${s.slice(0, 40)}"`);
    if (s.includes('<')) fail('< in text');
    return s
      .replace(/&#x([0-9a-fA-F]+);/g, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
      .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'")
      .replace(/&amp;/g, '&');
  };
  const skipMisc = (): void => {
    for (;;) {
      const ws = /^\s*/.exec(src.slice(i))?.[0] ?? '';
      i += ws.length;
      if (src.startsWith('<!--', i)) {
        const end = src.indexOf('-->', i + 4);
        if (end < 0) fail('unterminated comment');
        i = end + 3;
        continue;
      }
      return;
    }
  };
  if (!src.startsWith('<?xml ')) fail('no <?xml …?> declaration');
  const declEnd = src.indexOf('?>');
  if (declEnd < 0) fail('unterminated declaration');
  if (!/encoding="UTF-8"/.test(src.slice(0, declEnd))) fail('declaration without encoding="UTF-8"');
  i = declEnd + 2;

  const element = (): XmlElement => {
    const open = /^<([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_:][\w:.-]*\s*=\s*"[^"<]*")*)\s*(\/?)>/.exec(src.slice(i));
    if (!open) return fail(`expected an element at "${src.slice(i, i + 30)}"`);
    i += open[0].length;
    const attrs: Record<string, string> = {};
    for (const m of (open[2] ?? '').matchAll(/([A-Za-z_:][\w:.-]*)\s*=\s*"([^"]*)"/g)) attrs[m[1] as string] = decode(m[2] as string);
    const el: XmlElement = { name: open[1] as string, attrs, children: [], text: '' };
    if (open[3] === '/') return el;
    for (;;) {
      const next = src.indexOf('<', i);
      if (next < 0) fail(`unclosed <${el.name}>`);
      el.text += decode(src.slice(i, next));
      i = next;
      if (src.startsWith('<!--', i)) {
        const end = src.indexOf('-->', i);
        if (end < 0) fail('unterminated comment');
        i = end + 3;
        continue;
      }
      if (src.startsWith('</', i)) {
        const close = /^<\/([A-Za-z_][\w.-]*)\s*>/.exec(src.slice(i));
        if (!close || close[1] !== el.name) fail(`</${close?.[1] ?? '?'}> closes <${el.name}>`);
        i += (close as RegExpExecArray)[0].length;
        if (el.children.length > 0 && el.text.trim() !== '') fail(`mixed content in <${el.name}>`);
        if (el.children.length > 0) el.text = '';
        return el;
      }
      el.children.push(element());
    }
  };
  skipMisc();
  const root = element();
  skipMisc();
  if (i !== src.length) fail('content after the root element');
  return root;
}

const child = (el: XmlElement, name: string): XmlElement | undefined => el.children.find((c) => c.name === name);
const all = (el: XmlElement, name: string): XmlElement[] => el.children.filter((c) => c.name === name);
const textOf = (el: XmlElement, name: string): string | undefined => child(el, name)?.text;

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

function load(path: string): XmlElement {
  return parseXml(readFileSync(path, 'utf8'));
}

describe('the tiny XML parser', () => {
  it('parses elements, attributes, entities and comments', () => {
    const doc = parseXml('<?xml version="1.0" encoding="UTF-8"?>\n<!-- c --><a x="1"><b>1 &lt; 2 &amp; ok</b><c/><!-- in --></a>\n');
    expect(doc).toEqual({ name: 'a', attrs: { x: '1' }, text: '', children: [{ name: 'b', attrs: {}, children: [], text: '1 < 2 & ok' }, { name: 'c', attrs: {}, children: [], text: '' }] });
  });

  it.each([
    ['<a/>', 'no <?xml'],
    ['<?xml version="1.0" encoding="UTF-8"?><a><b></a>', '</a> closes <b>'],
    ['<?xml version="1.0" encoding="UTF-8"?><a><b></b>', 'unclosed <a>'],
    ['<?xml version="1.0" encoding="UTF-8"?><a>x & y</a>', 'bare &'],
    ['<?xml version="1.0" encoding="UTF-8"?><a></a><b/>', 'after the root'],
    ['<?xml version="1.0" encoding="UTF-8"?><a>t<b/></a>', 'mixed content'],
  ])('refuses %s', (src, message) => {
    expect(() => parseXml(src)).toThrow(message);
  });
});

describe('manifests/salesforce', () => {
  it('sfdx-project.json: one default package directory (force-app) and the connector’s API version', () => {
    const project = JSON.parse(readFileSync(join(ROOT, 'sfdx-project.json'), 'utf8')) as { packageDirectories: { path: string; default?: boolean }[]; sourceApiVersion: string };
    expect(project.packageDirectories).toEqual([{ path: 'force-app', default: true }]);
    expect(project.sourceApiVersion).toBe(API_VERSION);
  });

  it('every metadata file is well-formed, in the Metadata API namespace, root named after its suffix', () => {
    const files = filesUnder(SOURCE).filter((f) => f.endsWith('-meta.xml'));
    expect(files.map((f) => relative(SOURCE, f)).sort()).toEqual([
      'objects/Case/fields/EmailChannel_Session_Id__c.field-meta.xml',
      'objects/Case/fields/EmailChannel_Status__c.field-meta.xml',
      'permissionsets/Email_Channel_Integration.permissionset-meta.xml',
    ]);
    for (const f of files) {
      const root = load(f);
      expect(root.attrs.xmlns, f).toBe(METADATA_NS);
      expect(root.name, f).toBe(f.endsWith('.field-meta.xml') ? 'CustomField' : 'PermissionSet');
    }
  });

  const fieldPath = (name: string) => join(SOURCE, 'objects', 'Case', 'fields', `${name}.field-meta.xml`);

  it(`${SESSION_ID_FIELD}: Text(${EXTERNAL_ID_MAX}), External ID, Unique — the idempotency key of createRecord`, () => {
    const f = load(fieldPath(SESSION_ID_FIELD));
    expect(textOf(f, 'fullName')).toBe(SESSION_ID_FIELD);
    expect(textOf(f, 'label')).toBeTruthy();
    expect(textOf(f, 'type')).toBe('Text');
    expect(textOf(f, 'length')).toBe(String(EXTERNAL_ID_MAX));
    expect(textOf(f, 'externalId')).toBe('true');
    expect(textOf(f, 'unique')).toBe('true');
    expect(textOf(f, 'required')).toBe('false');
  });

  it(`${STATUS_FIELD}: a restricted Picklist of the six session statuses`, () => {
    const f = load(fieldPath(STATUS_FIELD));
    expect(textOf(f, 'fullName')).toBe(STATUS_FIELD);
    expect(textOf(f, 'label')).toBeTruthy();
    expect(textOf(f, 'type')).toBe('Picklist');
    const valueSet = child(f, 'valueSet');
    expect(valueSet && textOf(valueSet, 'restricted')).toBe('true');
    const definition = valueSet && child(valueSet, 'valueSetDefinition');
    const values = definition ? all(definition, 'value').map((v) => textOf(v, 'fullName')) : [];
    expect(values).toEqual(['unopened', 'active', 'paused', 'resolved', 'closed', 'reopened']);
    for (const v of definition ? all(definition, 'value') : []) expect(textOf(v, 'label')).toBeTruthy();
  });

  it('the permission set: API access, Case create/read/edit for every owner, both fields readable and editable', () => {
    const ps = load(join(SOURCE, 'permissionsets', 'Email_Channel_Integration.permissionset-meta.xml'));
    expect(textOf(ps, 'label')).toBe('Email Channel Integration');
    const fields = all(ps, 'fieldPermissions').map((fp) => ({ field: textOf(fp, 'field'), readable: textOf(fp, 'readable'), editable: textOf(fp, 'editable') }));
    expect(fields).toEqual([
      { field: `Case.${SESSION_ID_FIELD}`, readable: 'true', editable: 'true' },
      { field: `Case.${STATUS_FIELD}`, readable: 'true', editable: 'true' },
    ]);
    const kase = all(ps, 'objectPermissions').find((op) => textOf(op, 'object') === 'Case');
    expect(kase && ['allowCreate', 'allowRead', 'allowEdit', 'viewAllRecords', 'modifyAllRecords'].map((k) => textOf(kase, k))).toEqual(['true', 'true', 'true', 'true', 'true']);
    // modifyAllRecords needs read, edit, delete and viewAll on the same object.
    expect(kase && textOf(kase, 'allowDelete')).toBe('true');
    const perms = all(ps, 'userPermissions').map((up) => [textOf(up, 'name'), textOf(up, 'enabled')]);
    expect(perms).toContainEqual(['ApiEnabled', 'true']);
  });
});
