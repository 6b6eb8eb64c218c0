/**
 * `container.exec()` on the real kernel: the process joins the container's namespaces, root,
 * user and capabilities.
 */
import { describe, expect, it } from 'vitest';
import { Container, Image } from '../../src/index.js';
import { busyboxImage } from '../helpers/busybox.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine, withExecPath } from '../helpers/engine.js';

// Both ways an exec starts: berth-exec started with posix_spawn (the default), and a fork of the
// zygote running runExec (without a C compiler, or BERTH_NATIVE_EXEC=0).
for (const path of ['native', 'fork'] as const)
  describe(`exec (${path})`, () => {
    withExecPath(path === 'fork' ? 'js' : 'native');

    it('runs inside the container: its PID namespace, hostname, root and env', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'echo hi > /in-container; sleep 60'], {
        engine,
        hostname: 'box',
        env: { A: '1' },
      });
      await expect.poll(() => c.exec(['cat', '/in-container']).then((r) => r.stdout)).toBe('hi\n');
      const r = await c.exec(
        [
          'sh',
          '-c',
          'hostname; echo $A $B; ps -o args | grep -c "^sleep 60"; ls /proc | grep -c "^[0-9]"; echo err >&2; exit 5',
        ],
        { env: { B: '2' } },
      );
      expect(r.exitCode).toBe(5);
      expect(r.stderr).toBe('err\n');
      const [host, env, sleepSeen, procs] = r.stdout.trim().split('\n');
      expect([host, env, sleepSeen]).toEqual(['box', '1 2', '1']);
      expect(Number(procs)).toBeLessThan(8);
      const pid1 = await c.exec(['cat', '/proc/1/cmdline']);
      expect(pid1.stdout.replaceAll('\0', ' ').trim()).toBe('sleep 60'); // sh exec'd its last command as PID 1
    });

    it('uses the container’s user and capabilities, or the ones given', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, user: 'app', workdir: '/tmp' });
      expect((await c.exec(['sh', '-c', 'id -un; pwd; grep CapEff /proc/self/status'])).stdout).toBe(
        'app\n/tmp\nCapEff:\t0000000000000000\n',
      );
      expect(
        (await c.exec(['sh', '-c', 'id -u; grep CapEff /proc/self/status'], { user: 'root', workdir: '/' })).stdout,
      ).toBe('0\nCapEff:\t00000000a80425fb\n');
    });

    it('reports a missing command, and refuses a container that does not run', async () => {
      const { engine } = await testEngine();
      const c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine });
      await expect(c.exec(['no-such-cmd'])).rejects.toMatchObject({ code: 'COMMAND_NOT_FOUND', exitCode: 127 });
      await expect(c.exec([])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await c.kill();
      await c.wait();
      await expect(c.exec(['true'])).rejects.toMatchObject({ code: 'NOT_RUNNING' });
      await c.remove();
    });

    it('runs many execs in a row and in parallel', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine });
      for (let i = 0; i < 20; i++) expect((await c.exec(['echo', String(i)])).stdout).toBe(`${i}\n`);
      const all = await Promise.all(Array.from({ length: 8 }, (_, i) => c.exec(['sh', '-c', `echo ${i}`])));
      expect(all.map((r) => r.stdout)).toEqual(Array.from({ length: 8 }, (_, i) => `${i}\n`));
    });

    it('gives a terminal or a stdin pipe, and reports an unknown user', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine });
      const r = await c.exec(['sh', '-c', 'tty; stty size'], { tty: true, consoleSize: { cols: 77, rows: 11 } });
      expect(r.stdout).toMatch(/^\/dev\/pts\/\d+\r\n11 77\r\n$/);
      const p = c.spawn(['cat']);
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d));
      p.stdin.end('piped\n');
      expect(await p.exited).toEqual({ exitCode: 0 });
      expect(out).toBe('piped\n');
      await expect(c.exec(['true'], { user: 'nobody-here' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining('unable to find user nobody-here') as string,
      });
    });
  });

describe('exec with a terminal', () => {
  it('hands the terminal over even when the process ends before the engine takes it (50 quick execs)', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine });
    for (let i = 0; i < 50; i++) {
      const r = await c.exec(['echo', `n${i}`], { tty: true });
      expect(r).toMatchObject({ exitCode: 0, stdout: `n${i}\r\n` });
    }
  });
});

describe('init: true', () => {
  it('runs a reaper as PID 1 that forwards signals and reaps orphans', async () => {
    const { engine } = await testEngine();
    const c = await Container.run(
      BUSYBOX_REF,
      ['sh', '-c', 'echo pid=$$; (sleep 0.1 &); sleep 0.5; ps -o stat,args | grep -c "^Z" ; exec sleep 60'],
      { engine, init: true },
    );
    await expect.poll(() => c.logs(), { timeout: 5000 }).toMatch(/pid=\d+\n0\n/);
    expect(await c.logs()).not.toContain('pid=1\n');
    const t0 = Date.now();
    await c.stop({ timeout: 10 }); // sleep has no handler, but it is not PID 1: SIGTERM ends it
    expect(Date.now() - t0).toBeLessThan(3000);
    expect((await c.inspect()).state.exitCode).toBe(143);
    await c.remove();
  });
});

describe('restart', () => {
  it('stops and starts the container again, with a new process and the same file system', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(
      BUSYBOX_REF,
      ['sh', '-c', 'echo run >> /runs; trap "exit 0" TERM; while true; do sleep 0.05; done'],
      { engine },
    );
    await expect.poll(() => c.exec(['cat', '/runs']).then((r) => r.stdout)).toBe('run\n');
    const pid = (await c.inspect()).state.pid;
    await c.restart({ timeout: 5 });
    const info = await c.inspect();
    expect(info.state.running).toBe(true);
    expect(info.state.pid).not.toBe(pid);
    await expect.poll(() => c.exec(['cat', '/runs']).then((r) => r.stdout)).toBe('run\nrun\n');
  });
});

