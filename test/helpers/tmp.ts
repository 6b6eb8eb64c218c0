/**
 * Temporary directories for tests, removed when the test that made them finishes.
 *
 * Removal is careful, because tests mount things: anything still mounted under the directory is
 * lazily unmounted first (deepest first), and the directory is left in place — with an error —
 * if a mount will not go, so that a recursive delete can never reach through a leftover bind mount
 * into the host's files. Leak checks (`test/helpers/leaks.ts`) in `afterEach` run before this
 * cleanup, so a leaked mount is still reported.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, onTestFinished } from 'vitest';
import { mountPointsUnder } from './leaks.js';

const pending = new Set<string>();
let exitHookInstalled = false;

/**
 * Creates a fresh directory `os.tmpdir()/berth-<prefix>-XXXXXX` and registers its removal:
 *
 * - called inside a test or a `beforeEach`/`afterEach` hook: removed when that test finishes
 *   (vitest's `onTestFinished`, which runs after `afterEach`);
 * - called at file or `describe` level: removed after the file's tests (`afterAll`);
 * - anywhere else (e.g. in `beforeAll`): removed by {@link cleanupTempDirs}, which also runs when
 *   the test process exits.
 *
 * @param prefix - A short word naming the test, e.g. `engine` (kebab-case, no slashes).
 * @returns The directory's absolute path.
 *
 * @example
 * ```ts
 * it('writes state', async () => {
 *   const root = tempDir('engine');
 *   const engine = new Engine({ root, runRoot: join(root, 'run') });
 * });
 * ```
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `berth-${prefix.replaceAll('/', '-')}-`));
  pending.add(dir);
  const cleanup = (): void => removeTempDir(dir);
  try {
    onTestFinished(cleanup);
    return dir;
  } catch {
    // Not inside a test.
  }
  try {
    afterAll(cleanup);
  } catch {
    // Not while collecting either.
  }
  installExitHook();
  return dir;
}

/**
 * Removes every directory {@link tempDir} made that is still there. Call it from `afterAll` when
 * directories are made in `beforeAll`; it also runs when the process exits.
 */
export function cleanupTempDirs(): void {
  const errors: unknown[] = [];
  for (const dir of [...pending]) {
    try {
      removeTempDir(dir);
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, 'some temporary directories could not be removed');
}

/**
 * Unmounts whatever is mounted under `dir` (lazily, deepest first), then deletes it. Refuses to
 * delete, and throws, if a mount remains under it.
 *
 * @param dir - A directory made by {@link tempDir} (or any directory you own).
 */
export function removeTempDir(dir: string): void {
  for (const mountPoint of mountPointsUnder(dir)) {
    try {
      execFileSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
    } catch {
      // Checked below.
    }
  }
  const left = mountPointsUnder(dir);
  if (left.length > 0) {
    throw new Error(`not removing ${dir}: still mounted under it: ${left.join(', ')}`);
  }
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  pending.delete(dir);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    try {
      cleanupTempDirs();
    } catch (e) {
      console.error(e);
    }
  });
}
