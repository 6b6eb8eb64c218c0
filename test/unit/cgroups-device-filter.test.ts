/**
 * The cgroup v2 device filter, without a kernel: the program {@link compileDeviceFilter} makes is
 * encoded as the kernel takes it, decoded again and run by a small eBPF interpreter (the
 * instructions the assembler emits, and nothing else) on `bpf_cgroup_dev_ctx` values. Its answers
 * must be those of the v1 devices controller after the same rules: Docker's default list, extra
 * rules, deny rules, `a` rules, and an allow-by-default list of denials.
 */
import { describe, expect, it } from 'vitest';
import {
  BPF,
  BPF_DEVCG_ACC_MKNOD,
  BPF_DEVCG_ACC_READ,
  BPF_DEVCG_ACC_WRITE,
  BPF_DEVCG_DEV_BLOCK,
  BPF_DEVCG_DEV_CHAR,
  encodeBpfInsns,
} from '../../src/kernel/bpf.js';
import {
  accessBits,
  cgroupDeviceRules,
  compileDeviceFilter,
  DENY_ALL_DEVICES,
  emulateDeviceRules,
  type DeviceRule,
  type DeviceRuleState,
} from '../../src/runtime/cgroups/index.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { DEFAULT_DEVICE_RULES } from '../../src/container/defaults.js';

/** A container's device rules, as the container service has its cgroup made: Docker's list, then `extra`. */
const containerDeviceRules = (extra: DeviceRule[] = []): DeviceRule[] =>
  cgroupDeviceRules([...DEFAULT_DEVICE_RULES, ...extra]);

/** A device access as the kernel asks the program about it. */
interface Access {
  type: 'b' | 'c';
  major: number;
  minor: number;
  access: string;
}

const U32 = 0xffffffffn;
const U64 = (1n << 64n) - 1n;

/**
 * Runs an encoded program on one access: the subset of eBPF the assembler emits (32-bit loads
 * from the context, 32-bit mov/and/xor/rsh with an immediate or a register, 64-bit jeq/jne
 * against an immediate, exit). Anything else, a backward or out-of-range jump, a read of a
 * register never written, or a load outside the 12-byte context throws, as the verifier would
 * refuse it. Returns r0.
 */
function run(program: Buffer, a: Access): number {
  const ctx = Buffer.alloc(12);
  const typeBits = a.type === 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR;
  ctx.writeUInt32LE(((accessBits(a.access) << 16) | typeBits) >>> 0, 0);
  ctx.writeUInt32LE(a.major, 4);
  ctx.writeUInt32LE(a.minor, 8);
  const regs: Array<bigint | 'ctx' | undefined> = Array(11).fill(undefined);
  regs[1] = 'ctx';
  const scalar = (r: number): bigint => {
    const v = regs[r];
    if (typeof v !== 'bigint') throw new Error(`r${r} is ${v === undefined ? 'not initialised' : 'a pointer'}`);
    return v;
  };
  const count = program.length / 8;
  for (let pc = 0, steps = 0; ; pc++, steps++) {
    if (pc >= count) throw new Error('fell off the end of the program');
    if (steps > 10_000) throw new Error('does not terminate');
    const code = program.readUInt8(pc * 8);
    const dst = program.readUInt8(pc * 8 + 1) & 0x0f;
    const src = program.readUInt8(pc * 8 + 1) >> 4;
    const off = program.readInt16LE(pc * 8 + 2);
    const imm = program.readInt32LE(pc * 8 + 4);
    const cls = code & 0x07;
    const op = code & 0xf0;
    const useReg = (code & 0x08) !== 0;
    if (code === (BPF.LDX | BPF.MEM | BPF.W)) {
      if (regs[src] !== 'ctx') throw new Error(`load through r${src}, not the context`);
      if (off < 0 || off > 8 || off % 4 !== 0) throw new Error(`load at context offset ${off}`);
      regs[dst] = BigInt(ctx.readUInt32LE(off));
    } else if (cls === BPF.ALU) {
      const operand = useReg ? scalar(src) & U32 : BigInt(imm >>> 0);
      const cur = op === BPF.MOV ? 0n : scalar(dst) & U32;
      const value =
        op === BPF.MOV
          ? operand
          : op === BPF.AND
            ? cur & operand
            : op === BPF.XOR
              ? cur ^ operand
              : op === BPF.RSH
                ? cur >> (operand & 31n)
                : undefined;
      if (value === undefined) throw new Error(`unexpected ALU op 0x${op.toString(16)}`);
      regs[dst] = value & U32; // 32-bit ops zero the upper half
    } else if (cls === BPF.JMP && op === BPF.EXIT) {
      return Number(scalar(0));
    } else if (cls === BPF.JMP && (op === BPF.JEQ || op === BPF.JNE) && !useReg) {
      if (off < 0) throw new Error('backward jump');
      if (pc + 1 + off >= count) throw new Error('jump out of the program');
      const equal = scalar(dst) === (BigInt(imm) & U64); // the immediate is sign-extended
      if (equal === (op === BPF.JEQ)) pc += off;
    } else {
      throw new Error(`unexpected instruction 0x${code.toString(16)} at ${pc}`);
    }
  }
}

