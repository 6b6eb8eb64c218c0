/**
 * `RUN --mount=type=secret`: the secret given to the build (`secrets: { id: hostPath | Buffer }`)
 * as a file to bind-mount at the mount's target and/or as an environment variable, as BuildKit
 * gives it: the file is owned by the mount's uid/gid with its mode (default 0400), in a private
 * directory (0700) of the build's temporary directory, never in a layer.
 *
 * @module
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../../errors.js';
import type { SecretMount } from './run-mount.js';

/** A secret made ready for one step. */
export interface PreparedSecret {
  /** The file to bind-mount (read-only) at the mount's target; absent when the mount names only `env`. */
  file?: string;
  /** The environment variable to set for the step, when the mount names one. */
  env?: { name: string; value: string };
  /** Deletes the file and its directory. */
  cleanup(): Promise<void>;
}

/**
 * Makes the secret `spec.id` of `secrets` ready for a step (see the module's notes). A missing
 * secret that is not `required` gives undefined (the step runs without it), except that an `env`
 * mount then sets its variable to the empty string, as BuildKit does.
 *
 * @throws InvalidArgumentError (field `secrets.<id>`) when a `required` secret is not given, or
 *   its file cannot be read.
 *
 * @example
 * ```ts
 * const s = await prepareSecret(mount, { npmrc: '/home/me/.npmrc' }, tmpDir);
 * try { ... bind-mount s.file at mount.target ... } finally { await s?.cleanup(); }
 * ```
 */
export async function prepareSecret(
  spec: SecretMount,
  secrets: Record<string, string | Buffer>,
  tmpDir: string,
): Promise<PreparedSecret | undefined> {
  const field = `secrets.${spec.id}`;
  const given = Object.hasOwn(secrets, spec.id) ? secrets[spec.id] : undefined;
  if (given === undefined) {
    if (spec.required) {
      throw new InvalidArgumentError(field, `secret '${spec.id}' is required by RUN --mount=type=secret but not given`);
    }
    if (spec.env === undefined) return undefined;
    return { env: { name: spec.env, value: '' }, cleanup: async () => {} };
  }
  let content: Buffer;
  try {
    content = typeof given === 'string' ? await fs.promises.readFile(given) : given;
  } catch (e) {
    throw new InvalidArgumentError(
      field,
      `cannot read secret '${spec.id}' from ${String(given)}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  const env = spec.env === undefined ? {} : { env: { name: spec.env, value: content.toString('utf8') } };
  if (spec.target === undefined) return { ...env, cleanup: async () => {} };
  const dir = fs.mkdtempSync(join(tmpDir, 'secret-'));
  const file = join(dir, 'secret');
  const cleanup = async (): Promise<void> => fs.promises.rm(dir, { recursive: true, force: true });
  try {
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o400);
    try {
      for (let off = 0; off < content.byteLength;) off += fs.writeSync(fd, content, off);
      fs.fchownSync(fd, spec.uid, spec.gid);
      fs.fchmodSync(fd, spec.mode);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    await cleanup().catch((c: unknown) => {
      throw new AggregateError([e, c], `cannot write secret '${spec.id}', nor remove ${dir}`, { cause: c });
    });
    throw e;
  }
  return { file, ...env, cleanup };
}
