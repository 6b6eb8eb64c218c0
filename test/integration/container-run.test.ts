/**
 * Containers on the real kernel: isolation, root file system, identity, output, exit codes.
 * Every assertion is made from inside the container with busybox applets.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Container, Image, BerthError, CommandError } from '../../src/index.js';
import { BUSYBOX_REF, testEngine, INIT_PATHS, NO_NETWORK, withInitPath } from '../helpers/engine.js';
import { CAPABILITIES } from '../../src/runtime/capabilities.js';

async function runText(
  engine: Awaited<ReturnType<typeof testEngine>>['engine'],
  command: string[],
  opts: Record<string, unknown> = {},
) {
  const c = await Container.run(BUSYBOX_REF, command, { ...NO_NETWORK, engine, ...opts });
  const { exitCode } = await c.wait();
  return { c, exitCode, text: await c.logs() };
}

for (const path of INIT_PATHS)
  describe(`container isolation (${path} init)`, () => {
    withInitPath(path);

    it('runs the command as PID 1 that sees only its own processes', async () => {
      const { engine } = await testEngine();
      const { exitCode, text } = await runText(engine, [
        'sh',
        '-c',
        'echo pid=$$; ps -o pid | tail -n +2 | tr -d " " | sort -n | tr "\\n" ,',
      ]);
      expect(exitCode).toBe(0);
      const [first, pids] = text.trim().split('\n');
      expect(first).toBe('pid=1');
      const list = pids!.split(',').filter(Boolean).map(Number);
      expect(list[0]).toBe(1);
      expect(Math.max(...list)).toBeLessThan(10);
    });

    it('has its own hostname (default: the short id), hosts and resolv.conf', async () => {
      const { engine } = await testEngine();
      const { c, text } = await runText(engine, [
        'sh',
        '-c',
        'hostname; cat /etc/hostname; grep -c localhost /etc/hosts; test -f /etc/resolv.conf && echo resolv',
      ]);
      const id = await c.id();
      expect(text.split('\n').slice(0, 4)).toEqual([id.slice(0, 12), id.slice(0, 12), '2', 'resolv']);
      const named = await runText(engine, ['hostname'], { hostname: 'box.example' });
      expect(named.text).toBe('box.example\n');
    });

    it('has loopback only, up, with network none', async () => {
      const { engine } = await testEngine();
      const { text } = await runText(engine, ['sh', '-c', 'ls /sys/class/net; cat /sys/class/net/lo/operstate'], {
        network: 'none',
      });
      expect(text.split('\n')[0]).toBe('lo');
      expect(['unknown', 'up']).toContain(text.split('\n')[1]);
    });

    it('mounts /proc, a read-only /sys and a /dev with the standard nodes', async () => {
      const { engine } = await testEngine();
      const { text } = await runText(engine, [
        'sh',
        '-c',
        'for d in null zero full random urandom tty console ptmx pts shm mqueue fd stdin stdout stderr; do test -e /dev/$d && echo -n "$d "; done; echo;' +
          'touch /sys/x 2>/dev/null || echo sys-ro; head -c 4 /dev/zero | wc -c; cat /proc/self/status | grep -c ^Pid; cat /proc/timer_list | wc -c',
      ]);
      const [devs, sysRo, zero, proc, masked] = text.trim().split('\n');
      expect(devs!.trim().split(' ')).toEqual([
        'null',
        'zero',
        'full',
        'random',
        'urandom',
        'tty',
        'console',
        'ptmx',
        'pts',
        'shm',
        'mqueue',
        'fd',
        'stdin',
        'stdout',
        'stderr',
      ]);
      expect(sysRo).toBe('sys-ro');
      expect(zero!.trim()).toBe('4');
      expect(proc).toBe('1');
      expect(masked!.trim()).toBe('0');
    });

    it('keeps Docker’s default capabilities, and no ignored or blocked signal', async () => {
      const { engine } = await testEngine();
      const { text } = await runText(engine, ['grep', '-E', '^(CapEff|SigIgn|SigBlk)', '/proc/self/status']);
      expect(text.trim().split('\n')).toEqual([
        'SigBlk:\t0000000000000000',
        'SigIgn:\t0000000000000000',
        'CapEff:\t00000000a80425fb',
      ]);
      const dropped = await runText(engine, ['sh', '-c', 'grep CapEff /proc/self/status'], {
        capDrop: ['ALL'],
        capAdd: ['CHOWN'],
      });
      expect(dropped.text.trim()).toBe('CapEff:\t0000000000000001');
    });

    it('gives a privileged container every capability this process holds, and refuses one it lacks by name', async () => {
      const { engine } = await testEngine();
      const own = /^CapBnd:\s*(\w+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!;
      for (const opts of [
        { privileged: true },
        { privileged: true, securityOpt: ['no-new-privileges'] },
        { capAdd: ['ALL'] },
      ]) {
        const { text } = await runText(engine, ['grep', '-E', '^Cap(Eff|Bnd)', '/proc/self/status'], opts);
        expect(text.trim().split('\n').sort()).toEqual([`CapBnd:\t${own}`, `CapEff:\t${own}`]);
      }
      // Where the machine took one away (this VM's bounding set lacks CAP_SYS_RESOURCE), naming it fails clearly.
      const lacking = Object.entries(CAPABILITIES).find(([, bit]) => !((BigInt(`0x${own}`) >> BigInt(bit)) & 1n));
      if (lacking) {
        const err = await Container.run(BUSYBOX_REF, ['true'], { ...NO_NETWORK, engine, capAdd: [lacking[0]] }).catch(
          (e: unknown) => e,
        );
        expect(err).toMatchObject({
          code: 'INVALID_ARGUMENT',
          message: expect.stringContaining(`${lacking[0]} cannot be given`),
        });
      }
    });
  });

for (const path of INIT_PATHS)
  describe(`root file system (${path} init)`, () => {
    withInitPath(path);

    it('writes go to the container, never to the image or the host', async () => {
      const { engine } = await testEngine();
      const first = await runText(engine, [
        'sh',
        '-c',
        'echo changed > /etc/passwd; echo new > /newfile; rm /bin/ls; cat /newfile',
      ]);
      expect(first.text).toBe('new\n');
      const second = await runText(engine, [
        'sh',
        '-c',
        'test -e /newfile || echo clean; grep -c root /etc/passwd; test -e /bin/ls && echo ls',
      ]);
      expect(second.text).toBe('clean\n1\nls\n');
      const upper = engine.containers.paths(await first.c.id()).upper;
      expect(readFileSync(`${upper}/newfile`, 'utf8')).toBe('new\n');
    });

    it('mounts the root read-only with readOnlyRootfs', async () => {
      const { engine } = await testEngine();
      const { text } = await runText(
        engine,
        ['sh', '-c', 'touch /x 2>&1 | grep -o "Read-only file system"; touch /tmp/y 2>/dev/null || echo tmp-ro'],
        { readOnlyRootfs: true },
      );
      expect(text).toBe('Read-only file system\ntmp-ro\n');
    });
  });

for (const path of INIT_PATHS)
  describe(`process configuration (${path} init)`, () => {
    withInitPath(path);

    it('merges env over the image’s, sets workdir (created when missing)', async () => {
      const { engine } = await testEngine();
      const { text } = await runText(engine, ['sh', '-c', 'echo $A $B; pwd; echo $PATH; echo $HOME'], {
        env: { A: '1', B: 'two' },
        workdir: '/work/dir',
      });
      expect(text).toBe('1 two\n/work/dir\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/root\n');
    });

    it('applies the image’s entrypoint and cmd as Docker does', async () => {
      const { engine } = await testEngine();
      const { tar } = await import('../helpers/busybox.js').then((m) => m.busyboxImage());
      await Image.import(tar, {
        ref: 'test/echo:1',
        engine,
        changes: ['ENTRYPOINT ["echo", "ep"]', 'CMD ["default"]', 'ENV GREETING=hello', 'WORKDIR /tmp'],
      });
      const a = await Container.run('test/echo:1', undefined, { ...NO_NETWORK, engine });
      await a.wait();
      expect(await a.logs()).toBe('ep default\n');
      const b = await Container.run('test/echo:1', ['given'], { ...NO_NETWORK, engine });
      await b.wait();
      expect(await b.logs()).toBe('ep given\n');
      const c = await Container.run('test/echo:1', ['-c', 'echo $GREETING; pwd'], {
        ...NO_NETWORK,
        engine,
        entrypoint: ['sh'],
      });
      await c.wait();
      expect(await c.logs()).toBe('hello\n/tmp\n');
    });

    it('runs as a user by name (with supplementary groups) or by uid:gid', async () => {
      const { engine } = await testEngine();
      const byName = await runText(engine, ['id'], { user: 'app' });
      expect(byName.text).toBe('uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\n');
      const byIds = await runText(engine, ['sh', '-c', 'id -u; id -g; grep CapEff /proc/self/status'], {
        user: '1234:5678',
      });
      expect(byIds.text).toBe('1234\n5678\nCapEff:\t0000000000000000\n');
      await expect(Container.run(BUSYBOX_REF, ['id'], { ...NO_NETWORK, engine, user: 'nobody-here' })).rejects.toThrow(
        /unable to find user nobody-here/,
      );
    });
  });

for (const path of INIT_PATHS)
  describe(`output and exit (${path} init)`, () => {
    withInitPath(path);

    it('records stdout and stderr in order, with streams and times', async () => {
      const { engine } = await testEngine();
      const before = Date.now();
      // Two pipes: order across streams is the order berth reads them, so the writes are spaced.
      const { c, exitCode } = await runText(engine, [
        'sh',
        '-c',
        'echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; exit 3',
      ]);
      expect(exitCode).toBe(3);
      expect(await c.logs()).toBe('one\ntwo\nthree\n');
      const lines = [];
      for await (const l of c.logs()) lines.push(l);
      expect(lines.map((l) => [l.stream, l.text])).toEqual([
        ['stdout', 'one\n'],
        ['stderr', 'two\n'],
        ['stdout', 'three\n'],
      ]);
      expect(lines[0]!.time.getTime()).toBeGreaterThanOrEqual(before - 5);
      expect(await c.logs({ stderr: false, tail: 1 })).toBe('three\n');
      const info = await c.inspect();
      expect(info.state).toMatchObject({ status: 'exited', exitCode: 3, running: false, pid: 0 });
    });

    it('follows output until the container stops', async () => {
      const { engine } = await testEngine();
      const c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.1; done'], {
        ...NO_NETWORK,
        engine,
      });
      const seen: string[] = [];
      for await (const l of c.logs({ follow: true })) seen.push(l.text);
      expect(seen).toEqual(['line1\n', 'line2\n', 'line3\n']);
      expect((await c.inspect()).state.status).toBe('exited');
    });

    it('reports a signal as 128+n, stops with SIGTERM then SIGKILL, and kills', async () => {
      const { engine } = await testEngine();
      // PID 1 only gets the signals it has a handler for: wait until the trap is set.
      const ready = async (c: Container) => expect.poll(() => c.logs(), { timeout: 5000 }).toContain('ready');
      const handles = await Container.run(
        BUSYBOX_REF,
        ['sh', '-c', 'trap "exit 42" TERM; echo ready; while true; do sleep 0.05; done'],
        { ...NO_NETWORK, engine },
      );
      await ready(handles);
      await handles.stop({ timeout: 5 });
      expect((await handles.inspect()).state.exitCode).toBe(42);

      const kills: Array<{ id: string; signal: string | undefined }> = [];
      engine.on('container', (e) => {
        if (e.action === 'kill') kills.push({ id: e.id, signal: e.attributes.signal });
      });
      // sleep as PID 1 has no handler for SIGTERM, so the kernel drops it: only SIGKILL ends it.
      const ignores = await Container.run(BUSYBOX_REF, ['sleep', '60'], { ...NO_NETWORK, engine });
      const t0 = Date.now();
      await ignores.stop({ timeout: 1 });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900); // SIGKILL only after the timeout
      const info = await ignores.inspect();
      expect(info.state).toMatchObject({ status: 'exited', exitCode: 137, signal: 9 });
      await expect.poll(() => kills.filter((k) => k.id === info.id).map((k) => k.signal)).toEqual(['15', '9']);

      const killed = await Container.run(
        BUSYBOX_REF,
        ['sh', '-c', 'trap "exit 7" USR1; echo ready; while true; do sleep 0.05; done'],
        { ...NO_NETWORK, engine },
      );
      await ready(killed);
      await killed.kill('USR1');
      expect((await killed.wait()).exitCode).toBe(7);
      await expect(killed.kill()).rejects.toMatchObject({ code: 'NOT_RUNNING' });
    });
  });

for (const path of INIT_PATHS)
  describe(`lifecycle and cleanup (${path} init)`, () => {
    withInitPath(path);

    it('leaves nothing behind after remove: no mount, no directory, no process', async () => {
      const { engine } = await testEngine();
      const c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { ...NO_NETWORK, engine, name: 'sleeper' });
      const info = await c.inspect();
      expect(info.state.running).toBe(true);
      expect(existsSync(`/proc/${info.state.pid}`)).toBe(true);
      await expect(c.remove()).rejects.toMatchObject({ code: 'INVALID_STATE' });
      await c.remove({ force: true });
      expect(existsSync(`/proc/${info.state.pid}`)).toBe(false);
      expect(existsSync(engine.containers.paths(info.id).dir)).toBe(false);
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(info.id);
      await expect(new Container('sleeper', { engine }).inspect()).rejects.toMatchObject({
        code: 'CONTAINER_NOT_FOUND',
      });
      expect(await Container.list({ engine, all: true })).toEqual([]);
    });

    it('removes itself with autoRemove, and with await using', async () => {
      const { engine, root } = await testEngine();
      const auto = await Container.run(BUSYBOX_REF, ['sh', '-c', 'exit 4'], {
        ...NO_NETWORK,
        engine,
        autoRemove: true,
      });
      const id = auto.ref;
      expect(await auto.wait()).toEqual({ exitCode: 4 });
      await expect.poll(() => existsSync(engine.containers.paths(id).dir)).toBe(false);
      let pid: number;
      {
        await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { ...NO_NETWORK, engine });
        pid = (await c.inspect()).state.pid;
      }
      expect(existsSync(`/proc/${pid}`)).toBe(false);
      expect(readdirSync(`${root}/containers`).filter((f) => /^[0-9a-f]{64}/.test(f))).toEqual([]);
    });

    it('lists with filters and refuses to remove the image while a container uses it', async () => {
      const { engine } = await testEngine();
      const a = await Container.run(BUSYBOX_REF, ['sleep', '60'], {
        ...NO_NETWORK,
        engine,
        name: 'web-1',
        labels: { tier: 'web' },
      });
      const b = await Container.create({
        image: BUSYBOX_REF,
        command: ['true'],
        engine,
        name: 'db-1',
        labels: { tier: 'db' },
      });
      expect((await Container.list({ engine })).map((s) => s.name)).toEqual(['web-1']);
      expect((await Container.list({ engine, all: true })).map((s) => s.name).sort()).toEqual(['db-1', 'web-1']);
      expect((await Container.list({ engine, all: true, label: 'tier=db' })).map((s) => s.state)).toEqual(['created']);
      await expect(new Image(BUSYBOX_REF, { engine }).remove()).rejects.toMatchObject({ code: 'IN_USE' });
      await a.remove({ force: true });
      await b.remove();
    });
  });

for (const path of INIT_PATHS)
  describe(`bad input changes nothing (${path} init)`, () => {
    withInitPath(path);

    it('does not hang on an image whose passwd is a FIFO and whose group file is /dev/zero', async () => {
      const { engine } = await testEngine();
      // The programs below read no user database (busybox's id would block on the FIFO too).
      const setup = '[ -p /etc/passwd ] || { rm -f /etc/passwd && mkfifo /etc/passwd && ln -sf /dev/zero /etc/group; }';
      const uid = 'sed -n "s/^Uid:[[:space:]]*\\([0-9]*\\).*/\\1/p" /proc/self/status';
      const c = await Container.run(BUSYBOX_REF, ['sh', '-c', `${setup}; ${uid}; exec sleep 30`], {
        ...NO_NETWORK,
        engine,
      });
      await expect.poll(() => c.logs()).toBe('0\n');
      // A second run reads the FIFO and the endless file while it resolves its (default) user.
      await c.stop({ timeout: 0 });
      await c.start();
      await expect.poll(() => c.logs()).toBe('0\n0\n');
      // So does an exec (its user is looked up by the zygote).
      expect((await c.exec(['sh', '-c', uid])).stdout).toBe('0\n');
      await expect(c.exec(['true'], { user: 'nobody' })).rejects.toThrow(/unable to find user nobody/);
      await c.remove({ force: true });
    });

    it('rejects an unknown image, a taken name, malformed options and a missing command', async () => {
      const { engine, root } = await testEngine();
      const count = () =>
        readdirSync(`${root}/containers`, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== 'names')
          .length;
      // An image id cannot be pulled; a registry on a closed loopback port cannot be reached.
      await expect(Container.create({ image: `sha256:${'f'.repeat(64)}`, engine })).rejects.toMatchObject({
        code: 'IMAGE_NOT_FOUND',
      });
      await expect(Container.create({ image: '127.0.0.1:1/nope:1', engine })).rejects.toMatchObject({
        code: 'REGISTRY_UNREACHABLE',
      });
      await Container.create({ image: BUSYBOX_REF, command: ['true'], name: 'taken', engine });
      const n = count();
      await expect(
        Container.create({ image: BUSYBOX_REF, command: ['true'], name: 'taken', engine }),
      ).rejects.toMatchObject({ code: 'NAME_CONFLICT' });
      await expect(Container.create({ image: BUSYBOX_REF, name: 'bad name!', engine })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'name',
      });
      await expect(Container.create({ image: BUSYBOX_REF, workdir: 'relative', engine })).rejects.toMatchObject({
        field: 'workdir',
      });
      await expect(
        Container.create({ image: BUSYBOX_REF, restartPolicy: 'always', engine } as never),
      ).rejects.toMatchObject({ field: 'restartPolicy' });
      await expect(Container.create({ image: BUSYBOX_REF, ports: ['80:80:80'], engine })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      await expect(Container.create({ image: BUSYBOX_REF, stopSignal: 'SIGNOPE', engine })).rejects.toMatchObject({
        field: 'stopSignal',
      });
      expect(count()).toBe(n);
      const err = await Container.run(BUSYBOX_REF, ['no-such-program'], { ...NO_NETWORK, engine }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CommandError);
      expect(err).toBeInstanceOf(BerthError);
      expect(err).toMatchObject({ code: 'COMMAND_NOT_FOUND', exitCode: 127 });
      expect((err as Error).message).toContain('exec: "no-such-program": executable file not found in $PATH');
    });

    it('refuses a command that is not executable at start, and records an exec failure found by the kernel', async () => {
      const { engine } = await testEngine();
      // Not executable (no x bit), or a directory: refused before the start, as Docker's 126.
      await expect(Container.run(BUSYBOX_REF, ['/etc/passwd'], { ...NO_NETWORK, engine })).rejects.toMatchObject({
        code: 'COMMAND_NOT_FOUND',
        exitCode: 126,
      });
      await expect(Container.run(BUSYBOX_REF, ['/etc'], { ...NO_NETWORK, engine })).rejects.toMatchObject({
        code: 'COMMAND_NOT_FOUND',
        exitCode: 126,
      });
      // Executable but not a program the kernel can run: found by execve itself, after the start.
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { ...NO_NETWORK, engine });
      await c.exec(['sh', '-c', 'printf "\\0\\1junk" > /junk; chmod +x /junk']);
      await expect(c.exec(['/junk'])).rejects.toMatchObject({
        code: 'COMMAND_NOT_FOUND',
        exitCode: 126,
        message: expect.stringContaining('exec format error') as string,
      });
      await c.commit({ ref: 'test/junk:1' });
      const j = await Container.create({ image: 'test/junk:1', command: ['/junk'], ...NO_NETWORK, engine });
      await j.start();
      expect((await j.wait()).exitCode).toBe(126);
      expect((await j.inspect()).state.error).toContain('exec format error');
      await j.remove();
    });
  });
