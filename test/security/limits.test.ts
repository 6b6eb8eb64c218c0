/**
 * Per-container kernel limits on the real kernel, both inits and both exec paths: `ulimits`
 * (resource limits, never above the engine's own), namespaced `sysctls` (the host's values
 * untouched), `oomScoreAdj`, and the container's own cgroup, read-only at /sys/fs/cgroup, where a
 * program reads its limits.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Container, type Engine } from '../../src/index.js';
import { getrlimit } from '../../src/kernel/process.js';
import { RLIMITS, RLIM_INFINITY } from '../../src/kernel/constants.js';
import { capget } from '../../src/kernel/process.js';
import { CAPABILITIES } from '../../src/runtime/capabilities.js';
import { createCgroupDriver } from '../../src/runtime/cgroups/index.js';
import { BUSYBOX_REF, INIT_PATHS, NO_NETWORK, testEngine, withExecPath, withInitPath } from '../helpers/engine.js';

/** Runs `script` in a container that then sleeps; returns its output and the same script's output in an exec. */
async function inAndExec(
  engine: Engine,
  script: string,
  options: Record<string, unknown> = {},
): Promise<{ run: string; exec: string }> {
  const c = await Container.run(BUSYBOX_REF, ['sh', '-c', `${script}; echo END; exec sleep 60`], {
    ...NO_NETWORK,
    ...options,
    engine,
  });
  await expect.poll(() => c.logs().then((t) => t.includes('END\n')), { timeout: 10_000 }).toBe(true);
  const exec = await c.exec(['sh', '-c', script]);
  const run = (await c.logs()).replace(/END\n$/, '');
  await c.remove({ force: true });
  return { run, exec: exec.stdout + exec.stderr };
}

/** Whether this process holds CAP_SYS_RESOURCE (this VM's does not). */
const hasSysResource = (capget().effective >> BigInt(CAPABILITIES.CAP_SYS_RESOURCE!)) & 1n;

for (const path of INIT_PATHS)
  describe(`${path} init and exec`, () => {
    withInitPath(path);
    withExecPath(path);

    it("sets ulimits on the container's processes and its execs (object and name=soft:hard forms, -1 unlimited)", async () => {
      const { engine } = await testEngine();
      const script = 'ulimit -Sn; ulimit -Hn; ulimit -Sc; ulimit -Hc; grep "Max processes" /proc/self/limits';
      const ulimits = [{ name: 'nofile', soft: 1024, hard: 2048 }, 'nproc=300:400', 'core=-1'];
      const expected =
        '1024\n2048\nunlimited\nunlimited\nMax processes             300                  400                  processes \n';
      // core=-1 needs the engine's own hard limit to be unlimited; else give it that hard limit.
      const coreHard = getrlimit(RLIMITS.core!).hard;
      const core = coreHard === RLIM_INFINITY ? 'core=-1' : `core=${coreHard}`;
      const want =
        coreHard === RLIM_INFINITY ? expected : expected.replace('unlimited\nunlimited', `${coreHard}\n${coreHard}`);
      const { run, exec } = await inAndExec(engine, script, { ulimits: [ulimits[0], ulimits[1], core] });
      expect(run).toBe(want);
      expect(exec).toBe(want);
      // The user's processes too: the limits are set before the user changes.
      const asUser = await inAndExec(engine, 'ulimit -Sn; ulimit -Hn', {
        ulimits: ['nofile=100:200'],
        user: '1000:1000',
      });
      expect(asUser).toEqual({ run: '100\n200\n', exec: '100\n200\n' });
    });

    it('writes namespaced sysctls in the container only, and /proc/sys stays read-only after', async () => {
      const { engine } = await testEngine();
      const host = () =>
        ['kernel/shmmax', 'kernel/msgmax', 'fs/mqueue/msg_max', 'net/ipv4/ip_forward', 'net/ipv4/tcp_syncookies'].map(
          (k) => readFileSync(`/proc/sys/${k}`, 'utf8'),
        );
      const before = host();
      const script =
        'cat /proc/sys/kernel/shmmax /proc/sys/kernel/msgmax /proc/sys/fs/mqueue/msg_max /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/tcp_syncookies; echo 0 2>/dev/null > /proc/sys/net/ipv4/ip_forward || echo read-only';
      const sysctls = {
        'kernel.shmmax': '1073741824',
        'kernel.msgmax': 12345,
        'fs.mqueue.msg_max': '64',
        'net.ipv4.ip_forward': '1',
        'net/ipv4/tcp_syncookies': '0',
      };
      const { run, exec } = await inAndExec(engine, script, { sysctls });
      expect(run).toBe('1073741824\n12345\n64\n1\n0\nread-only\n');
      expect(exec).toBe(run);
      expect(host()).toEqual(before);
    });

    it("sets Docker's sysctls in a network namespace of its own (ping for every group, every port bindable), under the container's own", async () => {
      const { engine } = await testEngine();
      const script = 'cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start';
      expect(await inAndExec(engine, script)).toEqual({ run: '0\t2147483647\n0\n', exec: '0\t2147483647\n0\n' });
      const own = await inAndExec(engine, script, { sysctls: { 'net.ipv4.ip_unprivileged_port_start': '1024' } });
      expect(own.run).toBe('0\t2147483647\n1024\n');
      // Not with the host's network: its values are the host's, untouched.
      const host =
        readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8') +
        readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8');
      expect((await inAndExec(engine, script, { network: 'host' })).run).toBe(host);
    });

    it("sets a sysctl of the container's own network interface (eth0 exists by then)", async () => {
      const { engine } = await testEngine();
      const c = await Container.run(
        BUSYBOX_REF,
        ['cat', '/proc/sys/net/ipv4/conf/eth0/rp_filter', '/proc/sys/net/ipv4/conf/eth0/accept_local'],
        {
          engine,
          sysctls: { 'net.ipv4.conf.eth0.rp_filter': '2', 'net.ipv4.conf.eth0.accept_local': '1' },
        },
      );
      expect((await c.wait()).exitCode).toBe(0);
      expect(await c.logs()).toBe('2\n1\n');
    });

    it('fails the start naming a sysctl the kernel does not have', async () => {
      const { engine } = await testEngine();
      const err = await Container.run(BUSYBOX_REF, ['true'], {
        ...NO_NETWORK,
        engine,
        sysctls: { 'net.ipv4.no_such_knob': '1' },
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'KERNEL',
        message: expect.stringMatching(/sysctl \/proc\/sys\/net\/ipv4\/no_such_knob: .*ENOENT/),
      });
    });

    it("writes oomScoreAdj for the container's processes and its execs", async () => {
      const { engine } = await testEngine();
      expect(await inAndExec(engine, 'cat /proc/self/oom_score_adj', { oomScoreAdj: 500 })).toEqual({
        run: '500\n',
        exec: '500\n',
      });
      // Lowering it below the engine's needs CAP_SYS_RESOURCE, which the kernel checks.
      const low = await inAndExec(engine, 'cat /proc/self/oom_score_adj', { oomScoreAdj: -500 }).catch(
        (e: unknown) => e,
      );
      if (hasSysResource) expect(low).toEqual({ run: '-500\n', exec: '-500\n' });
      else expect(low).toMatchObject({ code: 'KERNEL', message: expect.stringMatching(/oom_score_adj: .*EACCES/) });
    });

    it("mounts the container's own cgroup read-only at /sys/fs/cgroup, where it reads its limits", async () => {
      const { engine } = await testEngine();
      const version = createCgroupDriver().version;
      const resources = { memory: '64m', pids: 50 };
      const files =
        version === 1
          ? ['/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/pids/pids.max']
          : ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/pids.max'];
      // The other version's files must be absent: a wrong version check fails here.
      const other = version === 1 ? '/sys/fs/cgroup/memory.max' : '/sys/fs/cgroup/memory/memory.limit_in_bytes';
      const pids = files[1]!;
      const script =
        `cat ${files.join(' ')}; test -e ${other} && echo other-version; ` +
        `echo 10 2>/dev/null > ${pids} && echo written; mkdir /sys/fs/cgroup/x 2>/dev/null && echo made; cat ${pids}; ` +
        'grep -c " - cgroup" /proc/self/mountinfo; grep " /sys/fs/cgroup" /proc/self/mountinfo | grep -vc " ro,"; sed "s/.*://" /proc/self/cgroup | sort -u';
      const { run, exec } = await inAndExec(engine, script, { resources });
      const cg = createCgroupDriver().view();
      const hierarchies = cg.version === 1 ? cg.hierarchies.length : 1;
      // Each hierarchy's root is the container's own cgroup (its cgroup namespace), read-only.
      const expected = `67108864\n50\n50\n${hierarchies}\n0\n/\n`;
      expect(run).toBe(expected);
      expect(exec).toBe(expected);
    });
  });

