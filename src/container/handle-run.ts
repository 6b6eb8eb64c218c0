/**
 * The body of `Container.run`: its options checked, the container created from an image or a
 * snapshot, started and waited for under the call's signal.
 *
 * @module
 */
import { Engine, engineOption } from '../engine.js';
import { runWithin } from './call-limits.js';
import { startSchema, type CreateOptions, type RunOptions } from './handle-options.js';
import { parseOptions } from './options.js';
import { Snapshot, type SnapshotCreateOptions } from './snapshot.js';
import { checkInput, parseInput } from './start-io.js';

/**
 * Creates a container (`Container.create`) from `options.image`, a reference or a
 * {@link Snapshot}; resolves with its id and the engine it is on (`options.engine`, else the
 * snapshot's; undefined: the default engine). `signal` stops a pull of a missing image.
 */
export async function createContainer(
  options: CreateOptions | SnapshotCreateOptions,
  signal?: AbortSignal,
): Promise<{ id: string; engine: Engine | undefined }> {
  const image = options?.image;
  const engine = engineOption(options) ?? (Snapshot.isSnapshot(image) ? image.engine : undefined);
  if (Snapshot.isSnapshot(image)) return { id: await image.create(options as SnapshotCreateOptions), engine };
  const { engine: _engine, ...rest } = options ?? ({} as CreateOptions);
  const rec = await (engine ?? Engine.default()).containers.create(rest as CreateOptions, undefined, signal);
  return { id: rec.id, engine };
}

/**
 * Creates and starts a container of `image` (a reference or a {@link Snapshot}) running
 * `command` with `options` (see `Container.run`); resolves with its id and the engine it is on
 * (`options.engine`, else the snapshot's; undefined: the default engine).
 */
export async function runContainer(
  image: string | Snapshot,
  command: string | string[] | undefined,
  options: RunOptions,
): Promise<{ id: string; engine: Engine | undefined }> {
  const { waitFor, signal, input: rawInput, engine: _engine, ...create } = options ?? {};
  const start = parseOptions(startSchema, { waitFor, signal });
  const input = parseInput(rawInput);
  if (input !== undefined) checkInput(create);
  const engine = engineOption(options) ?? (Snapshot.isSnapshot(image) ? image.engine : undefined);
  const svc = (engine ?? Engine.default()).containers;
  const spec = { ...create, image, ...(command !== undefined ? { command } : {}), ...(engine ? { engine } : {}) };
  const id = await runWithin(
    svc,
    Snapshot.isSnapshot(image) ? `snapshot ${image.id}` : image,
    async (s) => (await createContainer(spec as CreateOptions | SnapshotCreateOptions, s)).id,
    { ...start, input },
  );
  return { id, engine };
}
