/**
 * Resolves a Docker `user` string (`name`, `uid`, `name:group`, `uid:gid`) against the
 * container's own /etc/passwd and /etc/group, as runc's `user.GetExecUser` does. Runs inside
 * the container after pivot_root, so the files read are the container's, whatever symlinks the
 * image holds.
 *
 * @module
 */
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { openat2, RESOLVE_IN_ROOT } from '../kernel/openat2.js';
import { O_CLOEXEC, O_NONBLOCK, O_RDONLY } from '../kernel/constants.js';
import { BerthError, NotFoundError } from '../errors.js';

/** A user resolved to numeric ids. */
export interface ResolvedUser {
  /** User id. */
  uid: number;
  /** Primary group id. */
  gid: number;
  /** Supplementary group ids (from /etc/group membership). */
  additionalGids: number[];
  /** Home directory (`/` when unknown). */
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** Larger passwd or group files are not read (they count as empty). */
const MAX_DB_BYTES = 64 << 20;

/**
 * The lines of an image's passwd or group file, split at `:`. Only a regular file is read: an
 * image may make it a FIFO (an open or read that never returns) or a link to `/dev/zero` (a read
 * that never ends); those, and a file that cannot be read, count as empty.
 */
function readLines(path: string, root?: number): string[][] {
  let text: string;
  try {
    // Resolved with `root` as `/` when given: the image's symlinks cannot lead out of it.
    const flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
    const fd = root === undefined ? openSync(path, flags) : openat2(root, path, flags, 0, RESOLVE_IN_ROOT);
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.size > MAX_DB_BYTES) return [];
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    // No (readable) database in the image: no entries; numeric ids still work.
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

/** Parses passwd(5) lines. */
export function parsePasswd(lines: string[][]): PasswdEntry[] {
  return lines
    .filter((f) => f.length >= 7)
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! }));
}

/** Parses group(5) lines. */
export function parseGroup(lines: string[][]): GroupEntry[] {
  return lines
    .filter((f) => f.length >= 3)
    .map((f) => ({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }));
}

const isId = (s: string) => /^\d+$/.test(s);

/**
 * Resolves `spec` with the given passwd and group entries. Throws a `NotFoundError` whose message
 * matches Docker's for an unknown name.
 */
export function resolveUserFrom(spec: string, passwd: PasswdEntry[], groups: GroupEntry[]): ResolvedUser {
  const [userPart = '', groupPart] = spec.split(':', 2);
  let uid = 0;
  let gid = 0;
  let home = '/';
  let name: string | undefined;
  if (userPart === '') {
    const root = passwd.find((p) => p.uid === 0);
    if (root) ({ home, name } = root);
  } else if (isId(userPart)) {
    uid = Number(userPart);
    const entry = passwd.find((p) => p.uid === uid);
    if (entry) ({ gid, home, name } = entry);
  } else {
    const entry = passwd.find((p) => p.name === userPart);
    if (!entry)
      throw new NotFoundError('other', userPart, `unable to find user ${userPart}: no matching entries in passwd file`);
    ({ uid, gid, home, name } = entry);
  }
  if (groupPart !== undefined && groupPart !== '') {
    if (isId(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((e) => e.name === groupPart);
      if (!g)
        throw new NotFoundError(
          'other',
          groupPart,
          `unable to find group ${groupPart}: no matching entries in group file`,
        );
      gid = g.gid;
    }
  }
  if (uid > 0xfffffffe || gid > 0xfffffffe) throw new BerthError('INVALID_ARGUMENT', `user ${spec}: id out of range`);
  // Supplementary groups, as initgroups(3) makes them: the primary group, then every group
  // listing the user as a member (only when the group was not given explicitly).
  const additionalGids =
    name !== undefined && groupPart === undefined
      ? [gid, ...groups.filter((g) => g.members.includes(name!)).map((g) => g.gid)]
      : [];
  return { uid, gid, additionalGids: [...new Set(additionalGids)], home: home || '/' };
}

/**
 * Resolves `spec` against /etc/passwd and /etc/group: this process's (the container's, after
 * pivot_root), or, with `root` (an fd on a container's root, e.g. `/proc/<pid>/root`), that
 * container's, looked up from outside it.
 */
export function resolveUser(spec: string, root?: number): ResolvedUser {
  return resolveUserFrom(spec, parsePasswd(readLines('/etc/passwd', root)), parseGroup(readLines('/etc/group', root)));
}