describe('what a create stores and refuses', () => {
  it('stores the limits typed, as inspect shows them', async () => {
    const { engine } = await testEngine();
    const c = await Container.create({
      image: BUSYBOX_REF,
      command: ['true'],
      ...NO_NETWORK,
      engine,
      ulimits: ['nofile=100:200', { name: 'core', soft: 0 }],
      sysctls: { 'kernel.shmmax': 4096 },
      oomScoreAdj: 10,
    });
    expect((await c.inspect()).hostConfig).toMatchObject({
      ulimits: [
        { name: 'nofile', soft: 100, hard: 200 },
        { name: 'core', soft: 0, hard: 0 },
      ],
      sysctls: { 'kernel.shmmax': '4096' },
      oomScoreAdj: 10,
    });
  });

  it("refuses a ulimit above the engine's own hard limit, naming the field, before making anything", async () => {
    const { engine } = await testEngine();
    const hard = getrlimit(RLIMITS.nofile!).hard;
    expect(hard).not.toBe(RLIM_INFINITY);
    for (const ulimits of [
      [{ name: 'nofile', soft: 1024, hard: Number(hard) + 1 }],
      [`nofile=${Number(hard) + 1}`],
      ['nofile=1024:-1'],
    ]) {
      const err = await Container.create({
        image: BUSYBOX_REF,
        command: ['true'],
        ...NO_NETWORK,
        ulimits,
        engine,
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'ulimits.0',
        message: expect.stringContaining("above this process's own hard limit"),
      });
    }
    expect(await Container.list({ all: true, engine })).toEqual([]);
  });

  it("refuses net.* sysctls with the host's network, and sysctls that are not namespaced", async () => {
    const { engine } = await testEngine();
    for (const [sysctls, network, field] of [
      [{ 'net.ipv4.ip_forward': '1' }, 'host', 'sysctls.net.ipv4.ip_forward'],
      [{ 'kernel.randomize_va_space': '0' }, 'none', 'sysctls.kernel.randomize_va_space'],
      [{ 'kernel.hostname': 'x' }, 'none', 'sysctls.kernel.hostname'],
      [{ 'vm.overcommit_memory': '1' }, 'none', 'sysctls.vm.overcommit_memory'],
    ] as const) {
      const err = await Container.create({ image: BUSYBOX_REF, command: ['true'], network, sysctls, engine }).catch(
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', field });
    }
    expect(await Container.list({ all: true, engine })).toEqual([]);
  });
});
