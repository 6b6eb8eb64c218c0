/**
 * `RUN --mount=…` options, parsed as BuildKit's Dockerfile frontend parses them
 * (`instructions/commands_runmount.go`, then the defaults of `dockerfile2llb/convert_runmount.go`,
 * `convert_secrets.go` and `convert_ssh.go`): the value is a CSV list of `key=value` fields (quoted
 * fields as Go's `encoding/csv` reads them), keys are case-insensitive, `type` defaults to `bind`,
 * and the same aliases are accepted (`src`, `dst`/`destination`, `ro`/`readonly`, `rw`/`readwrite`).
 *
 * Variables are expanded before this (the value given here is final). Pure: no I/O.
 *
 * @module
 */
import { posix } from 'node:path';
import { InvalidArgumentError } from '../../../errors.js';

/** How concurrent builds share a cache mount (BuildKit's `sharing=`). */
export type CacheSharing = 'shared' | 'private' | 'locked';

/** `type=bind`: a directory of the build context, or of a stage or image (`from`), mounted at `target`. */
export interface BindMount {
  /** The mount type. */
  type: 'bind';
  /** Where it is mounted; relative to the step's working directory when not absolute (see {@link resolveMountTarget}). */
  target: string;
  /** The path inside the context or `from` (`''`: its root). */
  source: string;
  /** The stage name, stage index or image to mount from; absent: the build context. */
  from?: string;
  /** Read-only unless `rw`/`readwrite` (writes to a read-write bind are discarded after the step). */
  readOnly: boolean;
}

/** `type=cache`: a directory kept between builds under the engine's root (see `CacheMounts`). */
export interface CacheMount {
  /** The mount type. */
  type: 'cache';
  /** Where it is mounted (relative to the working directory when not absolute). */
  target: string;
  /** The cache's id; defaults to the cleaned target as written. */
  id: string;
  /** How concurrent users share it; default `shared`. */
  sharing: CacheSharing;
  /** A stage or image whose `source` seeds the cache on first use; absent: an empty directory. */
  from?: string;
  /** The path inside `from` that seeds it. */
  source?: string;
  /** Owner of the cache directory when it is created; default 0. */
  uid: number;
  /** Group of the cache directory when it is created; default 0. */
  gid: number;
  /** Permission bits of the cache directory when it is created; default 0o755. */
  mode: number;
  /** Whether it is mounted read-only (`ro`); default false. */
  readOnly: boolean;
}

/** `type=tmpfs`: a fresh tmpfs for the step. */
export interface TmpfsMount {
  /** The mount type. */
  type: 'tmpfs';
  /** Where it is mounted (relative to the working directory when not absolute). */
  target: string;
  /** Its size limit in bytes (`size=64m`); absent: the kernel's default. */
  size?: number;
  /** Whether it is mounted read-only (`ro`); default false. */
  readOnly: boolean;
}

/** `type=secret`: a secret given to the build (`secrets: { id: … }`), as a file, an environment variable, or both. */
export interface SecretMount {
  /** The mount type. */
  type: 'secret';
  /** The secret's id: `source`, else `id`, else the base name of `target`. */
  id: string;
  /**
   * The file it appears as: `target`, or `/run/secrets/<id>` when neither `target` nor `env` is
   * given; absent when only `env` is (no file then).
   */
  target?: string;
  /** The environment variable it is also (or only) given as. */
  env?: string;
  /** Whether the build fails when the secret is not given; default false (the step runs without it). */
  required: boolean;
  /** Permission bits of the file; default 0o400. */
  mode: number;
  /** Owner of the file; default 0. */
  uid: number;
  /** Group of the file; default 0. */
  gid: number;
}

/** `type=ssh`: an SSH agent socket (parsed; berth does not forward agents). */
export interface SshMount {
  /** The mount type. */
  type: 'ssh';
  /** The agent's id; default `default`. */
  id: string;
  /** Where the socket appears; absent: BuildKit's `/run/buildkit/ssh_agent.<n>`. */
  target?: string;
  /** Whether the build fails when the agent is not given. */
  required: boolean;
  /** Permission bits of the socket; default 0o600. */
  mode: number;
  /** Owner of the socket; default 0. */
  uid: number;
  /** Group of the socket; default 0. */
  gid: number;
}

/** One parsed `--mount` of a `RUN` step. */
export type RunMount = BindMount | CacheMount | TmpfsMount | SecretMount | SshMount;

/** The mount types, as BuildKit names them. */
export const MOUNT_TYPES = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'] as const;
const SHARING: readonly CacheSharing[] = ['shared', 'private', 'locked'];
const MAX_U32 = 0xffff_ffff;

