// Temp directories for one test file (mode 755 so Dovecot's and the service's users can read them), removed together.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function tempDirs(prefix: string): { make(): string; removeAll(): void } {
  const dirs: string[] = [];
  return {
    make() {
      const d = mkdtempSync(join(tmpdir(), prefix));
      chmodSync(d, 0o755);
      dirs.push(d);
      return d;
    },
    removeAll() {
      dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
    },
  };
}
