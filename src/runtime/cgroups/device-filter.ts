/**
 * Device rules as a cgroup v2 device filter: an eBPF program of type
 * `BPF_PROG_TYPE_CGROUP_DEVICE` that gives, for every device access, the answer the v1 `devices`
 * controller gives after the same rules are written to its `devices.allow`/`devices.deny` files.
 *
 * Two steps:
 *
 * 1. {@link emulateDeviceRules} plays the v1 controller (`security/device_cgroup.c`) on the rule
 *    list, in order: an `a` rule sets the default (allow or deny) and drops every exception; a
 *    `b`/`c` rule whose verdict differs from the default adds its access to the exception of the
 *    same type and numbers (or makes one); a rule whose verdict is the default's takes its access
 *    away from the exception of exactly the same type and numbers (a deny never punches a hole in
 *    a wildcard allow, nor an allow in a wildcard deny, just as on v1).
 * 2. {@link compileDeviceFilter} turns the resulting state into instructions. With a deny
 *    default an access is allowed when one exception matches its type and numbers and holds all
 *    of its access bits; with an allow default it is denied when one exception matches its type
 *    and numbers and holds any of its access bits. All exceptions give the same verdict, so their
 *    order does not matter.
 *
 * The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
 * (`access_type` = access << 16 | type) and returns 1 (allow) or 0 (deny); it calls no helper.
 *
 * @module
 */
import {
  BPF,
  BPF_DEVCG_ACC_MKNOD,
  BPF_DEVCG_ACC_READ,
  BPF_DEVCG_ACC_WRITE,
  BPF_DEVCG_DEV_BLOCK,
  BPF_DEVCG_DEV_CHAR,
  type BpfInsn,
} from '../../kernel/bpf.js';
import { checkDeviceRule, type DeviceRule } from './devices.js';

/** One exception of an emulated v1 devices cgroup: a device type and numbers, and access bits. */
export interface DeviceException {
  /** `b` or `c`. */
  type: 'b' | 'c';
  /** Major number, or `*`. */
  major: number | '*';
  /** Minor number, or `*`. */
  minor: number | '*';
  /** Access bits: {@link BPF_DEVCG_ACC_MKNOD} | {@link BPF_DEVCG_ACC_READ} | {@link BPF_DEVCG_ACC_WRITE}. */
  access: number;
}

/** The state a v1 devices cgroup is in after a rule list: its default and its exceptions. */
export interface DeviceRuleState {
  /** Whether an access no exception matches is allowed. */
  defaultAllow: boolean;
  /** Accesses that get the opposite verdict, in the order they were first made. */
  exceptions: DeviceException[];
}

/** Access bits of an `rwm` string. */
export function accessBits(access: string): number {
  let bits = 0;
  for (const ch of access)
    bits |= ch === 'r' ? BPF_DEVCG_ACC_READ : ch === 'w' ? BPF_DEVCG_ACC_WRITE : ch === 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
  return bits;
}

/**
 * The state of a v1 devices cgroup made under an unrestricted parent (the default: allow, no
 * exception) after `rules` are written to it in order. Throws `InvalidArgumentError` for an
 * invalid rule, naming it `devices[i]`.
 */
export function emulateDeviceRules(rules: readonly DeviceRule[]): DeviceRuleState {
  const state: DeviceRuleState = { defaultAllow: true, exceptions: [] };
  rules.forEach((rule, i) => {
    checkDeviceRule(rule, `devices[${i}]`);
    if (rule.type === 'a') {
      state.defaultAllow = rule.allow;
      state.exceptions = [];
      return;
    }
    const access = accessBits(rule.access);
    const same = state.exceptions.find((e) => e.type === rule.type && e.major === rule.major && e.minor === rule.minor);
    if (rule.allow !== state.defaultAllow) {
      if (same) same.access |= access;
      else state.exceptions.push({ type: rule.type, major: rule.major, minor: rule.minor, access });
    } else if (same) {
      same.access &= ~access;
      if (same.access === 0) state.exceptions.splice(state.exceptions.indexOf(same), 1);
    }
  });
  return state;
}

