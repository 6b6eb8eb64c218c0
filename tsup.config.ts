/**
 * Build configuration (tsup).
 *
 * Two entries, each as ESM (`.js`) and CJS (`.cjs`):
 *
 * - `dist/index.{js,cjs}` (+ `index.d.ts`, `index.d.cts`): the library, from `src/index.ts`;
 * - `dist/vitest.{js,cjs}` (+ `.d.ts`, `.d.cts`): the `berth/vitest` entry, from `src/vitest/index.ts`.
 *   It imports the library as `berth` (external: the package's own main entry), so a program that
 *   imports both entries has one copy of every class (one `Engine.default()`, one `Container`).
 * - `dist/zygote-main.{js,cjs}`: the runtime's helper process, from `src/runtime/zygote-main.ts`.
 *   It is not imported: the library starts it as a separate `node` process by its path next to the
 *   library's own file, so it must sit at `dist/zygote-main.*` and needs no type declarations.
 *
 * `npm run build` then runs `scripts/build-monitor.mjs` (after tsup, whose `clean` empties `dist/`
 * first), which compiles berth's native programs (`src/runtime/monitor/{init,exec,monitor}.c`)
 * into `dist/berth-<name>-<arch>` for both `x64` and `arm64` (the building machine's own with `cc`,
 * the other with Debian's cross gcc); the library picks the one of the machine it runs on
 * (`src/runtime/monitor-binary.ts`). `prepack` runs `npm run build`, so `npm pack` and
 * `npm publish` ship both.
 *
 * Every dependency stays external (koffi above all: it loads a native module from its own
 * package directory). `shims` gives the CJS build `import.meta.url` and the ESM build `__dirname`,
 * so code that locates `zygote-main` next to itself works in both.
 */
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    vitest: 'src/vitest/index.ts',
    'zygote-main': 'src/runtime/zygote-main.ts',
  },
  format: ['esm', 'cjs'],
  // `stripInternal`: members tagged `@internal` (the engine's services, its zygote, its event log…)
  // are left out of the published `.d.ts`, as typedoc leaves them out of the docs (`excludeInternal`).
  dts: {
    entry: { index: 'src/index.ts', vitest: 'src/vitest/index.ts' },
    compilerOptions: { stripInternal: true },
  },
  // `berth/vitest` imports `berth`: tsconfig maps it to src/index.ts for type checking, and
  // esbuild would follow that mapping and bundle a second copy; this keeps it an import.
  external: ['berth', 'vitest'],
  esbuildPlugins: [
    {
      name: 'berth-self-import',
      setup(build) {
        build.onResolve({ filter: /^berth$/ }, () => ({ path: 'berth', external: true }));
      },
    },
  ],
  target: 'node20',
  platform: 'node',
  clean: true,
  sourcemap: true,
  shims: true,
  splitting: false,
  skipNodeModulesBundle: true,
  outDir: 'dist',
});
