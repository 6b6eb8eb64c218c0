import { describe, expect, it } from 'vitest';
import {
  BPF_MAXINSNS,
  compileSeccomp,
  parseSeccompProfile,
  SECCOMP_RET,
  seccompFilterHex,
  type SeccompArch,
  type SeccompProfile,
} from '../../src/runtime/seccomp/index.js';
import { SYSCALL_TABLES } from '../../src/runtime/seccomp/syscall-tables.js';
import { DEFAULT_CAPABILITIES } from '../../src/container/defaults.js';
import { DEFAULT_SECCOMP_PROFILE } from '../../src/container/seccomp-profile.js';

const AUDIT = { x86_64: 0xc000003e, x86: 0x40000003, aarch64: 0xc00000b7, arm: 0x40000028 } as const;
const X32_BIT = 0x40000000;

/**
 * A classic BPF interpreter for seccomp programs, as the kernel runs them: A, absolute word
 * loads from struct seccomp_data, AND, jumps, RET. It refuses anything else, a jump out of the
 * program, and a program that does not end in RET on every path.
 */
function evaluate(prog: Buffer, nr: number, arch: number, args: bigint[] = []): number {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(nr >>> 0, 0);
  data.writeUInt32LE(arch >>> 0, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  const n = prog.length / 8;
  let A = 0;
  let pc = 0;
  for (let steps = 0; steps < n + 1; steps++) {
    if (pc < 0 || pc >= n) throw new Error(`pc ${pc} out of the program`);
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog.readUInt8(pc * 8 + 2);
    const jf = prog.readUInt8(pc * 8 + 3);
    const k = prog.readUInt32LE(pc * 8 + 4);
    switch (code) {
      case 0x20:
        if (k % 4 || k > 60) throw new Error(`bad load offset ${k}`);
        A = data.readUInt32LE(k);
        pc++;
        break;
      case 0x54:
        A = (A & k) >>> 0;
        pc++;
        break;
      case 0x05:
        pc += 1 + k;
        break;
      case 0x15:
        pc += 1 + (A === k ? jt : jf);
        break;
      case 0x25:
        pc += 1 + (A > k ? jt : jf);
        break;
      case 0x35:
        pc += 1 + (A >= k ? jt : jf);
        break;
      case 0x06:
        return k;
      default:
        throw new Error(`unknown opcode ${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('no RET reached');
}

const ALLOW = SECCOMP_RET.ALLOW;
const EPERM = SECCOMP_RET.ERRNO | 1;
const ENOSYS = SECCOMP_RET.ERRNO | 38;
const KILL = SECCOMP_RET.KILL_PROCESS;

const nrOf = (table: keyof typeof SYSCALL_TABLES, name: string): number => {
  const nr = SYSCALL_TABLES[table][name];
  if (nr === undefined) throw new Error(`${name} not in the ${table} table`);
  return nr;
};

function defaultFor(arch: SeccompArch, capabilities: readonly string[] = DEFAULT_CAPABILITIES): Buffer {
  return compileSeccomp(DEFAULT_SECCOMP_PROFILE, { arch, capabilities, kernel: [6, 18] });
}

describe('seccomp: the default profile compiled for x86_64 and aarch64', () => {
  for (const arch of ['x86_64', 'aarch64'] as const) {
    const table = arch;
    const prog = defaultFor(arch);
    const call = (name: string, args: bigint[] = []) => evaluate(prog, nrOf(table, name), AUDIT[arch], args);

    it(`${arch}: ordinary calls are allowed`, () => {
      for (const name of [
        'read',
        'write',
        'openat',
        'close',
        'mmap',
        'execve',
        'exit_group',
        'futex',
        'clock_nanosleep',
        'getdents64',
        'capset',
        'setresuid',
        'prctl',
        'wait4',
        'rt_sigaction',
        'statx',
        'mkdirat',
        'ptrace',
      ]) {
        expect(call(name), name).toBe(ALLOW);
      }
    });

    it(`${arch}: calls Docker refuses without a capability fail with EPERM`, () => {
      for (const name of [
        'keyctl',
        'add_key',
        'request_key',
        'io_uring_setup',
        'perf_event_open',
        'bpf',
        'userfaultfd',
        'mount',
        'umount2',
        'kexec_load',
        'open_by_handle_at',
        'unshare',
        'setns',
        'init_module',
        'reboot',
        'pivot_root',
        'swapon',
        'acct',
        'settimeofday',
        'sethostname',
        'chroot',
      ]) {
        expect(call(name), name).toBe(name === 'chroot' ? ALLOW : EPERM); // CAP_SYS_CHROOT is a default capability
      }
    });

    it(`${arch}: clone is allowed without namespace flags, refused with CLONE_NEWUSER; clone3 fails with ENOSYS`, () => {
      expect(call('clone', [0x11n /* SIGCHLD */])).toBe(ALLOW);
      expect(call('clone', [0x01200011n /* fork(): CLONE_CHILD_SETTID|CLEARTID|SIGCHLD */])).toBe(ALLOW);
      expect(call('clone', [0x10000000n | 0x11n /* CLONE_NEWUSER */])).toBe(EPERM);
      expect(call('clone', [0x20000000n /* CLONE_NEWPID */])).toBe(EPERM);
      // The high half of the 64-bit register takes no part in the mask: a stray high bit changes nothing.
      expect(call('clone', [(1n << 40n) | 0x11n])).toBe(ALLOW);
      expect(call('clone3')).toBe(ENOSYS);
    });

    it(`${arch}: personality only with Docker's values; socket refuses AF_ALG and AF_VSOCK only`, () => {
      for (const v of [0n, 8n, 0x20000n, 0x20008n, 0xffffffffn])
        expect(call('personality', [v]), String(v)).toBe(ALLOW);
      for (const v of [0x0040000n /* ADDR_NO_RANDOMIZE */, 1n, 0x1_0000_0000n])
        expect(call('personality', [v]), String(v)).toBe(EPERM);
      for (const family of [1n, 2n, 10n, 16n, 17n, 39n, 41n, 44n])
        expect(call('socket', [family]), String(family)).toBe(ALLOW);
      expect(call('socket', [38n])).toBe(EPERM);
      expect(call('socket', [40n])).toBe(EPERM);
      // 2^32 + 2 is not AF_INET: the high half counts.
      expect(call('socket', [(1n << 32n) + 40n])).toBe(ALLOW); // > 40 as a 64-bit number, as libseccomp compares
    });

    it(`${arch}: capabilities open their groups, as Docker's includes.caps and excludes.caps`, () => {
      const admin = defaultFor(arch, [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN']);
      const ca = (name: string, args: bigint[] = []) => evaluate(admin, nrOf(table, name), AUDIT[arch], args);
      expect(ca('mount')).toBe(ALLOW);
      expect(ca('unshare')).toBe(ALLOW);
      expect(ca('clone', [0x10000011n])).toBe(ALLOW);
      expect(ca('clone3')).toBe(ALLOW);
      expect(ca('bpf')).toBe(ALLOW);
      expect(ca('keyctl')).toBe(EPERM); // no capability opens the keyrings
      const none = defaultFor(arch, []);
      expect(evaluate(none, nrOf(table, 'chroot'), AUDIT[arch])).toBe(EPERM);
      const dac = defaultFor(arch, ['CAP_DAC_READ_SEARCH']);
      expect(evaluate(dac, nrOf(table, 'open_by_handle_at'), AUDIT[arch])).toBe(ALLOW);
    });

    it(`${arch}: a call number above every known one fails with ENOSYS; another architecture is killed`, () => {
      const max = Math.max(...Object.values(SYSCALL_TABLES[table]));
      expect(evaluate(prog, max + 1, AUDIT[arch])).toBe(ENOSYS);
      expect(evaluate(prog, 0xffffffff, AUDIT[arch])).toBe(ENOSYS);
      expect(evaluate(prog, nrOf(table, 'read'), AUDIT[arch === 'x86_64' ? 'aarch64' : 'x86_64'])).toBe(KILL);
      expect(evaluate(prog, 3, AUDIT.arm)).toBe(KILL);
    });

    it(`${arch}: every number decides as the profile says (checked against the rules for all of the table)`, () => {
      const allowed = new Set(DEFAULT_SECCOMP_PROFILE.syscalls![0]!.names!);
      for (const [name, nr] of Object.entries(SYSCALL_TABLES[table])) {
        if (allowed.has(name)) expect(evaluate(prog, nr, AUDIT[arch], [0n]), name).toBe(ALLOW);
      }
    });
  }

  it('x86_64: i386 compat calls are filtered with the i386 numbers, x32 calls with the x32 ones', () => {
    const prog = defaultFor('x86_64');
    expect(evaluate(prog, nrOf('x86', 'read'), AUDIT.x86)).toBe(ALLOW);
    expect(evaluate(prog, nrOf('x86', 'socketcall'), AUDIT.x86)).toBe(ALLOW);
    expect(evaluate(prog, nrOf('x86', 'keyctl'), AUDIT.x86)).toBe(EPERM);
    expect(evaluate(prog, nrOf('x86', 'mount'), AUDIT.x86)).toBe(EPERM);
    expect(evaluate(prog, nrOf('x86', 'personality'), AUDIT.x86, [8n])).toBe(ALLOW);
    expect(evaluate(prog, nrOf('x86', 'personality'), AUDIT.x86, [0x40000n])).toBe(EPERM);
    expect(evaluate(prog, nrOf('x86', 'clone'), AUDIT.x86, [0x10000011n])).toBe(EPERM);
    expect(evaluate(prog, nrOf('x86', 'clone'), AUDIT.x86, [0x11n])).toBe(ALLOW);
    // i386's numbers are not x86_64's: 288 is keyctl there (refused above), accept4 here.
    expect(nrOf('x86_64', 'accept4')).toBe(nrOf('x86', 'keyctl'));
    expect(evaluate(prog, nrOf('x86_64', 'accept4'), AUDIT.x86_64)).toBe(ALLOW);
    // includes.arches is decided on the native architecture (Go's amd64), as Docker does.
    expect(evaluate(prog, nrOf('x86', 'arch_prctl'), AUDIT.x86)).toBe(ALLOW);
    expect(evaluate(prog, nrOf('x32', 'read'), AUDIT.x86_64)).toBe(ALLOW);
    expect(evaluate(prog, nrOf('x32', 'keyctl'), AUDIT.x86_64)).toBe(EPERM);
    expect(evaluate(prog, X32_BIT | 13 /* x86_64's rt_sigaction, not an x32 call */, AUDIT.x86_64)).toBe(EPERM);
    // A profile without x32 kills x32 calls.
    const noX32 = compileSeccomp(
      { ...DEFAULT_SECCOMP_PROFILE, archMap: null, architectures: ['SCMP_ARCH_X86_64'] },
      { arch: 'x86_64', capabilities: [] },
    );
    expect(evaluate(noX32, nrOf('x32', 'read'), AUDIT.x86_64)).toBe(KILL);
    expect(evaluate(noX32, nrOf('x86', 'read'), AUDIT.x86)).toBe(KILL);
    expect(evaluate(noX32, nrOf('x86_64', 'read'), AUDIT.x86_64)).toBe(ALLOW);
  });

  it('is small: a binary search, far under BPF_MAXINSNS, with a short path for any call', () => {
    for (const arch of ['x86_64', 'aarch64'] as const) {
      const prog = defaultFor(arch);
      expect(prog.length / 8).toBeLessThan(BPF_MAXINSNS / 4);
    }
    // The longest path: count the instructions executed for every number.
    const prog = defaultFor('x86_64');
    let longest = 0;
    const counting = (nr: number) => {
      let steps = 0;
      const copy = Buffer.from(prog);
      // Re-run the interpreter counting steps by truncating: simpler to count jumps taken.
      let pc = 0;
      const data = Buffer.alloc(64);
      data.writeUInt32LE(nr, 0);
      data.writeUInt32LE(AUDIT.x86_64, 4);
      let A = 0;
      for (;;) {
        steps++;
        const code = copy.readUInt16LE(pc * 8),
          jt = copy[pc * 8 + 2]!,
          jf = copy[pc * 8 + 3]!,
          k = copy.readUInt32LE(pc * 8 + 4);
        if (code === 0x06) return steps;
        if (code === 0x20) {
          A = data.readUInt32LE(k);
          pc++;
        } else if (code === 0x54) {
          A = (A & k) >>> 0;
          pc++;
        } else if (code === 0x05) pc += 1 + k;
        else pc += 1 + ((code === 0x15 ? A === k : code === 0x25 ? A > k : A >= k) ? jt : jf);
      }
    };
    for (let nr = 0; nr < 460; nr++) longest = Math.max(longest, counting(nr));
    expect(longest).toBeLessThan(30);
  });
});

describe('seccomp: custom profiles', () => {
  const arch = 'x86_64' as const;
  const run = (p: SeccompProfile, name: string, args: bigint[] = [], caps: string[] = []) =>
    evaluate(compileSeccomp(p, { arch, capabilities: caps }), nrOf(arch, name), AUDIT[arch], args);

  it('a deny-list profile: the default allows, a named call fails with its errnoRet', () => {
    const p = parseSeccompProfile(
      JSON.stringify({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
      }),
    );
    expect(run(p, 'mkdirat')).toBe(SECCOMP_RET.ERRNO | 13);
    expect(run(p, 'mkdir')).toBe(SECCOMP_RET.ERRNO | 13);
    expect(run(p, 'read')).toBe(ALLOW);
    // With an allowing default, newer calls are allowed too (no ENOSYS).
    expect(evaluate(compileSeccomp(p, { arch, capabilities: [] }), 1000, AUDIT[arch])).toBe(ALLOW);
  });

  it('every action maps to its SECCOMP_RET value; unknown names are skipped', () => {
    const p = parseSeccompProfile({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['read', 'no_such_call'], action: 'SCMP_ACT_ALLOW' },
        { names: ['write'], action: 'SCMP_ACT_KILL' },
        { names: ['open'], action: 'SCMP_ACT_KILL_PROCESS' },
        { names: ['close'], action: 'SCMP_ACT_KILL_THREAD' },
        { names: ['stat'], action: 'SCMP_ACT_TRAP' },
        { names: ['fstat'], action: 'SCMP_ACT_TRACE', errnoRet: 7 },
        { names: ['lstat'], action: 'SCMP_ACT_LOG' },
        { name: 'poll', action: 'SCMP_ACT_ERRNO', errnoRet: 22 },
      ],
    });
    expect(run(p, 'read')).toBe(ALLOW);
    expect(run(p, 'write')).toBe(SECCOMP_RET.KILL_THREAD);
    expect(run(p, 'open')).toBe(SECCOMP_RET.KILL_PROCESS);
    expect(run(p, 'close')).toBe(SECCOMP_RET.KILL_THREAD);
    expect(run(p, 'stat')).toBe(SECCOMP_RET.TRAP);
    expect(run(p, 'fstat')).toBe(SECCOMP_RET.TRACE | 7);
    expect(run(p, 'lstat')).toBe(SECCOMP_RET.LOG);
    expect(run(p, 'poll')).toBe(SECCOMP_RET.ERRNO | 22);
    expect(run(p, 'mmap')).toBe(EPERM); // the default errno without defaultErrnoRet
  });

  it('64-bit comparisons: every operator on both halves', () => {
    const big = 0x1_0000_0005n;
    const profileFor = (op: string, value: bigint, valueTwo?: bigint) =>
      parseSeccompProfile({
        defaultAction: 'SCMP_ACT_ERRNO',
        defaultErrnoRet: 1,
        syscalls: [
          {
            names: ['ioctl'],
            action: 'SCMP_ACT_ALLOW',
            args: [
              { index: 1, value: Number(value), ...(valueTwo !== undefined ? { valueTwo: Number(valueTwo) } : {}), op },
            ],
          },
        ],
      });
    const cases: Array<[string, (a: bigint) => boolean]> = [
      ['SCMP_CMP_EQ', (a) => a === big],
      ['SCMP_CMP_NE', (a) => a !== big],
      ['SCMP_CMP_LT', (a) => a < big],
      ['SCMP_CMP_LE', (a) => a <= big],
      ['SCMP_CMP_GT', (a) => a > big],
      ['SCMP_CMP_GE', (a) => a >= big],
    ];
    const samples = [
      0n,
      5n,
      6n,
      4n,
      big,
      big - 1n,
      big + 1n,
      0x2_0000_0000n,
      0x0_ffff_ffffn,
      0x1_0000_0000n,
      0xffff_ffff_ffff_ffffn,
    ];
    for (const [op, expected] of cases) {
      const prog = compileSeccomp(profileFor(op, big), { arch, capabilities: [] });
      for (const a of samples)
        expect(evaluate(prog, nrOf(arch, 'ioctl'), AUDIT[arch], [0n, a]), `${op} ${a}`).toBe(
          expected(a) ? ALLOW : EPERM,
        );
    }
    const masked = compileSeccomp(profileFor('SCMP_CMP_MASKED_EQ', 0xf_0000_00f0n, 0x1_0000_0010n), {
      arch,
      capabilities: [],
    });
    for (const a of samples.concat([0x1_0000_0010n, 0x1_ffff_ff1fn, 0x0_0000_0010n])) {
      expect(evaluate(masked, nrOf(arch, 'ioctl'), AUDIT[arch], [0n, a]), `masked ${a}`).toBe(
        (a & 0xf_0000_00f0n) === 0x1_0000_0010n ? ALLOW : EPERM,
      );
    }
  });

  it('conditions on different arguments must all hold; on the same argument any may (as runc adds them)', () => {
    const p = parseSeccompProfile({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        {
          names: ['ioctl'],
          action: 'SCMP_ACT_ALLOW',
          args: [
            { index: 0, value: 1, op: 'SCMP_CMP_EQ' },
            { index: 1, value: 2, op: 'SCMP_CMP_EQ' },
          ],
        },
        {
          names: ['fcntl'],
          action: 'SCMP_ACT_ALLOW',
          args: [
            { index: 1, value: 1, op: 'SCMP_CMP_EQ' },
            { index: 1, value: 3, op: 'SCMP_CMP_EQ' },
          ],
        },
      ],
    });
    expect(run(p, 'ioctl', [1n, 2n])).toBe(ALLOW);
    expect(run(p, 'ioctl', [1n, 3n])).toBe(EPERM);
    expect(run(p, 'ioctl', [0n, 2n])).toBe(EPERM);
    expect(run(p, 'fcntl', [0n, 1n])).toBe(ALLOW);
    expect(run(p, 'fcntl', [0n, 3n])).toBe(ALLOW);
    expect(run(p, 'fcntl', [0n, 2n])).toBe(EPERM);
  });

  it('includes and excludes: capabilities, Go architecture names, minimum kernel', () => {
    const p = parseSeccompProfile({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'] } },
        { names: ['read'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
        { names: ['write'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
        { names: ['close'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '99.0' } },
        { names: ['open'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['CAP_KILL'] } },
      ],
    });
    expect(run(p, 'mount', [], ['CAP_SYS_ADMIN'])).toBe(EPERM);
    expect(run(p, 'mount', [], ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'])).toBe(ALLOW);
    expect(run(p, 'read')).toBe(ALLOW);
    expect(run(p, 'write')).toBe(EPERM);
    expect(run(p, 'close')).toBe(EPERM);
    expect(run(p, 'open')).toBe(ALLOW);
    expect(run(p, 'open', [], ['CAP_KILL'])).toBe(EPERM);
  });

  it('a rule without conditions decides over conditional ones of the same call', () => {
    const p = parseSeccompProfile({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['ioctl'], action: 'SCMP_ACT_ERRNO', errnoRet: 5, args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] },
        { names: ['ioctl'], action: 'SCMP_ACT_ALLOW' },
      ],
    });
    expect(run(p, 'ioctl', [1n])).toBe(ALLOW);
  });

  it('a long program still reaches every rule: far jumps go through trampolines', () => {
    const names = Object.keys(SYSCALL_TABLES.x86_64).slice(0, 300);
    const p = parseSeccompProfile({
      defaultAction: 'SCMP_ACT_KILL_PROCESS',
      syscalls: names.map((name, i) => ({
        names: [name],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: (i % 200) + 1,
        args: [
          { index: 2, value: i, op: 'SCMP_CMP_EQ' },
          { index: 3, value: i + 7, op: 'SCMP_CMP_GE' },
        ],
      })),
    });
    const prog = compileSeccomp(p, { arch, capabilities: [] });
    expect(prog.length / 8).toBeGreaterThan(1000);
    names.forEach((name, i) => {
      expect(run(p, name, [0n, 0n, BigInt(i), BigInt(i + 7)]), name).toBe(SECCOMP_RET.ERRNO | ((i % 200) + 1));
      expect(run(p, name, [0n, 0n, BigInt(i), BigInt(i + 6)]), name).toBe(SECCOMP_RET.KILL_PROCESS);
    });
  });

  it("refuses a profile that does not fit the kernel's limit", () => {
    const names = Object.keys(SYSCALL_TABLES.x86_64);
    const p = parseSeccompProfile({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: names.flatMap((name) =>
        Array.from({ length: 3 }, (_, i) => ({
          names: [name],
          action: 'SCMP_ACT_ALLOW',
          args: [
            { index: 0, value: i, op: 'SCMP_CMP_EQ' },
            { index: 1, value: i, op: 'SCMP_CMP_EQ' },
          ],
        })),
      ),
    });
    expect(() => compileSeccomp(p, { arch, capabilities: [] })).toThrow(/more than the kernel's 4096/);
  });

  it('parseSeccompProfile names the bad field', () => {
    expect(() => parseSeccompProfile('{')).toThrow(/not valid JSON/);
    expect(() => parseSeccompProfile({ defaultAction: 'SCMP_ACT_NOPE' })).toThrow(/defaultAction/);
    expect(() =>
      parseSeccompProfile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'X' }] }),
    ).toThrow(/syscalls\.0\.action/);
    expect(() =>
      parseSeccompProfile({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }],
      }),
    ).toThrow(/syscalls\.0\.args\.0\.index/);
    expect(() =>
      parseSeccompProfile({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_ABOUT' }] }],
      }),
    ).toThrow(/op/);
    expect(() =>
      parseSeccompProfile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ action: 'SCMP_ACT_ALLOW' }] }),
    ).toThrow(/names/);
    expect(() =>
      parseSeccompProfile({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_NOPE'] } }],
      }),
    ).toThrow(/caps/);
  });

  it('seccompFilterHex caches by profile, architecture and capabilities', () => {
    const hex = (capabilities: readonly string[], on: SeccompArch = arch) =>
      seccompFilterHex(DEFAULT_SECCOMP_PROFILE, { arch: on, capabilities });
    const a = hex(DEFAULT_CAPABILITIES);
    expect(hex([...DEFAULT_CAPABILITIES].reverse())).toBe(a);
    const compiled = compileSeccomp(DEFAULT_SECCOMP_PROFILE, { arch, capabilities: DEFAULT_CAPABILITIES });
    expect(Buffer.from(a, 'hex').equals(compiled)).toBe(true);
    expect(hex([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'])).not.toBe(a);
    expect(hex(DEFAULT_CAPABILITIES, 'aarch64')).not.toBe(a);
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) hex(DEFAULT_CAPABILITIES);
    expect((performance.now() - t0) / 1000).toBeLessThan(0.05); // ms per cached lookup
  });
});
