/**
 * Container mounts with Docker's semantics: `mounts` objects, the `volumes` shorthand,
 * `volumesFrom`, and the image's `VOLUME` entries. Parsing and validation are pure; the side
 * effects (creating volumes and missing bind sources) happen only after every mount is valid.
 *
 * @module
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';
import { VOLUME_NAME_RE } from '../volume/service.js';

/** A mount as given in `Container.create({ mounts })`. */
export interface MountOptions {
  /** `volume` (named or anonymous), `bind` (a host path) or `tmpfs`. */
  type: 'volume' | 'bind' | 'tmpfs';
  /** Volume name (absent: an anonymous volume) or absolute host path. Not used for tmpfs. */
  source?: string;
  /** Absolute path in the container. */
  target: string;
  /** Mount read-only. */
  readOnly?: boolean;
  /** Bind propagation inside the container's mount namespace. Default `rprivate`. */
  propagation?: 'private' | 'rprivate' | 'shared' | 'rshared' | 'slave' | 'rslave';
  /** Volumes: do not copy the image's content at the target into a new, empty volume. */
  nocopy?: boolean;
  /** tmpfs size in bytes, or with a k/m/g suffix. */
  tmpfsSize?: number | string;
  /** tmpfs permission bits, e.g. 0o1777. */
  tmpfsMode?: number;
}

/** A resolved mount, as recorded with the container. */
export type ResolvedMount =
  | { type: 'volume'; name: string; target: string; readOnly: boolean; nocopy: boolean; anonymous: boolean }
  | { type: 'bind'; source: string; target: string; readOnly: boolean; propagation: string; create: boolean }
  | { type: 'tmpfs'; target: string; readOnly: boolean; size?: number; mode?: number };

/** Schema of {@link ResolvedMount}, for records. */
export const resolvedMountSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('volume'),
    name: z.string(),
    target: z.string(),
    readOnly: z.boolean(),
    nocopy: z.boolean(),
    anonymous: z.boolean(),
  }),
  z.object({
    type: z.literal('bind'),
    source: z.string(),
    target: z.string(),
    readOnly: z.boolean(),
    propagation: z.string(),
    create: z.boolean(),
  }),
  z.object({
    type: z.literal('tmpfs'),
    target: z.string(),
    readOnly: z.boolean(),
    size: z.number().optional(),
    mode: z.number().optional(),
  }),
]);

const PROPAGATIONS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'] as const;

/** Schema of {@link MountOptions}. */
export const mountOptionsSchema = z.strictObject({
  type: z.enum(['volume', 'bind', 'tmpfs']),
  source: z.string().min(1).optional(),
  target: z.string(),
  readOnly: z.boolean().optional(),
  propagation: z.enum(PROPAGATIONS).optional(),
  nocopy: z.boolean().optional(),
  tmpfsSize: z.union([z.number().int().positive(), z.string().regex(/^\d+[kmgKMG]?$/)]).optional(),
  tmpfsMode: z.number().int().min(0).max(0o7777).optional(),
});

/** Parses `64m`, `1g`, `4096` to bytes. */
export function parseSize(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)([kmgKMG]?)$/.exec(v);
  if (!m) throw new InvalidArgumentError('size', `'${v}' is not a size`);
  const mul = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * mul;
}

/** Checks a container path: absolute, no `..`, not `/`. Returns it normalised. */
export function checkTarget(target: string, field: string): string {
  if (!target.startsWith('/'))
    throw new InvalidArgumentError(field, `mount target '${target}' must be an absolute path`);
  if (target.split('/').includes('..'))
    throw new InvalidArgumentError(field, `mount target '${target}' may not contain '..'`);
  const norm = posix.normalize(target).replace(/\/+$/, '');
  if (norm === '' || norm === '/') throw new InvalidArgumentError(field, 'cannot mount over /');
  if (target.includes('\0') || /[,:\\]/.test(norm))
    throw new InvalidArgumentError(field, `mount target '${target}' contains a forbidden character`);
  return norm;
}

/**
 * Parses the Docker `volumes` shorthand: `name:/path[:opts]`, `/host:/path[:opts]` or `/path`
 * (an anonymous volume). Options: `ro`, `rw`, `z`, `Z`, `nocopy`, and propagation modes.
 */
export function parseVolumeSpec(spec: string, field: string): MountOptions & { fromShorthand: true } {
  const parts = spec.split(':');
  if (parts.length < 1 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new InvalidArgumentError(field, `'${spec}' is not name:/path[:opts], /host:/path[:opts] or /path`);
  }
  if (parts.length === 1) return { type: 'volume', target: parts[0]!, fromShorthand: true };
  const [source, target, opts = ''] = parts as [string, string, string?];
  const flags = opts.split(',').filter(Boolean);
  const out: MountOptions & { fromShorthand: true } = {
    type: source.startsWith('/') ? 'bind' : 'volume',
    source,
    target,
    fromShorthand: true,
  };
  for (const f of flags) {
    if (f === 'ro') out.readOnly = true;
    else if (f === 'rw') out.readOnly = false;
    else if (f === 'z' || f === 'Z')
      continue; // SELinux relabelling: nothing to do without SELinux.
    else if (f === 'nocopy') out.nocopy = true;
    else if ((PROPAGATIONS as readonly string[]).includes(f)) out.propagation = f as MountOptions['propagation'];
    else throw new InvalidArgumentError(field, `unknown volume option '${f}' in '${spec}'`);
  }
  return out;
}

