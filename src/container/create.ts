/**
 * Creating a container, as `docker create`: its options checked (everything a bad input can be
 * refused for, before any lookup, pull or record), its image pulled if missing (as `docker run`),
 * its mounts planned and volumes made, its record written.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { withLock } from '../state/lock.js';
import { fsError, isNoSpace } from '../state/fs-error.js';
import type { ContainerCore, ResolvedImage } from './context.js';
import { initialState, isLayerId, LAYER_ID_MESSAGE, type ContainerRecord } from './record.js';
import {
  createOptionsSchema,
  parseOptions,
  type CheckedCreateOptions,
  type ContainerCreateOptions,
} from './options.js';
import { resolveSeccomp } from './seccomp.js';
import { buildConfig } from './spec.js';
import { createBindSources, planMounts } from './mounts.js';
import { allocateUserns } from './userns.js';
import { attachCleanupErrors } from '../errors.js';
import { checkOutputCap } from './output-options.js';

/** What a create needs from the container manager besides {@link ContainerCore}. */
export interface CreateSteps {
  /** The once-per-engine sweep, run before the first create. */
  sweep(): Promise<void>;
  /** Resolves a container (of `volumesFrom`). */
  get(ref: string): Promise<ContainerRecord>;
  /** The lock file that serialises allocating `'auto'` user namespace ranges. */
  usernsLock: string;
}

/**
 * Creates a container (does not start it); emits `create`. With `resolved` (the image builder's
 * path), the container is made from that image and `input.image` is only recorded: nothing is
 * looked up or pulled, so the layers need no image record. `signal` stops the pull of a missing image.
 */
export async function createContainer(
  core: ContainerCore,
  steps: CreateSteps,
  input: ContainerCreateOptions,
  resolved?: ResolvedImage,
  signal?: AbortSignal,
): Promise<ContainerRecord> {
  // ── validation: everything a bad input can be refused for, before any lookup, pull or record ──
  const opts = parseOptions(createOptionsSchema, input) as CheckedCreateOptions;
  checkOutputCap(opts);
  if (opts.userns && opts.privileged)
    throw new InvalidArgumentError(
      'userns',
      "cannot be combined with privileged (capabilities in a user namespace are not the host's)",
    );
  const badLayer = resolved?.layers.findIndex((d) => !isLayerId(d)) ?? -1;
  if (badLayer >= 0) throw new InvalidArgumentError(`layers.${badLayer}`, LAYER_ID_MESSAGE);
  const seccomp = resolveSeccomp(opts.securityOpt ?? [], opts.privileged ?? false);
  // The user's own mounts (planned again below with the image's volumes and volumesFrom).
  planMounts({
    ...(opts.mounts ? { mounts: opts.mounts } : {}),
    ...(opts.volumes ? { volumes: opts.volumes } : {}),
    newName: () => '',
  });
  const network = opts.network ?? 'bridge';
  if (network !== 'bridge' && network !== 'none' && network !== 'host' && !network.startsWith('container:')) {
    await core.ctx.networks?.checkAttachment?.({ network, ...(opts.ip !== undefined ? { ip: opts.ip } : {}) });
  }
  // ── end validation ──
  await steps.sweep();
  // ── pull if missing (as `docker run`) ──
  const image =
    resolved ??
    (await core.ctx.resolveImage(opts.image).catch(async (e: unknown) => {
      if (
        !(e instanceof NotFoundError) ||
        e.code !== 'IMAGE_NOT_FOUND' ||
        !(await core.ctx.pullImage?.(opts.image, signal))
      )
        throw e;
      return core.ctx.resolveImage(opts.image);
    }));
  // ── end pull if missing ──
  const id = randomBytes(32).toString('hex');
  const volumesFrom = await Promise.all(
    (opts.volumesFrom ?? []).map(async (spec) => {
      const [ref, mode] = spec.split(':') as [string, string?];
      const from = await steps.get(ref);
      return { mounts: from.config.mounts, ...(mode ? { readOnly: mode === 'ro' } : {}) };
    }),
  );
  const mountPlan = planMounts({
    ...(opts.mounts ? { mounts: opts.mounts } : {}),
    ...(opts.volumes ? { volumes: opts.volumes } : {}),
    volumesFrom,
    imageVolumes: image.config.volumes ?? [],
    newName: () => randomBytes(32).toString('hex'),
  });
  if (opts.resources && Object.keys(opts.resources).length && !core.ctx.cgroups) {
    throw new InvalidArgumentError(
      'resources',
      'this machine has no usable cgroup hierarchy, so limits cannot be applied',
    );
  }
  const { config, path, args } = buildConfig(id, image.config, opts, mountPlan.mounts, seccomp);
  const name = (opts.name ?? '').replace(/^\//, '');
  const rec: ContainerRecord = {
    id,
    name,
    created: new Date().toISOString(),
    image: opts.image,
    imageId: image.id,
    path,
    args,
    config,
    layers: [...image.layers],
    state: initialState(),
  };
  if (name) await core.records.reserveName(name, id);
  try {
    createBindSources(mountPlan.dirsToCreate);
    for (const m of mountPlan.mounts) {
      if (m.type === 'volume') await core.ctx.volumes.create(m.name, { anonymous: m.anonymous });
    }
    const p = core.paths(id);
    mkdirSync(p.dir, { recursive: true, mode: 0o700 });
    for (const d of [p.upper, p.work]) mkdirSync(d);
    if (opts.userns) {
      // Under a lock across processes: an 'auto' range is free until the record holding it is written.
      await withLock(steps.usernsLock, async () => {
        rec.config.userns = allocateUserns(opts.userns!, await core.records.list());
        await core.records.create(id, rec);
      });
    } else await core.records.create(id, rec);
  } catch (e) {
    const error = isNoSpace(e) ? fsError(e, 'mkdir', core.paths(id).dir) : e;
    const cleanup: unknown[] = [];
    for (const dir of [core.paths(id).dir, core.paths(id).runDir]) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch (rmError) {
        cleanup.push(rmError);
      }
    }
    if (name) await core.records.releaseName(name, id).catch((nameError: unknown) => cleanup.push(nameError));
    throw attachCleanupErrors(error, cleanup);
  }
  await core.event('create', rec);
  return rec;
}
