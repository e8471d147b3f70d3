// Write-only secret fields (SPEC §11b): sealed at rest, never returned (GET shows `<field>Set`),
// kept when a PUT/PATCH omits them, replaced when given, cleared when given as null.
import type { SecretBox } from '../core/ports.js';

type Doc = Record<string, unknown>;

function getPath(doc: Doc, path: string[]): unknown {
  let cur: unknown = doc;
  for (const part of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Doc)[part];
  }
  return cur;
}

function setPath(doc: Doc, path: string[], value: unknown): Doc {
  const [head, ...rest] = path;
  if (head === undefined) return doc;
  const copy: Doc = { ...doc };
  if (rest.length === 0) {
    if (value === undefined) delete copy[head];
    else copy[head] = value;
    return copy;
  }
  const child = copy[head];
  copy[head] = setPath(typeof child === 'object' && child !== null ? (child as Doc) : {}, rest, value);
  return copy;
}

/** A stored secret: the sealed text, never the plaintext. */
export interface SealedSecret {
  sealed: string;
}

const isSealed = (v: unknown): v is SealedSecret => typeof v === 'object' && v !== null && typeof (v as SealedSecret).sealed === 'string';

/**
 * Merges the secrets of an incoming write into the stored document: for each dotted path,
 * omitted → keep the stored sealed value, a string → seal it, null → remove it.
 */
export async function mergeSecrets(stored: Doc | undefined, incoming: Doc, paths: string[], box: SecretBox): Promise<Doc> {
  let out = incoming;
  for (const dotted of paths) {
    const path = dotted.split('.');
    const given = getPath(incoming, path);
    if (given === undefined) {
      const previous = stored ? getPath(stored, path) : undefined;
      out = setPath(out, path, isSealed(previous) ? previous : undefined);
    } else if (given === null) {
      out = setPath(out, path, undefined);
    } else if (typeof given === 'string') {
      out = setPath(out, path, { sealed: await box.seal(given) } satisfies SealedSecret);
    } else if (!isSealed(given)) {
      out = setPath(out, path, undefined);
    }
  }
  return out;
}

/** The public view: each secret replaced by `<name>Set: boolean` next to where it was. */
export function redactSecrets(doc: Doc, paths: string[]): Doc {
  let out = doc;
  for (const dotted of paths) {
    const path = dotted.split('.');
    const name = path[path.length - 1] ?? '';
    const present = getPath(doc, path) !== undefined && getPath(doc, path) !== null;
    out = setPath(out, path, undefined);
    out = setPath(out, [...path.slice(0, -1), `${name}Set`], present);
  }
  return out;
}

/** Reads a secret back for use (e.g. to log in to a mailbox). */
export async function openSecret(doc: Doc, dotted: string, box: SecretBox): Promise<string | undefined> {
  const value = getPath(doc, dotted.split('.'));
  return isSealed(value) ? box.open(value.sealed) : undefined;
}