/** The mounts a container is created with, resolved and validated, before any side effect. */
export interface MountPlan {
  /** Resolved mounts, in order. */
  mounts: ResolvedMount[];
  /** Named volumes to create if missing (Docker creates them on use). */
  volumesToCreate: string[];
  /** Bind sources to create (the shorthand creates missing host directories). */
  dirsToCreate: string[];
}

/**
 * Resolves `mounts`, `volumes` and `volumesFrom` (already looked up: `fromMounts`) and the
 * image's VOLUME paths into one list. Anonymous volumes get their names from `newName`.
 */
export function planMounts(input: {
  mounts?: MountOptions[];
  volumes?: string[];
  volumesFrom?: Array<{ mounts: ResolvedMount[]; readOnly?: boolean }>;
  imageVolumes?: string[];
  newName: () => string;
}): MountPlan {
  const out: ResolvedMount[] = [];
  const volumesToCreate: string[] = [];
  const dirsToCreate: string[] = [];
  const targets = new Set<string>();
  const add = (m: ResolvedMount, field: string) => {
    if (targets.has(m.target)) throw new InvalidArgumentError(field, `duplicate mount point: ${m.target}`);
    targets.add(m.target);
    out.push(m);
  };
  const given: Array<[MountOptions & { fromShorthand?: boolean }, string]> = [
    ...(input.mounts ?? []).map((m, i): [MountOptions, string] => [m, `mounts.${i}`]),
    ...(input.volumes ?? []).map((v, i): [MountOptions & { fromShorthand: true }, string] => [
      parseVolumeSpec(v, `volumes.${i}`),
      `volumes.${i}`,
    ]),
  ];
  for (const [m, field] of given) {
    const target = checkTarget(m.target, `${field}.target`);
    const readOnly = m.readOnly ?? false;
    if (m.type === 'tmpfs') {
      if (m.source) throw new InvalidArgumentError(`${field}.source`, 'tmpfs mounts take no source');
      add(
        {
          type: 'tmpfs',
          target,
          readOnly,
          ...(m.tmpfsSize !== undefined ? { size: parseSize(m.tmpfsSize) } : {}),
          ...(m.tmpfsMode !== undefined ? { mode: m.tmpfsMode } : {}),
        },
        field,
      );
    } else if (m.type === 'bind') {
      const source = m.source;
      if (!source || !source.startsWith('/'))
        throw new InvalidArgumentError(`${field}.source`, 'a bind source must be an absolute host path');
      if (source.split('/').includes('..'))
        throw new InvalidArgumentError(`${field}.source`, `bind source '${source}' may not contain '..'`);
      const exists = existsSync(source);
      if (!exists && !m.fromShorthand)
        throw new InvalidArgumentError(`${field}.source`, `bind source path does not exist: ${source}`);
      if (!exists) dirsToCreate.push(source);
      add(
        {
          type: 'bind',
          source: posix.normalize(source),
          target,
          readOnly,
          propagation: m.propagation ?? 'rprivate',
          create: false,
        },
        field,
      );
    } else {
      if (m.source !== undefined && !VOLUME_NAME_RE.test(m.source))
        throw new InvalidArgumentError(`${field}.source`, `'${m.source}' is not a valid volume name`);
      const anonymous = m.source === undefined;
      const name = m.source ?? input.newName();
      if (!anonymous) volumesToCreate.push(name);
      add({ type: 'volume', name, target, readOnly, nocopy: m.nocopy ?? false, anonymous }, field);
    }
  }
  for (const [i, from] of (input.volumesFrom ?? []).entries()) {
    for (const m of from.mounts) {
      if (m.type === 'tmpfs' || targets.has(m.target)) continue;
      add(
        {
          ...m,
          readOnly: from.readOnly ?? m.readOnly,
          ...(m.type === 'volume' ? { anonymous: false } : {}),
        } as ResolvedMount,
        `volumesFrom.${i}`,
      );
    }
  }
  for (const p of input.imageVolumes ?? []) {
    const target = posix.normalize(p).replace(/\/+$/, '');
    if (!target.startsWith('/') || target === '' || targets.has(target)) continue;
    add(
      { type: 'volume', name: input.newName(), target, readOnly: false, nocopy: false, anonymous: true },
      'image.volumes',
    );
  }
  return { mounts: out, volumesToCreate, dirsToCreate };
}

/** Creates the missing bind-source directories the shorthand asked for. */
export function createBindSources(dirs: string[]): void {
  for (const d of dirs) mkdirSync(d, { recursive: true, mode: 0o755 });
}

/** Whether a host path is a directory (false for files and missing paths). */
export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch (e) {
    // Missing (or under a file): not a directory.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw e;
  }
}
