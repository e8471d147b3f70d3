// AES-256-GCM secret box over WebCrypto (runs on Node and on Workers): mailbox passwords, CRM tokens, bucket keys.
import type { SecretBox } from '../../core/ports.js';

const VERSION = 'v1';

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}
function unb64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** Raw 32-byte key from SECRET_KEY: 64 hex chars or base64 of 32 bytes, else refused. */
export function parseSecretKey(text: string): Uint8Array {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return new Uint8Array(Buffer.from(trimmed, 'hex'));
  if (/^[A-Za-z0-9+/_-]{42,44}={0,2}$/.test(trimmed)) {
    const bytes = new Uint8Array(Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
    if (bytes.length === 32) return bytes;
  }
  throw new Error('SECRET_KEY must be 32 random bytes, as 64 hex characters or base64 (e.g. `openssl rand -hex 32`)');
}

export function generateSecretKey(): string {
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(32))).toString('hex');
}

export class AesGcmSecretBox implements SecretBox {
  private readonly key: ReturnType<typeof globalThis.crypto.subtle.importKey>;
  private readonly keyId: Promise<string>;

  constructor(rawKey: Uint8Array) {
    if (rawKey.length !== 32) throw new Error('the secret key must be 32 bytes');
    const copy = new Uint8Array(rawKey);
    this.key = globalThis.crypto.subtle.importKey('raw', copy, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
    // A short fingerprint of the key, stored with each value, so a wrong SECRET_KEY fails with a clear message.
    this.keyId = globalThis.crypto.subtle.digest('SHA-256', copy).then((d) => Buffer.from(d).toString('hex').slice(0, 8));
  }

  async seal(plaintext: string): Promise<string> {
    const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
    const ct = await globalThis.crypto.subtle.encrypt({ name: 'AES-GCM', iv }, await this.key, new TextEncoder().encode(plaintext));
    return `${VERSION}:${await this.keyId}:${b64(iv)}:${b64(new Uint8Array(ct))}`;
  }

  async open(sealed: string): Promise<string> {
    const [version, keyId, iv, ct] = sealed.split(':');
    if (version !== VERSION || !keyId || !iv || !ct) throw new Error('not a sealed secret');
    if (keyId !== (await this.keyId)) {
      throw new Error(`secret was sealed with another key (${keyId}); SECRET_KEY differs from the one used when it was saved`);
    }
    const plain = await globalThis.crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64(iv) }, await this.key, unb64(ct));
    return new TextDecoder().decode(plain);
  }
}
