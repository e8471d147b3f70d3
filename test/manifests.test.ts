// manifests/connectors.json against its JSON Schema, and against every registered connector's definition (R-API-4, R-CON-2).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { connectorRegistry } from '../connectors/index.js';
import type { ConnectorDefinition } from '../connectors/contract.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SCHEMA_PATH = 'manifests/connectors.schema.json';
const MANIFEST_PATH = 'manifests/connectors.json';
const readJson = (path: string): unknown => JSON.parse(readFileSync(join(ROOT, path), 'utf8'));

// ---------------------------------------------------------------------------------------------------------
// A small JSON Schema (2020-12) validator for the keywords connectors.schema.json uses. Any other keyword
// fails the suite, so the schema cannot grow a rule nothing checks.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const SUPPORTED_KEYWORDS = new Set([
  '$schema', '$id', '$ref', '$defs', 'title', 'description',
  'type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'items',
  'minItems', 'uniqueItems', 'minLength', 'pattern',
]);

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function resolveRef(root: JsonObject, ref: string): Json {
  if (!ref.startsWith('#/')) throw new Error(`only local $refs are supported: ${ref}`);
  let node: Json = root;
  for (const part of ref.slice(2).split('/')) {
    if (!isObject(node) || !(part in node)) throw new Error(`$ref ${ref} points nowhere`);
    node = node[part] as Json;
  }
  return node;
}

/** Every keyword used anywhere in the schema that this validator does not implement. */
function unsupportedKeywords(schema: Json, path = '#'): string[] {
  if (typeof schema === 'boolean') return [];
  if (!isObject(schema)) return [`${path}: a schema must be an object or a boolean`];
  const out: string[] = [];
  for (const [key, value] of Object.entries(schema)) {
    if (!SUPPORTED_KEYWORDS.has(key)) out.push(`${path}: keyword "${key}"`);
    if ((key === 'properties' || key === '$defs') && isObject(value)) {
      for (const [name, sub] of Object.entries(value)) out.push(...unsupportedKeywords(sub, `${path}/${key}/${name}`));
    }
    if (key === 'items' || (key === 'additionalProperties' && typeof value !== 'boolean')) out.push(...unsupportedKeywords(value, `${path}/${key}`));
  }
  return out;
}

/** Errors of `value` against `schema`, each as "<json path>: <what>". */
export function validateJson(schema: Json, value: unknown, root: JsonObject, path = '$'): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${path}: no value is allowed here`];
  if (!isObject(schema)) return [`${path}: bad schema`];
  const errors: string[] = [];
  if (typeof schema.$ref === 'string') errors.push(...validateJson(resolveRef(root, schema.$ref), value, root, path));
  if (typeof schema.type === 'string') {
    const actual = jsonType(value);
    const ok = actual === schema.type || (schema.type === 'number' && actual === 'integer');
    if (!ok) return [...errors, `${path}: expected ${schema.type}, got ${actual}`];
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => same(e, value))) errors.push(`${path}: must be one of ${JSON.stringify(schema.enum)}`);
  if ('const' in schema && !same(schema.const, value)) errors.push(`${path}: must be ${JSON.stringify(schema.const)}`);
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && [...value].length < schema.minLength) errors.push(`${path}: shorter than ${schema.minLength}`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) errors.push(`${path}: does not match ${schema.pattern}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) errors.push(`${path}: fewer than ${schema.minItems} items`);
    if (schema.uniqueItems === true && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) errors.push(`${path}: items are not unique`);
    if (schema.items !== undefined) value.forEach((item, i) => errors.push(...validateJson(schema.items as Json, item, root, `${path}[${i}]`)));
  }
  if (isObject(value)) {
    const props = isObject(schema.properties) ? schema.properties : {};
    if (Array.isArray(schema.required)) {
      for (const key of schema.required) if (typeof key === 'string' && !(key in value)) errors.push(`${path}: missing "${key}"`);
    }
    for (const [key, sub] of Object.entries(value)) {
      if (key in props) errors.push(...validateJson(props[key] as Json, sub, root, `${path}.${key}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: unknown property "${key}"`);
      else if (schema.additionalProperties !== undefined) errors.push(...validateJson(schema.additionalProperties, sub, root, `${path}.${key}`));
    }
  }
  return errors;
}

// ---------------------------------------------------------------------------------------------------------
// The manifest, as the schema describes it.

interface ConfigField {
  key: string;
  label: string;
  type: 'string' | 'url' | 'email' | 'number' | 'boolean' | 'select' | 'map';
  secret: boolean;
  required: boolean;
  pattern?: string;
  example?: unknown;
  options?: string[];
  default?: unknown;
}

interface ManifestEntry {
  id: string;
  name: string;
  docs?: string;
  configFields: ConfigField[];
  configAlternatives?: { label: string; keys: string[] }[];
  capabilities: Record<string, unknown>;
  statusMap: Record<string, string>;
}

