/**
 * The plan as `berth-init` (`monitor/init.c`) reads it, and which plans it runs.
 *
 * `berth-init` is the container init written in C: the zygote starts it with posix_spawn in a
 * new PID namespace instead of forking itself (see `zygote/`), and it carries out a plan as
 * `runInit` in `init.ts` does. It has no JSON parser, so the plan goes to it in a simpler form on
 * the same control pipe as a template's JSON plan:
 *
 * ```text
 * u32le length | "berth-init-plan-1\0" | record…
 * record = key "\0" field "\0" …        (a fixed number of fields per key, see NATIVE_PLAN_KEYS)
 * ```
 *
 * Every field is a string without NUL; numbers are decimal (`-1` for an unlimited resource limit,
 * a minus sign on a negative oom_score_adj), the capability mask and the seccomp program
 * (`struct sock_filter[]`) are hex. An empty string stands for a null mount source or data
 * (mount(2) reads both alike). Lists are repeated records, in order.
 *
 * @module
 */
import { CLONE_NEWNET, MS_PRIVATE, MS_REC, MS_SHARED, MS_SLAVE } from '../kernel/constants.js';
import { BerthError } from '../errors.js';
import { close, dup } from '../kernel/fd.js';
import { spawnProgram } from '../kernel/process.js';
import { basename, dirname } from 'node:path';
import { hostId, type IdMapping, type Plan } from './plan.js';
import type { InitFds } from './init-report.js';
import type { SealedProgram } from './sealed-program.js';

/** mount(2) flags of each propagation a user mount may ask for (as `PROPAGATION` in `init.ts`). */
const PROPAGATION: Readonly<Record<string, number>> = {
  private: MS_PRIVATE,
  rprivate: MS_PRIVATE | MS_REC,
  shared: MS_SHARED,
  rshared: MS_SHARED | MS_REC,
  slave: MS_SLAVE,
  rslave: MS_SLAVE | MS_REC,
};

/** The first field of every plan: a format tag `berth-init` checks. */
export const NATIVE_PLAN_MAGIC = 'berth-init-plan-1';

/** The largest plan `berth-init` reads (bytes after the length); a larger one takes the JS path. */
export const NATIVE_PLAN_MAX_BYTES = 1 << 20;

/**
 * Every record key and its field count, as `KEYS` in `monitor/plan.h` (keep them in step).
 */
export const NATIVE_PLAN_KEYS = {
  flags: 1,
  netns: 1,
  task: 1,
  root: 2,
  bind: 3,
  vbind: 6,
  tmpfs: 3,
  mount: 5,
  dev: 4,
  link: 2,
  mask: 1,
  ropath: 1,
  rootro: 0,
  host: 1,
  domain: 1,
  user: 1,
  tty: 2,
  cwd: 1,
  caps: 1,
  nnp: 0,
  init: 0,
  seccomp: 1,
  arg: 1,
  env: 1,
  rlimit: 3,
  sysctl: 2,
  oom: 1,
  cgmount: 5,
  userns: 4,
  idlower: 1,
  idupper: 3,
  idmap: 0,
} as const;

/** A record key of the native plan. */
export type NativePlanKey = keyof typeof NATIVE_PLAN_KEYS;

/**
 * Why `berth-init` cannot run `plan` (it then goes to a forked JavaScript template); undefined
 * when it can. The list is short on purpose:
 *
 * - network interfaces in a network namespace the init would make itself: the zygote makes the
 *   namespace and wires them from the host instead (`setupNetworkFromHost`), and sends a plan
 *   without `CLONE_NEWNET`;
 * - a string with a NUL byte (no C string can hold it), or a plan over {@link NATIVE_PLAN_MAX_BYTES}.
 */
export function nativeInitUnsupported(plan: Plan): string | undefined {
  // Interfaces are wired by the zygote, from the host, in a namespace it makes for the init.
  if (plan.spec.interfaces?.length && plan.unshareFlags & CLONE_NEWNET)
    return "network interfaces in a namespace of the init's own";
  return undefined;
}

/**
 * Encodes `plan` for `berth-init`: the length and the body (see the module's description).
 * Throws when it holds what the format cannot carry (a NUL byte in a string, more than
 * {@link NATIVE_PLAN_MAX_BYTES}) or what `berth-init` does not do (see {@link nativeInitUnsupported}).
 */