/** The fields as BuildKit's parser keeps them, before its per-type defaults. */
interface Raw {
  type: RunMount['type'];
  from?: string;
  source: string;
  target: string;
  readOnly: boolean;
  roAuto: boolean;
  size?: number;
  id: string;
  sharing?: CacheSharing;
  required: boolean;
  env?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

/**
 * Parses one `--mount` value (already variable-expanded), e.g.
 * `type=cache,target=/root/.cache,id=pip,sharing=locked,uid=1000`.
 *
 * @throws InvalidArgumentError (field `mount`) with BuildKit's reason and the mount as written:
 *   an unknown key or type, a value that does not parse, an option the type does not take.
 *
 * @example
 * ```ts
 * parseRunMount('type=secret,id=npm,target=/root/.npmrc');
 * // { type: 'secret', id: 'npm', target: '/root/.npmrc', required: false, mode: 0o400, uid: 0, gid: 0 }
 * ```
 */
export function parseRunMount(raw: string): RunMount {
  const fail = (why: string): never => {
    throw new InvalidArgumentError('mount', `${why} (in --mount=${raw})`);
  };
  const m: Raw = { type: 'bind', source: '', target: '', readOnly: false, roAuto: true, id: '', required: false };
  for (const field of csvFields(raw, fail)) {
    const eq = field.indexOf('=');
    const key = (eq === -1 ? field : field.slice(0, eq)).toLowerCase();
    if (eq === -1) {
      flag(m, key, field, fail);
      continue;
    }
    setField(m, key, field.slice(eq + 1), field, fail);
  }
  return finish(m, fail);
}

/** A field without `=`: a boolean flag. */
function flag(m: Raw, key: string, field: string, fail: (why: string) => never): void {
  if (key === 'readonly' || key === 'ro') {
    m.readOnly = true;
    m.roAuto = false;
  } else if (key === 'readwrite' || key === 'rw') {
    m.readOnly = false;
    m.roAuto = false;
  } else if (key === 'required') {
    if (m.type !== 'secret' && m.type !== 'ssh') fail(`unexpected key '${key}' for mount type '${m.type}'`);
    m.required = true;
  } else {
    fail(`invalid field '${field}' must be a key=value pair`);
  }
}

function setField(m: Raw, key: string, value: string, field: string, fail: (why: string) => never): void {
  switch (key) {
    case 'type': {
      const t = value.toLowerCase();
      if (!(MOUNT_TYPES as readonly string[]).includes(t)) {
        fail(`unsupported mount type "${value}" (one of ${MOUNT_TYPES.join(', ')})`);
      }
      m.type = t as RunMount['type'];
      return;
    }
    case 'from':
      m.from = value;
      return;
    case 'source':
    case 'src':
      m.source = value;
      return;
    case 'target':
    case 'dst':
    case 'destination':
      m.target = value;
      return;
    case 'readonly':
    case 'ro':
      m.readOnly = parseBool(value, key, fail);
      m.roAuto = false;
      return;
    case 'readwrite':
    case 'rw':
      m.readOnly = !parseBool(value, key, fail);
      m.roAuto = false;
      return;
    case 'required':
      if (m.type !== 'secret' && m.type !== 'ssh') fail(`unexpected key '${key}' for mount type '${m.type}'`);
      m.required = parseBool(value, key, fail);
      return;
    case 'size':
      if (m.type !== 'tmpfs') fail(`unexpected key '${key}' for mount type '${m.type}'`);
      m.size = ramInBytes(value) ?? fail(`invalid value for ${key}: ${value}`);
      return;
    case 'id':
      m.id = value;
      return;
    case 'sharing': {
      const s = value.toLowerCase();
      if (!(SHARING as readonly string[]).includes(s)) {
        fail(`unsupported sharing value "${value}" (one of ${SHARING.join(', ')})`);
      }
      m.sharing = s as CacheSharing;
      return;
    }
    case 'mode':
      m.mode = parseUint(value, 8) ?? fail(`invalid value ${value} for mode`);
      return;
    case 'uid':
      m.uid = parseUint(value, 10) ?? fail(`invalid value ${value} for uid`);
      return;
    case 'gid':
      m.gid = parseUint(value, 10) ?? fail(`invalid value ${value} for gid`);
      return;
    case 'env':
      if (value === '') fail("'env' needs a variable name");
      m.env = value;
      return;
    default:
      fail(`unexpected key '${key}' in '${field}'`);
  }
}

/** BuildKit's checks after all fields are read, then each type's defaults. */
function finish(m: Raw, fail: (why: string) => never): RunMount {
  if (m.type !== 'secret' && m.type !== 'ssh' && m.type !== 'cache') {
    if (m.mode !== undefined) fail(`mode not allowed for "${m.type}" type mounts`);
    if (m.uid !== undefined) fail(`uid not allowed for "${m.type}" type mounts`);
    if (m.gid !== undefined) fail(`gid not allowed for "${m.type}" type mounts`);
  }
  if (m.roAuto) m.readOnly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.sharing !== undefined && m.type !== 'cache') fail(`invalid cache sharing set for ${m.type} mount`);
  if (m.env !== undefined && m.type !== 'secret') fail(`unexpected key 'env' for mount type '${m.type}'`);
  const owner = { uid: m.uid ?? 0, gid: m.gid ?? 0 };
  switch (m.type) {
    case 'bind':
      return { type: 'bind', target: m.target, source: m.source, ...opt('from', m.from), readOnly: m.readOnly };
    case 'cache':
      return {
        type: 'cache',
        target: m.target,
        id: m.id === '' ? goClean(m.target) : m.id,
        sharing: m.sharing ?? 'shared',
        ...opt('from', m.from),
        ...opt('source', m.source === '' ? undefined : m.source),
        ...owner,
        mode: m.mode ?? 0o755,
        readOnly: m.readOnly,
      };
    case 'tmpfs':
      return { type: 'tmpfs', target: m.target, ...opt('size', m.size), readOnly: m.readOnly };
    case 'secret':
      return secret(m, owner, fail);
    case 'ssh':
      if (m.source !== '') fail('ssh does not support source');
      return {
        type: 'ssh',
        id: m.id === '' ? 'default' : m.id,
        ...opt('target', m.target === '' ? undefined : m.target),
        required: m.required,
        mode: m.mode ?? 0o600,
        ...owner,
      };
  }
}

