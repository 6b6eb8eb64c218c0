/**
 * Runs every benchmark: each `bench/*.ts` file except this one, in name order, one after the
 * other, each as its own `npx tsx FILE` process with the terminal passed through. Arguments given
 * to this script are passed on to each benchmark. Exits non-zero if any benchmark failed (the
 * others still run).
 *
 * Usage: `npm run bench` (or `npx tsx bench/run-all.ts`).
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const self = basename(fileURLToPath(import.meta.url));

/** The benchmark files to run, in name order. */
function benchFiles(): string[] {
  return readdirSync(here)
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts') && name !== self)
    .sort();
}

/** Runs one file with tsx; resolves with its exit code (or 1 when killed by a signal). */
function runOne(file: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('npx', ['tsx', '--expose-gc', file, ...args], { stdio: 'inherit', cwd: join(here, '..') });
    child.on('error', (e) => {
      console.error(`cannot start ${file}: ${e.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

async function main(): Promise<void> {
  const files = benchFiles();
  if (files.length === 0) {
    console.log('no benchmarks in bench/');
    return;
  }
  const failed: string[] = [];
  for (const name of files) {
    console.log(`\n=== ${name} ===`);
    const code = await runOne(join('bench', name), process.argv.slice(2));
    if (code !== 0) failed.push(`${name} (exit ${code})`);
  }
  if (failed.length > 0) {
    console.error(`\nfailed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

await main();
