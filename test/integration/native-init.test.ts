/**
 * `berth-init` (`src/runtime/monitor/init.c`) on its own: odd or hostile plans fail cleanly,
 * with a failure report and no side effect; and which starts it serves (the rest fall back to a
 * forked JavaScript template, and only then does the zygote keep a pool of them).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Container } from '../../src/index.js';
import { networkService } from '../../src/network/network.js';
import { nativeBinary } from '../../src/runtime/monitor-binary.js';
import { NATIVE_PLAN_MAGIC } from '../../src/runtime/native-init.js';
import { CLONE_NEWNS, CLONE_NEWUTS } from '../../src/kernel/constants.js';
import { BUSYBOX_REF, INIT_PATHS, NO_NETWORK, testEngine, withInitPath } from '../helpers/engine.js';

/** Runs berth-init with `input` on its control pipe (fd 4); its report on the error pipe (fd 3), and its exit code. */
async function runInit(input: Buffer | undefined): Promise<{ code: number | null; report: string }> {
  const bin = await nativeBinary('init');
  const child = spawn(bin, [], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'], env: {} });
  let report = '';
  (child.stdio[3] as Readable).on('data', (d: Buffer) => (report += d.toString()));
  const ctrl = child.stdio[4] as Writable;
  ctrl.on('error', () => undefined);
  if (input) ctrl.write(input);
  ctrl.end();
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, report };
}

/** A framed plan of raw fields (the last one gets its NUL too). */
function framed(fields: string[], length?: number): Buffer {
  const body = Buffer.from(`${fields.join('\0')}\0`);
  const head = Buffer.alloc(4);
  head.writeUInt32LE(length ?? body.length, 0);
  return Buffer.concat([head, body]);
}

describe('berth-init with odd plans', () => {
  it('exits quietly when the control pipe closes without a plan', async () => {
    expect(await runInit(undefined)).toEqual({ code: 0, report: '' });
    expect(await runInit(Buffer.from([5, 0]))).toEqual({ code: 0, report: '' });
  });

  it.each([
    ['not a plan', framed(['{"spec":{}}']), /not a berth-init plan/],
    ['an unknown record', framed([NATIVE_PLAN_MAGIC, 'chroot', '/']), /unknown plan record chroot/],
    ['a record cut short', framed([NATIVE_PLAN_MAGIC, 'root', '/m']), /truncated plan/],
    [
      'a body without its final NUL',
      (() => {
        const b = framed([NATIVE_PLAN_MAGIC, 'host', 'h']);
        b[b.length - 1] = 0x41;
        return b;
      })(),
      /truncated plan/,
    ],
    ['a bad number', framed([NATIVE_PLAN_MAGIC, 'flags', '12x']), /bad number in plan/],
    [
      'a huge number',
      framed([NATIVE_PLAN_MAGIC, 'dev', '/dev/x', '99999999999999999999', '1', '438']),
      /bad number in plan/,
    ],
    ['no root', framed([NATIVE_PLAN_MAGIC, 'flags', '0']), /the plan has no root/],
    ['an oom_score_adj out of range', framed([NATIVE_PLAN_MAGIC, 'oom', '-1001']), /bad number in plan/],
    ['a resource limit of no resource', framed([NATIVE_PLAN_MAGIC, 'rlimit', '64', '1', '1']), /bad number in plan/],
    ['a resource limit below -1', framed([NATIVE_PLAN_MAGIC, 'rlimit', '7', '-2', '1']), /bad number in plan/],
    ['a length over the limit', framed([NATIVE_PLAN_MAGIC], 0x7fffffff), /plan too large/],
  ])('reports %s as a "read plan" failure', async (_what, input, message) => {
    const { code, report } = await runInit(input);
    expect(code).toBe(1);
    const failure = JSON.parse(report) as { step: string; kind: string; message: string; exitCode: number };
    expect(failure).toMatchObject({ step: 'read plan', kind: 'other', exitCode: 1 });
    expect(failure.message).toMatch(message);
  });

  it('reports a failed system call with its step, name and errno, in its own mount namespace', async () => {
    const flags = CLONE_NEWNS | CLONE_NEWUTS;
    const { code, report } = await runInit(
      framed([
        NATIVE_PLAN_MAGIC,
        'flags',
        String(flags),
        'root',
        '/nonexistent/berth-root',
        'lowerdir=/a,upperdir=/b,workdir=/c',
      ]),
    );
    expect(code).toBe(1);
    expect(JSON.parse(report)).toEqual({
      step: 'rootfs',
      kind: 'kernel',
      syscall: 'mount',
      errno: 2,
      exitCode: 1,
      message: 'rootfs: mount(overlay on /nonexistent/berth-root type overlay) failed',
    });
  });
});

