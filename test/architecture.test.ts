// Enforces DESIGN.md's dependency rule (imports point inward; only src/entry reads process.env) over src/ and connectors/.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE_EXT = /\.(?:ts|tsx|mts|cts|js|jsx|mjs|cjs)$/;
const TEST_FILE = /\.test\.(?:ts|tsx|mts|cts|js|mjs)$/;
const SRC_LAYERS = ['core', 'app', 'adapters', 'http', 'config', 'entry'] as const;

export interface SourceFile {
  /** Repository-relative path with forward slashes, e.g. "src/core/ports.ts". */
  path: string;
  text: string;
}

export interface Violation {
  file: string;
  /** What was imported (the specifier as written), or what was done. */
  what: string;
  rule: string;
}

export function formatViolation(v: Violation): string {
  return `${v.file}: ${v.what} (${v.rule})`;
}

/**
 * Where a repository path sits: a src layer ("core" … "entry"), the connector contract, registry or kit,
 * one connector ("connector:zendesk"), or somewhere else ("elsewhere:<path>").
 */
function placeOf(path: string): string {
  const noExt = path.replace(SOURCE_EXT, '');
  const parts = noExt.split('/');
  if (parts[0] === 'src') {
    const layer = parts[1];
    const isLayer = layer !== undefined && (SRC_LAYERS as readonly string[]).includes(layer);
    // src/core/x.ts is in core; "src/core" alone is a folder import; src/core.ts is in no layer.
    if (isLayer && (parts.length >= 3 || !SOURCE_EXT.test(path))) return layer;
    return `elsewhere:${path}`;
  }
  if (parts[0] === 'connectors') {
    if (parts.length === 1 || noExt === 'connectors/index') return 'registry';
    if (noExt === 'connectors/contract') return 'contract';
    if (parts[1] === 'kit') return 'kit';
    if (parts.length >= 3 && parts[1]) return `connector:${parts[1]}`;
    if (parts.length === 2 && parts[1] && !SOURCE_EXT.test(path)) return `connector:${parts[1]}`; // a folder import
    return `elsewhere:${path}`;
  }
  return `elsewhere:${path}`;
}

interface Target {
  kind: 'project' | 'node' | 'package' | 'unresolved';
  /** For project targets: placeOf(); for packages: the package name; for node: the builtin. */
  name: string;
}

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? spec);
}

function classify(fromFile: string, spec: string): Target {
  if (spec.startsWith('.') || spec.startsWith('/')) {
    const resolved = spec.startsWith('/') ? spec : posix.normalize(posix.join(posix.dirname(fromFile), spec));
    if (resolved.startsWith('..') || resolved.startsWith('/')) return { kind: 'unresolved', name: spec };
    return { kind: 'project', name: placeOf(resolved) };
  }
  if (spec.startsWith('node:') || isBuiltin(spec)) return { kind: 'node', name: spec };
  if (spec.startsWith('#')) return { kind: 'unresolved', name: spec };
  return { kind: 'package', name: packageName(spec) };
}

interface Rule {
  /** Other places this one may import (its own place is always allowed). */
  project: (place: string) => boolean;
  packages: (name: string) => boolean;
  node: boolean;
  text: string;
}

const isCore = (place: string) => place === 'core';
const anyPackage = () => true;

