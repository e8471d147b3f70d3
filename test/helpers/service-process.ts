// Runs the service as a real process (what `npm start` runs) on a random loopback port, for kill -9 tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort } from './ports.js';

const root = resolve(import.meta.dirname, '..', '..');

export interface RunningService {
  child: ChildProcess;
  output: () => string;
  base: string;
  port: number;
  /** kill -9 and wait for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM and wait (graceful stop). */
  stop(): Promise<void>;
}

export async function startServiceProcess(env: Record<string, string>, opts: { port?: number; timeoutMs?: number } = {}): Promise<RunningService> {
  const port = opts.port ?? (await freePort());
  // Exactly what `npm start` runs: one node process (tsx as an import hook, no wrapper process), so a
  // SIGKILL reaches the service itself.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/entry/node.ts'], {
    cwd: root,
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '/root',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      ALLOW_PRIVATE_HOSTS: 'true',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (!out.includes('listening on')) {
    if (child.exitCode !== null) throw new Error(`service exited (${child.exitCode}):\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`service did not start in time:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const waitExit = (signal: NodeJS.Signals) =>
    new Promise<void>((res) => {
      if (child.exitCode !== null || child.signalCode !== null) return res();
      child.once('exit', () => res());
      child.kill(signal);
    });
  return { child, output: () => out, base: `http://127.0.0.1:${port}`, port, kill9: () => waitExit('SIGKILL'), stop: () => waitExit('SIGTERM') };
}

/** JSON call against a running service. */
export async function api(base: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* keep text */
  }
  return { status: res.status, body: parsed };
}