const schema = readJson(SCHEMA_PATH) as JsonObject;
const manifestJson = readJson(MANIFEST_PATH);
const schemaErrors = validateJson(schema, manifestJson, schema);
// Typed access below is safe only once the schema holds; the first test reports schemaErrors otherwise.
const entries: ManifestEntry[] = schemaErrors.length === 0 && isObject(manifestJson) ? (manifestJson.connectors as unknown as ManifestEntry[]) : [];
const byId = new Map(entries.map((e) => [e.id, e]));

// ---------------------------------------------------------------------------------------------------------
// What a zod configSchema says about its keys: one shape per union member.

type Shape = Record<string, z.core.$ZodType>;

function shapesOf(schema: z.core.$ZodType, where: string): Shape[] {
  if (schema instanceof z.ZodObject) return [schema.shape as Shape];
  if (schema instanceof z.ZodUnion) return (schema.options as readonly z.core.$ZodType[]).flatMap((o) => shapesOf(o, where));
  if (schema instanceof z.ZodPipe) return shapesOf(schema.in, where);
  if (schema instanceof z.ZodIntersection) {
    const left = shapesOf(schema.def.left, where);
    const right = shapesOf(schema.def.right, where);
    return left.flatMap((l) => right.map((r) => ({ ...l, ...r })));
  }
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable || schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault || schema instanceof z.ZodReadonly || schema instanceof z.ZodCatch) {
    return shapesOf(schema.def.innerType, where);
  }
  throw new Error(`${where}: cannot read config keys from a ${schema._zod.def.type} schema; use z.object() or a union of z.object()`);
}

const isRequired = (field: z.core.$ZodType): boolean => !z.safeParse(field, undefined).success;

interface SchemaFacts {
  keys: string[];
  /** key → required, or 'mixed' when union members disagree. */
  required: Map<string, boolean | 'mixed'>;
  /** One key set per union member: the keys not every member has (empty for a plain object). */
  alternatives: string[][];
  field(key: string): z.core.$ZodType | undefined;
}

function schemaFacts(def: ConnectorDefinition): SchemaFacts {
  const shapes = shapesOf(def.configSchema, `${def.id}.configSchema`);
  const keys = [...new Set(shapes.flatMap((s) => Object.keys(s)))];
  const required = new Map<string, boolean | 'mixed'>();
  for (const key of keys) {
    const flags = new Set(shapes.flatMap((s) => (s[key] ? [isRequired(s[key])] : [])));
    required.set(key, flags.size === 1 ? [...flags][0] === true : 'mixed');
  }
  const common = keys.filter((k) => shapes.every((s) => k in s));
  const alternatives = shapes.length > 1 ? shapes.map((s) => Object.keys(s).filter((k) => !common.includes(k)).sort()).filter((a) => a.length > 0) : [];
  return { keys, required, alternatives, field: (key) => shapes.find((s) => key in s)?.[key] };
}

const sortedSets = (sets: string[][]): string[] => sets.map((s) => [...s].sort().join(',')).sort();

// ---------------------------------------------------------------------------------------------------------

