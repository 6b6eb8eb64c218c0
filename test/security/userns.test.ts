/**
 * `userns`: the container's root is an unprivileged host range. Real kernel (idmapped mounts),
 * native init; the JavaScript init refuses such a container.
 */
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Container, BerthError, type Engine } from '../../src/index.js';
import { AUTO_USERNS_BASE, AUTO_USERNS_SIZE } from '../../src/container/userns.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine, withInitPath } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';
import { runProbe } from './probe.js';

const MAP = {
  uidMap: [{ containerId: 0, hostId: 200000, size: 65536 }],
  gidMap: [{ containerId: 0, hostId: 300000, size: 65536 }],
};

/** Runs `sh -c script` in a busybox container and returns its exit code and output. */
async function sh(
  engine: Engine,
  script: string,
  options: Record<string, unknown> = {},
): Promise<{ exitCode: number; out: string }> {
  const c = await Container.run(BUSYBOX_REF, ['sh', '-c', script], { ...NO_NETWORK, ...options, engine });
  const { exitCode } = await c.wait();
  const out = await c.logs();
  await c.remove({ force: true });
  return { exitCode, out };
}

/** The `Uid:` and `Gid:` lines of /proc/PID/status, as the host sees them. */
function hostIds(pid: number): { uid: number[]; gid: number[] } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const ids = (key: string) =>
    /^(?:Uid|Gid):\s+(.*)$/m
      .exec(
        status
          .split('\n')
          .filter((l) => l.startsWith(key))
          .join('\n'),
      )![1]!
      .split(/\s+/)
      .map(Number);
  return { uid: ids('Uid:'), gid: ids('Gid:') };
}

