// Makes sure the system tools the tests start privately (redis-server, dovecot, chromium) are installed.
//
//   node scripts/test-setup.mjs               check; as root, apt-get install whatever is missing
//   node scripts/test-setup.mjs --check-only  check and report, never install (exit 1 if anything is missing)
//
// Tests start their own servers on random ports; system-wide daemons are stopped and disabled after
// an install so they cannot get in the way.
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

const PACKAGES = ['dovecot-imapd', 'redis-server', 'chromium'];
const INSTALL_COMMAND = `apt-get update && apt-get install -y ${PACKAGES.join(' ')}`;
// A non-root PATH often lacks the sbin dirs, where dovecot lives.
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];
// Where distributions put dovecot's protocol binaries (Debian: /usr/lib/dovecot).
const DOVECOT_LIBEXEC = ['/usr/lib/dovecot', '/usr/libexec/dovecot', '/usr/local/libexec/dovecot'];

const TOOLS = [
  {
    name: 'redis-server',
    pkg: 'redis-server',
    args: ['--version'],
    parse: (out) => /v=(\S+)/.exec(out)?.[1],
  },
  {
    name: 'dovecot',
    pkg: 'dovecot-imapd',
    args: ['--version'],
    parse: (out) => /^\d+\.\d+\S*/.exec(out.trim())?.[0],
    // dovecot-core alone has no IMAP server; the tests need imap and imap-login.
    extra: () =>
      DOVECOT_LIBEXEC.some((d) => existsSync(join(d, 'imap')) && existsSync(join(d, 'imap-login')))
        ? undefined
        : `no IMAP binaries (imap, imap-login) in ${DOVECOT_LIBEXEC.join(', ')}`,
  },
  {
    name: 'chromium',
    pkg: 'chromium',
    args: ['--version'],
    parse: (out) => /Chromium\s+(\S+)/.exec(out)?.[1] ?? out.trim().split('\n')[0],
  },
];

function which(name, pathValue, extraDirs = EXTRA_DIRS) {
  for (const dir of [...(pathValue ?? '').split(delimiter), ...extraDirs]) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Finds every tool and asks it for its version; all in parallel (the fast path stays well under 1 s). */
async function detect(pathValue, extraDirs) {
  return Promise.all(
    TOOLS.map(async (tool) => {
      const path = which(tool.name, pathValue, extraDirs);
      if (!path) return { tool, ok: false, why: 'not found' };
      let out;
      try {
        // The chromium wrapper script may print shell noise on stderr; the version is on stdout.
        const res = await execFileP(path, tool.args, { timeout: 15_000, encoding: 'utf8' });
        out = res.stdout.trim() || res.stderr.trim();
      } catch (err) {
        return { tool, ok: false, path, why: `\`${path} ${tool.args.join(' ')}\` failed: ${String(err.message).split('\n')[0]}` };
      }
      const version = tool.parse(out) ?? 'unknown version';
      const problem = tool.extra?.();
      if (problem) return { tool, ok: false, path, version, why: problem };
      return { tool, ok: true, path, version };
    }),
  );
}

function report(results) {
  for (const r of results) {
    if (r.ok) console.log(`test-setup: ${r.tool.name} ${r.version} (${r.path})`);
    else console.log(`test-setup: ${r.tool.name} MISSING: ${r.why}`);
  }
}

function fail(missing, reason) {
  const names = missing.map((r) => `${r.tool.name} (package ${r.tool.pkg})`).join(', ');
  console.error(
    [
      '',
      `test-setup: FAILED: ${reason}`,
      `test-setup: missing: ${names}`,
      'test-setup: the tests start private Dovecot, Redis and Chromium instances and cannot run without them.',
      `test-setup: install them as root (Debian/Ubuntu):  ${INSTALL_COMMAND}`,
      `test-setup:                   or with sudo:  sudo apt-get update && sudo apt-get install -y ${PACKAGES.join(' ')}`,
      '',
    ].join('\n'),
  );
  process.exit(1);
}

function run(cmd, args, env) {
  console.log(`test-setup: $ ${cmd} ${args.join(' ')}`);
  const res = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  if (res.error) return `${cmd}: ${res.error.message}`;
  if (res.status !== 0) return `\`${cmd} ${args.join(' ')}\` exited with ${res.status ?? res.signal}`;
  return undefined;
}

/** Best effort, quiet: the service tools may not exist in a container, and that is fine. */
function quiet(cmd, args) {
  const path = which(cmd, process.env.PATH);
  if (!path) return;
  spawnSync(path, args, { stdio: 'ignore', timeout: 30_000 });
}

function stopSystemDaemons() {
  const units = ['dovecot', 'redis-server'];
  const systemd = existsSync('/run/systemd/system');
  for (const unit of units) {
    quiet('service', [unit, 'stop']);
    if (systemd) quiet('systemctl', ['disable', '--now', `${unit}.service`]);
    else quiet('update-rc.d', [unit, 'disable']);
  }
  // Socket activation would start dovecot again on the first connection to port 143.
  if (systemd) quiet('systemctl', ['disable', '--now', 'dovecot.socket']);
  console.log('test-setup: stopped and disabled the system dovecot and redis-server services, if any (tests start their own)');
}

async function main() {
  const args = process.argv.slice(2);
  const checkOnly = args.includes('--check-only');
  // --path=<dirs> replaces PATH for detection and turns off the sbin fallback (used to test this script).
  const pathArg = args.find((a) => a.startsWith('--path='));
  const pathValue = pathArg ? pathArg.slice('--path='.length) : process.env.PATH;
  const extraDirs = pathArg ? [] : EXTRA_DIRS;

  let results = await detect(pathValue, extraDirs);
  report(results);
  let missing = results.filter((r) => !r.ok);
  if (missing.length === 0) return;

  if (checkOnly) fail(missing, '--check-only given, not installing');
  if (process.getuid?.() !== 0) fail(missing, 'not running as root, cannot install');
  if (!which('apt-get', process.env.PATH)) fail(missing, 'apt-get not found (not a Debian-based system?)');

  console.log(`test-setup: installing ${PACKAGES.join(' ')} (missing: ${missing.map((r) => r.tool.name).join(', ')})`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  // A failed update (one broken mirror) does not always doom the install, so try it anyway.
  const updateErr = run('apt-get', ['update'], env);
  const installErr = run('apt-get', ['install', '-y', ...PACKAGES], env);
  // Whatever happened, do not leave system daemons running.
  stopSystemDaemons();
  if (installErr) fail(missing, `install failed: ${installErr}${updateErr ? ` (after ${updateErr})` : ''}`);

  results = await detect(pathValue, extraDirs);
  report(results);
  missing = results.filter((r) => !r.ok);
  if (missing.length > 0) fail(missing, 'still missing after apt-get install');
}

main().catch((err) => {
  console.error(`test-setup: FAILED: ${err?.stack ?? err}`);
  process.exit(1);
});
