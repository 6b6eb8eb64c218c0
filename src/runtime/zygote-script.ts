/**
 * Finds the zygote's entry script. In the published package it is `zygote-main.js` (or
 * `.cjs`) next to the bundle. When berth runs from its TypeScript sources (tests, examples,
 * benchmarks), the entry is bundled once with esbuild into `node_modules/.cache/berth`, keyed by
 * a hash of the sources, so the zygote never needs a TypeScript loader (whose worker thread would
 * make forking unsafe). `BERTH_ZYGOTE_SCRIPT` overrides both.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BerthError } from '../errors.js';

declare const __filename: string | undefined;

function thisFile(): string {
  if (typeof __filename === 'string') return __filename;
  return fileURLToPath(import.meta.url);
}

let cached: Promise<string> | undefined;

/** The path of a runnable zygote entry script (built on first use when running from sources). */
export function zygoteScript(): Promise<string> {
  cached ??= locate();
  return cached;
}

async function locate(): Promise<string> {
  const env = process.env.BERTH_ZYGOTE_SCRIPT;
  if (env) return env;
  const here = dirname(thisFile());
  for (const name of ['zygote-main.js', 'zygote-main.cjs', 'zygote-main.mjs']) {
    const p = join(here, name);
    if (existsSync(p)) return p;
  }
  const srcEntry = join(here, 'zygote-main.ts');
  if (existsSync(srcEntry)) return bundleFromSources(srcEntry);
  throw new BerthError('INTERNAL', `berth: the zygote entry script is missing next to ${here}; rebuild the package`);
}

function sourceHash(srcRoot: string): string {
  const h = createHash('sha256');
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) h.update(p).update(readFileSync(p));
    }
  };
  walk(srcRoot);
  return h.digest('hex').slice(0, 16);
}

async function bundleFromSources(entry: string): Promise<string> {
  const srcRoot = dirname(dirname(entry));
  const pkgRoot = dirname(srcRoot);
  const outDir = join(pkgRoot, 'node_modules', '.cache', 'berth');
  const out = join(outDir, `zygote-${sourceHash(srcRoot)}.mjs`);
  if (existsSync(out) && statSync(out).size > 0) return out;
  mkdirSync(outDir, { recursive: true });
  const esbuild = await import('esbuild');
  const tmp = `${out}.${process.pid}.tmp`;
  await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: tmp,
    packages: 'external',
    logLevel: 'silent',
  });
  renameSync(tmp, out);
  return out;
}