// Registers of the program.
const R0 = 0; // scratch, then the verdict
const R1 = 1; // the context pointer on entry
const R2 = 2; // device type
const R3 = 3; // access bits
const R4 = 4; // major
const R5 = 5; // minor

const insn = (code: number, dst: number, src: number, off: number, imm: number): BpfInsn => ({
  code,
  dst,
  src,
  off,
  imm,
});
const loadWord = (dst: number, src: number, off: number): BpfInsn => insn(BPF.LDX | BPF.MEM | BPF.W, dst, src, off, 0);
const alu32 = (op: number, dst: number, imm: number): BpfInsn => insn(BPF.ALU | op | BPF.K, dst, 0, 0, imm);
const mov32Reg = (dst: number, src: number): BpfInsn => insn(BPF.ALU | BPF.MOV | BPF.X, dst, src, 0, 0);
const exit = (): BpfInsn => insn(BPF.JMP | BPF.EXIT, 0, 0, 0, 0);
/** A jump to the label `next` (resolved once the block's length is known). */
type Jump = { op: number; dst: number; imm: number };

/** The instructions of `state`: see the module documentation. */
function assemble(state: DeviceRuleState): BpfInsn[] {
  const out: BpfInsn[] = [
    loadWord(R2, R1, 0), // access_type
    mov32Reg(R3, R2),
    alu32(BPF.AND, R2, 0xffff), // type: low half
    alu32(BPF.RSH, R3, 16), // access: high half
    loadWord(R4, R1, 4), // major
    loadWord(R5, R1, 8), // minor
  ];
  const verdict = state.defaultAllow ? 0 : 1;
  for (const e of state.exceptions) {
    // Each test works on a copy in r0 and jumps past the block (to the next exception) when the
    // access does not match. Testing a copy leaves r2-r5 unknown on every path, so the verifier
    // sees the same state at each block and checks the program in one pass (comparing r2-r5
    // themselves would teach it their values, and it would walk every path apart: ~15x slower).
    const tests: Array<BpfInsn | Jump> = [];
    const differs = (reg: number, value: number): void => {
      tests.push(mov32Reg(R0, reg), alu32(BPF.XOR, R0, value), { op: BPF.JNE, dst: R0, imm: 0 });
    };
    differs(R2, e.type === 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
    tests.push(mov32Reg(R0, R3));
    if (state.defaultAllow) {
      // Denied when it asks for any of the exception's access bits.
      tests.push(alu32(BPF.AND, R0, e.access), { op: BPF.JEQ, dst: R0, imm: 0 });
    } else {
      // Allowed only when the exception holds every access bit it asks for.
      tests.push(alu32(BPF.AND, R0, ~e.access & 0xffff), { op: BPF.JNE, dst: R0, imm: 0 });
    }
    if (e.major !== '*') differs(R4, e.major);
    if (e.minor !== '*') differs(R5, e.minor);
    const block = [...tests, alu32(BPF.MOV, R0, verdict), exit()];
    block.forEach((x, i) =>
      out.push('op' in x ? insn(BPF.JMP | x.op | BPF.K, x.dst, 0, block.length - i - 1, x.imm) : x),
    );
  }
  out.push(alu32(BPF.MOV, R0, state.defaultAllow ? 1 : 0), exit());
  return out;
}

/**
 * The eBPF device filter that gives `rules` (applied in order, as on v1, from "allow all") the
 * meaning they have on the v1 `devices` controller. Throws `InvalidArgumentError` for an invalid
 * rule.
 *
 * @example
 * ```ts
 * const insns = compileDeviceFilter(cgroupDeviceRules([{ type: 'c', major: 1, minor: 3, access: 'rwm', allow: true }]));
 * const fd = bpfProgLoad({ type: BPF_PROG_TYPE_CGROUP_DEVICE, insns, license: 'Apache-2.0' });
 * ```
 */
export function compileDeviceFilter(rules: readonly DeviceRule[]): BpfInsn[] {
  return assemble(emulateDeviceRules(rules));
}