describe('userns (native init)', () => {
  withInitPath('native');

  it('the container is root inside, its uid_map and gid_map show the mapping, and the image files are owned by root (0) inside', async () => {
    const { engine } = await testEngine();
    const r = await sh(
      engine,
      'id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; stat -c "%u:%g" /bin/busybox /etc/passwd /',
      { userns: MAP },
    );
    expect(r.exitCode).toBe(0);
    const lines = r.out
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/).join(' '));
    expect(lines).toEqual(['0', '0', '0 200000 65536', '0 300000 65536', '0:0', '0:0', '0:0']);
  });

  it('its capability sets (bounding, effective, inheritable, ambient) are those of a default container (joining the namespace reset them to full)', async () => {
    const { engine } = await testEngine();
    const caps = 'grep ^Cap /proc/self/status';
    const plain = await sh(engine, caps);
    expect(plain.out).toContain('CapBnd');
    expect(await sh(engine, caps, { userns: 'auto' })).toEqual(plain);
    expect(await sh(engine, caps, { userns: 'auto', user: 'nobody' })).toEqual(
      await sh(engine, caps, { user: 'nobody' }),
    );
  });

  it("from the host the container's process runs as the mapped host uid and gid", async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { ...NO_NETWORK, userns: MAP, engine });
    const { pid } = (await c.inspect()).state;
    expect(hostIds(pid)).toEqual({ uid: [200000, 200000, 200000, 200000], gid: [300000, 300000, 300000, 300000] });
    // A user of the image's maps too (nobody is 65534 inside).
    await using n = await Container.run(BUSYBOX_REF, ['sleep', '60'], {
      ...NO_NETWORK,
      userns: MAP,
      user: 'nobody',
      engine,
    });
    expect(hostIds((await n.inspect()).state.pid).uid[0]).toBe(200000 + 65534);
  });

  it('a file the container writes is stored with the ids it sees in its writable layer (commit stays right) and belongs to the mapped host id on a tmpfs', async () => {
    const { engine, root } = await testEngine();
    await using c = await Container.run(
      BUSYBOX_REF,
      ['sh', '-c', 'echo hi > /written; chown 1000:1000 /etc/passwd; echo x > /dev/shm/f; sleep 60'],
      { ...NO_NETWORK, userns: MAP, engine },
    );
    const info = await c.inspect();
    const upper = join(root, 'containers', info.id, 'upper');
    await expect
      .poll(() => {
        try {
          return statSync(`/proc/${info.state.pid}/root/dev/shm/f`).uid;
        } catch {
          return -1;
        }
      })
      .toBe(200000);
    expect(statSync(`/proc/${info.state.pid}/root/dev/shm/f`).gid).toBe(300000);
    const written = statSync(join(upper, 'written'));
    expect([written.uid, written.gid]).toEqual([0, 0]);
    const passwd = statSync(join(upper, 'etc', 'passwd'));
    expect([passwd.uid, passwd.gid]).toEqual([1000, 1000]);
    const r = await c.exec(['stat', '-c', '%u:%g', '/written', '/etc/passwd', '/dev/shm/f']);
    expect(r.stdout.trim().split('\n')).toEqual(['0:0', '1000:1000', '0:0']);
  });

  it("a volume is idmapped: the container's root writes it as root, stored as 0 on the host, with the image's content copied up with its owners", async () => {
    const { engine, root } = await testEngine();
    const r = await sh(engine, 'echo v > /etc/f && stat -c "%u:%g" /etc/f /etc /etc/passwd', {
      userns: 'auto',
      volumes: ['vol:/etc'],
    });
    expect(r).toEqual({ exitCode: 0, out: '0:0\n0:0\n0:0\n' });
    for (const name of ['f', 'passwd', '.']) {
      const f = statSync(join(root, 'volumes', 'vol', '_data', name));
      expect([f.uid, f.gid]).toEqual([0, 0]);
    }
  });

  it("the container's root cannot read a host file owned by host root with mode 0600 bound in; a default container can (the probe works)", async () => {
    const { engine } = await testEngine();
    const dir = tempDir('userns-secret');
    const secret = join(dir, 'secret');
    writeFileSync(secret, 'host secret\n');
    chmodSync(secret, 0o600);
    const mounts = [{ type: 'bind' as const, source: secret, target: '/secret', readOnly: false }];
    expect((await runProbe(engine, ['read', '/secret'], { userns: 'auto', mounts })).errno).toBe('EACCES');
    expect((await sh(engine, 'stat -c "%u:%g" /secret', { userns: 'auto', mounts })).out).toBe('65534:65534\n');
    expect((await runProbe(engine, ['read', '/secret'], { mounts })).output).toBe('ok\nhost secret\n');
  });

  it("two 'auto' containers get disjoint ranges from berth's pool; the range is recorded and freed on remove", async () => {
    const { engine } = await testEngine();
    const a = await Container.create({ image: BUSYBOX_REF, command: ['true'], ...NO_NETWORK, userns: 'auto', engine });
    const b = await Container.create({ image: BUSYBOX_REF, command: ['true'], ...NO_NETWORK, userns: 'auto', engine });
    const ra = (await a.inspect()).hostConfig.userns!;
    const rb = (await b.inspect()).hostConfig.userns!;
    expect(ra.uidMap).toEqual([{ containerId: 0, hostId: AUTO_USERNS_BASE, size: AUTO_USERNS_SIZE }]);
    expect(rb.uidMap).toEqual([
      { containerId: 0, hostId: AUTO_USERNS_BASE + AUTO_USERNS_SIZE, size: AUTO_USERNS_SIZE },
    ]);
    await a.remove();
    const c = await Container.create({ image: BUSYBOX_REF, command: ['true'], ...NO_NETWORK, userns: 'auto', engine });
    expect((await c.inspect()).hostConfig.userns).toEqual({ auto: true, uidMap: ra.uidMap, gidMap: ra.gidMap });
  });

  it("'auto' containers created at once by three processes on one root get distinct ranges (the allocation lock)", async () => {
    const { engine, root } = await testEngine();
    const index = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
    const script = `import { Container, Engine } from ${JSON.stringify(index)};
      import { existsSync, writeFileSync } from 'node:fs';
      const engine = new Engine({ root: ${JSON.stringify(root)}, runRoot: ${JSON.stringify(`${root}/run`)} });
      await engine.containers.list({ all: true }); // loaded and ready, then all at once:
      writeFileSync(${JSON.stringify(`${root}/ready-`)} + process.pid, '');
      while (!existsSync(${JSON.stringify(`${root}/go`)})) await new Promise((r) => setTimeout(r, 2));
      await Promise.all(Array.from({ length: 4 }, () => Container.create({ image: ${JSON.stringify(BUSYBOX_REF)}, command: ['true'], network: 'none', userns: 'auto', engine })));
      engine.close();`;
    const run = () =>
      new Promise<void>((resolve, reject) =>
        execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], (e) =>
          e ? reject(e) : resolve(),
        ),
      );
    const runs = [run(), run(), run()];
    await expect
      .poll(() => readdirSync(root).filter((f) => f.startsWith('ready-')).length, { timeout: 60_000 })
      .toBe(3);
    writeFileSync(`${root}/go`, '');
    await Promise.all(runs);
    const starts = (await engine.containers.list({ all: true })).map((r) => r.config.userns!.uidMap[0]!.hostId);
    expect(starts).toHaveLength(12);
    expect(new Set(starts).size).toBe(12);
  });

  it('a detached container with init: true and a read-only root runs mapped, and starts again mapped after it exits', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(
      BUSYBOX_REF,
      ['sh', '-c', 'cat /proc/self/uid_map; touch /x 2>/dev/null || echo read-only; sleep 60'],
      { ...NO_NETWORK, userns: MAP, detach: true, init: true, readOnlyRootfs: true, engine },
    );
    const { pid } = (await c.inspect()).state;
    expect(hostIds(pid).uid[0]).toBe(200000); // the reaper
    await expect.poll(async () => (await c.logs()).replace(/\s+/g, ' ').trim()).toBe('0 200000 65536 read-only');
    await c.kill('SIGKILL');
    await c.wait();
    await c.start();
    expect(hostIds((await c.inspect()).state.pid).uid[0]).toBe(200000);
  });

  it("exec runs in the container's user namespace, mapped, also with a terminal", async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { ...NO_NETWORK, userns: MAP, engine });
    const r = await c.exec(['sh', '-c', 'id -u; cat /proc/self/uid_map; cat /proc/1/status | grep ^Uid']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('0');
    expect(r.stdout.split('\n')[1]!.trim().split(/\s+/)).toEqual(['0', '200000', '65536']);
    await using plain = await Container.run(BUSYBOX_REF, ['sleep', '60'], { ...NO_NETWORK, engine });
    const caps = ['sh', '-c', 'grep ^Cap /proc/self/status'];
    expect((await c.exec(caps)).stdout).toBe((await plain.exec(caps)).stdout);
    const t = await c.exec(['sh', '-c', 'id -u; stat -c %u:%g $(tty)'], { tty: true, user: 'nobody' });
    expect(t.stdout.replace(/\r/g, '').trim().split('\n')).toEqual(['65534', '65534:5']);
  });

  it('root in the container listens on port 80 and pings (ICMP sockets) in its own network namespace', async () => {
    const { engine } = await testEngine();
    const r = await sh(engine, 'nc -l -p 80 & sleep 0.2; netstat -ltn | grep -q ":80 " && echo listening', {
      userns: 'auto',
    });
    expect(r.out).toBe('listening\n');
    expect((await runProbe(engine, ['icmp-socket'], { userns: 'auto' })).line).toBe('ok');
  });

  it('a container on the default bridge starts in its user namespace (the zygote wires its interface)', async () => {
    const { engine } = await testEngine();
    const r = await sh(engine, 'id -u; ip -4 addr show eth0 | grep -c inet', { network: 'bridge', userns: 'auto' });
    expect(r).toEqual({ exitCode: 0, out: '0\n1\n' });
  });

  it("with the host's network it starts mapped and leaves the host's sysctls alone", async () => {
    const { engine } = await testEngine();
    const sysctls = ['ip_unprivileged_port_start', 'ping_group_range'].map((n) => `/proc/sys/net/ipv4/${n}`);
    const before = sysctls.map((f) => readFileSync(f, 'utf8'));
    expect(await sh(engine, 'id -u', { network: 'host', userns: 'auto' })).toEqual({ exitCode: 0, out: '0\n' });
    expect(sysctls.map((f) => readFileSync(f, 'utf8'))).toEqual(before);
  });

  it('the program and an exec run mapped under the default seccomp filter, with their ulimits and oomScoreAdj', async () => {
    const { engine } = await testEngine();
    const script = 'grep ^Seccomp: /proc/self/status; cat /proc/self/oom_score_adj; ulimit -n; cat /proc/self/uid_map';
    await using c = await Container.run(BUSYBOX_REF, ['sh', '-c', `${script}; exec sleep 60`], {
      ...NO_NETWORK,
      userns: MAP,
      oomScoreAdj: 500,
      ulimits: ['nofile=321:654'],
      engine,
    });
    await expect.poll(() => c.logs().then((t) => t.includes('200000'))).toBe(true);
    const exec = await c.exec(['sh', '-c', script]);
    for (const out of [await c.logs(), exec.stdout]) {
      expect(
        out
          .split('\n')
          .map((l) => l.trim().split(/\s+/).join(' '))
          .slice(0, 4),
      ).toEqual(['Seccomp: 2', '500', '321', '0 200000 65536']);
    }
  });

  it('the capabilities it holds count only in its user namespace: with SYS_ADMIN it cannot mount, as it can without userns', async () => {
    const { engine } = await testEngine();
    expect((await runProbe(engine, ['mount'], { userns: 'auto', capAdd: ['SYS_ADMIN'] })).errno).toBe('EPERM');
    expect((await runProbe(engine, ['mount'], { capAdd: ['SYS_ADMIN'] })).line).toBe('ok');
    const r = await sh(engine, 'mknod /tmp/null c 1 3; echo mknod=$?; hostname x; echo hostname=$?', {
      userns: 'auto',
    });
    expect(r.out).toMatch(/mknod=[1-9]/);
    expect(r.out).toMatch(/hostname=[1-9]/);
    expect(await sh(engine, 'mknod /tmp/null c 1 3; echo mknod=$?')).toEqual({ exitCode: 0, out: 'mknod=0\n' });
  });
});

