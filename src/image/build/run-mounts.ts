/**
 * `RUN --mount`: each mount of a step made ready on the host (a cache directory, a secret file,
 * a directory of the context, of a stage or of an image), handed to the build container as a
 * bind or tmpfs mount, and released after the step, whatever happened.
 *
 * - `bind` from the context is the context's directory, read-only; `rw` gives a private copy
 *   whose writes are dropped. `bind`/`cache` `from=` a stage or image gets a private copy of
 *   that directory (the build container's mounts are host paths).
 * - `cache` is a directory kept under `<root>/build/cache-mounts` (see `sources/`).
 * - `secret` is a file on a private directory (never in a layer or the history); `env=` gives it
 *   as an environment variable too.
 * - `ssh` is refused when `required`, else left out: berth forwards no SSH agent.
 *
 * @module
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../errors.js';
import type { OciImageConfig } from '../image-config.js';
import type { MountOptions } from '../../container/mounts.js';
import { attachCleanupErrors } from '../../errors.js';
import { copyInto } from './context/index.js';
import { closeFd, openInRoot, openRootDir } from './context/root.js';
import { findStage, lowerDirs, type StepScope } from './run.js';
import { withReadOnlyRoot, withScratchDir } from './scratch.js';
import { parseRunMount, prepareSecret, resolveMountTarget, type RunMount } from './sources/index.js';

/** Where a heredoc script is mounted for its interpreter (on the container's /dev tmpfs: no trace in the layer). */
export const HEREDOC_SCRIPT = '/dev/.berth-heredoc';

/** The host path of `rel` inside the context, resolved inside it (symlinks cannot leave it). */
function contextPath(s: StepScope, rel: string): string {
  const rootFd = openRootDir(s.run.context.root, 'mount');
  try {
    const fd = openInRoot(rootFd, rel === '' ? '/' : rel);
    if (fd === undefined) throw new InvalidArgumentError('mount', `${rel}: not found in the build context`);
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`);
    } finally {
      closeFd(fd);
    }
  } finally {
    closeFd(rootFd);
  }
}

/** The stage or image `from` names: its config and the key a cache seeded from it is kept under. */
async function sourceOf(s: StepScope, from: string): Promise<{ config: OciImageConfig; key: string }> {
  const dep = findStage(s.run.dockerfile, from, s.index);
  if (dep !== undefined) return s.run.stage(dep.index);
  const img = await s.run.image(from);
  return { config: img.config, key: img.id };
}

/** Copies directory `source` of the image `config` into `dir`. */
async function copyFrom(s: StepScope, config: OciImageConfig, source: string, dir: string): Promise<void> {
  await withReadOnlyRoot(s.run.services.root, lowerDirs(s.run, config), (sourceRoot) =>
    copyInto({ sourceRoot, sources: [source === '' ? '/' : source], keepOwners: true, destRoot: dir, dest: '/' }),
  );
}

/**
 * Makes the mounts `raw` (variables expanded) ready, runs `fn` with them (and with the heredoc
 * `script`'s path, when there is one, and the environment secrets give), then releases them.
 */
export async function runMounts<T>(
  s: StepScope,
  raw: readonly string[],
  workdir: string,
  script: string | undefined,
  fn: (mounts: MountOptions[], scriptPath: string | undefined, env: string[]) => Promise<T>,
): Promise<T> {
  return withScratchDir(s.run.services.root, async (tmp) => {
    const mounts: MountOptions[] = [];
    const env: string[] = [];
    const releases: Array<() => Promise<void>> = [];
    let scriptPath: string | undefined;
    let out: T;
    try {
      if (script !== undefined) {
        const file = join(tmp, 'heredoc');
        fs.writeFileSync(file, script, { mode: 0o755 });
        mounts.push({ type: 'bind', source: file, target: HEREDOC_SCRIPT, readOnly: true });
        scriptPath = HEREDOC_SCRIPT;
      }
      for (const [n, text] of raw.entries()) {
        const m: RunMount = parseRunMount(text);
        const dir = join(tmp, `m${n}`);
        if (m.type === 'ssh') {
          if (m.required) throw new InvalidArgumentError('mount', 'RUN --mount=type=ssh: berth forwards no SSH agent');
          continue;
        }
        if (m.type === 'secret') {
          // On the run root (a tmpfs by default): a secret never reaches a disk.
          const secret = await prepareSecret(m, s.run.options.secrets ?? {}, s.run.secretsDir);
          if (secret === undefined) continue;
          releases.push(secret.cleanup);
          if (secret.file !== undefined && m.target !== undefined)
            mounts.push({
              type: 'bind',
              source: secret.file,
              target: resolveMountTarget(m.target, workdir),
              readOnly: true,
            });
          if (secret.env !== undefined) env.push(`${secret.env.name}=${secret.env.value}`);
          continue;
        }
        const target = resolveMountTarget(m.target, workdir);
        if (m.type === 'tmpfs') {
          mounts.push({
            type: 'tmpfs',
            target,
            readOnly: m.readOnly,
            ...(m.size === undefined ? {} : { tmpfsSize: m.size }),
          });
        } else if (m.type === 'cache') {
          const from = m.from;
          const base = from === undefined ? undefined : await sourceOf(s, from);
          const held = await s.run.cacheMounts.acquire(m, {
            noCache: s.run.options.noCache === true,
            signal: s.run.signal,
            ...(base === undefined
              ? {}
              : { base: base.key, seed: (d: string) => copyFrom(s, base.config, m.source ?? '', d) }),
          });
          releases.push(held.release);
          mounts.push({ type: 'bind', source: held.path, target, readOnly: m.readOnly });
        } else if (m.from !== undefined) {
          fs.mkdirSync(dir, { mode: 0o755 });
          await copyFrom(s, (await sourceOf(s, m.from)).config, m.source, dir);
          mounts.push({ type: 'bind', source: dir, target, readOnly: m.readOnly });
        } else if (!m.readOnly) {
          fs.mkdirSync(dir, { mode: 0o755 });
          await copyInto({
            sourceRoot: s.run.context.root,
            ignore: s.run.context.ignore,
            sources: [m.source === '' ? '.' : m.source],
            destRoot: dir,
            dest: '/',
          });
          mounts.push({ type: 'bind', source: dir, target, readOnly: false });
        } else {
          mounts.push({ type: 'bind', source: contextPath(s, m.source), target, readOnly: true });
        }
      }
      out = await fn(mounts, scriptPath, env);
    } catch (e) {
      const errors: unknown[] = [];
      for (const r of releases.reverse()) await r().catch((c: unknown) => errors.push(c));
      throw attachCleanupErrors(e, errors);
    }
    for (const r of releases.reverse()) await r();
    return out;
  });
}
