/**
 * The layer rule of `src/`, read from the imports themselves (see `src/README.md`).
 *
 * Ranks, lowest first; a file may import files of its own rank or of a lower one, never of a
 * higher one:
 *
 * 1. **base** (shared): `errors.ts`, `operation.ts`. They import nothing from `src/`.
 * 2. **kernel**: `kernel/**`: raw syscalls, no policy.
 * 3. **utility** (shared): `state/**` (atomic files, locks, records) and `events/**` (the event
 *    log, built on `state/` and `flock`). They sit above the kernel because they take `flock`
 *    locks, and below the runtime so that every layer above may use them.
 * 4. **runtime**: `runtime/**`, and the few files outside it that drive the kernel for one area
 *    behind an interface its service uses, holding no Docker policy ({@link RUNTIME_ELSEWHERE}).
 * 5. **service**: the rest of `container/`, `image/`, `volume/`, `network/`: policy.
 * 6. **public**: the public objects ({@link PUBLIC}): they validate and call a service.
 *
 * Besides the direction, two rules: only the kernel, utility and runtime ranks import `kernel/`
 * (kernel work sits behind the runtime's interfaces: CgroupDriver, NetworkDataplane, InitSys, …),
 * and no import circle anywhere. Type-only imports count as imports for all three rules: a type
 * names a shape of the layer it comes from, so an upward type import is an upward dependency.
 *
 * Imports are read with the TypeScript parser: `import … from`, `import '…'`, `export … from`,
 * `import type`, inline `type` specifiers and `import('…')`. Every relative specifier must resolve
 * to a file of `src/`, so a form the reader missed shows up as a failure here, not as silence.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', '..', 'src');

const RANKS = ['base', 'kernel', 'utility', 'runtime', 'service', 'public'] as const;
type Rank = (typeof RANKS)[number];

/** The public objects: the API's classes and the package's entry. */
const PUBLIC = new Set([
  'index.ts',
  'engine.ts',
  'engine-events.ts', // engine.events() with its signal and timeout
  'container/container.ts',
  'container/process.ts', // ContainerProcess and ContainerAttachment, the handles spawn() and attach() return
  'container/handle-options.ts', // the option and result types of the Container handle's methods
  'container/snapshot.ts', // the Snapshot handle Container.snapshot() returns
  'container/handle-run.ts', // Container.run's body: options, an image or a snapshot, the start under its signal
  'container/pool-open.ts', // Container.pool's checks (engine, waitFor) and the pool opened on the engine
  'image/image.ts',
  'volume/volume.ts',
  'network/network.ts',
  'vitest/index.ts', // the `berth/vitest` entry: fixtures over the public Container (imports `berth` only)
]);

/** Files of runtime rank outside `src/runtime`, and why. */
const RUNTIME_ELSEWHERE: Record<string, string> = {
  'network/dataplane.ts': 'NetworkDataplane: the host side of networking (rtnetlink, nf_tables, sysctls)',
  'network/rules.ts': "the records' nf_tables ruleset, for the dataplane",
  'network/ipam.ts': 'IPv4 arithmetic, used by the rules and by the services',
  'volume/mount.ts': "mounts a local volume's file system (tmpfs, bind, device, loop) on its _data",
  'image/tar-reader.ts': 'the tar codec (parser)',
  'image/tar-writer.ts': 'the tar codec (writer, reads xattrs)',
  'image/layer-writer.ts': 'applies hostile archives to a directory (mknod, xattrs): used by unpack, copyTo and build',
  'image/extract-paths.ts': "layer-writer's names and paths under directory fds, also used by tar-writer and copy",
  'container/fs/copy.ts':
    "docker cp's file system work: opens paths inside a container's root (openat2), mounts a detached overlay",
  'container/fs/union.ts': "reads a container's upper dir over its layers (overlay whiteouts and opaque xattrs)",
  'container/fs/clone-tree.ts': "copies a container's upper dir as a snapshot's layer (mknod, xattrs, reflinks)",
  'image/layer-unpack.ts':
    'unpacks a layer archive into a new directory (decompress, hash, write through layer-writer)',
  'image/build/context/root.ts': "resolves and makes paths inside a build step's root (openat2 RESOLVE_IN_ROOT)",
  'image/build/context/select.ts': "COPY's sources: globs, in-root resolution, fd walks with .dockerignore/--exclude",
  'image/build/context/copy.ts': 'COPY writes the selection through layer-writer under an in-root destination',
  'image/build/context/digest.ts': "COPY's cache key: hashes the same selection copy.ts writes",
  'image/build/context/ignore.ts': '.dockerignore matching (pure), used by the selection',
  'image/build/context/match.ts': "Go's filepath.Match (pure), used by the selection",
  'image/build/context/hash-cache.ts': 'persistent content hashes by stat, for digest.ts',
};

