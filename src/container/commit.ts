/**
 * `docker commit`: a container's changes (its upper dir, as a layer tar) recorded as a new image
 * over its image, with the container's run settings as the image's config, then `changes`. A
 * container forked from a snapshot commits one layer over its source's image: its upper dir
 * merged with the snapshot's layer (see `fs/index.ts`).
 *
 * @module
 */
import { applyChanges } from '../image/changes.js';
import type { OciContainerConfig } from '../image/image-config.js';
import type { ContainerCore } from './context.js';
import type { ContainerRecord } from './record.js';

/** What a commit records, checked by the caller (the public handle's `commitSchema`). */
export interface CommitOptions {
  /** The tag the new image gets. Absent: untagged. */
  ref?: string;
  /** Dockerfile instructions applied to the config (`CMD`, `ENV`, `LABEL`, `EXPOSE`, …), in order. */
  changes: string[];
  /** The history entry's comment. */
  message?: string;
  /** The history entry's author. */
  author?: string;
}

/**
 * The config a committed image gets from its parent's: the container's command, entrypoint,
 * environment (without the `HOSTNAME` the container was given), working directory, user and
 * labels, then `changes`.
 *
 * @throws InvalidArgumentError naming `changes` for an instruction that cannot apply.
 */
export function commitRunConfig(
  c: ContainerRecord['config'],
  parent: OciContainerConfig,
  changes: string[],
): OciContainerConfig {
  return applyChanges(
    {
      ...parent,
      Cmd: c.cmd,
      Entrypoint: c.entrypoint,
      Env: c.env.filter((e) => !e.startsWith('HOSTNAME=')),
      WorkingDir: c.workdir || parent.WorkingDir || '',
      User: c.user || parent.User || '',
      Labels: { ...parent.Labels, ...c.labels },
    },
    changes,
  );
}

/**
 * Commits container `ref` as an image (see the module); resolves with the new image's id.
 * Invalid `changes` are refused before anything is written.
 */
export async function commitContainer(
  core: ContainerCore,
  layerTar: (ref: string) => Promise<{ record: ContainerRecord; tar: AsyncGenerator<Buffer> }>,
  ref: string,
  o: CommitOptions,
): Promise<{ id: string }> {
  const { record: rec, tar } = await layerTar(ref);
  commitRunConfig(rec.config, {}, o.changes);
  return core.ctx.commitImage(rec.imageId, tar, {
    ...(o.ref === undefined ? {} : { ref: o.ref }),
    runConfig: (parent) => commitRunConfig(rec.config, parent, o.changes),
    createdBy: [rec.path, ...rec.args].join(' '),
    ...(o.author === undefined ? {} : { author: o.author }),
    ...(o.message === undefined ? {} : { comment: o.message }),
  });
}