function ruleFor(place: string): Rule | undefined {
  switch (place) {
    case 'core':
      return {
        project: () => false,
        packages: () => false,
        node: false,
        text: 'src/core is pure: it imports nothing outside src/core, no node:*, no npm package, not even types',
      };
    case 'app':
      return {
        // src/config holds the pure zod schemas of settings and env; the use cases validate with them.
        project: (p) => p === 'core' || p === 'config',
        packages: (n) => n === 'zod',
        node: false,
        text: 'src/app imports only src/core, src/config (and zod)',
      };
    case 'adapters':
      return {
        project: isCore,
        packages: anyPackage,
        node: true,
        text: 'src/adapters import src/core ports and their SDKs, never app, http, config, entry or connectors',
      };
    case 'http':
      return {
        project: (p) => p === 'app' || p === 'core' || p === 'config',
        // @hono/node-server is Node-only; entry/node.ts wires it.
        packages: (n) => n === 'hono' || n === 'zod' || (n.startsWith('@hono/') && n !== '@hono/node-server'),
        node: false,
        text: 'src/http imports src/app, src/core, src/config, hono, @hono/* and zod only; no adapters, entry or node:* (it must bundle for Cloudflare Workers)',
      };
    case 'config':
      return {
        project: isCore,
        packages: (n) => n === 'zod',
        node: false,
        text: 'src/config imports src/core and zod only',
      };
    case 'entry':
      return undefined; // entry wires everything together
    case 'contract':
      return {
        project: isCore,
        packages: anyPackage,
        node: true,
        text: 'connectors/contract.ts imports only src/core (types) and npm packages',
      };
    case 'registry':
      return {
        project: (p) => p === 'contract' || p.startsWith('connector:'),
        packages: anyPackage,
        node: true,
        text: 'connectors/index.ts imports connector folders and connectors/contract.ts only',
      };
    case 'kit':
      return {
        project: (p) => p === 'contract',
        packages: anyPackage,
        node: true,
        text: 'connectors/kit imports only connectors/contract.ts and npm packages',
      };
    default:
      if (place.startsWith('connector:')) {
        return {
          project: (p) => p === 'contract',
          packages: anyPackage,
          node: true,
          text: 'a connector imports only connectors/contract.ts, its own folder and npm packages; never another connector or src/',
        };
      }
      return undefined;
  }
}

interface CodeFindings {
  /** Every way the file reaches the environment: process.env, process['env'], globalThis.process.env, { env } = process. */
  env: string[];
  /** import(expr) with a non-literal specifier, which no static check can follow. */
  computedImports: number;
}

/** Walks the syntax tree, so comments and strings that mention process.env do not count. */
function codeFindings(file: SourceFile): CodeFindings {
  const sf = ts.createSourceFile(file.path, file.text, ts.ScriptTarget.Latest, true);
  const found: CodeFindings = { env: [], computedImports: 0 };
  const isProcess = (e: ts.Expression): boolean =>
    (ts.isIdentifier(e) && e.text === 'process') || (ts.isPropertyAccessExpression(e) && e.name.text === 'process');
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && node.name.text === 'env' && isProcess(node.expression)) {
      found.env.push('reads process.env');
    } else if (
      ts.isElementAccessExpression(node) &&
      isProcess(node.expression) &&
      ts.isStringLiteralLike(node.argumentExpression) &&
      node.argumentExpression.text === 'env'
    ) {
      found.env.push("reads process['env']");
    } else if (ts.isVariableDeclaration(node) && node.initializer && isProcess(node.initializer)) {
      found.env.push('aliases process (reaches process.env)');
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg && !ts.isStringLiteralLike(arg)) found.computedImports += 1;
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

function specifiersOf(text: string): string[] {
  const info = ts.preProcessFile(text, true, true);
  return [
    ...info.importedFiles.map((f) => f.fileName),
    ...info.referencedFiles.map((f) => f.fileName),
    // /// <reference types="node" /> pulls a package's types in just like an import.
    ...info.typeReferenceDirectives.map((f) => f.fileName),
  ];
}

