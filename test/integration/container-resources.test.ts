/**
 * Resources through cgroups on the real kernel: limits, OOM kills, pause/unpause, stats,
 * update, and exec joining the container's cgroup.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Container } from '../../src/index.js';
import { containerCgroupDirs, cgroupVersion, cpuLimitText, limitFile } from '../helpers/cgroups.js';
import { BUSYBOX_REF, testEngine, INIT_PATHS, NO_NETWORK, withInitPath } from '../helpers/engine.js';

const read = (path: string) => readFileSync(path, 'utf8').trim();

for (const path of INIT_PATHS)
  describe(`resources (${path} init)`, () => {
    withInitPath(path);

    it('reports a container killed for exceeding its memory limit as OOM-killed', async () => {
      const { engine } = await testEngine();
      const events: string[] = [];
      engine.on('container', (e) => events.push(e.action));
      const c = await Container.run(
        BUSYBOX_REF,
        ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived'],
        { ...NO_NETWORK, engine, resources: { memory: '32m', memorySwap: '32m' } },
      );
      const { exitCode } = await c.wait();
      expect(exitCode).toBe(137);
      const info = await c.inspect();
      expect(info.state.oomKilled).toBe(true);
      expect(await c.logs()).not.toContain('survived');
      await expect.poll(() => events).toContain('oom');
    });

    it(`limits pids in the kernel's ${cgroupVersion === 2 ? 'pids.max' : 'pids controller'}, and exec runs inside the container’s cgroup`, async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], {
        ...NO_NETWORK,
        engine,
        resources: { pids: 5 },
      });
      expect(read(limitFile(await c.id(), 'pids'))).toBe('5');
      const r = await c.exec(['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do sleep 1 & done 2>&1; wait']);
      expect(r.stdout + r.stderr).toMatch(/can't fork|Resource temporarily unavailable/);
      // Its own cgroup namespace: the container's cgroup is the root of every hierarchy it sees.
      const cg = await c.exec(['cat', '/proc/self/cgroup']);
      if (cgroupVersion === 2) expect(cg.stdout).toBe('0::/\n');
      else expect(cg.stdout).toMatch(/^\d+:pids:\/$/m);
    });

    it('pauses and unpauses, samples stats, and updates limits live', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'while true; do :; done'], {
        ...NO_NETWORK,
        engine,
        resources: { memory: '64m', cpus: 0.5 },
      });
      const id = await c.id();
      expect(read(limitFile(id, 'memory'))).toBe(String(64 * 1024 * 1024));
      expect(read(limitFile(id, 'cpu'))).toBe(cpuLimitText(0.5));
      const usage = async () => {
        for await (const s of c.stats({ interval: 10 })) return s.cpu.totalNs;
        return -1;
      };
      await c.pause();
      expect((await c.inspect()).state.status).toBe('paused');
      // Its processes are frozen: an exec would freeze too, so it is refused (as Docker does).
      await expect(c.exec(['true'])).rejects.toMatchObject({
        code: 'INVALID_STATE',
        message: expect.stringContaining('paused') as string,
      });
      const a = await usage();
      await new Promise((r) => setTimeout(r, 200));
      expect(await usage()).toBe(a);
      await c.unpause();
      await new Promise((r) => setTimeout(r, 200));
      expect(await usage()).toBeGreaterThan(a);
      for await (const s of c.stats({ interval: 10 })) {
        expect(s.memory.limit).toBe(64 * 1024 * 1024);
        expect(s.pids.current).toBeGreaterThanOrEqual(1);
        break;
      }
      await c.update({ resources: { memory: '128m', cpus: 0.25 } });
      expect(read(limitFile(id, 'memory'))).toBe(String(128 * 1024 * 1024));
      expect(read(limitFile(id, 'cpu'))).toBe(cpuLimitText(0.25));
      expect((await c.top()).length).toBeGreaterThanOrEqual(1);
    });

    it('rejects malformed limits naming the field, and leaves no cgroup behind', async () => {
      const { engine } = await testEngine();
      await expect(
        Container.create({ image: BUSYBOX_REF, engine, resources: { memory: 'lots' } }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'resources.memory' });
      const c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { ...NO_NETWORK, engine, resources: { pids: 10 } });
      const dirs = containerCgroupDirs(await c.id());
      expect(dirs.filter((d) => existsSync(d))).toEqual(dirs);
      await c.kill();
      await c.wait();
      await c.remove();
      expect(dirs.filter((d) => existsSync(d))).toEqual([]);
    });
  });
