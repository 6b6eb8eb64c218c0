/**
 * cgroup v2 device rules on the real kernel: the {@link V2Driver} attaches the BPF device program
 * built from Docker's default rules to a real cgroup2 directory, and a real process moved into it
 * (its pid written to `cgroup.procs`) runs the escape suite's probe: mknod a node for a host block
 * device (a loop device backed by a temp file, attached for the test) and read it. It must fail
 * with EPERM under the program and succeed without one (which proves the probe), and a rule
 * allowing that device must let it read, and only read.
 *
 * Runs wherever a cgroup2 hierarchy is mounted: on a hybrid machine (v1 controllers and an empty
 * `unified` hierarchy, as here) BPF device programs work on any cgroup2 directory; on a v2 machine
 * this is the hierarchy containers use. The cgroups are made under a parent of this test's own
 * (`devtest-<pid>`), and removed after each test, also when it fails; none may be left.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { KernelError } from '../../src/errors.js';
import {
  BPF,
  BPF_CGROUP_DEVICE,
  BPF_F_ALLOW_MULTI,
  BPF_PROG_TYPE_CGROUP_DEVICE,
  bpfProgAttach,
  bpfProgLoad,
  bpfProgQuery,
  type BpfInsn,
} from '../../src/kernel/bpf.js';
import { close, open } from '../../src/kernel/fd.js';
import { detectCgroups, V2Driver, type CgroupCreateOptions, type DeviceRule } from '../../src/runtime/cgroups/index.js';
import { containerCgroupOptions, DEFAULT_DEVICE_RULES } from '../../src/container/defaults.js';
import { parseProbe, probeBinary, type ProbeResult } from '../security/probe.js';
import { tempDir } from '../helpers/tmp.js';
import { attachTestLoopDevice, type TestLoopDevice } from '../helpers/loop-device.js';

const layout = detectCgroups();
const usable = layout.v2Mount !== undefined && process.getuid?.() === 0 && existsSync('/dev/loop-control');
if (!usable) console.warn('skipping cgroup v2 device tests: needs root, a cgroup2 mount and loop devices');

const parent = `devtest-${process.pid}`;
const driver = usable ? new V2Driver({ layout, parent }) : undefined;
const made = new Set<string>();
let seq = 0;

/** The host block device the probe goes for: a loop device holding 64 KiB of a temp file. */
let loop: TestLoopDevice | undefined;

beforeAll(() => {
  if (usable) loop = attachTestLoopDevice();
});

afterAll(async () => {
  await loop?.release();
});

afterEach(async () => {
  let failure: unknown;
  for (const id of [...made]) {
    made.delete(id);
    try {
      await driver!.destroy(id);
      expect(existsSync(driver!.paths(id)[0]!), `cgroup ${id} left behind`).toBe(false);
    } catch (e) {
      failure ??= e;
    }
  }
  await driver?.removeParent();
  if (driver) expect(existsSync(join(layout.v2Mount!, parent)), 'parent cgroup left behind').toBe(false);
  if (failure) throw failure;
});

/** Makes a container cgroup with `options` (the device rules; Docker's by default) through the v2 driver. */
async function cgroup(
  options: CgroupCreateOptions = containerCgroupOptions(false),
): Promise<{ id: string; dir: string; procs: string }> {
  const id = `c${++seq}`;
  made.add(id);
  const { paths, procsFiles } = await driver!.create(id, {}, options);
  return { id, dir: paths[0]!, procs: procsFiles[0]! };
}

/**
 * A directory for device nodes on a file system that honours them (not `nodev`): a temp dir,
 * unless the temp dir's mount is `nodev` (a tmpfs `/tmp`), then one under `/dev`.
 */
