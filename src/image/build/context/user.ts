/**
 * Users and groups of a build step's root, read from its `/etc/passwd` and `/etc/group` with
 * every path resolved inside the root and the files bounded in size (`runtime/user.ts`, the
 * reader RUN uses inside a container, here pointed at a root from outside it).
 *
 * - {@link lookupUser}: `USER` for a RUN step, as runc resolves it (`uid` alone takes the gid of
 *   its passwd entry, or 0).
 * - {@link resolveChown}: `COPY --chown`, as BuildKit resolves it: a name alone takes its passwd
 *   entry's gid; a numeric uid alone takes the same number as gid (BuildKit's `UserOpt_ByID`).
 *   BuildKit falls back to 0 for an unknown name; berth refuses it with a typed error naming it.
 *
 * @module
 */
import { InvalidArgumentError } from '../../../errors.js';
import { resolveUser, type ResolvedUser } from '../../../runtime/user.js';
import { closeFd, openRootDir, type Owner } from './root.js';

const PART = /^[^:\s]+$/;
const ID = /^\d+$/;

/** Checks a `user[:group]` spec; returns its parts. */
function splitSpec(spec: string, field: string): [user: string, group: string | undefined] {
  const parts = typeof spec === 'string' ? spec.split(':') : [];
  const [user = '', group] = parts;
  if (parts.length > 2 || !PART.test(user) || (group !== undefined && !PART.test(group)))
    throw new InvalidArgumentError(field, `'${String(spec)}' is not user, uid, user:group or uid:gid`);
  for (const p of [user, group])
    if (p !== undefined && ID.test(p) && Number(p) > 0xfffffffe)
      throw new InvalidArgumentError(field, `id ${p} is out of range (0 to 4294967294)`);
  return [user, group];
}

/**
 * The user `spec` (`user`, `uid`, `user:group`, `uid:gid`) of the root directory `rootDir`, as a
 * RUN step's process gets it (uid, gid, supplementary groups, home).
 *
 * @throws InvalidArgumentError (field `user`) for a malformed spec; NotFoundError naming an unknown user or group.
 */
export async function lookupUser(rootDir: string, spec: string): Promise<ResolvedUser> {
  splitSpec(spec, 'user');
  const fd = openRootDir(rootDir, 'rootDir');
  try {
    return resolveUser(spec, fd);
  } finally {
    closeFd(fd);
  }
}

/**
 * The owner `COPY --chown=spec` gives inside the root directory `rootDir` (rules in the module notes).
 *
 * @throws InvalidArgumentError (field `chown`) for a malformed spec; NotFoundError naming an unknown user or group.
 */
export async function resolveChown(rootDir: string, spec: string): Promise<Owner> {
  const [user, group] = splitSpec(spec, 'chown');
  if (ID.test(user) && (group === undefined || ID.test(group))) {
    const uid = Number(user);
    return { uid, gid: group === undefined ? uid : Number(group) };
  }
  const u = await lookupUser(rootDir, spec);
  return { uid: u.uid, gid: u.gid };
}