/** The rank of `file` (relative to `src/`); throws for a file the rule does not place yet. */
function rankOf(file: string): Rank {
  if (PUBLIC.has(file)) return 'public';
  if (file in RUNTIME_ELSEWHERE) return 'runtime';
  if (file === 'errors.ts' || file === 'operation.ts') return 'base';
  const top = file.split('/')[0];
  switch (top) {
    case 'kernel':
      return 'kernel';
    case 'state':
    case 'events':
      return 'utility';
    case 'runtime':
      return 'runtime';
    case 'container':
    case 'image':
    case 'volume':
    case 'network':
      return 'service';
    default:
      throw new Error(`src/${file} has no rank: place it in test/unit/layers.test.ts and src/README.md`);
  }
}

/** One import of one file of `src/` (paths relative to `src/`). */
interface ImportEdge {
  from: string;
  to: string;
  typeOnly: boolean;
}

function isTypeOnlyImport(node: ts.ImportDeclaration): boolean {
  const clause = node.importClause;
  if (!clause) return false; // import './x.js': run for its effects
  if (clause.isTypeOnly) return true;
  if (clause.name) return false;
  const b = clause.namedBindings;
  return b !== undefined && ts.isNamedImports(b) && b.elements.length > 0 && b.elements.every((e) => e.isTypeOnly);
}

function isTypeOnlyExport(node: ts.ExportDeclaration): boolean {
  if (node.isTypeOnly) return true;
  const c = node.exportClause;
  return c !== undefined && ts.isNamedExports(c) && c.elements.length > 0 && c.elements.every((e) => e.isTypeOnly);
}

/** The module specifiers `text` imports, each with whether only types come through it. */
function readImports(fileName: string, text: string): { specifier: string; typeOnly: boolean }[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: { specifier: string; typeOnly: boolean }[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push({ specifier: node.moduleSpecifier.text, typeOnly: isTypeOnlyImport(node) });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push({ specifier: node.moduleSpecifier.text, typeOnly: isTypeOnlyExport(node) });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const ref = node.moduleReference.expression;
      if (ts.isStringLiteral(ref)) out.push({ specifier: ref.text, typeOnly: node.isTypeOnly });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg && ts.isStringLiteralLike(arg)) out.push({ specifier: arg.text, typeOnly: false });
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      out.push({ specifier: node.argument.literal.text, typeOnly: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Resolves a relative specifier of `from` (absolute path) to a `.ts` file of `src/`. */
function resolveSpecifier(from: string, specifier: string): string {
  const base = join(dirname(from), specifier);
  for (const c of [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(c) && statSync(c).isFile()) return c;
  }
  throw new Error(`${relative(SRC, from)} imports '${specifier}', which is no file of src/`);
}

/** Every import between two files of `src/`, once per pair and kind. */
function srcImports(): ImportEdge[] {
  const edges = new Map<string, ImportEdge>();
  for (const file of sourceFiles(SRC)) {
    for (const { specifier, typeOnly } of readImports(file, readFileSync(file, 'utf8'))) {
      if (!specifier.startsWith('.')) continue;
      const e = { from: relative(SRC, file), to: relative(SRC, resolveSpecifier(file, specifier)), typeOnly };
      edges.set(`${e.from} ${e.to} ${e.typeOnly}`, e);
    }
  }
  return [...edges.values()];
}

const describeEdge = (e: ImportEdge): string =>
  `${e.from} (${rankOf(e.from)}) imports ${e.typeOnly ? 'types of ' : ''}${e.to} (${rankOf(e.to)})`;

/** Imports from a lower rank to a higher one. */
function upwardImports(edges: readonly ImportEdge[]): string[] {
  return edges.filter((e) => RANKS.indexOf(rankOf(e.to)) > RANKS.indexOf(rankOf(e.from))).map(describeEdge);
}

/** Imports of `kernel/` from the service and public ranks. */
function kernelReaches(edges: readonly ImportEdge[]): string[] {
  return edges
    .filter((e) => rankOf(e.to) === 'kernel' && (rankOf(e.from) === 'service' || rankOf(e.from) === 'public'))
    .map(describeEdge);
}

/**
 * The import circles of `edges`: one message per strongly connected component of more than one
 * file (or a file importing itself), naming a circle through it as its file pairs.
 */
function importCircles(edges: readonly ImportEdge[]): string[] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  // Tarjan's strongly connected components.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;
  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || (next.get(v) ?? []).includes(v)) components.push(c);
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) connect(v);
  return components
    .map((c) => {
      // A circle through the component's first file, found by a search that stays inside it.
      const inside = new Set(c);
      const start = [...c].sort()[0]!;
      const path = circleFrom(start, next, inside);
      const pairs = path.slice(0, -1).map((f, i) => `${f} → ${path[i + 1]}`);
      return `import circle: ${pairs.join(', ')}`;
    })
    .sort();
}