/** Whether the compiled filter of `rules` allows `a`. */
function allows(rules: readonly DeviceRule[], a: Access): boolean {
  const r0 = run(encodeBpfInsns(compileDeviceFilter(rules)), a);
  expect([0, 1]).toContain(r0);
  return r0 === 1;
}

/** The v1 controller's check (security/device_cgroup.c: match_exception / match_exception_partial). */
function v1Allows(state: DeviceRuleState, a: Access): boolean {
  const want = accessBits(a.access);
  const hits = state.exceptions.filter(
    (e) => e.type === a.type && (e.major === '*' || e.major === a.major) && (e.minor === '*' || e.minor === a.minor),
  );
  if (state.defaultAllow) return !hits.some((e) => (e.access & want) !== 0);
  return hits.some((e) => (want & ~e.access) === 0);
}

const rule = (
  type: DeviceRule['type'],
  major: number | '*',
  minor: number | '*',
  access: string,
  allow: boolean,
): DeviceRule => ({ type, major, minor, access, allow });
const acc = (type: 'b' | 'c', major: number, minor: number, access: string): Access => ({ type, major, minor, access });

describe('device filter: Docker default rules', () => {
  const rules = containerDeviceRules();

  it.each([
    ['/dev/null read+write', acc('c', 1, 3, 'rw'), true],
    ['/dev/zero', acc('c', 1, 5, 'r'), true],
    ['/dev/full', acc('c', 1, 7, 'w'), true],
    ['/dev/random', acc('c', 1, 8, 'r'), true],
    ['/dev/urandom', acc('c', 1, 9, 'r'), true],
    ['/dev/tty', acc('c', 5, 0, 'rw'), true],
    ['/dev/console', acc('c', 5, 1, 'rw'), true],
    ['/dev/ptmx', acc('c', 5, 2, 'rw'), true],
    ['a pseudo-terminal', acc('c', 136, 7, 'rw'), true],
    ['/dev/net/tun', acc('c', 10, 200, 'rw'), true],
    ['mknod of a host disk', acc('b', 8, 0, 'm'), true],
    ['mknod of any character device', acc('c', 4, 1, 'm'), true],
  ])('allows %s', (_name, a, want) => {
    expect(allows(rules, a)).toBe(want);
  });

  it.each([
    ['reading a host disk', acc('b', 8, 0, 'r'), false],
    ['writing a loop device', acc('b', 7, 0, 'w'), false],
    ['reading a virtio disk', acc('b', 254, 0, 'r'), false],
    ['a host virtual terminal', acc('c', 4, 1, 'r'), false],
    ['/dev/mem', acc('c', 1, 1, 'r'), false],
    ['/dev/kmsg', acc('c', 1, 11, 'r'), false],
    ['/dev/fuse', acc('c', 10, 229, 'rw'), false],
    ['mknod together with read of a disk', acc('b', 8, 0, 'rm'), false],
    ['/dev/null as a block device', acc('b', 1, 3, 'r'), false],
  ])('denies %s', (_name, a, want) => {
    expect(allows(rules, a)).toBe(want);
  });

  it("starts from deny-all: the state is a deny default with Docker's exceptions", () => {
    const state = emulateDeviceRules(rules);
    expect(state.defaultAllow).toBe(false);
    expect(state.exceptions).toHaveLength(12);
    expect(rules[0]).toEqual(DENY_ALL_DEVICES);
  });
});

