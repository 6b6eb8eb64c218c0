/**
 * The package as npm users get it: what `npm ci` accepts, what `npm pack` ships, the native
 * programs for both architectures, the published type declarations, and the ESM and CJS builds
 * side by side in one process.
 *
 * Reads the built `dist/` (`npm run build`, which `scripts/test.sh` runs first, and `prepack` runs
 * before `npm pack`); `npm pack` runs here with `--ignore-scripts`, so it lists that `dist/` as is.
 * Runs no network: `npm ci --dry-run` with a complete lock file resolves nothing remotely.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';

const ROOT = join(import.meta.dirname, '..', '..');
const DIST = join(ROOT, 'dist');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  license: string;
  files: string[];
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
};

const PROGRAMS = ['init', 'exec', 'monitor'] as const;
/** Node's architecture names, with the ELF `e_machine` and the qemu-user binary of each. */
const ARCHES = {
  x64: { machine: 62, qemu: 'qemu-x86_64-static' },
  arm64: { machine: 183, qemu: 'qemu-aarch64-static' },
} as const;
type Arch = keyof typeof ARCHES;

function requireBuilt(path: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build\` first`);
}

function onPath(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`]).status === 0;
}

/** The ELF facts that matter here: class, machine, type, and whether it asks for a dynamic loader. */
function elfInfo(path: string): { elf64: boolean; machine: number; type: number; interp: boolean; dynamic: boolean } {
  const b = readFileSync(path);
  if (b.subarray(0, 4).toString('latin1') !== '\x7fELF') throw new Error(`${path} is not an ELF file`);
  if (b[4] !== 2 || b[5] !== 1) throw new Error(`${path} is not a 64-bit little-endian ELF file`);
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  let interp = false;
  let dynamic = false;
  for (let i = 0; i < phnum; i++) {
    const type = b.readUInt32LE(phoff + i * phentsize);
    if (type === 3) interp = true; // PT_INTERP
    if (type === 2) dynamic = true; // PT_DYNAMIC
  }
  return { elf64: true, machine: b.readUInt16LE(18), type: b.readUInt16LE(16), interp, dynamic };
}

describe('package', () => {
  it("npm ci accepts package.json and package-lock.json as committed (the lock holds every platform's optional packages)", () => {
    const dir = tempDir('npm-ci');
    copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
    copyFileSync(join(ROOT, 'package-lock.json'), join(dir, 'package-lock.json'));
    const r = spawnSync('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(r.stderr + r.stdout).not.toMatch(/npm error/);
    expect(r.status).toBe(0);
  });

  it('npm pack ships dist (the library, its types, the zygote and berth-init/exec/monitor for x64 and arm64), README and LICENSE, and no tests or sources', () => {
    for (const arch of Object.keys(ARCHES)) for (const p of PROGRAMS) requireBuilt(join(DIST, `berth-${p}-${arch}`));
    // The build's output goes to stderr, so that `npm pack --json` prints only its JSON.
    expect(pkg.scripts.prepack).toBe('npm run build >&2');
    expect(pkg.scripts.build).toMatch(/tsup && node scripts\/build-monitor\.mjs$/);

    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    const [report] = JSON.parse(out) as [{ files: { path: string; mode: number }[] }];
    const files = new Map(report.files.map((f) => [f.path, f.mode]));

    const expected = [
      'LICENSE',
      'README.md',
      'package.json',
      'dist/index.js',
      'dist/index.cjs',
      'dist/index.d.ts',
      'dist/index.d.cts',
      'dist/zygote-main.js',
      'dist/zygote-main.cjs',
      ...Object.keys(ARCHES).flatMap((arch) => PROGRAMS.map((p) => `dist/berth-${p}-${arch}`)),
    ];
    for (const path of expected) expect(files.has(path), path).toBe(true);
    for (const arch of Object.keys(ARCHES)) {
      for (const p of PROGRAMS)
        expect((files.get(`dist/berth-${p}-${arch}`) ?? 0) & 0o111, `dist/berth-${p}-${arch} is executable`).toBe(
          0o111,
        );
    }
    const stray = [...files.keys()].filter(
      (path) => !['LICENSE', 'README.md', 'package.json'].includes(path) && !path.startsWith('dist/'),
    );
    expect(stray).toEqual([]);
    expect([...files.keys()].filter((path) => /(^|\/)test\/|\.test\.|\.tmp$/.test(path))).toEqual([]);

    expect(pkg.license).toBe('Apache-2.0');
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0, January 2004/);
  });

  it('every native program shipped is a static ELF executable for its architecture (x86-64, aarch64): no interpreter, no dynamic section', () => {
    for (const [arch, { machine }] of Object.entries(ARCHES)) {
      for (const p of PROGRAMS) {
        const path = join(DIST, `berth-${p}-${arch}`);
        requireBuilt(path);
        expect(elfInfo(path), path).toEqual({
          elf64: true,
          machine,
          type: 2 /* ET_EXEC */,
          interp: false,
          dynamic: false,
        });
      }
    }
  });

  for (const arch of Object.keys(ARCHES) as Arch[]) {
    const native = arch === process.arch;
    const { qemu } = ARCHES[arch];
    it.skipIf(!native && !onPath(qemu))(
      `berth-monitor and berth-exec for ${arch} run ${native ? 'natively' : `under ${qemu}`} and exit 2 on a bad command line (their usage path)`,
      () => {
        for (const p of ['monitor', 'exec'] as const) {
          const path = join(DIST, `berth-${p}-${arch}`);
          requireBuilt(path);
          const r = native ? spawnSync(path, []) : spawnSync(qemu, [path]);
          expect({ program: p, error: r.error, signal: r.signal, status: r.status }).toEqual({
            program: p,
            error: undefined,
            signal: null,
            status: 2,
          });
        }
      },
    );
  }

  it("dist imports only Node built-ins and the package's runtime dependencies, and uses every one of them (two lazily)", () => {
    const builtins = new Set(builtinModules);
    const packageOf = (spec: string): string | undefined => {
      if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec.split('/')[0]!)) return undefined;
      return spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
    };
    const loaded = new Set<string>();
    const dynamic = new Set<string>();
    for (const file of ['index.js', 'zygote-main.js', 'index.cjs', 'zygote-main.cjs']) {
      requireBuilt(join(DIST, file));
      const text = readFileSync(join(DIST, file), 'utf8');
      const statics = [
        ...text.matchAll(/^(?:import|export)\s[^;]*?\bfrom\s*"([^"]+)"/gm),
        ...text.matchAll(/\brequire\("([^"]+)"\)/g),
      ];
      for (const m of statics) {
        const name = packageOf(m[1]!);
        if (name) loaded.add(name);
      }
      for (const m of text.matchAll(/\bimport\("([^"]+)"\)/g)) {
        const name = packageOf(m[1]!);
        if (name) dynamic.add(name);
      }
    }
    // The decompressors of ADD's bzip2 and xz archives are loaded on first use only.
    const lazy = [...dynamic].filter((n) => n in pkg.dependencies && !loaded.has(n)).sort();
    expect(lazy).toEqual(['unbzip2-stream', 'xz-decompress']);
    expect([...loaded, ...lazy].sort()).toEqual(Object.keys(pkg.dependencies).sort());
    // The one lazy import of a development tool: esbuild bundles the zygote when berth runs from its
    // TypeScript sources (src/runtime/zygote-script.ts), a path the package, which ships
    // dist/zygote-main.*, never takes.
    expect([...dynamic].filter((n) => !(n in pkg.dependencies))).toEqual(['esbuild']);
  });

  it("the published .d.ts leaves out @internal members (Engine's zygote, eventLog and services)", () => {
    for (const file of ['index.d.ts', 'index.d.cts']) {
      requireBuilt(join(DIST, file));
      const text = readFileSync(join(DIST, file), 'utf8');
      const engine = /declare class Engine\b[^]*?\n}\n/.exec(text)?.[0];
      expect(engine, `class Engine in ${file}`).toBeDefined();
      for (const member of ['zygote', 'eventLog', 'images', 'containers', 'volumes', 'cgroups']) {
        expect(engine, `${file}: Engine.${member}`).not.toMatch(
          new RegExp(`^\\s+(?:readonly |get )?${member}\\b`, 'm'),
        );
      }
      expect(engine).toMatch(/^\s+readonly root: string;/m); // a public member is still there
    }
  });

  it("the ESM and CJS builds loaded in one process recognise each other's errors: instanceof, BerthError.is and code", () => {
    requireBuilt(join(DIST, 'index.js'));
    requireBuilt(join(DIST, 'index.cjs'));
    const script = `
      import { createRequire } from 'node:module';
      const esm = await import(${JSON.stringify(pathToFileURL(join(DIST, 'index.js')).href)});
      const cjs = createRequire(import.meta.url)(${JSON.stringify(join(DIST, 'index.cjs'))});
      const thrown = (f) => { try { f(); } catch (e) { return e; } throw new Error('did not throw'); };
      const check = (e, lib) => ({
        code: e.code,
        berth: e instanceof lib.BerthError,
        invalid: e instanceof lib.InvalidArgumentError,
        notFound: e instanceof lib.NotFoundError,
        is: lib.BerthError.is(e),
        isInvalid: lib.InvalidArgumentError.is(e),
        isNotFound: lib.NotFoundError.is(e),
      });
      console.log(JSON.stringify({
        twoCopies: esm.BerthError !== cjs.BerthError,
        cjsErrorInEsm: check(thrown(() => cjs.parsePortSpec('1:2/sctpx')), esm),
        esmErrorInCjs: check(thrown(() => esm.parsePortSpec('1:2/sctpx')), cjs),
        plainError: esm.BerthError.is(new Error('x')) || cjs.BerthError.is({ code: 'INVALID_ARGUMENT' }),
      }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    const seen = {
      code: 'INVALID_ARGUMENT',
      berth: true,
      invalid: true,
      notFound: false,
      is: true,
      isInvalid: true,
      isNotFound: false,
    };
    expect(JSON.parse(out)).toEqual({ twoCopies: true, cjsErrorInEsm: seen, esmErrorInCjs: seen, plainError: false });
  });
});