describe('userns refused', () => {
  it.each([
    [
      'zero size',
      { uidMap: [{ containerId: 0, hostId: 100000, size: 0 }], gidMap: MAP.gidMap },
      'userns.uidMap.0.size',
    ],
    [
      'overlapping ranges',
      {
        uidMap: [
          { containerId: 0, hostId: 100000, size: 10 },
          { containerId: 5, hostId: 200000, size: 10 },
        ],
        gidMap: MAP.gidMap,
      },
      'userns.uidMap',
    ],
    [
      'overlapping host ranges',
      {
        uidMap: MAP.uidMap,
        gidMap: [
          { containerId: 0, hostId: 100000, size: 10 },
          { containerId: 10, hostId: 100005, size: 10 },
        ],
      },
      'userns.gidMap',
    ],
    [
      'host root mapped',
      { uidMap: [{ containerId: 0, hostId: 0, size: 1 }], gidMap: MAP.gidMap },
      'userns.uidMap.0.hostId',
    ],
    [
      'container root unmapped',
      { uidMap: [{ containerId: 1, hostId: 100000, size: 10 }], gidMap: MAP.gidMap },
      'userns.uidMap',
    ],
    [
      'past the last id',
      { uidMap: [{ containerId: 0, hostId: 0xffff0000, size: 0x20000 }], gidMap: MAP.gidMap },
      'userns.uidMap.0.size',
    ],
    [
      'too many ranges',
      {
        uidMap: Array.from({ length: 341 }, (_, i) => ({ containerId: i, hostId: 100000 + i, size: 1 })),
        gidMap: MAP.gidMap,
      },
      'userns.uidMap',
    ],
    ['no gidMap', { uidMap: MAP.uidMap }, 'userns'],
    ['a word other than auto', 'host', 'userns'],
  ])('%s: INVALID_ARGUMENT naming the field, before anything is created', async (_what, userns, field) => {
    const { engine } = await testEngine();
    const err = await Container.create({
      image: BUSYBOX_REF,
      command: ['true'],
      userns: userns as never,
      engine,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BerthError);
    expect((err as BerthError).code).toBe('INVALID_ARGUMENT');
    expect((err as BerthError).message).toContain(field);
    expect(await Container.list({ all: true, engine })).toEqual([]);
  });

  it('with privileged: INVALID_ARGUMENT', async () => {
    const { engine } = await testEngine();
    const err = await Container.create({
      image: BUSYBOX_REF,
      command: ['true'],
      userns: 'auto',
      privileged: true,
      engine,
    }).catch((e: unknown) => e);
    expect((err as BerthError).code).toBe('INVALID_ARGUMENT');
    expect((err as BerthError).message).toContain('userns');
  });

  describe('on the JavaScript init', () => {
    withInitPath('js');
    it('a userns container is refused with UNSUPPORTED (only berth-init makes user namespaces)', async () => {
      const { engine } = await testEngine();
      const err = await Container.run(BUSYBOX_REF, ['true'], { ...NO_NETWORK, userns: 'auto', engine }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BerthError);
      expect((err as BerthError).code).toBe('UNSUPPORTED');
    });
  });
});