function nodeDir(): string {
  const dir = tempDir('devtest-nodes');
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '));
  const mount = mounts
    .filter((f) => dir === f[4] || dir.startsWith(`${f[4] === '/' ? '' : f[4]}/`))
    .sort((a, b) => b[4]!.length - a[4]!.length)[0];
  if (!mount || !mount[5]!.split(',').includes('nodev')) return dir;
  const dev = mkdtempSync('/dev/berth-devtest-');
  onTestFinished(() => rmSync(dev, { recursive: true, force: true }));
  return dev;
}

/** Runs `probe ...args` in the cgroup: started waiting, moved in through `procs`, then let go. */
async function probeIn(procs: string, dir: string, args: string[]): Promise<ProbeResult> {
  const child = spawn('/bin/busybox', ['sh', '-c', 'read _go; exec "$@"', 'sh', probeBinary(), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) =>
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1))),
  );
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    writeFileSync(procs, String(child.pid));
    const where = readFileSync(`/proc/${child.pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    expect(where, 'the probe is in the cgroup').toBe(`0::${dir.slice(layout.v2Mount!.length)}`);
    child.stdin!.end('go\n');
    return parseProbe(await exited, out);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** The programs attached to a cgroup directory itself. */
function attached(dir: string): { attachFlags: number; ids: number[] } {
  const fd = open(dir, 0);
  try {
    return bpfProgQuery(fd, BPF_CGROUP_DEVICE, dir);
  } finally {
    close(fd);
  }
}

const mknodRead = (nodes: string, name: string, type: 'b' | 'c', major: number, minor: number): string[] => [
  'mknod-read-at',
  join(nodes, name),
  type,
  String(major),
  String(minor),
];

describe.skipIf(!usable)('cgroup v2 device rules (BPF) on the real kernel', () => {
  it('without a device program (privileged), a process in the cgroup opens and reads a host block device: the probe works', async () => {
    const { dir, procs } = await cgroup(containerCgroupOptions(true));
    expect(attached(dir).ids).toEqual([]);
    const r = await probeIn(procs, dir, mknodRead(nodeDir(), 'disk', 'b', loop!.major, loop!.minor));
    expect(r.line).toBe('ok read 512');
  });

  it("under Docker's default rules, a process may mknod a host block device but opening it fails with EPERM", async () => {
    const { dir, procs } = await cgroup();
    expect(attached(dir)).toMatchObject({ attachFlags: BPF_F_ALLOW_MULTI, ids: [expect.any(Number)] });
    const r = await probeIn(procs, dir, mknodRead(nodeDir(), 'disk', 'b', loop!.major, loop!.minor));
    expect(r.line).toBe('err EPERM open');
  });

  it("under Docker's default rules, the character devices of the list open: /dev/null, /dev/zero, /dev/urandom, the host's /dev/null", async () => {
    const { dir, procs } = await cgroup();
    const nodes = nodeDir();
    expect((await probeIn(procs, dir, mknodRead(nodes, 'null', 'c', 1, 3))).line).toBe('ok read 0');
    expect((await probeIn(procs, dir, mknodRead(nodes, 'zero', 'c', 1, 5))).line).toBe('ok read 512');
    expect((await probeIn(procs, dir, mknodRead(nodes, 'urandom', 'c', 1, 9))).line).toBe('ok read 512');
    expect((await probeIn(procs, dir, ['read', '/dev/null'])).line).toBe('ok');
    // …and one that is not on it does not: /dev/kmsg.
    expect((await probeIn(procs, dir, mknodRead(nodes, 'kmsg', 'c', 1, 11))).line).toBe('err EPERM open');
  });

  it('a rule allowing the block device read-only lets the process read it, and not open it for writing', async () => {
    const allowRead: DeviceRule = { type: 'b', major: loop!.major, minor: loop!.minor, access: 'r', allow: true };
    const { dir, procs } = await cgroup({ devices: [...DEFAULT_DEVICE_RULES, allowRead] });
    const nodes = nodeDir();
    expect((await probeIn(procs, dir, mknodRead(nodes, 'disk', 'b', loop!.major, loop!.minor))).line).toBe(
      'ok read 512',
    );
    // open(O_WRONLY) and write nothing: the loop device's backing file is this test's own.
    expect((await probeIn(procs, dir, ['open-write', join(nodes, 'disk')])).line).toBe('err EPERM open(O_WRONLY)');
  });

  it('making the cgroup again replaces its program rather than adding one: the new rules alone decide', async () => {
    const { id, dir, procs } = await cgroup();
    const nodes = nodeDir();
    const args = mknodRead(nodes, 'disk', 'b', loop!.major, loop!.minor);
    expect((await probeIn(procs, dir, args)).line).toBe('err EPERM open');
    const before = attached(dir).ids;
    const allowRead: DeviceRule = { type: 'b', major: loop!.major, minor: loop!.minor, access: 'r', allow: true };
    await driver!.create(id, {}, { devices: [...DEFAULT_DEVICE_RULES, allowRead] });
    const after = attached(dir).ids;
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
    expect((await probeIn(procs, dir, args)).line).toBe('ok read 512');
    await driver!.create(id, {}, containerCgroupOptions(true));
    expect(attached(dir).ids).toEqual([]);
  });

  it("a program a process attaches to a child cgroup cannot lift the container's rules (BPF_F_ALLOW_MULTI: every level must allow)", async () => {
    const { dir } = await cgroup();
    const child = join(dir, 'nested');
    mkdirSync(child);
    const allowAll: BpfInsn[] = [
      { code: BPF.ALU | BPF.MOV | BPF.K, dst: 0, src: 0, off: 0, imm: 1 },
      { code: BPF.JMP | BPF.EXIT, dst: 0, src: 0, off: 0, imm: 0 },
    ];
    const prog = bpfProgLoad({ type: BPF_PROG_TYPE_CGROUP_DEVICE, insns: allowAll, license: 'Apache-2.0' });
    const fd = open(child, 0);
    try {
      bpfProgAttach(fd, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, 0, child);
    } finally {
      close(fd);
      close(prog);
    }
    expect(attached(child).ids).toHaveLength(1);
    const r = await probeIn(
      join(child, 'cgroup.procs'),
      child,
      mknodRead(nodeDir(), 'disk', 'b', loop!.major, loop!.minor),
    );
    expect(r.line).toBe('err EPERM open');
  });
});

describe.skipIf(!usable)('bpf(2) kernel bindings', () => {
  it("a program the verifier refuses fails with a KernelError carrying the verifier's reason", () => {
    const noVerdict: BpfInsn[] = [{ code: BPF.JMP | BPF.EXIT, dst: 0, src: 0, off: 0, imm: 0 }]; // r0 never set
    let caught: unknown;
    try {
      bpfProgLoad({ type: BPF_PROG_TYPE_CGROUP_DEVICE, insns: noVerdict, license: 'Apache-2.0' });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(KernelError);
    expect(caught).toMatchObject({
      syscall: 'bpf',
      errnoCode: 'EACCES',
      message: expect.stringContaining('R0 !read_ok'),
    });
  });

  it('attaching to something that is not a cgroup directory fails with EBADF, naming it', () => {
    const prog = bpfProgLoad({
      type: BPF_PROG_TYPE_CGROUP_DEVICE,
      insns: [
        { code: BPF.ALU | BPF.MOV | BPF.K, dst: 0, src: 0, off: 0, imm: 1 },
        { code: BPF.JMP | BPF.EXIT, dst: 0, src: 0, off: 0, imm: 0 },
      ],
      license: 'Apache-2.0',
    });
    const dir = tempDir('devtest-notcg');
    const fd = open(dir, 0);
    let caught: unknown;
    try {
      bpfProgAttach(fd, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, 0, dir);
    } catch (e) {
      caught = e;
    } finally {
      close(fd);
      close(prog);
    }
    expect(caught).toBeInstanceOf(KernelError);
    expect(caught).toMatchObject({
      errnoCode: 'EBADF',
      path: dir,
      message: expect.stringContaining('BPF_PROG_ATTACH'),
    });
  });
});
