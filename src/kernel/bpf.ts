/**
 * `bpf(2)`: loading eBPF programs and attaching them to cgroups (`BPF_PROG_LOAD`,
 * `BPF_PROG_ATTACH`, `BPF_PROG_DETACH`, `BPF_PROG_QUERY`, `BPF_PROG_GET_FD_BY_ID`), and the
 * encoding of eBPF instructions. No policy: what a program does is its caller's business.
 *
 * The calls are synchronous and return or take plain fds; a program fd is close-on-exec (the
 * kernel makes it so). An attached program stays attached after its fd is closed, until it is
 * detached or its cgroup is removed.
 *
 * @module
 */
import koffi from 'koffi';
import { KernelError } from '../errors.js';
import { errnoName, lastErrno, libc, EINTR } from './libc.js';
import { SYS } from './syscall-numbers.js';

const _syscall = libc.func('long syscall(long number, ...)');

// <linux/bpf.h>: commands.
const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_PROG_DETACH = 9;
const BPF_PROG_GET_FD_BY_ID = 13;
const BPF_PROG_QUERY = 16;

/** <linux/bpf.h>: program type of a cgroup device filter (`bpf_cgroup_dev_ctx` in, 1 allow / 0 deny out). */
export const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
/** <linux/bpf.h>: attach type of a cgroup device filter. */
export const BPF_CGROUP_DEVICE = 6;
/** <linux/bpf.h>: a program of a descendant cgroup replaces this one. */
export const BPF_F_ALLOW_OVERRIDE = 1;
/** <linux/bpf.h>: several programs per cgroup; those of every ancestor run too, and all must allow. */
export const BPF_F_ALLOW_MULTI = 2;
/** <linux/bpf.h>: replace the program given as `replace_bpf_fd` (with {@link BPF_F_ALLOW_MULTI}). */
export const BPF_F_REPLACE = 4;

/** <linux/bpf.h>: `bpf_cgroup_dev_ctx.access_type` low 16 bits: a block device. */
export const BPF_DEVCG_DEV_BLOCK = 1;
/** <linux/bpf.h>: `bpf_cgroup_dev_ctx.access_type` low 16 bits: a character device. */
export const BPF_DEVCG_DEV_CHAR = 2;
/** <linux/bpf.h>: `bpf_cgroup_dev_ctx.access_type` high 16 bits: mknod. */
export const BPF_DEVCG_ACC_MKNOD = 1;
/** <linux/bpf.h>: `bpf_cgroup_dev_ctx.access_type` high 16 bits: read. */
export const BPF_DEVCG_ACC_READ = 2;
/** <linux/bpf.h>: `bpf_cgroup_dev_ctx.access_type` high 16 bits: write. */
export const BPF_DEVCG_ACC_WRITE = 4;

/**
 * Parts of an eBPF opcode (<linux/bpf_common.h>, <linux/bpf.h>): an instruction's `code` is
 * class | size/op | mode/source, e.g. `LDX | MEM | W`, `ALU | AND | K`, `JMP | JNE | X`.
 */
export const BPF = Object.freeze({
  /** Class: load into a register from memory. */
  LDX: 0x01,
  /** Class: 32-bit arithmetic (the upper half of the destination is zeroed). */
  ALU: 0x04,
  /** Class: 64-bit jumps and exit. */
  JMP: 0x05,
  /** Class: 64-bit arithmetic. */
  ALU64: 0x07,
  /** Size: 32-bit word. */
  W: 0x00,
  /** Mode: `dst = *(size *)(src + off)`. */
  MEM: 0x60,
  /** Source: the immediate `imm`. */
  K: 0x00,
  /** Source: the register `src`. */
  X: 0x08,
  /** ALU op: `dst &= operand`. */
  AND: 0x50,
  /** ALU op: `dst ^= operand`. */
  XOR: 0xa0,
  /** ALU op: `dst >>= operand` (logical). */
  RSH: 0x70,
  /** ALU op: `dst = operand`. */
  MOV: 0xb0,
  /** Jump op: always. */
  JA: 0x00,
  /** Jump op: if `dst == operand`. */
  JEQ: 0x10,
  /** Jump op: if `dst != operand`. */
  JNE: 0x50,
  /** Jump op: return `r0`. */
  EXIT: 0x90,
});