describe('device filter: the v1 meaning of extra rules', () => {
  it('an extra allow rule opens that device, with only the access it names', () => {
    const rules = containerDeviceRules([rule('b', 7, '*', 'r', true)]);
    expect(allows(rules, acc('b', 7, 3, 'r'))).toBe(true);
    expect(allows(rules, acc('b', 7, 3, 'w'))).toBe(false);
    expect(allows(rules, acc('b', 7, 3, 'rw'))).toBe(false);
    expect(allows(rules, acc('b', 8, 0, 'r'))).toBe(false);
  });

  it('an access must be covered by one rule: read from one and write from another is not read+write', () => {
    const rules = containerDeviceRules([rule('c', 10, 229, 'r', true), rule('c', 10, '*', 'w', true)]);
    expect(allows(rules, acc('c', 10, 229, 'r'))).toBe(true);
    expect(allows(rules, acc('c', 10, 229, 'w'))).toBe(true);
    expect(allows(rules, acc('c', 10, 229, 'rw'))).toBe(false);
  });

  it('a deny rule takes access away from the rule with exactly its numbers', () => {
    const rules = containerDeviceRules([rule('c', 1, 3, 'w', false)]);
    expect(allows(rules, acc('c', 1, 3, 'r'))).toBe(true);
    expect(allows(rules, acc('c', 1, 3, 'w'))).toBe(false);
    expect(allows(rules, acc('c', 1, 3, 'rw'))).toBe(false);
    expect(allows(rules, acc('c', 1, 3, 'm'))).toBe(true); // still the wildcard mknod rule
  });

  it('a deny rule does not punch a hole in a wildcard allow (as on v1)', () => {
    const rules = containerDeviceRules([rule('c', 136, 5, 'rwm', false)]);
    expect(allows(rules, acc('c', 136, 5, 'rw'))).toBe(true);
  });

  it('denying the wildcard mknod rule leaves mknod only where a specific rule allows it', () => {
    const rules = containerDeviceRules([rule('c', '*', '*', 'm', false), rule('b', '*', '*', 'm', false)]);
    expect(allows(rules, acc('b', 8, 0, 'm'))).toBe(false);
    expect(allows(rules, acc('c', 4, 1, 'm'))).toBe(false);
    expect(allows(rules, acc('c', 1, 3, 'm'))).toBe(true);
  });

  it('the later of an allow and a deny of the same device wins', () => {
    expect(
      allows(containerDeviceRules([rule('c', 4, 1, 'r', true), rule('c', 4, 1, 'r', false)]), acc('c', 4, 1, 'r')),
    ).toBe(false);
    expect(
      allows(containerDeviceRules([rule('c', 4, 1, 'r', false), rule('c', 4, 1, 'r', true)]), acc('c', 4, 1, 'r')),
    ).toBe(true);
  });

  it("an 'a' allow rule allows every device and drops the rules before it; an 'a' deny after it denies all again", () => {
    const all = containerDeviceRules([rule('a', '*', '*', 'rwm', true)]);
    expect(emulateDeviceRules(all)).toEqual({ defaultAllow: true, exceptions: [] });
    expect(compileDeviceFilter(all)).toHaveLength(8); // the context loads, then `return 1`
    expect(allows(all, acc('b', 8, 0, 'rw'))).toBe(true);
    const none = [...all, rule('a', '*', '*', 'rwm', false)];
    expect(allows(none, acc('c', 1, 3, 'r'))).toBe(false);
  });

  it('with an allow default, a deny rule denies an access that asks for any of its bits', () => {
    const rules = [rule('a', '*', '*', 'rwm', true), rule('b', '*', '*', 'rw', false), rule('c', 1, 3, 'w', false)];
    expect(allows(rules, acc('b', 8, 0, 'r'))).toBe(false);
    expect(allows(rules, acc('b', 8, 0, 'm'))).toBe(true);
    expect(allows(rules, acc('c', 1, 3, 'rw'))).toBe(false);
    expect(allows(rules, acc('c', 1, 3, 'r'))).toBe(true);
    expect(allows(rules, acc('c', 4, 1, 'rwm'))).toBe(true);
    // An allow rule then takes the denial back, for exactly those numbers.
    expect(allows([...rules, rule('c', 1, 3, 'w', true)], acc('c', 1, 3, 'rw'))).toBe(true);
  });

  it('agrees with the v1 check on random rule lists and accesses', () => {
    // A small seeded generator: the same cases every run.
    let seed = 0x2545f491;
    const next = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const pick = <T>(xs: readonly T[]): T => xs[next(xs.length)]!;
    const accesses = ['r', 'w', 'm', 'rw', 'rm', 'wm', 'rwm'];
    const numbers = [0, 1, 3, 7, 8, 4095];
    for (let round = 0; round < 300; round++) {
      const rules: DeviceRule[] = [];
      for (let i = next(8); i >= 0; i--) {
        const type = next(12) === 0 ? 'a' : pick(['b', 'c'] as const);
        rules.push(
          rule(
            type,
            next(3) === 0 ? '*' : pick(numbers),
            next(3) === 0 ? '*' : pick(numbers),
            pick(accesses),
            next(2) === 0,
          ),
        );
      }
      const state = emulateDeviceRules(rules);
      const program = encodeBpfInsns(compileDeviceFilter(rules));
      for (let j = 0; j < 20; j++) {
        const a = acc(pick(['b', 'c'] as const), pick(numbers), pick(numbers), pick(accesses));
        expect(run(program, a) === 1, `${JSON.stringify(rules)} ${JSON.stringify(a)}`).toBe(v1Allows(state, a));
      }
    }
  });
});

