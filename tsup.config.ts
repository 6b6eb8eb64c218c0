/**
 * Build configuration (tsup).
 *
 * Two entries, each as ESM (`.js`) and CJS (`.cjs`):
 *
 * - `dist/index.{js,cjs}` (+ `index.d.ts`, `index.d.cts`): the library, from `src/index.ts`;
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
    'zygote-main': 'src/runtime/zygote-main.ts',
  },
  format: ['esm', 'cjs'],
  // `stripInternal`: members tagged `@internal` (the engine's services, its zygote, its event log…)
  // are left out of the published `.d.ts`, as typedoc leaves them out of the docs (`excludeInternal`).
  dts: { entry: { index: 'src/index.ts' }, compilerOptions: { stripInternal: true } },
  target: 'node20',
  platform: 'node',
  clean: true,
  sourcemap: true,
  shims: true,
  splitting: false,
  skipNodeModulesBundle: true,
  outDir: 'dist',
});