describe('wait conditions', () => {
  it('waits for the next exit of a created container, and for removal', async () => {
    const { engine } = await testEngine();
    const c = await Container.create({ image: BUSYBOX_REF, command: ['sh', '-c', 'exit 6'], engine });
    expect(await c.wait()).toEqual({ exitCode: 0 }); // not running: at once, as docker wait
    const next = c.wait({ condition: 'next-exit' });
    await new Promise((r) => setTimeout(r, 100));
    await c.start();
    expect(await next).toEqual({ exitCode: 6 });
    const removed = c.wait({ condition: 'removed' });
    let settled = false;
    void removed.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 150));
    expect(settled).toBe(false);
    await c.remove();
    expect(await removed).toEqual({ exitCode: 6 });
    await expect(c.wait({ condition: 'bogus' as never })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'condition',
    });
  });
});

describe('restart policies', () => {
  it('on-failure:N restarts a failing container N times, then leaves it exited', async () => {
    const { engine } = await testEngine();
    const c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'echo run >> /count; exit 3'], {
      engine,
      restart: 'on-failure:2',
    });
    await expect
      .poll(
        async () => {
          const s = (await c.inspect()).state;
          return [s.status, s.restartCount];
        },
        { timeout: 5000 },
      )
      .toEqual(['exited', 2]);
    await new Promise((r) => setTimeout(r, 500));
    expect((await c.inspect()).state).toMatchObject({ status: 'exited', exitCode: 3, restartCount: 2 });
    // Three runs in all, each in the same file system.
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(`${engine.containers.paths(c.ref).upper}/count`, 'utf8')).toBe('run\nrun\nrun\n');
    await c.remove();
  });

  it('always restarts a container that exits, until it is stopped', async () => {
    const { engine } = await testEngine();
    const c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'sleep 0.2; exit 0'], { engine, restart: 'always' });
    await expect.poll(async () => (await c.inspect()).state.restartCount, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
    await c.stop({ timeout: 1 });
    const after = (await c.inspect()).state;
    await new Promise((r) => setTimeout(r, 600));
    expect((await c.inspect()).state).toMatchObject({ status: 'exited', restartCount: after.restartCount });
    await c.remove();
  });
});

describe('health checks', () => {
  it('reports starting, healthy, then unhealthy after the retries, with events', async () => {
    const { engine } = await testEngine();
    const actions: string[] = [];
    engine.on('container', (e) => actions.push(e.action));
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], {
      engine,
      healthcheck: { test: ['CMD-SHELL', 'test -f /ready'], interval: 100, timeout: 2000, retries: 2 },
    });
    expect((await c.inspect()).state.health.status).toMatch(/starting|unhealthy/);
    await c.exec(['touch', '/ready']);
    await expect.poll(async () => (await c.inspect()).state.health.status, { timeout: 5000 }).toBe('healthy');
    await c.exec(['rm', '/ready']);
    await expect.poll(async () => (await c.inspect()).state.health.status, { timeout: 5000 }).toBe('unhealthy');
    const h = (await c.inspect()).state.health;
    expect(h.failingStreak).toBeGreaterThanOrEqual(2);
    expect(h.log.length).toBeGreaterThan(0);
    await expect
      .poll(() => actions)
      .toEqual(expect.arrayContaining(['health_status: healthy', 'health_status: unhealthy']));
  });

  it('comes from the image’s HEALTHCHECK, and options override it', async () => {
    const { engine } = await testEngine();
    const { tar } = await busyboxImage();
    await Image.import(tar, {
      ref: 'test/healthy:1',
      engine,
      changes: ['HEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD test -f /ready'],
    });
    expect((await new Image('test/healthy:1', { engine }).inspect()).config.healthcheck).toMatchObject({
      test: ['CMD-SHELL', 'test -f /ready'],
      retries: 1,
    });
    await using c = await Container.run('test/healthy:1', ['sh', '-c', 'touch /ready; sleep 60'], { engine });
    await expect.poll(async () => (await c.inspect()).state.health.status, { timeout: 5000 }).toBe('healthy');
    await using off = await Container.run('test/healthy:1', ['sleep', '60'], {
      engine,
      healthcheck: { test: ['NONE'] },
    });
    expect((await off.inspect()).state.health.status).toBe('none');
  });

  it('is disabled by a NONE test: the image’s HEALTHCHECK never runs', async () => {
    const { engine } = await testEngine();
    const { tar } = await busyboxImage();
    await Image.import(tar, {
      ref: 'test/checked:1',
      engine,
      changes: ['HEALTHCHECK --interval=100ms --timeout=2s --retries=1 CMD touch /checked'],
    });
    await using off = await Container.run('test/checked:1', ['sleep', '60'], {
      ...NO_NETWORK,
      engine,
      healthcheck: { test: ['NONE'] },
    });
    // The same image without NONE, started after: once its check ran twice, the other's would have too.
    await using on = await Container.run('test/checked:1', ['sleep', '60'], { ...NO_NETWORK, engine });
    await expect
      .poll(async () => (await on.inspect()).state.health.log.length, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(2);
    expect((await off.inspect()).state.health).toMatchObject({ status: 'none', log: [] });
    expect((await off.exec(['ls', '/checked'])).exitCode).not.toBe(0);
    expect((await on.exec(['ls', '/checked'])).exitCode).toBe(0);
  });
});
