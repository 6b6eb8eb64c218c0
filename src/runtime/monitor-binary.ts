/**
 * Finds berth's native programs (`src/runtime/monitor/*.c`, sharing its `*.h`): tiny freestanding
 * static programs with no libc.
 *
 * - `berth-monitor` (`monitor.c`) stays beside each detached container, logs its output and
 *   writes its exit file;
 * - `berth-exec` (`exec.c`) enters a running container and execs a program in it, started by
 *   the zygote with posix_spawn (no copy of the zygote's address space);
 * - `berth-init` (`init.c`) is a container's init, PID 1 of its new PID namespace, also started
 *   with posix_spawn (see `native-init.ts`).
 *
 * For program `NAME`:
 *
 * 1. `BERTH_MONITOR` / `BERTH_EXEC` / `BERTH_INIT` overrides everything;
 * 2. in the published package it is `berth-NAME-<arch>` next to the bundle (`dist/`), built for
 *    both `x64` and `arm64` by `npm run build` (`scripts/build-monitor.mjs`, run by `prepack`),
 *    `<arch>` being `process.arch`;
 * 3. running from sources, it is compiled on first use into
 *    `node_modules/.cache/berth/NAME-<sha256 of NAME.c and every header, 16 hex>-<arch>`, with the first
 *    of `cc`, `gcc`, `g++` that works. Several processes may do so at once: each compiles to a name
 *    of its own and renames it into place.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BerthError } from '../errors.js';
import cflags from './monitor/cflags.json';

declare const __filename: string | undefined;

const execFileAsync = promisify(execFile);

/**
 * Compiler flags for berth's native programs: a static binary with no libc, no start files, no
 * unwind tables, no stack protector and no build id (`-x c`: g++ would compile the file as C++
 * otherwise). One list, `monitor/cflags.json`, which `scripts/build-monitor.mjs` reads too.
 */
const MONITOR_CFLAGS: readonly string[] = cflags;

/** The compilers tried in turn when building the monitor from sources. */
const COMPILERS = ['cc', 'gcc', 'g++'];

function thisFile(): string {
  if (typeof __filename === 'string') return __filename;
  return fileURLToPath(import.meta.url);
}

/** berth's native programs. */
export type NativeProgram = 'monitor' | 'exec' | 'init';

const cached = new Map<NativeProgram, Promise<string>>();

/**
 * The path of a runnable `berth-<name>` for this machine's architecture, located (or compiled
 * from sources) on the first call; later calls return the same promise.
 *
 * @throws BerthError (`UNSUPPORTED`) when there is no prebuilt program and it cannot be compiled
 * (no C compiler, or none that builds it).
 */
export function nativeBinary(name: NativeProgram): Promise<string> {
  let p = cached.get(name);
  if (!p) {
    const attempt = locate(name);
    p = attempt;
    cached.set(name, attempt);
    // A failed attempt is not kept: a compiler may be installed before the next call.
    attempt.catch(() => {
      if (cached.get(name) === attempt) cached.delete(name);
    });
  }
  return p;
}

/** The path of a runnable `berth-monitor` (see {@link nativeBinary}). */
export function monitorBinary(): Promise<string> {
  return nativeBinary('monitor');
}

async function locate(name: NativeProgram): Promise<string> {
  const env = process.env[`BERTH_${name.toUpperCase()}`];
  if (env) return env;
  const here = dirname(thisFile());
  const prebuilt = join(here, `berth-${name}-${process.arch}`);
  if (existsSync(prebuilt)) return prebuilt;
  const source = join(here, 'monitor', `${name}.c`);
  if (existsSync(source)) return compileFromSources(name, source, dirname(dirname(here))); // here: <root>/src/runtime
  throw new BerthError(
    'UNSUPPORTED',
    `berth's native program berth-${name}-${process.arch} is missing next to ${here}: the package ships them for x64 and arm64; ` +
      `set BERTH_${name.toUpperCase()} to a berth-${name} built for this machine (src/runtime/monitor/${name}.c, static, no libc)`,
  );
}

async function compileFromSources(name: NativeProgram, source: string, pkgRoot: string): Promise<string> {
  const hasher = createHash('sha256')
    .update(MONITOR_CFLAGS.join('\0'))
    .update(await readFile(source));
  // Every header: the programs share them (sys.h, the generated constants.h, the shared steps).
  for (const header of (await readdir(dirname(source))).filter((f) => f.endsWith('.h')).sort()) {
    hasher.update(await readFile(join(dirname(source), header)));
  }
  const hash = hasher.digest('hex').slice(0, 16);
  const outDir = join(pkgRoot, 'node_modules', '.cache', 'berth');
  const out = join(outDir, `${name}-${hash}-${process.arch}`);
  if (await isExecutable(out)) return out;
  await mkdir(outDir, { recursive: true });
  const tmp = `${out}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  const failures: string[] = [];
  try {
    for (const cc of COMPILERS) {
      try {
        await execFileAsync(cc, [...MONITOR_CFLAGS, '-o', tmp, source]);
      } catch (e) {
        const err = e as NodeJS.ErrnoException & { stderr?: string };
        failures.push(`${cc}: ${err.code === 'ENOENT' ? 'not found' : err.stderr?.trim() || err.message}`);
        continue;
      }
      await chmod(tmp, 0o755);
      await rename(tmp, out);
      return out;
    }
  } finally {
    await rm(tmp, { force: true });
  }
  throw new BerthError(
    'UNSUPPORTED',
    `a C compiler (cc, gcc or g++) is needed to build berth's native program berth-${name} from sources (${source}); ` +
      `install one (e.g. apt-get install gcc) or set BERTH_${name.toUpperCase()} to a prebuilt berth-${name}.\n${failures.join('\n')}`,
  );
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    return s.isFile() && s.size > 0 && (s.mode & 0o111) !== 0;
  } catch {
    // Not there (or not reachable): not a program to run; the caller builds or looks elsewhere.
    return false;
  }
}
