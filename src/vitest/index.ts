/**
 * `berth/vitest`: containers as vitest fixtures.
 *
 * ```ts
 * import { test as base, expect } from 'vitest';
 * import { containerFixture } from 'berth/vitest';
 * import type { Container } from 'berth';
 *
 * const test = base.extend<{ web: Container }>({
 *   web: containerFixture('busybox', ['httpd', '-f', '-p', '8080'], { waitFor: { port: 8080 } }),
 * });
 *
 * test('serves', async ({ web }) => {
 *   const socket = await web.connect(8080);
 *   // ...
 * });
 * ```
 *
 * The fixture runs the container when a test (or, with `scope: 'file'`, the first test of a
 * file) asks for it, waits for `waitFor`, and removes it after the test (or the file), whatever
 * happened: it holds the container with `await using`. When the worker process itself dies (a
 * crash, a `kill -9`, a timeout of the runner), its containers die with it, since they belong to
 * the process that ran them (they are not detached); the fixture creates them with
 * `autoRemove: true`, so the next engine opened on the same root removes their records and
 * cgroups before its first call.
 *
 * vitest (3.2 or later) is a peer dependency of this entry only; the main `berth` entry does not
 * need it.
 *
 * @packageDocumentation
 */
import { Container, type RunOptions } from 'berth';

/** When a fixture's container is made and removed, as vitest's fixture `scope`. */
export type ContainerFixtureScope = 'test' | 'file' | 'worker';

/**
 * Options of {@link containerFixture}: {@link RunOptions} (the engine, `waitFor`, ports, env…)
 * and the fixture's own settings.
 */
export type ContainerFixtureOptions = RunOptions & ContainerFixtureSettings;

/** The fixture's own settings in {@link ContainerFixtureOptions}. */
export interface ContainerFixtureSettings {
  /**
   * `test` (default): a new container for every test that asks for it; `file`: one per test
   * file; `worker`: one per worker process (several files).
   */
  scope?: ContainerFixtureScope;
  /**
   * How many of the container's last log lines are printed to stderr when a test using it
   * failed (test scope only; default 20, 0 for none): what the program said is next to the
   * failure.
   */
  logLinesOnFailure?: number;
}

/** The test context a test-scoped fixture reads (the test's outcome). */
interface FailureContext {
  task?: { name?: string; result?: { state?: string } };
}

/** A vitest fixture function: sets the value up, hands it to `use`, tears it down. */
export type ContainerFixtureFn = (context: object, use: (container: Container) => Promise<void>) => Promise<void>;

/**
 * A vitest fixture entry (for `test.extend`) that runs `image` with `command` and `options`
 * (as {@link Container.run}) and removes the container afterwards.
 *
 * Unless `options.autoRemove` says otherwise, the container is created with `autoRemove: true`
 * (see the module's documentation: what a killed worker leaves is removed by the next engine);
 * its record is then gone once its program exits, which a fixture for a service does not mind.
 * Set `autoRemove: false` to read an exited container in the test (it is then removed by the
 * fixture, but not after a killed worker).
 *
 * @example
 * ```ts
 * const test = base.extend<{ db: Container }>({
 *   db: containerFixture('my/db', undefined, { scope: 'file', waitFor: { log: /ready/ } }),
 * });
 * ```
 */
export function containerFixture(
  image: string,
  command?: string | string[],
  options: ContainerFixtureOptions = {},
): [ContainerFixtureFn, { scope: ContainerFixtureScope }] {
  const { scope = 'test', logLinesOnFailure = 20, ...run } = options;
  const start = (): Promise<Container> => Container.run(image, command, { autoRemove: true, ...run });
  if (scope !== 'test') {
    // vitest reads a fixture's first parameter: it must be an object pattern.
    // eslint-disable-next-line no-empty-pattern
    const shared = async ({}: object, use: (c: Container) => Promise<void>): Promise<void> => {
      await using container = await start();
      await use(container);
    };
    return [shared as ContainerFixtureFn, { scope }];
  }
  const perTest = async ({ task }: FailureContext, use: (c: Container) => Promise<void>): Promise<void> => {
    await using container = await start();
    await use(container);
    if (task?.result?.state === 'fail' && logLinesOnFailure > 0) await printLastLines(container, logLinesOnFailure);
  };
  return [perTest as ContainerFixtureFn, { scope }];
}

/** Writes the container's last `n` log lines to stderr (nothing when it is gone already). */
async function printLastLines(container: Container, n: number): Promise<void> {
  try {
    const text = await container.logs({ tail: n });
    process.stderr.write(`--- last log lines of container ${container.ref} ---\n${text}`);
  } catch {
    // The container removed itself (autoRemove) or its logs are gone: nothing to show.
  }
}