describe('which init a start takes', () => {
  const templates = (pid: number) =>
    readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);

  it('berth-init on loopback, on the default bridge (wired by the zygote) and with a volume to copy up, with no pool of templates; a forked template for a plan over 1 MiB, and the pool from then on', async () => {
    const { engine } = await testEngine();
    const c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'cat /proc/1/cmdline; echo; ls /sys/class/net'], {
      ...NO_NETWORK,
      engine,
    });
    expect((await c.wait()).exitCode).toBe(0);
    expect(await c.logs()).toBe('sh\0-c\0cat /proc/1/cmdline; echo; ls /sys/class/net\0\nlo\n');
    await c.remove();
    const zygote = engine.zygote.pid!;
    expect(templates(zygote)).toEqual([]);
    // The default bridge: the zygote makes the network namespace and wires the veth pair from the host.
    const b = await Container.run(
      BUSYBOX_REF,
      ['sh', '-c', 'ip -o -4 addr show; ip route; cat /sys/class/net/eth0/operstate /sys/class/net/lo/operstate'],
      { engine },
    );
    expect((await b.wait()).exitCode).toBe(0);
    const info = await b.inspect();
    const net = Object.values(info.networkSettings.networks)[0]!;
    const out = await b.logs();
    expect(out).toMatch(/^\d+: lo +inet 127\.0\.0\.1\/8 /m);
    expect(out).toContain(`eth0    inet ${net.ipAddress} `);
    expect(out).toContain(`default via ${net.gateway} dev eth0`);
    expect(out).toMatch(/^up\nunknown\n$/m);
    await b.remove();
    expect(templates(zygote)).toEqual([]);
    // A new volume filled with the image's content: berth-init copies it up.
    const v = await Container.run(BUSYBOX_REF, ['grep', '-c', '^root:', '/etc/passwd'], {
      ...NO_NETWORK,
      engine,
      volumes: ['fresh:/etc'],
    });
    expect((await v.wait()).exitCode).toBe(0);
    expect(await v.logs()).toBe('1\n');
    await v.remove();
    expect(templates(zygote)).toEqual([]);
    // A plan over berth-init's 1 MiB (here its environment) takes a forked template, and the pool fills from then on.
    const env = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`BIG${i}`, 'x'.repeat(100_000)]));
    const big = await Container.run(BUSYBOX_REF, ['sh', '-c', 'echo ${#BIG11}'], { ...NO_NETWORK, engine, env });
    expect((await big.wait()).exitCode).toBe(0);
    expect(await big.logs()).toBe('100000\n');
    await big.remove();
    await expect.poll(() => templates(zygote).length).toBe(2);
  });

  it("berth-init for a detached container too, started by its monitor's parent", async () => {
    const { engine } = await testEngine();
    const c = await Container.create({
      image: BUSYBOX_REF,
      command: ['sh', '-c', 'echo out; echo err >&2; exit 3'],
      ...NO_NETWORK,
      engine,
      detach: true,
    });
    await c.start();
    expect(await c.wait()).toEqual({ exitCode: 3 });
    expect(await c.logs()).toBe('out\nerr\n');
    await c.remove();
    const zygote = engine.zygote.pid!;
    await expect.poll(() => templates(zygote)).toEqual([]);
  });

  it('a reaper as PID 1 named berth-init with init: true', async () => {
    const { engine } = await testEngine();
    const c = await Container.run(BUSYBOX_REF, ['cat', '/proc/1/cmdline'], { ...NO_NETWORK, engine, init: true });
    expect((await c.wait()).exitCode).toBe(0);
    expect(await c.logs()).toBe('berth-init\0');
    await c.remove();
  });
});

for (const path of INIT_PATHS)
  describe(`bridge networking on the ${path} init`, () => {
    withInitPath(path);

    it('wires eth0 with its address and default route, and a refused interface fails the start cleanly', async () => {
      const { engine } = await testEngine();
      const c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'ip -o -4 addr show dev eth0; ip route'], { engine });
      expect((await c.wait()).exitCode).toBe(0);
      const net = Object.values((await c.inspect()).networkSettings.networks)[0]!;
      expect(await c.logs()).toMatch(
        new RegExp(
          `eth0 +inet ${net.ipAddress.replace(/\./g, '\\.')} [^]*default via ${net.gateway.replace(/\./g, '\\.')} dev eth0`,
        ),
      );
      await c.remove();
      // The ports of this engine's bridge: the host ends of its containers' veth pairs.
      const bridge = (await networkService(engine).list()).find((n) => n.name === 'bridge')!.bridge;
      const ports = () => readdirSync(`/sys/class/net/${bridge}/brif`);
      await expect.poll(ports).toEqual([]);
      // The kernel refuses a multicast MAC for the veth pair: the start fails, and leaves no host end.
      const err = await Container.run(BUSYBOX_REF, ['true'], { engine, mac: '01:00:5e:00:00:01' }).catch(
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'KERNEL', message: expect.stringContaining('EADDRNOTAVAIL') });
      expect(
        readdirSync('/sys/class/net').filter((n) => n.startsWith('vb') && !existsSync(`/sys/class/net/${n}/master`)),
      ).toEqual([]);
      expect(ports()).toEqual([]);
      // run() removes a container that could not start.
      expect(await Container.list({ engine, all: true })).toEqual([]);
      // Detached: the fork that was to become its monitor goes too.
      const detached = await Container.run(BUSYBOX_REF, ['true'], {
        engine,
        mac: '01:00:5e:00:00:01',
        detach: true,
      }).catch((e: unknown) => e);
      expect(detached).toMatchObject({ code: 'KERNEL' });
      const zygote = engine.zygote.pid!;
      const children = () => readFileSync(`/proc/${zygote}/task/${zygote}/children`, 'utf8').trim();
      if (path === 'native') await expect.poll(children).toBe('');
      expect(ports()).toEqual([]);
    });
  });