function secret(m: Raw, owner: { uid: number; gid: number }, fail: (why: string) => never): SecretMount {
  if (m.from !== undefined) fail('secret mount should not have a from');
  if (m.source === '' && m.target === '' && m.id === '') fail('invalid secret mount. one of source, target required');
  if (m.source !== '' && m.id !== '') fail("both source and id can't be set");
  const id = m.source !== '' ? m.source : m.id !== '' ? m.id : posix.basename(m.target);
  const target = m.target !== '' ? m.target : m.env === undefined ? `/run/secrets/${posix.basename(id)}` : undefined;
  return {
    type: 'secret',
    id,
    ...opt('target', target),
    ...opt('env', m.env),
    required: m.required,
    mode: m.mode ?? 0o400,
    ...owner,
  };
}

/**
 * The absolute path a mount's `target` names for a step whose working directory is `workdir`
 * (BuildKit joins a relative target to it).
 *
 * @throws InvalidArgumentError (field `mount`) when it is the root directory.
 */
export function resolveMountTarget(target: string, workdir: string): string {
  const abs = goClean(target.startsWith('/') ? target : `/${workdir}/${target}`);
  if (abs === '/')
    throw new InvalidArgumentError('mount', `invalid mount target "${target}": it is the root directory`);
  return abs;
}

/** `{ [key]: value }` when value is defined, `{}` otherwise (so absent fields stay absent). */
function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** Go's `path.Clean`: lexical, no trailing slash, `.` for an empty path. */
function goClean(p: string): string {
  const n = posix.normalize(p === '' ? '.' : p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** Go's `strconv.ParseBool`. */
function parseBool(value: string, key: string, fail: (why: string) => never): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return fail(`invalid value for ${key}: ${value}`);
}

/** Go's `strconv.ParseUint(value, base, 32)` for base 8 or 10; undefined when it fails. */
function parseUint(value: string, base: 8 | 10): number | undefined {
  if (!(base === 8 ? /^[0-7]+$/ : /^[0-9]+$/).test(value)) return undefined;
  const n = parseInt(value, base);
  return n <= MAX_U32 ? n : undefined;
}

const RAM_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/** docker/go-units' `RAMInBytes` (`64m`, `1.5g`, `512KiB`: binary multiples); undefined when it does not parse. */
function ramInBytes(value: string): number | undefined {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(value);
  if (m === null) return undefined;
  const n = Number(m[1]);
  if (!Number.isFinite(n)) return undefined;
  return Math.trunc(n * (RAM_UNITS[(m[2] ?? '').toLowerCase()] as number));
}

/** The fields of one CSV record as Go's `encoding/csv` reads them (quoted fields, `""` for a quote). */
function csvFields(line: string, fail: (why: string) => never): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q === -1) fail('failed to parse csv mounts: extraneous or missing " in quoted-field');
        field += line.slice(i, q);
        i = q + 1;
        if (line[i] === '"') {
          field += '"';
          i++;
        } else break;
      }
      if (i < line.length && line[i] !== ',')
        fail('failed to parse csv mounts: extraneous or missing " in quoted-field');
    } else {
      const comma = line.indexOf(',', i);
      field = line.slice(i, comma === -1 ? line.length : comma);
      if (field.includes('"')) fail('failed to parse csv mounts: bare " in non-quoted-field');
      i = comma === -1 ? line.length : comma;
    }
    out.push(field);
    if (i >= line.length) return out;
    i++; // the comma
  }
}