/** One eBPF instruction (`struct bpf_insn`). Jumps go to the instruction at index + 1 + `off`. */
export interface BpfInsn {
  /** Opcode (see {@link BPF}). */
  code: number;
  /** Destination register, 0-10. */
  dst: number;
  /** Source register, 0-10. */
  src: number;
  /** Signed 16-bit offset (memory offset, or jump distance). */
  off: number;
  /** Signed 32-bit immediate. */
  imm: number;
}

/** The kernel's encoding of `insns`: 8 bytes each (code, dst | src << 4, off, imm; little-endian). */
export function encodeBpfInsns(insns: readonly BpfInsn[]): Buffer {
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((insn, i) => {
    buf.writeUInt8(insn.code, i * 8);
    buf.writeUInt8((insn.dst & 0x0f) | ((insn.src & 0x0f) << 4), i * 8 + 1);
    buf.writeInt16LE(insn.off, i * 8 + 2);
    buf.writeInt32LE(insn.imm, i * 8 + 4);
  });
  return buf;
}

/** Buffers the `attr` of the call under way points into: reachable, so not collected, until it returns. */
const pinned: Buffer[] = [];

/** One `bpf(cmd, attr, attr.length)` call, retried on EINTR; returns its result and errno. */
function raw(cmd: number, attr: Buffer, keep: readonly Buffer[]): { r: number; errno: number } {
  pinned.push(...keep);
  try {
    for (;;) {
      const r = Number(_syscall(SYS.bpf, 'int', cmd, 'void *', attr, 'unsigned int', attr.length));
      const errno = r < 0 ? lastErrno() : 0;
      if (errno !== EINTR) return { r, errno };
    }
  } finally {
    pinned.length = 0;
  }
}

/** `bpf(cmd, attr)`; throws a {@link KernelError} (`what` and `path` in its message) when it fails. */
function bpf(cmd: number, attr: Buffer, what: string, keep: readonly Buffer[] = [], path?: string): number {
  const { r, errno } = raw(cmd, attr, keep);
  if (r < 0) throw new KernelError('bpf', errno, errnoName(errno), what, path);
  return r;
}

/** The address of `buf` as the kernel takes it in a `__aligned_u64` field. */
function addr(buf: Buffer): bigint {
  return koffi.address(buf);
}

/** Options of {@link bpfProgLoad}. */
export interface BpfProgLoadOptions {
  /** Program type, e.g. {@link BPF_PROG_TYPE_CGROUP_DEVICE}. */
  type: number;
  /** The program. */
  insns: readonly BpfInsn[];
  /** License string; a GPL-compatible one is needed only to call GPL-only helpers. */
  license: string;
  /** Program name shown by bpftool (at most 15 characters of `[A-Za-z0-9_.]`). */
  name?: string;
  /** Expected attach type; 0 (the default) for the program types that need none. */
  expectedAttachType?: number;
}

/** Size of the verifier log asked for after a refused load. */
const LOG_SIZE = 64 * 1024;

/**
 * `BPF_PROG_LOAD`: verifies and loads a program; returns its fd. When the kernel refuses it,
 * the load is repeated with a verifier log, and the {@link KernelError} carries the log's last
 * lines (the verifier's reason).
 */
export function bpfProgLoad(options: BpfProgLoadOptions): number {
  const insns = encodeBpfInsns(options.insns);
  const license = Buffer.from(`${options.license}\0`, 'latin1');
  const attr = Buffer.alloc(72);
  attr.writeUInt32LE(options.type, 0);
  attr.writeUInt32LE(options.insns.length, 4);
  attr.writeBigUInt64LE(addr(insns), 8);
  attr.writeBigUInt64LE(addr(license), 16);
  if (options.name !== undefined) attr.write(options.name.slice(0, 15), 48, 'latin1');
  attr.writeUInt32LE(options.expectedAttachType ?? 0, 68);
  const what = 'BPF_PROG_LOAD';
  try {
    return bpf(BPF_PROG_LOAD, attr, what, [insns, license]);
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    const log = Buffer.alloc(LOG_SIZE);
    attr.writeUInt32LE(1, 24); // log_level
    attr.writeUInt32LE(LOG_SIZE, 28);
    attr.writeBigUInt64LE(addr(log), 32);
    const { r } = raw(BPF_PROG_LOAD, attr, [insns, license, log]);
    if (r >= 0) return r; // the first refusal did not last (ENOMEM, EAGAIN): the program is fine
    // The first call's errno: this one's may be the log's own (ENOSPC when the log is cut short).
    const text = log
      .subarray(0, Math.max(0, log.indexOf(0)))
      .toString('utf8')
      .trim();
    const reason = text
      .split('\n')
      .filter((l) => !/^(processed|verification time|stack depth) /.test(l))
      .slice(-4)
      .join(' | ');
    throw new KernelError('bpf', e.errno, e.errnoCode, reason ? `${what}, verifier: ${reason}` : what, undefined, {
      cause: e,
    });
  }
}

