#!/usr/bin/env node
// Builds berth's native programs (src/runtime/monitor/{monitor,exec,init}.c) for this machine's
// architecture into dist/berth-<name>-<arch> (`process.arch`: x64, arm64), where
// src/runtime/monitor-binary.ts looks for them in the published package. Run by `npm run build`
// after tsup. Tries cc, gcc and g++ in turn; the flags are those of monitor-binary.ts.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const flags = [
  '-x', 'c',
  '-nostdlib', '-static', '-Os', '-ffreestanding', '-fno-builtin', '-fno-stack-protector',
  '-fno-asynchronous-unwind-tables', '-fno-unwind-tables', '-fno-pie', '-no-pie',
  '-Wl,--build-id=none', '-Wl,-z,noexecstack', '-Wl,-z,norelro', '-Wl,-z,noseparate-code', '-s',
];

for (const name of ['monitor', 'exec', 'init']) {
  const source = join(root, 'src', 'runtime', 'monitor', `${name}.c`);
  const out = join(root, 'dist', `berth-${name}-${process.arch}`);
  const tmp = `${out}.tmp`;
  mkdirSync(dirname(out), { recursive: true });
  const failures = [];
  let built = false;
  for (const cc of ['cc', 'gcc', 'g++']) {
    try {
      execFileSync(cc, [...flags, '-o', tmp, source], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      failures.push(`${cc}: ${e.code === 'ENOENT' ? 'not found' : String(e.stderr ?? e.message).trim()}`);
      continue;
    }
    chmodSync(tmp, 0o755);
    renameSync(tmp, out);
    console.log(`build-monitor: ${out} (${cc})`);
    built = true;
    break;
  }
  if (!built) {
    rmSync(tmp, { force: true });
    console.error(`build-monitor: a C compiler (cc, gcc or g++) is needed to build ${source}\n${failures.join('\n')}`);
    process.exit(1);
  }
}