/** Checks a set of files (paths relative to the repository root) against the dependency rule. */
export function checkArchitecture(files: SourceFile[]): Violation[] {
  const violations: Violation[] = [];
  const dirsWithCode = new Set(files.filter((f) => !TEST_FILE.test(f.path)).map((f) => posix.dirname(f.path)));
  for (const file of files) {
    const inScope = file.path.startsWith('src/') || file.path.startsWith('connectors/');
    if (!inScope) continue;
    if (TEST_FILE.test(file.path)) {
      // Tests may import anything, but they live next to the code they test.
      if (!dirsWithCode.has(posix.dirname(file.path))) {
        violations.push({
          file: file.path,
          what: 'is a test in a folder without code',
          rule: 'unit tests live next to their code; cross-cutting tests go to test/',
        });
      }
      continue;
    }
    const place = placeOf(file.path);
    if (place.startsWith('elsewhere:')) {
      violations.push({
        file: file.path,
        what: 'is outside every layer',
        rule: `src/ holds only ${SRC_LAYERS.join(', ')}; connectors/ holds contract.ts, index.ts, kit/ and one folder per connector`,
      });
      continue;
    }
    const rule = ruleFor(place);
    const code = codeFindings(file);
    if (place !== 'entry') {
      for (const what of code.env) {
        violations.push({ file: file.path, what, rule: 'only src/entry reads process.env; pass settings in' });
      }
    }
    if (!rule) continue;
    for (let i = 0; i < code.computedImports; i++) {
      violations.push({
        file: file.path,
        what: 'imports a computed specifier',
        rule: 'import specifiers outside src/entry are string literals, so this test can check them',
      });
    }
    for (const spec of specifiersOf(file.text)) {
      const target = classify(file.path, spec);
      const ok =
        target.kind === 'project'
          ? target.name === place || rule.project(target.name)
          : target.kind === 'package'
            ? rule.packages(target.name)
            : target.kind === 'node'
              ? rule.node
              : false; // outside the repository, or a #alias that hides where it points
      if (!ok) violations.push({ file: file.path, what: `imports ${spec}`, rule: rule.text });
    }
  }
  return violations;
}

function walk(dir: string, out: string[]): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return; // a layer folder that does not exist yet
  }
  for (const name of entries) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const full = join(dir, name);
    const st = statSync(full);
    if (st.isDirectory()) walk(full, out);
    else if (SOURCE_EXT.test(name)) out.push(full);
  }
}

function repositoryFiles(): SourceFile[] {
  const paths: string[] = [];
  for (const top of ['src', 'connectors']) walk(join(ROOT, top), paths);
  return paths.sort().map((full) => ({ path: relative(ROOT, full).split(sep).join('/'), text: readFileSync(full, 'utf8') }));
}

/**
 * Violations present in the tree that the lead has to rule on; each is listed with why it is tolerated.
 * Keep this short: fix the code (or change DESIGN.md and the rule above) and delete the entry.
 */
const ACCEPTED: Array<{ line: string; why: string }> = [];