function circleFrom(start: string, next: ReadonlyMap<string, string[]>, inside: ReadonlySet<string>): string[] {
  const seen = new Set<string>();
  const walk = (v: string, path: string[]): string[] | undefined => {
    for (const w of next.get(v) ?? []) {
      if (w === start) return [...path, w];
      if (!inside.has(w) || seen.has(w)) continue;
      seen.add(w);
      const found = walk(w, [...path, w]);
      if (found) return found;
    }
    return undefined;
  };
  return walk(start, [start]) ?? [start, start];
}

describe('the import reader and the rule checks', () => {
  it('reads every import form, and which of them bring types only', () => {
    const text = [
      "import a from './a.js';",
      "import { b } from './b.js';",
      "import type { C } from './c.js';",
      "import { type D, type E } from './d.js';",
      "import { f, type G } from './f.js';",
      "import './side-effect.js';",
      "export { h } from './h.js';",
      "export type { I } from './i.js';",
      "export * from './star.js';",
      "const j = await import('./j.js');",
      "let k: import('./k.js').K;",
      "/** import { commented } from './not-an-import.js' */",
      'const s = "import { x } from \'./in-a-string.js\'";',
    ].join('\n');
    expect(readImports('x.ts', text)).toEqual([
      { specifier: './a.js', typeOnly: false },
      { specifier: './b.js', typeOnly: false },
      { specifier: './c.js', typeOnly: true },
      { specifier: './d.js', typeOnly: true },
      { specifier: './f.js', typeOnly: false },
      { specifier: './side-effect.js', typeOnly: false },
      { specifier: './h.js', typeOnly: false },
      { specifier: './i.js', typeOnly: true },
      { specifier: './star.js', typeOnly: false },
      { specifier: './j.js', typeOnly: false },
      { specifier: './k.js', typeOnly: true },
    ]);
  });

  it('reports an upward import, a service reaching the kernel and a circle, each naming its files', () => {
    const edges: ImportEdge[] = [
      { from: 'kernel/fd.ts', to: 'runtime/plan.ts', typeOnly: true },
      { from: 'volume/service.ts', to: 'kernel/mount.ts', typeOnly: false },
      { from: 'runtime/plan.ts', to: 'kernel/fd.ts', typeOnly: false },
      { from: 'engine.ts', to: 'network/network.ts', typeOnly: false },
      { from: 'network/network.ts', to: 'engine.ts', typeOnly: false },
    ];
    expect(upwardImports(edges)).toEqual(['kernel/fd.ts (kernel) imports types of runtime/plan.ts (runtime)']);
    expect(kernelReaches(edges)).toEqual(['volume/service.ts (service) imports kernel/mount.ts (kernel)']);
    expect(importCircles(edges)).toEqual([
      'import circle: engine.ts → network/network.ts, network/network.ts → engine.ts',
      'import circle: kernel/fd.ts → runtime/plan.ts, runtime/plan.ts → kernel/fd.ts',
    ]);
  });

  it('places every file of src/ in a rank', () => {
    const unplaced = sourceFiles(SRC)
      .map((f) => relative(SRC, f))
      .filter((f) => {
        try {
          rankOf(f);
          return false;
        } catch {
          return true;
        }
      });
    expect(unplaced).toEqual([]);
  });
});

describe('the layers of src/ (public objects → services → runtime → kernel; state, events, errors, operation shared)', () => {
  const edges = srcImports();

  it('has no import from a lower layer to a higher one', () => {
    expect(upwardImports(edges)).toEqual([]);
  });

  it('reaches src/kernel only from the kernel, the shared utilities and the runtime', () => {
    expect(kernelReaches(edges)).toEqual([]);
  });

  it('has no import circle', () => {
    expect(importCircles(edges)).toEqual([]);
  });
});
