/**
 * The vitest fixture example's own configuration: `npx vitest run --config examples/vitest/vitest.config.ts`
 * (as root; `setup.ts` makes a throwaway engine root with a busybox image in it).
 *
 * Test files run in forked worker processes (`pool: 'forks'`), as berth's kernel calls act on a
 * process; they share one engine root, as test files of a real project do.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ['./setup.ts'],
  },
});