export function encodeInitPlan(plan: Plan): Buffer {
  const fields: string[] = [NATIVE_PLAN_MAGIC];
  const rec = <Key extends NativePlanKey>(
    key: Key,
    ...values: Array<string | number | boolean | null | undefined>
  ): void => {
    if (values.length !== NATIVE_PLAN_KEYS[key])
      throw new BerthError('INTERNAL', `native plan: ${key} takes ${NATIVE_PLAN_KEYS[key]} fields`);
    fields.push(
      key,
      ...values.map((v) => (v === null || v === undefined ? '' : typeof v === 'boolean' ? (v ? '1' : '0') : String(v))),
    );
  };
  const why = nativeInitUnsupported(plan);
  if (why) throw new BerthError('UNSUPPORTED', `native plan: ${why}`);
  const { spec } = plan;
  const proc = spec.process;
  rec('flags', plan.unshareFlags);
  if (spec.joinNetnsPid) rec('netns', spec.joinNetnsPid);
  for (const f of spec.cgroupTasks ?? []) rec('task', f);
  rec('root', spec.rootfs.mountPoint, plan.rootfsData);
  for (const b of spec.binds) rec('bind', b.source, b.target, b.readOnly);
  for (const m of spec.mounts ?? []) {
    if (m.kind === 'tmpfs') rec('tmpfs', m.target, m.readOnly, m.data);
    else {
      // rprivate is what the container's mounts are already, and an unknown one is left alone,
      // as runInit's attachUserMount does: 0, no mount(2) call.
      rec(
        'vbind',
        m.source,
        m.target,
        m.readOnly,
        m.propagation === 'rprivate' ? 0 : (PROPAGATION[m.propagation] ?? 0),
        m.dir,
        m.copyUp,
      );
      if (spec.userns && m.idmap) rec('idmap');
    }
  }
  if (spec.userns) encodeUserns(spec, rec);
  for (const m of plan.mounts) rec('mount', m.source, m.target, m.fstype, m.flags, m.data);
  for (const d of plan.devices) rec('dev', d.path, d.major, d.minor, d.mode);
  for (const [target, path] of plan.symlinks) rec('link', target, path);
  for (const p of plan.maskedPaths) rec('mask', p);
  for (const p of plan.readonlyPaths) rec('ropath', p);
  if (spec.rootfs.readOnly) rec('rootro');
  rec('host', spec.hostname);
  if (spec.domainname) rec('domain', spec.domainname);
  rec('user', proc.user);
  if (proc.terminal) rec('tty', proc.terminal.cols, proc.terminal.rows);
  rec('cwd', proc.cwd || '/');
  rec('caps', BigInt(plan.capabilityMask).toString(16));
  if (proc.noNewPrivileges) rec('nnp');
  if (proc.init) rec('init');
  if (proc.seccomp) rec('seccomp', proc.seccomp);
  for (const a of proc.args) rec('arg', a);
  for (const e of proc.env) rec('env', e);
  for (const r of proc.rlimits ?? []) rec('rlimit', r.resource, r.soft, r.hard);
  for (const { path, value } of plan.sysctls) rec('sysctl', path, value);
  if (proc.oomScoreAdj !== undefined) rec('oom', proc.oomScoreAdj);
  for (const m of plan.cgroupMounts) rec('cgmount', m.source, m.target, m.fstype, m.flags, m.data);
  for (const f of fields)
    if (f.includes('\0')) throw new BerthError('UNSUPPORTED', 'native plan: a string holds a NUL byte');
  const body = Buffer.from(`${fields.join('\0')}\0`, 'utf8');
  if (body.length > NATIVE_PLAN_MAX_BYTES)
    throw new BerthError('UNSUPPORTED', `native plan: ${body.length} bytes, more than ${NATIVE_PLAN_MAX_BYTES}`);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/**
 * The records of a plan with a user namespace: the maps as written to `/proc/PID/uid_map`, the
 * host ids of the container's root, and the root's directories, which
 * the init mounts idmapped (the upper and work dirs through one clone of the directory that holds
 * both, as overlayfs wants them on one mount).
 */
function encodeUserns(
  spec: Plan['spec'],
  rec: (key: 'userns' | 'idlower' | 'idupper', ...values: Array<string | number>) => void,
): void {
  const { uidMap, gidMap } = spec.userns!;
  const text = (map: IdMapping[]): string => map.map((m) => `${m.containerId} ${m.hostId} ${m.size}\n`).join('');
  rec('userns', text(uidMap), text(gidMap), hostId(uidMap, 0) ?? 0, hostId(gidMap, 0) ?? 0);
  for (const d of spec.rootfs.lowerDirs) rec('idlower', d);
  const { upperDir, workDir } = spec.rootfs;
  if (dirname(upperDir) !== dirname(workDir))
    throw new BerthError(
      'UNSUPPORTED',
      'native plan: with a user namespace the upper and work dirs must share a directory',
    );
  rec('idupper', dirname(upperDir), basename(upperDir), basename(workDir));
}

/**
 * Calls `spawn` with the placements of the native programs' fds (`berth-init`, `berth-exec`):
 * `fds` land on fixed numbers (3 error, 4 control, 5 stdin, 6 stdout, 7 stderr) and `more` on 8,
 * 9, …; each is parked above them first (a dup at 100 or more) so that no placement overwrites a
 * source, and the parked copies are closed once `spawn` returns or throws. A -1 is left out.
 */
export function withNativeFds<T>(
  fds: InitFds & { ctrl: number },
  more: readonly number[],
  spawn: (placements: Array<[number, number]>) => T,
): T {
  const wanted: Array<[number, number]> = [
    [fds.error, 3],
    [fds.ctrl, 4],
    [fds.stdin, 5],
    [fds.stdout, 6],
    [fds.stderr, 7],
    ...more.map((fd, i): [number, number] => [fd, 8 + i]),
  ];
  const parked: Array<[number, number]> = [];
  try {
    for (const [fd, to] of wanted) if (fd >= 0) parked.push([dup(fd, 100), to]);
    return spawn(parked);
  } finally {
    for (const [fd] of parked) close(fd);
  }
}

/**
 * Starts `berth-init` from its sealed copy `program` (see `sealed-program.ts`) with posix_spawn:
 * no copy of the caller's address space. The caller has made the PID namespace its children go
 * to (`unshare(CLONE_NEWPID)`), so the program is PID 1 there. Its fds land on fixed numbers
 * ({@link withNativeFds}); its environment is empty (the program's comes with the plan). Returns
 * its pid.
 */
export function spawnNativeInit(program: SealedProgram, fds: InitFds & { ctrl: number }): number {
  // argv[0] names it in ps (as PID 1 of an `init: true` container, the reaper).
  return withNativeFds(fds, [], (placements) => spawnProgram(program.path, ['berth-init'], [], placements));
}
