/**
 * Compiles a seccomp profile (Docker's format) into a classic BPF program for
 * `seccomp(SECCOMP_SET_MODE_FILTER)`: an array of `struct sock_filter` (8 bytes each).
 *
 * The program:
 *
 * 1. loads `seccomp_data.arch` and dispatches to the section of the native architecture or of a
 *    compat one the profile lists (x86 and x32 on x86_64); any other architecture is killed
 *    (`SECCOMP_RET_KILL_PROCESS`). On x86_64 a number with `__X32_SYSCALL_BIT` goes to the x32
 *    section (or is killed when the profile does not list x32);
 * 2. finds the call's number with a binary search over the intervals of numbers that share one
 *    outcome (a `jge` tree: about eight comparisons for any call, where a chain of `jeq` would
 *    take up to 400);
 * 3. for a call with argument rules, checks them (64-bit comparisons on both 32-bit halves; on
 *    32-bit x86, the low half only, as libseccomp does), the first matching rule deciding.
 *
 * Rules are resolved at compile time against the container's capabilities, the native
 * architecture (Go's names, `amd64` / `arm64`, as Docker compares them) and the running kernel
 * (`includes` / `excludes`), as Docker does before handing the profile to runc. A call name the
 * architecture does not have is skipped. Within one call, a rule without argument conditions
 * decides over rules with conditions (as in libseccomp); conditions on the same argument in one
 * rule are alternatives (runc adds them as separate rules), on different arguments all must hold.
 * Numbers above the highest one the tables know (calls newer than the kernel headers they were
 * generated from) fail with ENOSYS rather than the default errno, as runc does, so that a libc
 * falls back to an older call.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { release } from 'node:os';
import { CAPABILITIES } from '../capabilities.js';
import { BerthError } from '../../errors.js';
import type { SeccompAction, SeccompProfile, SeccompRule } from './profile.js';
import { SYSCALL_TABLES } from './syscall-tables.js';

/** Native architectures berth compiles filters for. */
export type SeccompArch = 'x86_64' | 'aarch64';

type Section = keyof typeof SYSCALL_TABLES;

/** `AUDIT_ARCH_*` of each section (`seccomp_data.arch`). */
const AUDIT_ARCH: Record<Section, number> = {
  x86_64: 0xc000003e,
  x86: 0x40000003,
  x32: 0xc000003e,
  aarch64: 0xc00000b7,
};

/** libseccomp's names of the sections. */
const SCMP_ARCH: Record<Section, string> = {
  x86_64: 'SCMP_ARCH_X86_64',
  x86: 'SCMP_ARCH_X86',
  x32: 'SCMP_ARCH_X32',
  aarch64: 'SCMP_ARCH_AARCH64',
};

/** Go's name of each native architecture: what `includes.arches` / `excludes.arches` are compared with. */
const GO_ARCH: Record<SeccompArch, string> = { x86_64: 'amd64', aarch64: 'arm64' };

/** The sections a native architecture can have (its own first). */
const SECTIONS: Record<SeccompArch, Section[]> = { x86_64: ['x86_64', 'x86', 'x32'], aarch64: ['aarch64'] };

const X32_SYSCALL_BIT = 0x40000000;

/** `SECCOMP_RET_*` values. */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** The largest program the kernel loads (`BPF_MAXINSNS`). */
export const BPF_MAXINSNS = 4096;

const EPERM = 1;
const ENOSYS = 38;

// Classic BPF opcodes (linux/filter.h).
const LD_W_ABS = 0x20;
const ALU_AND_K = 0x54;
const JMP_JA = 0x05;
const JMP_JEQ_K = 0x15;
const JMP_JGT_K = 0x25;
const JMP_JGE_K = 0x35;
const RET_K = 0x06;

/** Offsets in `struct seccomp_data`. */
const OFF_NR = 0;
const OFF_ARCH = 4;
const argLow = (i: number): number => 16 + 8 * i;
const argHigh = (i: number): number => 20 + 8 * i;

