// Opaque id helpers (SPEC §11b): short, random, safe in a subject, a Message-ID and a path.

// Crockford base32 without I, L, O, U (no look-alikes) — 32 symbols.
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export type RandomSource = (bytes: Uint8Array) => Uint8Array;

const defaultRandom: RandomSource = (bytes) => globalThis.crypto.getRandomValues(bytes);

/** `n` random Crockford base32 characters. */
export function randomBase32(n: number, random: RandomSource = defaultRandom): string {
  const bytes = random(new Uint8Array(n));
  let out = '';
  for (let i = 0; i < n; i++) out += CROCKFORD[(bytes[i] ?? 0) & 31];
  return out;
}

/** A generic entity id: `<prefix>_<16 base32>` in lowercase, e.g. `upl_7k2m…`. 80 random bits. */
export function newId(prefix: string, random?: RandomSource): string {
  return `${prefix}_${randomBase32(16, random).toLowerCase()}`;
}

/** Session id: `S` + 10 base32 characters (50 random bits), e.g. `S7K2M9QX4TB`. */
export function newSessionId(random?: RandomSource): string {
  return `S${randomBase32(10, random)}`;
}

export const SESSION_ID_PATTERN = /^S[0-9A-HJKMNP-TV-Z]{8,10}$/;
export const ENTITY_ID_PATTERN = /^[a-z]{2,8}_[0-9a-hjkmnp-tv-z]{16}$/;

/** True for strings usable as an id in a key or path (no separators, bounded length). */
export function isSafeId(id: string): boolean {
  return id.length > 0 && id.length <= 64 && /^[A-Za-z0-9_-]+$/.test(id);
}