describe('manifests/connectors.json', () => {
  it('the schema is JSON Schema draft 2020-12 and uses only keywords this test checks', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(unsupportedKeywords(schema), 'keywords the validator in test/manifests.test.ts does not implement').toEqual([]);
  });

  it('validates against manifests/connectors.schema.json', () => {
    expect(schemaErrors, `${MANIFEST_PATH} against ${SCHEMA_PATH}`).toEqual([]);
  });

  it('the validator refuses a broken manifest', () => {
    const broken = structuredClone(manifestJson) as { connectors: Array<Record<string, unknown>> };
    const first = broken.connectors[0] as { capabilities: Record<string, unknown>; configFields: unknown[]; extra?: unknown };
    delete first.capabilities.polling;
    first.configFields.push({ key: 'x', label: 'X', type: 'password', secret: 'yes', required: true });
    first.extra = 1;
    const errors = validateJson(schema, broken, schema);
    expect(errors).toContain('$.connectors[0].capabilities: missing "polling"');
    expect(errors.some((e) => e.includes('.type: must be one of'))).toBe(true);
    expect(errors.some((e) => e.includes('.secret: expected boolean'))).toBe(true);
    expect(errors).toContain('$.connectors[0]: unknown property "extra"');
  });

  it('ids are unique, patterns compile and every example matches its pattern', () => {
    expect(new Set(entries.map((e) => e.id)).size, 'duplicate connector ids').toBe(entries.length);
    const problems: string[] = [];
    for (const entry of entries) {
      const keys = entry.configFields.map((f) => f.key);
      if (new Set(keys).size !== keys.length) problems.push(`${entry.id}: duplicate config field keys`);
      for (const alt of entry.configAlternatives ?? []) {
        for (const key of alt.keys) if (!keys.includes(key)) problems.push(`${entry.id}: configAlternatives "${alt.label}" names unknown field ${key}`);
      }
      for (const f of entry.configFields) {
        if (f.type === 'select' && !f.options) problems.push(`${entry.id}.${f.key}: a select field lists its options`);
        if (f.type !== 'select' && f.options) problems.push(`${entry.id}.${f.key}: options only go with type select`);
        if (f.secret && f.example !== undefined) problems.push(`${entry.id}.${f.key}: no example for a secret`);
        if (f.pattern === undefined) continue;
        let re: RegExp;
        try {
          re = new RegExp(f.pattern, 'u');
        } catch (err) {
          problems.push(`${entry.id}.${f.key}: pattern does not compile: ${String(err)}`);
          continue;
        }
        if (typeof f.example !== 'string') problems.push(`${entry.id}.${f.key}: a field with a pattern gives a string example`);
        else if (!re.test(f.example)) problems.push(`${entry.id}.${f.key}: example ${f.example} does not match ${f.pattern}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('the registry is keyed by each definition\'s id', () => {
    for (const [key, def] of connectorRegistry) expect(def.id, `registry key ${key}`).toBe(key);
  });

  const pending = entries.filter((e) => !connectorRegistry.has(e.id)).map((e) => e.id);
  if (pending.length > 0) {
    console.info(`manifests: pending (in ${MANIFEST_PATH}, not registered in connectors/index.ts yet): ${pending.join(', ')}`);
  }
  for (const id of pending) it.todo(`${id}: pending — manifest entry without a registered connector`);

  for (const [id, def] of connectorRegistry) {
    describe(`registered connector "${id}"`, () => {
      const entry = byId.get(id);
      const needEntry = (): ManifestEntry => {
        if (!entry) throw new Error(`connector "${id}" is registered in connectors/index.ts but has no entry in ${MANIFEST_PATH}: add one (see connectors/README.md)`);
        return entry;
      };

      it('has a manifest entry with the same id, name and docs', () => {
        const e = needEntry();
        expect(e.name, 'name').toBe(def.name);
        if (e.docs !== undefined) expect(existsSync(join(ROOT, e.docs)), `docs ${e.docs} exists`).toBe(true);
      });

      it('declares the same capabilities and statusMap', () => {
        const e = needEntry();
        expect(e.capabilities, 'capabilities (manifest vs definition)').toEqual(def.capabilities);
        expect(e.statusMap, 'statusMap (manifest vs definition)').toEqual(def.statusMap);
      });

      it('lists exactly the configSchema keys, with the same required flags and alternatives', () => {
        const e = needEntry();
        const facts = schemaFacts(def);
        expect(e.configFields.map((f) => f.key).sort(), 'config field keys (manifest vs configSchema, all union members)').toEqual([...facts.keys].sort());
        for (const f of e.configFields) {
          const req = facts.required.get(f.key);
          if (req === undefined) continue;
          expect(req, `${f.key}: required in some union members and optional in others; make it one or the other`).not.toBe('mixed');
          expect(f.required, `${f.key}.required (manifest vs configSchema)`).toBe(req);
        }
        expect(sortedSets((e.configAlternatives ?? []).map((a) => a.keys)), 'configAlternatives (manifest) vs the keys each union member adds').toEqual(sortedSets(facts.alternatives));
      });

      it('marks exactly the secretFields as secret', () => {
        const e = needEntry();
        const keys = e.configFields.map((f) => f.key);
        for (const s of def.secretFields) expect(keys, `secretFields names ${s}, a config key`).toContain(s);
        expect(e.configFields.filter((f) => f.secret).map((f) => f.key).sort(), 'secret fields (manifest vs secretFields)').toEqual([...def.secretFields].sort());
      });

      it('gives examples, options and defaults the configSchema accepts', () => {
        const e = needEntry();
        const facts = schemaFacts(def);
        const problems: string[] = [];
        for (const f of e.configFields) {
          const field = facts.field(f.key);
          if (!field) continue;
          if (f.example !== undefined && !z.safeParse(field, f.example).success) problems.push(`${f.key}: example ${JSON.stringify(f.example)} is refused`);
          for (const option of f.options ?? []) if (!z.safeParse(field, option).success) problems.push(`${f.key}: option ${option} is refused`);
          if (f.type === 'boolean' && !(z.safeParse(field, true).success && z.safeParse(field, false).success)) problems.push(`${f.key}: type boolean, but true/false are refused`);
          if (f.default !== undefined) {
            const parsed = z.safeParse(field, undefined);
            if (!parsed.success || !same(parsed.data, f.default)) problems.push(`${f.key}: default ${JSON.stringify(f.default)}, configSchema fills ${parsed.success ? JSON.stringify(parsed.data) : 'nothing'}`);
          }
        }
        expect(problems).toEqual([]);
      });
    });
  }
});
