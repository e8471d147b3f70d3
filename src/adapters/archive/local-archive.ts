// Local-folder archive (the embedded default, R-STO-2): keys are relative paths under one root directory.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { ArchiveError, type ArchiveStore } from '../../core/archive.js';

/** `<name>.~<12 hex>.tmp`: an object being written (never listed). */
const TEMP_FILE = /\.~[0-9a-f]{12}\.tmp$/;

const errno = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/** Classifies a file-system error: permissions → forbidden, anything else unknown (a full disk may free up: transient). */
function classify(err: unknown, what: string): ArchiveError {
  const code = errno(err);
  const message = `${what}: ${(err as Error).message}`;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return new ArchiveError('forbidden', message, { cause: err });
  if (code === 'ENOSPC' || code === 'EMFILE' || code === 'ENFILE' || code === 'EBUSY' || code === 'EAGAIN') {
    return new ArchiveError('unknown', message, { transient: true, cause: err });
  }
  return new ArchiveError('unknown', message, { cause: err });
}

export class LocalArchiveStore implements ArchiveStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  describe(): string {
    return `local folder ${this.root}`;
  }

  /** The file of a key; refuses anything that could leave the root (absolute, `..`, `.`, empty segments, backslashes, NUL). */
  private pathOf(key: string, allowTrailingSlash = false): string {
    const body = allowTrailingSlash ? key.replace(/\/$/, '') : key;
    const segments = body.split('/');
    const bad =
      body === '' ||
      key.startsWith('/') ||
      /[\\\0]/.test(key) ||
      segments.some((s) => s === '' || s === '.' || s === '..');
    if (bad) throw new ArchiveError('unknown', `archive key ${JSON.stringify(key)} is not a safe relative path`);
    const full = resolve(this.root, ...segments);
    if (!full.startsWith(this.root + sep)) throw new ArchiveError('unknown', `archive key ${JSON.stringify(key)} leaves the archive folder`);
    return full;
  }

  async put(key: string, data: Uint8Array, _contentType: string): Promise<void> {
    const file = this.pathOf(key);
    // Write to a temporary sibling, then rename: a reader never sees half an object.
    const tmp = `${file}.~${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(tmp, data);
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw classify(err, `cannot write ${file}`);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const file = this.pathOf(key);
    try {
      const buf = await readFile(file);
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
      throw classify(err, `cannot read ${file}`);
    }
  }

  async list(prefix: string, limit: number): Promise<string[]> {
    const out: string[] = [];
    if (limit <= 0) return out;
    // Start from the deepest folder the prefix names; keep the entries that start with the prefix.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const dir = dirKey === '' ? this.root : this.pathOf(dirKey);
    await this.walk(dir, dirKey === '' ? '' : `${dirKey}/`, prefix, limit, out);
    return out;
  }

  /** Depth-first, entries sorted so that the keys come out in key order; temporary files are skipped. */
  private async walk(dir: string, keyPrefix: string, prefix: string, limit: number, out: string[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return;
      throw classify(err, `cannot list ${dir}`);
    }
    const named = entries
      .filter((e) => e.isDirectory() || (e.isFile() && !TEMP_FILE.test(e.name)))
      .map((e) => ({ entry: e, sortKey: e.isDirectory() ? `${e.name}/` : e.name }))
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    for (const { entry } of named) {
      if (out.length >= limit) return;
      const key = `${keyPrefix}${entry.name}`;
      if (entry.isDirectory()) {
        const asDir = `${key}/`;
        // Descend only where keys under it can still match the prefix.
        if (asDir.startsWith(prefix) || prefix.startsWith(asDir)) await this.walk(join(dir, entry.name), asDir, prefix, limit, out);
      } else if (key.startsWith(prefix)) out.push(key);
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    try {
      await unlink(file);
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return;
      throw classify(err, `cannot delete ${file}`);
    }
  }
}