describe('device filter: the program', () => {
  it('is a straight run of forward jumps ending in exit, with every register written before it is read', () => {
    const program = encodeBpfInsns(compileDeviceFilter(containerDeviceRules()));
    expect(program.length % 8).toBe(0);
    // run() refuses anything else; one access that falls through every block reaches the end.
    expect(run(program, acc('b', 4095, 1048575, 'rwm'))).toBe(0);
    expect(program.readUInt8(program.length - 8)).toBe(BPF.JMP | BPF.EXIT);
  });

  it('is encoded as struct bpf_insn: code, dst in the low nibble and src in the high one, off, imm (little-endian)', () => {
    const bytes = encodeBpfInsns([
      { code: BPF.LDX | BPF.MEM | BPF.W, dst: 2, src: 1, off: 4, imm: 0 }, // r2 = *(u32 *)(r1 + 4)
      { code: BPF.JMP | BPF.JNE | BPF.K, dst: 0, src: 0, off: 3, imm: -2 }, // if r0 != -2 goto +3
    ]);
    expect(bytes.toString('hex')).toBe('6112040000000000' + '55000300feffffff');
  });

  it('uses the kernel access and type bits', () => {
    expect(accessBits('m')).toBe(BPF_DEVCG_ACC_MKNOD);
    expect(accessBits('r')).toBe(BPF_DEVCG_ACC_READ);
    expect(accessBits('w')).toBe(BPF_DEVCG_ACC_WRITE);
    expect(accessBits('rwm')).toBe(7);
  });
});

describe('device rules: validation', () => {
  it.each([
    [{ type: 'x' }, 'devices[0].type'],
    [{ major: 4096 }, 'devices[0].major'],
    [{ major: -1 }, 'devices[0].major'],
    [{ minor: 1.5 }, 'devices[0].minor'],
    [{ minor: 1 << 20 }, 'devices[0].minor'],
    [{ access: '' }, 'devices[0].access'],
    [{ access: 'rx' }, 'devices[0].access'],
    [{ access: 'rr' }, 'devices[0].access'],
    [{ allow: 'yes' }, 'devices[0].allow'],
  ])('refuses %j naming %s', (patch, field) => {
    const bad = { ...rule('c', 1, 3, 'rwm', true), ...patch } as unknown as DeviceRule;
    let caught: unknown;
    try {
      cgroupDeviceRules([bad]);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError);
    expect(caught).toMatchObject({ code: 'INVALID_ARGUMENT', field });
    expect(() => compileDeviceFilter([bad])).toThrow(InvalidArgumentError);
  });

  it('accepts the largest numbers the kernel encodes', () => {
    expect(() => cgroupDeviceRules([rule('b', 4095, 1048575, 'r', true)])).not.toThrow();
  });
});