/**
 * `BPF_PROG_ATTACH`: attaches program `progFd` to `targetFd` (a cgroup directory fd for cgroup
 * attach types) with `flags` ({@link BPF_F_ALLOW_MULTI}, …); with {@link BPF_F_REPLACE},
 * `replaceFd` is the program it replaces. `path` names the target in errors.
 */
export function bpfProgAttach(
  targetFd: number,
  progFd: number,
  attachType: number,
  flags: number,
  replaceFd = 0,
  path?: string,
): void {
  const attr = Buffer.alloc(20);
  attr.writeUInt32LE(targetFd, 0);
  attr.writeUInt32LE(progFd, 4);
  attr.writeUInt32LE(attachType, 8);
  attr.writeUInt32LE(flags, 12);
  attr.writeUInt32LE(replaceFd, 16);
  bpf(BPF_PROG_ATTACH, attr, 'BPF_PROG_ATTACH', [], path);
}

/** `BPF_PROG_DETACH`: detaches program `progFd` of `attachType` from `targetFd`. */
export function bpfProgDetach(targetFd: number, progFd: number, attachType: number, path?: string): void {
  const attr = Buffer.alloc(20);
  attr.writeUInt32LE(targetFd, 0);
  attr.writeUInt32LE(progFd, 4);
  attr.writeUInt32LE(attachType, 8);
  bpf(BPF_PROG_DETACH, attr, 'BPF_PROG_DETACH', [], path);
}

/** What {@link bpfProgQuery} found attached. */
export interface BpfProgQueryResult {
  /** The flags the programs were attached with ({@link BPF_F_ALLOW_MULTI}, …); 0 when none is. */
  attachFlags: number;
  /** Ids of the programs attached to the target itself (not inherited ones), in run order. */
  ids: number[];
}

/** ENOSPC: the id array was too small (the kernel then reports how many there are). */
const ENOSPC = 28;

/** `BPF_PROG_QUERY`: the programs of `attachType` attached to `targetFd` itself. */
export function bpfProgQuery(targetFd: number, attachType: number, path?: string): BpfProgQueryResult {
  let room = 8;
  for (;;) {
    const ids = Buffer.alloc(room * 4);
    const attr = Buffer.alloc(32);
    attr.writeUInt32LE(targetFd, 0);
    attr.writeUInt32LE(attachType, 4);
    attr.writeBigUInt64LE(addr(ids), 16);
    attr.writeUInt32LE(room, 24);
    const { r, errno } = raw(BPF_PROG_QUERY, attr, [ids]);
    const count = attr.readUInt32LE(24);
    if (r < 0 && errno === ENOSPC && count > room) {
      room = count;
      continue;
    }
    if (r < 0) throw new KernelError('bpf', errno, errnoName(errno), 'BPF_PROG_QUERY', path);
    return {
      attachFlags: attr.readUInt32LE(12),
      ids: Array.from({ length: count }, (_, i) => ids.readUInt32LE(i * 4)),
    };
  }
}

/** `BPF_PROG_GET_FD_BY_ID`: an fd of the loaded program `id` (needs CAP_SYS_ADMIN). */
export function bpfProgGetFdById(id: number): number {
  const attr = Buffer.alloc(12);
  attr.writeUInt32LE(id, 0);
  return bpf(BPF_PROG_GET_FD_BY_ID, attr, `BPF_PROG_GET_FD_BY_ID, id=${id}`);
}
