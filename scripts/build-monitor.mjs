#!/usr/bin/env node
// Builds berth's native programs (src/runtime/monitor/{monitor,exec,init}.c) into
// dist/berth-<name>-<arch> for every architecture the package ships, `<arch>` being Node's
// `process.arch` name (x64, arm64): src/runtime/monitor-binary.ts picks the one of the machine it
// runs on. Run by `npm run build` after tsup, and so by `prepack` before `npm pack`/`npm publish`.
//
// The machine's own architecture is built with the first of cc, gcc, g++ that works; the other one
// with Debian's cross compiler (x86_64-linux-gnu-gcc or aarch64-linux-gnu-gcc, packages
// gcc-x86-64-linux-gnu and gcc-aarch64-linux-gnu; scripts/install-deps.sh installs the aarch64 one).
// The programs are freestanding (no libc, no start files), so a bare cross gcc is all they need.
// Each program is one translation unit, NAME.c, which includes the headers of the steps it uses
// (src/runtime/monitor/*.h, among them constants.h, generated from src/kernel/constants.ts by
// scripts/gen-native-constants.ts).
// Fails when any program cannot be built: a package missing one architecture's programs would make
// `detach: true` fail there with no way for its user to rebuild them.
//
// Usage: node scripts/build-monitor.mjs [--arch x64,arm64]   (default: both)
// The flags are src/runtime/monitor/cflags.json, which monitor-binary.ts uses too.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const flags = JSON.parse(readFileSync(join(root, 'src/runtime/monitor/cflags.json'), 'utf8'));

/** Every architecture the package ships: Node's name, and the GNU triplet of its cross compiler. */
const ARCHES = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };

/** The compilers tried in turn for `arch`: the native ones on that machine, else the cross gcc. */
function compilersFor(arch) {
  const cross = `${ARCHES[arch]}-gcc`;
  return arch === process.arch ? ['cc', 'gcc', 'g++', cross] : [cross];
}

function parseArches(argv) {
  const i = argv.indexOf('--arch');
  if (i === -1) return Object.keys(ARCHES);
  const list = (argv[i + 1] ?? '').split(',').filter(Boolean);
  const unknown = list.filter((a) => !(a in ARCHES));
  if (list.length === 0 || unknown.length > 0) {
    console.error(
      `build-monitor: --arch takes a comma-separated list of ${Object.keys(ARCHES).join(', ')}; got '${argv[i + 1] ?? ''}'`,
    );
    process.exit(2);
  }
  return list;
}

let failed = false;
for (const arch of parseArches(process.argv.slice(2))) {
  for (const name of ['monitor', 'exec', 'init']) {
    const source = join(root, 'src', 'runtime', 'monitor', `${name}.c`);
    const out = join(root, 'dist', `berth-${name}-${arch}`);
    const tmp = `${out}.tmp`;
    mkdirSync(dirname(out), { recursive: true });
    const failures = [];
    let built = false;
    for (const cc of compilersFor(arch)) {
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
      const hint =
        arch === process.arch
          ? 'a C compiler (cc, gcc or g++)'
          : `the cross compiler ${ARCHES[arch]}-gcc (Debian: apt-get install gcc-${ARCHES[arch].replace(/_/g, '-')})`;
      console.error(`build-monitor: ${hint} is needed to build ${source} for ${arch}\n${failures.join('\n')}`);
      failed = true;
    }
  }
}
if (failed) process.exit(1);
