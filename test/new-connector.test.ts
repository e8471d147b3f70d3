// scripts/new-connector.mjs: the scaffold compiles, runs the kit and fails only with "not implemented"; bad ids and existing folders are refused.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SCRIPT = join(ROOT, 'scripts', 'new-connector.mjs');
const rand = randomBytes(4).toString('hex');
const ID = `scaffold${rand}`;
// Inside connectors/ so the generated imports (../contract.js, ../kit/index.js) resolve; the leading dot
// keeps it out of tsconfig.json's globs and the architecture test while it exists.
const OUT_REL = `connectors/.scaffold-test-${rand}`;
const OUT = join(ROOT, OUT_REL);

/** The child vitest must not think it runs inside this one. */
const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'NODE_OPTIONS'));

function run(cmd: string, args: string[], timeoutMs = 60_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd: ROOT, env: { ...childEnv, FORCE_COLOR: '0', NO_COLOR: '1' }, encoding: 'utf8', timeout: timeoutMs });
}

const output = (r: SpawnSyncReturns<string>): string => `${r.stdout ?? ''}\n${r.stderr ?? ''}`;

afterAll(() => {
  rmSync(OUT, { recursive: true, force: true });
});

describe('npm run new-connector', () => {
  it('refuses a bad id and writes nothing', () => {
    for (const bad of ['Bad_Id', '9lives', 'x', 'has space', 'kit']) {
      const badOut = `${OUT_REL}-bad`;
      const r = run(process.execPath, [SCRIPT, bad, '--out', badOut]);
      expect(r.status, `id "${bad}": ${output(r)}`).not.toBe(0);
      expect(output(r)).toMatch(/bad id|reserved/);
      expect(existsSync(join(ROOT, badOut))).toBe(false);
    }
    const none = run(process.execPath, [SCRIPT]);
    expect(none.status).not.toBe(0);
  });

  it('refuses an existing connector folder', () => {
    const r = run(process.execPath, [SCRIPT, 'local']);
    expect(r.status).not.toBe(0);
    expect(output(r)).toContain('already exists');
  });

  it('creates the folder, which compiles with tsc', () => {
    const r = run(process.execPath, [SCRIPT, ID, '--out', OUT_REL]);
    expect(r.status, output(r)).toBe(0);
    expect(readdirSync(OUT).sort()).toEqual(['README.md', 'client.ts', 'contract.test.ts', 'fake.ts', 'index.ts', 'mapping.ts', 'webhooks.ts']);
    // Same compiler options as the project, over the generated files (and what they import: contract, kit).
    writeFileSync(join(OUT, 'tsconfig.json'), JSON.stringify({ extends: '../../tsconfig.json', include: ['./*.ts'] }));
    const tsc = run('npx', ['tsc', '-p', join(OUT_REL, 'tsconfig.json')]);
    expect(tsc.status, `tsc:\n${output(tsc)}`).toBe(0);

    const again = run(process.execPath, [SCRIPT, ID, '--out', OUT_REL]);
    expect(again.status, 'a second run into the same folder').not.toBe(0);
    expect(output(again)).toContain('already exists');
  }, 60_000);

  it('runs the kit, which fails only with "not implemented"', () => {
    expect(existsSync(join(OUT, 'contract.test.ts')), 'the previous test created the folder').toBe(true);
    const r = run('npx', ['vitest', 'run', '--reporter=verbose', `${OUT_REL}/`]);
    const out = output(r);
    expect(r.status, out).not.toBe(0);
    expect(out).toContain('not implemented');
    expect(out).toContain('contract.test.ts');
    // What does not depend on the CRM already passes.
    expect(out).toMatch(/✓ .*config: the config and the badConfig both parse with configSchema/);
    expect(out).toMatch(/✓ .*kit: every skip names a kit test and gives a reason/);
  }, 60_000);
});