describe('architecture: the dependency rule of DESIGN.md', () => {
  it('holds for src/ and connectors/', () => {
    const files = repositoryFiles();
    expect(files.some((f) => f.path.startsWith('src/'))).toBe(true);
    const all = checkArchitecture(files).map(formatViolation);
    const accepted = new Set(ACCEPTED.map((a) => a.line));
    for (const line of all) console.error(`${accepted.has(line) ? '[accepted, pending decision] ' : ''}${line}`);
    for (const a of ACCEPTED) {
      if (!all.includes(a.line)) console.warn(`architecture.test.ts: stale ACCEPTED entry, delete it: ${a.line}`);
    }
    const lines = all.filter((line) => !accepted.has(line));
    expect(lines, `dependency rule violations:\n${lines.join('\n')}`).toEqual([]);
  });

  it('accepts an empty tree', () => {
    expect(checkArchitecture([])).toEqual([]);
  });

  it('allows what DESIGN.md allows', () => {
    const files: SourceFile[] = [
      { path: 'src/core/session/transition.ts', text: "import type { Clock } from '../ports.js';\nexport const x = 1;\n// import fs from 'node:fs'\nconst s = \"process.env\";" },
      { path: 'src/core/ports.ts', text: 'export interface Clock { now(): number }' },
      { path: 'src/app/ingest-message.ts', text: "import { z } from 'zod';\nimport { transition } from '../core/session/transition.js';" },
      { path: 'src/adapters/imap/client.ts', text: "import { ImapFlow } from 'imapflow';\nimport { once } from 'node:events';\nimport type { Clock } from '../../core/ports.js';\nimport { x } from '../store/keys.js';" },
      { path: 'src/adapters/store/keys.ts', text: 'export const x = 1;' },
      { path: 'src/http/app.ts', text: "import { Hono } from 'hono';\nimport { cors } from 'hono/cors';\nimport { OpenAPIHono } from '@hono/zod-openapi';\nimport { settingsSchema } from '../config/schema.js';\nimport { ingest } from '../app/ingest-message.js';" },
      { path: 'src/config/schema.ts', text: "import { z } from 'zod';\nimport type { Clock } from '../core/ports.js';" },
      { path: 'src/entry/node.ts', text: "import { serve } from '@hono/node-server';\nimport { createApp } from '../http/app.js';\nimport { registry } from '../../connectors/index.js';\nconst port = process.env.PORT;" },
      { path: 'connectors/contract.ts', text: "import { z } from 'zod';\nimport type { Logger } from '../src/core/ports.js';" },
      { path: 'connectors/index.ts', text: "import { zendesk } from './zendesk/index.js';\nimport { defineConnector } from './contract.js';" },
      { path: 'connectors/kit/run-connector-contract.ts', text: "import { describe } from 'vitest';\nimport type { Connector } from '../contract.js';" },
      { path: 'connectors/zendesk/index.ts', text: "import { defineConnector } from '../contract.js';\nimport { client } from './client.js';" },
      { path: 'connectors/zendesk/client.ts', text: "import zendesk from 'node-zendesk';" },
      { path: 'connectors/zendesk/contract.test.ts', text: "import { runConnectorContract } from '../kit/run-connector-contract.js';\nimport { x } from '../../src/adapters/store/keys.js';\nconst t = process.env.TOKEN;" },
    ];
    expect(checkArchitecture(files).map(formatViolation)).toEqual([]);
  });

  it('reports each violation as "file: imports X (rule)"', () => {
    const files: SourceFile[] = [
      { path: 'src/core/bad.ts', text: "/// <reference types=\"node\" />\nimport { readFile } from 'node:fs';\nimport type { Logger } from 'pino';\nimport { x } from '../app/use.js';\nimport 'fs';" },
      { path: 'src/core/env.ts', text: "export const a = process.env.A;\nexport const b = process['env'];\nexport const c = globalThis.process.env;\nconst { env } = process;" },
      { path: 'src/app/use.ts', text: "import { ImapFlow } from 'imapflow';\nimport { store } from '../adapters/store/keys.js';\nimport { Hono } from 'hono';" },
      { path: 'src/adapters/store/keys.ts', text: "import { ingest } from '../../app/use.js';\nimport { app } from '../../http/app.js';\nimport { registry } from '../../../connectors/index.js';\nimport { settings } from '../../config/schema.js';" },
      { path: 'src/http/app.ts', text: "import { store } from '../adapters/store/keys.js';\nimport { serve } from '@hono/node-server';\nimport { createHash } from 'node:crypto';\nimport { main } from '../entry/node.js';\nconst mod = await import('redis');" },
      { path: 'src/config/schema.ts', text: "import { parse } from 'dotenv';\nimport { ingest } from '../app/use.js';\nimport { y } from '#settings';\nimport { z } from '../../../elsewhere/z.js';" },
      { path: 'src/entry/node.ts', text: 'export const main = 1;' },
      { path: 'src/utils.ts', text: 'export const u = 1;' },
      { path: 'src/core.ts', text: 'export const c = 1;' },
      { path: 'connectors/contract.ts', text: 'export const c = 1;' },
      { path: 'connectors/zendesk/index.ts', text: "import { sf } from '../salesforce/index.js';\nimport { keys } from '../../src/adapters/store/keys.js';\nimport { kit } from '../kit/run.js';\nimport { def } from '../contract.js';\nconst name = 'x';\nconst m = await import(`./${name}.js`);" },
      { path: 'connectors/salesforce/index.ts', text: 'export const sf = 1;' },
      { path: 'connectors/kit/run.ts', text: "import { zendesk } from '../zendesk/index.js';" },
      { path: 'src/core/__tests__/bad.test.ts', text: "import fs from 'node:fs';" },
    ];
    const lines = checkArchitecture(files).map(formatViolation);
    const core = 'src/core is pure: it imports nothing outside src/core, no node:*, no npm package, not even types';
    const app = 'src/app imports only src/core, src/config (and zod)';
    const adapters = 'src/adapters import src/core ports and their SDKs, never app, http, config, entry or connectors';
    const http = 'src/http imports src/app, src/core, src/config, hono, @hono/* and zod only; no adapters, entry or node:* (it must bundle for Cloudflare Workers)';
    const config = 'src/config imports src/core and zod only';
    const env = 'only src/entry reads process.env; pass settings in';
    const connector = 'a connector imports only connectors/contract.ts, its own folder and npm packages; never another connector or src/';
    expect(lines).toEqual([
      `src/core/bad.ts: imports node:fs (${core})`,
      `src/core/bad.ts: imports pino (${core})`,
      `src/core/bad.ts: imports ../app/use.js (${core})`,
      `src/core/bad.ts: imports fs (${core})`,
      `src/core/bad.ts: imports node (${core})`,
      `src/core/env.ts: reads process.env (${env})`,
      `src/core/env.ts: reads process['env'] (${env})`,
      `src/core/env.ts: reads process.env (${env})`,
      `src/core/env.ts: aliases process (reaches process.env) (${env})`,
      `src/app/use.ts: imports imapflow (${app})`,
      `src/app/use.ts: imports ../adapters/store/keys.js (${app})`,
      `src/app/use.ts: imports hono (${app})`,
      `src/adapters/store/keys.ts: imports ../../app/use.js (${adapters})`,
      `src/adapters/store/keys.ts: imports ../../http/app.js (${adapters})`,
      `src/adapters/store/keys.ts: imports ../../../connectors/index.js (${adapters})`,
      `src/adapters/store/keys.ts: imports ../../config/schema.js (${adapters})`,
      `src/http/app.ts: imports ../adapters/store/keys.js (${http})`,
      `src/http/app.ts: imports @hono/node-server (${http})`,
      `src/http/app.ts: imports node:crypto (${http})`,
      `src/http/app.ts: imports ../entry/node.js (${http})`,
      `src/http/app.ts: imports redis (${http})`,
      `src/config/schema.ts: imports dotenv (${config})`,
      `src/config/schema.ts: imports ../app/use.js (${config})`,
      `src/config/schema.ts: imports #settings (${config})`,
      `src/config/schema.ts: imports ../../../elsewhere/z.js (${config})`,
      'src/utils.ts: is outside every layer (src/ holds only core, app, adapters, http, config, entry; connectors/ holds contract.ts, index.ts, kit/ and one folder per connector)',
      'src/core.ts: is outside every layer (src/ holds only core, app, adapters, http, config, entry; connectors/ holds contract.ts, index.ts, kit/ and one folder per connector)',
      'connectors/zendesk/index.ts: imports a computed specifier (import specifiers outside src/entry are string literals, so this test can check them)',
      `connectors/zendesk/index.ts: imports ../salesforce/index.js (${connector})`,
      `connectors/zendesk/index.ts: imports ../../src/adapters/store/keys.js (${connector})`,
      `connectors/zendesk/index.ts: imports ../kit/run.js (${connector})`,
      'connectors/kit/run.ts: imports ../zendesk/index.js (connectors/kit imports only connectors/contract.ts and npm packages)',
      'src/core/__tests__/bad.test.ts: is a test in a folder without code (unit tests live next to their code; cross-cutting tests go to test/)',
    ]);
  });
});
