/**
 * Device rules on cgroup v2: the seam the v2 driver applies them through
 * ({@link DeviceFilterLoader}) and its real implementation, {@link bpfDeviceFilter}, which loads
 * the program {@link compileDeviceFilter} makes and attaches it to the cgroup's directory.
 *
 * Attached with `BPF_F_ALLOW_MULTI`, as runc does: a device access in a cgroup runs the programs
 * of that cgroup and of every ancestor, and is allowed only when all of them allow it. So a
 * program attached below (by a nested container engine, or a privileged container managing its
 * own sub-cgroups) can only restrict further, never lift berth's rules, and can still be
 * attached. (Without flags a cgroup takes one program, which a later attach replaces, and no
 * descendant may attach any; `BPF_F_ALLOW_OVERRIDE` would let a descendant's program replace
 * berth's.) A replacement is attached before the old programs are detached, so the cgroup is
 * never without a filter.
 *
 * The program's fd is closed once it is attached: the attachment holds the program until it is
 * detached or the cgroup is removed.
 *
 * @module
 */
import {
  BPF_CGROUP_DEVICE,
  BPF_F_ALLOW_MULTI,
  BPF_PROG_TYPE_CGROUP_DEVICE,
  bpfProgAttach,
  bpfProgDetach,
  bpfProgGetFdById,
  bpfProgLoad,
  bpfProgQuery,
  type BpfInsn,
} from '../../kernel/bpf.js';
import { O_CLOEXEC, O_RDONLY } from '../../kernel/constants.js';
import { close, open } from '../../kernel/fd.js';
import { KernelError } from '../../errors.js';
import { compileDeviceFilter } from './device-filter.js';
import type { DeviceRule } from './devices.js';

/** Applies device rules to a cgroup v2 directory. The v2 driver's seam for them (tests pass a fake). */
export interface DeviceFilterLoader {
  /**
   * Makes `rules` (in v1 terms, applied in order from "allow all"; see
   * {@link cgroupDeviceRules}) the device filter of the cgroup2 directory `dir`, in place of
   * whatever device programs were attached to it. `null` detaches them all: the cgroup then
   * restricts no device itself. Throws `InvalidArgumentError` for an invalid rule (before any
   * change), a `KernelError` when the kernel refuses.
   */
  apply(dir: string, rules: readonly DeviceRule[] | null): Promise<void>;
}

/** The license the programs are loaded under; they call no helper, so any string would do. */
const LICENSE = 'Apache-2.0';

/** ENOENT: a program detached (and freed) between the query and the lookup of its id. */
const ENOENT = 2;

/** The {@link DeviceFilterLoader} of the real kernel: `bpf(2)` on the cgroup's directory fd. */
export function bpfDeviceFilter(): DeviceFilterLoader {
  // Nearly every container has the same rules: the last program made is kept (as instructions).
  let last: { key: string; insns: BpfInsn[] } | undefined;
  const compile = (rules: readonly DeviceRule[]): BpfInsn[] => {
    const key = JSON.stringify(rules);
    if (last?.key !== key) last = { key, insns: compileDeviceFilter(rules) };
    return last.insns;
  };
  return {
    async apply(dir, rules) {
      const insns = rules === null ? null : compile(rules);
      const dirFd = open(dir, O_RDONLY | O_CLOEXEC);
      const old: number[] = [];
      let prog = -1;
      try {
        for (const id of bpfProgQuery(dirFd, BPF_CGROUP_DEVICE, dir).ids) {
          try {
            old.push(bpfProgGetFdById(id));
          } catch (e) {
            if (!(e instanceof KernelError && e.errno === ENOENT)) throw e;
          }
        }
        if (insns !== null) {
          prog = bpfProgLoad({ type: BPF_PROG_TYPE_CGROUP_DEVICE, insns, license: LICENSE, name: 'berth_devices' });
          bpfProgAttach(dirFd, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, 0, dir);
        }
        for (const fd of old) bpfProgDetach(dirFd, fd, BPF_CGROUP_DEVICE, dir);
      } finally {
        for (const fd of [...old, prog, dirFd]) if (fd >= 0) close(fd);
      }
    },
  };
}
