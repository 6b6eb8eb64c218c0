/**
 * A `RUN` step: the command runs in a container of the step's image through the container core
 * (the default sandbox: dropped capabilities, seccomp, no network unless asked), and the
 * container's upper directory becomes the step's layer.
 *
 * @module
 */
import type { ContainerService } from '../../container/service.js';
import type { ResolvedImage } from '../../container/context.js';
import type { MountOptions } from '../../container/mounts.js';
import type { LayerStore, StagedLayer } from '../layer-store.js';
import { attachCleanupErrors } from '../../errors.js';

/** Where a build container comes from and what it runs. */
export interface RunStepInput {
  /** An id for the container record's image field (the parent config's digest). */
  imageId: string;
  /** The parent's layers, bottom first (as `rootfs.diff_ids`). */
  layers: readonly string[];
  /** The argv. */
  argv: string[];
  /** The environment (`K=V`): the image's, with the build arguments in scope under it. */
  env: string[];
  /** The user (`name`, `uid`, `uid:gid`); empty: root. */
  user: string;
  /** The working directory (absolute). */
  workdir: string;
  /** `none`, `host` or a network name. */
  network: string;
  /** Extra mounts (`RUN --mount`). */
  mounts: MountOptions[];
  /** Receives the output as it arrives. */
  onOutput(stream: 'stdout' | 'stderr', text: string): void;
  /** Cancels the step: the container is killed and removed. */
  signal: AbortSignal;
}

/** What a `RUN` step left. */
export interface RunStepResult {
  /** The command's exit code. */
  exitCode: number;
  /** The last lines of its output, stdout and stderr in order. */
  tail: string;
  /** The changes as a staged layer; undefined when it changed nothing (or failed). */
  layer: StagedLayer | undefined;
}

/** How many output lines a failed step's error carries. */
const TAIL_LINES = 20;

/** The label that marks a build's containers. */
export const BUILD_LABEL = 'berth.build';

/**
 * Runs one `RUN` step to its end and stages its changes as a layer (an empty diff stages
 * nothing). The container is removed in every case; an error removing it is attached to the
 * step's own error, or thrown when the step succeeded.
 */
export async function runStep(
  containers: ContainerService,
  layers: LayerStore,
  input: RunStepInput,
): Promise<RunStepResult> {
  const image: ResolvedImage = { id: input.imageId, config: {}, layers: [...input.layers].reverse() };
  const rec = await containers.create(
    {
      image: input.imageId,
      entrypoint: [],
      command: input.argv,
      env: input.env,
      workdir: input.workdir,
      ...(input.user === '' ? {} : { user: input.user }),
      network: input.network,
      hostname: 'buildkitsandbox',
      mounts: input.mounts,
      labels: { [BUILD_LABEL]: '1' },
    },
    image,
  );
  let result: RunStepResult | undefined;
  let failure: unknown;
  const kill = (): void => {
    containers.kill(rec.id, 9).catch(() => undefined); // already exited: nothing to kill
  };
  input.signal.addEventListener('abort', kill, { once: true });
  try {
    input.signal.throwIfAborted();
    await containers.start(rec.id);
    const tail: string[] = [];
    for await (const line of containers.logLines(rec.id, { follow: true })) {
      input.onOutput(line.stream, line.text);
      tail.push(line.text);
      if (tail.length > TAIL_LINES) tail.shift();
    }
    const { exitCode } = await containers.wait(rec.id);
    input.signal.throwIfAborted();
    let layer: StagedLayer | undefined;
    if (exitCode === 0) {
      const { tar } = await containers.layerTar(rec.id);
      layer = await layers.stage(tar, { signal: input.signal });
      // Only the two zero blocks that end a tar: the step changed nothing.
      if (layer.tarSize <= 1024) {
        await layer.discard();
        layer = undefined;
      }
    }
    result = { exitCode, tail: tail.join(''), layer };
  } catch (e) {
    failure = e;
  } finally {
    input.signal.removeEventListener('abort', kill);
  }
  try {
    await containers.remove(rec.id, { force: true, volumes: true });
  } catch (e) {
    if (failure === undefined) {
      await result?.layer?.discard();
      throw e;
    }
    failure = attachCleanupErrors(failure, [e]);
  }
  if (failure !== undefined) throw failure;
  return result!;
}