/** What a filter is compiled for. */
export interface SeccompTarget {
  /** The native architecture. */
  arch: SeccompArch;
  /** Capability names (`CAP_SYS_ADMIN`, …) the process holds: `includes.caps` / `excludes.caps` are decided on them. */
  capabilities: readonly string[];
  /** The running kernel's version `[major, minor]`, for `minKernel`. Default: this machine's. */
  kernel?: readonly [number, number];
}

/** The native architecture of this machine for seccomp, or undefined where berth has no tables. */
export function nativeSeccompArch(): SeccompArch | undefined {
  return process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : undefined;
}

/** The return value of an action (`errno` for ERRNO and TRACE). */
function actionValue(action: SeccompAction, errno: number | null | undefined): number {
  switch (action) {
    case 'SCMP_ACT_ALLOW':
      return SECCOMP_RET.ALLOW;
    case 'SCMP_ACT_ERRNO':
      return (SECCOMP_RET.ERRNO | ((errno ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return SECCOMP_RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return SECCOMP_RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return SECCOMP_RET.TRAP;
    case 'SCMP_ACT_TRACE':
      return (SECCOMP_RET.TRACE | ((errno ?? 0) & 0xffff)) >>> 0;
    case 'SCMP_ACT_LOG':
      return SECCOMP_RET.LOG;
  }
}

function parseKernel(v: string): [number, number] {
  const [a = 0, b = 0] = v.split('.').map((x) => Number.parseInt(x, 10));
  return [a || 0, b || 0];
}

const kernelAtLeast = (k: readonly [number, number], min: string): boolean => {
  const [a, b] = parseKernel(min);
  return k[0] > a || (k[0] === a && k[1] >= b);
};

/** Whether `rule` applies to the target, as Docker decides it (moby's seccomp_linux.go). */
function applies(
  rule: SeccompRule,
  goArch: string,
  caps: ReadonlySet<string>,
  kernel: readonly [number, number],
): boolean {
  const ex = rule.excludes;
  if (ex?.arches?.includes(goArch)) return false;
  if (ex?.caps?.some((c) => caps.has(c))) return false;
  if (ex?.minKernel && kernelAtLeast(kernel, ex.minKernel)) return false;
  const inc = rule.includes;
  if (inc?.arches?.length && !inc.arches.includes(goArch)) return false;
  if (inc?.caps?.some((c) => !caps.has(c))) return false;
  if (inc?.minKernel && !kernelAtLeast(kernel, inc.minKernel)) return false;
  return true;
}

/** The sections of the filter: the native architecture's, and the compat ones the profile lists. */
function sectionsOf(profile: SeccompProfile, arch: SeccompArch): Section[] {
  const listed = new Set<string>([SCMP_ARCH[arch]]);
  for (const a of profile.architectures ?? []) listed.add(a);
  for (const m of profile.archMap ?? []) {
    if (m.architecture !== SCMP_ARCH[arch]) continue;
    for (const s of m.subArchitectures ?? []) listed.add(s);
  }
  return SECTIONS[arch].filter((s) => listed.has(SCMP_ARCH[s]));
}

/** One argument condition, the value split in halves. */
interface Cond {
  index: number;
  op: string;
  value: bigint;
  valueTwo: bigint;
}
/** A rule as it applies to one call: all conditions must hold. */
interface CallRule {
  ret: number;
  conds: Cond[];
}

/** The rules of a profile that apply, per call number of a section. */
function rulesBySyscall(
  profile: SeccompProfile,
  section: Section,
  target: SeccompTarget,
  caps: ReadonlySet<string>,
  kernel: readonly [number, number],
): Map<number, CallRule[]> {
  const table = SYSCALL_TABLES[section];
  const out = new Map<number, CallRule[]>();
  for (const rule of profile.syscalls ?? []) {
    if (!applies(rule, GO_ARCH[target.arch], caps, kernel)) continue;
    const ret = actionValue(rule.action, rule.errnoRet);
    const conds: Cond[] = (rule.args ?? []).map((a) => ({
      index: a.index,
      op: a.op,
      value: BigInt(a.value),
      valueTwo: BigInt(a.valueTwo ?? 0),
    }));
    // Several conditions on one argument are alternatives (runc adds one rule for each).
    const perIndex = new Map<number, number>();
    for (const c of conds) perIndex.set(c.index, (perIndex.get(c.index) ?? 0) + 1);
    const variants: Cond[][] = [...perIndex.values()].some((n) => n > 1) ? conds.map((c) => [c]) : [conds];
    for (const name of [...(rule.names ?? []), ...(rule.name ? [rule.name] : [])]) {
      const nr = table[name];
      if (nr === undefined) continue; // not a call of this architecture, as libseccomp skips it
      const list = out.get(nr) ?? [];
      for (const v of variants) list.push({ ret, conds: v });
      out.set(nr, list);
    }
  }
  return out;
}

/** One `struct sock_filter`. */
interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/**
 * A program written back to front: every jump goes forward, so its target is already written
 * when the jump is. A label is an instruction's index counted from the end. Conditional jumps
 * reach 255 instructions; a farther target gets a `ja` trampoline.
 */
class Emitter {
  readonly insns: Insn[] = [];
  /** The label of the last `ret` written for each value: jumps share it while it is near. */
  readonly #rets = new Map<number, number>();

  /** Writes one instruction before all written so far; returns its label. */
  op(code: number, k: number, jt = 0, jf = 0): number {
    this.insns.push({ code, jt, jf, k: k >>> 0 });
    return this.insns.length - 1;
  }

  /** The label of the instruction written last (the one right after the next one written). */
  get next(): number {
    return this.insns.length - 1;
  }

  /**
   * A `ret` of `value`, as a jump target: one written already when a jump from here reaches it
   * (a program of a few hundred instructions, not one `ret` per leaf: the kernel compiles every
   * instruction at each start), else a new one.
   */
  ret(value: number): number {
    const near = this.#rets.get(value >>> 0);
    if (near !== undefined && this.insns.length - near - 1 <= 200) return near;
    const label = this.op(RET_K, value);
    this.#rets.set(value >>> 0, label);
    return label;
  }

  /** Makes `label` the instruction that runs after the next one written (a `ja` unless it is already). */
  fallTo(label: number): void {
    if (label !== this.next) this.op(JMP_JA, this.insns.length - label - 1);
  }

  load(offset: number): number {
    return this.op(LD_W_ABS, offset);
  }

  and(mask: number): number {
    return this.op(ALU_AND_K, mask);
  }

  /** A conditional jump on A: to `t` when it holds, else to `f`. */
  jump(code: number, k: number, t: number, f: number): number {
    const dist = (label: number): number => this.insns.length - label - 1;
    if (dist(t) > 255) t = this.op(JMP_JA, dist(t));
    if (dist(f) > 255) f = this.op(JMP_JA, dist(f));
    return this.op(code, k, dist(t), dist(f));
  }

  /** The program in order, encoded. */
  encode(): Buffer {
    const n = this.insns.length;
    const out = Buffer.alloc(n * 8);
    for (let i = 0; i < n; i++) {
      const insn = this.insns[n - 1 - i]!;
      out.writeUInt16LE(insn.code, i * 8);
      out.writeUInt8(insn.jt, i * 8 + 2);
      out.writeUInt8(insn.jf, i * 8 + 3);
      out.writeUInt32LE(insn.k, i * 8 + 4);
    }
    return out;
  }
}

const low = (v: bigint): number => Number(v & 0xffffffffn);
const high = (v: bigint): number => Number((v >> 32n) & 0xffffffffn);

/**
 * Writes the check of one condition: on to `t` when it holds, to `f` when not. `wide`: compare
 * both halves (64-bit architectures). Returns the label of its first instruction.
 */
function emitCond(e: Emitter, c: Cond, t: number, f: number, wide: boolean): number {
  const vl = low(c.value);
  const vh = high(c.value);
  // Written back to front: the low half's test, then (before it) the high half's.
  const lowPart = (): number => {
    switch (c.op) {
      case 'SCMP_CMP_EQ':
        e.jump(JMP_JEQ_K, vl, t, f);
        break;
      case 'SCMP_CMP_NE':
        e.jump(JMP_JEQ_K, vl, f, t);
        break;
      case 'SCMP_CMP_GT':
        e.jump(JMP_JGT_K, vl, t, f);
        break;
      case 'SCMP_CMP_GE':
        e.jump(JMP_JGE_K, vl, t, f);
        break;
      case 'SCMP_CMP_LT':
        e.jump(JMP_JGE_K, vl, f, t);
        break;
      case 'SCMP_CMP_LE':
        e.jump(JMP_JGT_K, vl, f, t);
        break;
      case 'SCMP_CMP_MASKED_EQ':
        e.jump(JMP_JEQ_K, low(c.valueTwo), t, f);
        e.and(vl);
        break;
    }
    return e.load(argLow(c.index));
  };
  const lowStart = lowPart();
  if (!wide) return lowStart;
  // The high half decides unless it is equal; then the low half does.
  switch (c.op) {
    case 'SCMP_CMP_EQ':
      e.jump(JMP_JEQ_K, vh, lowStart, f);
      break;
    case 'SCMP_CMP_NE':
      e.jump(JMP_JEQ_K, vh, lowStart, t);
      break;
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE':
      e.jump(JMP_JEQ_K, vh, lowStart, f);
      e.jump(JMP_JGT_K, vh, t, e.next);
      break;
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE':
      e.jump(JMP_JEQ_K, vh, lowStart, t);
      e.jump(JMP_JGT_K, vh, f, e.next);
      break;
    case 'SCMP_CMP_MASKED_EQ':
      e.jump(JMP_JEQ_K, high(c.valueTwo), lowStart, f);
      e.and(vh);
      break;
  }
  return e.load(argHigh(c.index));
}

/** Writes the rules of one call (the first that matches decides, else `defaultRet`); returns its label. */
function emitCall(e: Emitter, rules: CallRule[], defaultRet: number, wide: boolean): number {
  const unconditional = rules.find((r) => r.conds.length === 0);
  if (unconditional) return e.ret(unconditional.ret);
  let next = e.ret(defaultRet);
  for (let i = rules.length - 1; i >= 0; i--) {
    const rule = rules[i]!;
    let start = e.ret(rule.ret);
    const fail = next;
    for (let j = rule.conds.length - 1; j >= 0; j--) start = emitCond(e, rule.conds[j]!, start, fail, wide);
    next = start;
  }
  return next;
}

/** One run of numbers with the same outcome: a plain return value, or the rules of one call. */
interface Interval {
  start: number;
  ret?: number;
  rules?: CallRule[];
}

/** Writes one section's search over the call number in A; returns its label. */
function emitSection(
  e: Emitter,
  section: Section,
  rules: Map<number, CallRule[]>,
  defaultRet: number,
  newerRet: number,
  base: number,
): number {
  const table = SYSCALL_TABLES[section];
  const numbers = Object.values(table);
  const max = Math.max(...numbers);
  const known = new Set(numbers);
  const intervals: Interval[] = [];
  for (let nr = base; nr <= max; nr++) {
    const list = known.has(nr) ? rules.get(nr) : undefined;
    let iv: Interval;
    if (!list?.length) iv = { start: nr, ret: defaultRet };
    else if (list.some((r) => r.conds.length === 0) || list.every((r) => r.ret === defaultRet)) {
      iv = { start: nr, ret: list.find((r) => r.conds.length === 0)?.ret ?? defaultRet };
    } else iv = { start: nr, rules: list };
    const last = intervals[intervals.length - 1];
    if (last && iv.ret !== undefined && last.ret === iv.ret) continue;
    intervals.push(iv);
  }
  intervals.push({ start: max + 1, ret: newerRet });
  const tree = (lo: number, hi: number): number => {
    if (hi - lo === 1) {
      const iv = intervals[lo]!;
      return iv.rules ? emitCall(e, iv.rules, defaultRet, section !== 'x86') : e.ret(iv.ret!);
    }
    const mid = (lo + hi) >> 1;
    const right = tree(mid, hi);
    const left = tree(lo, mid);
    return e.jump(JMP_JGE_K, intervals[mid]!.start, right, left);
  };
  return tree(0, intervals.length);
}

/**
 * Compiles `profile` for `target` into a classic BPF program (`struct sock_filter[]`, in the
 * machine's byte order). Throws when it would exceed {@link BPF_MAXINSNS}.
 */
export function compileSeccomp(profile: SeccompProfile, target: SeccompTarget): Buffer {
  const caps = new Set(target.capabilities.filter((c) => c in CAPABILITIES));
  const kernel = target.kernel ?? parseKernel(release());
  const defaultRet = actionValue(profile.defaultAction, profile.defaultErrnoRet);
  const refusing = profile.defaultAction !== 'SCMP_ACT_ALLOW' && profile.defaultAction !== 'SCMP_ACT_LOG';
  const newerRet = refusing ? (SECCOMP_RET.ERRNO | ENOSYS) >>> 0 : defaultRet;
  const e = new Emitter();
  const kill = e.ret(SECCOMP_RET.KILL_PROCESS);
  const sections = sectionsOf(profile, target.arch);
  const entry = new Map<Section, number>();
  // Back to front: x32 before x86_64, which jumps to it.
  for (const s of [...sections].reverse()) {
    const rules = rulesBySyscall(profile, s, target, caps, kernel);
    if (s === 'x86_64') {
      const x32 = entry.get('x32') ?? kill;
      const tree = emitSection(e, s, rules, defaultRet, newerRet, 0);
      // x32 calls come with the x86_64 arch and __X32_SYSCALL_BIT in the number.
      e.jump(JMP_JGE_K, X32_SYSCALL_BIT, x32, tree);
      entry.set(s, e.load(OFF_NR));
    } else if (s === 'x32') {
      entry.set(s, emitSection(e, s, rules, defaultRet, newerRet, X32_SYSCALL_BIT));
    } else {
      e.fallTo(emitSection(e, s, rules, defaultRet, newerRet, 0));
      entry.set(s, e.load(OFF_NR));
    }
  }
  // The x32 section is entered from the x86_64 one, not from the architecture check.
  const dispatch = sections.filter((s) => s !== 'x32');
  let miss = kill;
  for (let i = dispatch.length - 1; i >= 0; i--) {
    const s = dispatch[i]!;
    miss = e.jump(JMP_JEQ_K, AUDIT_ARCH[s], entry.get(s)!, miss);
  }
  e.fallTo(miss);
  e.load(OFF_ARCH);
  if (e.insns.length > BPF_MAXINSNS)
    throw new BerthError(
      'INVALID_ARGUMENT',
      `the seccomp profile compiles to ${e.insns.length} instructions, more than the kernel's ${BPF_MAXINSNS}`,
    );
  return e.encode();
}

const cache = new Map<string, string>();
const CACHE_SIZE = 64;
/** The cache identity of a profile object: the SHA-256 of its JSON, computed once per object. */
const identities = new WeakMap<SeccompProfile, string>();

/**
 * The compiled program of `profile` for `target`, in hex, as plans carry it. Cached by (profile,
 * architecture, capabilities): a container start pays for compiling only the first time.
 */
export function seccompFilterHex(profile: SeccompProfile, target: SeccompTarget): string {
  let identity = identities.get(profile);
  if (identity === undefined)
    identities.set(profile, (identity = createHash('sha256').update(JSON.stringify(profile)).digest('hex')));
  const key = `${target.arch}\0${[...target.capabilities].sort().join(',')}\0${target.kernel?.join('.') ?? ''}\0${identity}`;
  let hex = cache.get(key);
  if (hex === undefined) {
    hex = compileSeccomp(profile, target).toString('hex');
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
    cache.set(key, hex);
  }
  return hex;
}
