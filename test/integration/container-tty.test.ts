/**
 * Terminals and stdin on the real kernel: `tty` and `stdin` containers, `attach()`, `spawn()`
 * with and without a terminal, resizing, Ctrl-C, and `exec({ tty })`.
 */
import { describe, expect, it } from 'vitest';
import type { Readable } from 'node:stream';
import { Container } from '../../src/index.js';
import { BUSYBOX_REF, testEngine, INIT_PATHS, NO_NETWORK, withInitPath } from '../helpers/engine.js';

/** Collects a stream's text and resolves once it contains `needle` (or fails after `ms`). */
function collect(stream: Readable): {
  text: () => string;
  until: (needle: string | RegExp, ms?: number) => Promise<string>;
} {
  let text = '';
  const waiters = new Set<() => void>();
  stream.on('data', (d: Buffer) => {
    text += d.toString('utf8');
    for (const w of waiters) w();
  });
  return {
    text: () => text,
    until: (needle, ms = 5000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (typeof needle === 'string' ? text.includes(needle) : needle.test(text)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(text);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${String(needle)}; got ${JSON.stringify(text)}`));
        }, ms);
        waiters.add(check);
        check();
      }),
  };
}

for (const path of INIT_PATHS)
  describe(`terminals (${path} init)`, () => {
    withInitPath(path);

    it('gives a tty container a real terminal of its size, and logs its output', async () => {
      const { engine } = await testEngine();
      const c = await Container.run(
        BUSYBOX_REF,
        ['sh', '-c', 'tty; stty size; [ -t 0 ] && echo stdin-is-tty; ls -l /dev/console | cut -c1'],
        {
          ...NO_NETWORK,
          engine,
          tty: true,
          consoleSize: { cols: 100, rows: 30 },
        },
      );
      expect((await c.wait()).exitCode).toBe(0);
      expect(await c.logs()).toBe('/dev/pts/0\r\n30 100\r\nstdin-is-tty\r\nc\r\n');
      expect((await c.inspect()).config.tty).toBe(true);
      await c.remove();
    });

    it('answers typed input through attach, resizes, and Ctrl-C interrupts the foreground job', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sh'], { ...NO_NETWORK, engine, tty: true });
      const a = await c.attach();
      const out = collect(a.stdout);
      a.stdin!.write('echo $((6*7))\n');
      await out.until('42\r\n');
      await a.resize(132, 43);
      a.stdin!.write('stty size\n');
      await out.until('43 132\r\n');
      // A job in the foreground, interrupted by the terminal's ^C; the shell lives on.
      a.stdin!.write('sleep 30\n');
      await new Promise((r) => setTimeout(r, 300));
      a.stdin!.write('\x03');
      a.stdin!.write('echo after-sleep $?\n');
      await out.until(/after-sleep 130/);
      // A second attachment from the same process sees the same output.
      const b = await c.attach({ stdin: false });
      expect(b.stdin).toBeNull();
      const out2 = collect(b.stdout);
      a.stdin!.write('echo both\n');
      await out2.until('both\r\n');
      await b.detach();
      a.stdin!.write('exit 7\n');
      await a.closed;
      expect((await c.wait()).exitCode).toBe(7);
    });

    it("with init: true, makes the program the terminal's foreground job, apart from the reaper", async () => {
      const { engine } = await testEngine();
      const script =
        'read pid comm state ppid pgrp sid tty tpgid rest < /proc/$$/stat; echo "pid=$pid pgrp=$pgrp tpgid=$tpgid"; ' +
        "trap 'echo interrupted; exit 7' INT; while true; do sleep 0.05; done";
      await using c = await Container.run(BUSYBOX_REF, ['sh', '-c', script], {
        ...NO_NETWORK,
        engine,
        tty: true,
        init: true,
      });
      const a = await c.attach({ logs: true });
      const out = collect(a.stdout);
      const m = /pid=(\d+) pgrp=(\d+) tpgid=(\d+)/.exec(await out.until(/tpgid=\d+/))!;
      // The program leads its own process group, the terminal's foreground one; PID 1 (the
      // reaper) is not in it, so the keys that send signals reach the program only.
      expect(m[1]).not.toBe('1');
      expect([m[2], m[3]]).toEqual([m[1], m[1]]);
      a.stdin!.write('\x03');
      await out.until('interrupted');
      expect((await c.wait()).exitCode).toBe(7);
      await a.detach();
    });

    it('keeps stdin open for a stdin container and takes input from attach', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(
        BUSYBOX_REF,
        ['sh', '-c', 'while read l; do echo "got $l"; echo "err $l" >&2; done; echo eof'],
        { ...NO_NETWORK, engine, stdin: true },
      );
      const a = await c.attach();
      const out = collect(a.stdout);
      const err = collect(a.stderr);
      a.stdin!.write('one\ntwo\n');
      await out.until('got two\n');
      await err.until('err two\n');
      // Detaching (and ending this copy) never closes the container's stdin.
      a.stdin!.end();
      await a.detach();
      await new Promise((r) => setTimeout(r, 200));
      expect((await c.inspect()).state.status).toBe('running');
      const again = await c.attach();
      const out3 = collect(again.stdout);
      again.stdin!.write('three\n');
      await out3.until('got three\n');
      await again.detach();
      expect(await c.logs({ stderr: false })).toBe('got one\ngot two\ngot three\n');
    });

    it('gives a container without stdin /dev/null, and attach has no input', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'cat; echo done; sleep 60'], {
        ...NO_NETWORK,
        engine,
      });
      const a = await c.attach({ logs: true });
      const out = collect(a.stdout);
      await out.until('done\n');
      expect(a.stdin).toBeNull();
      await expect(a.resize(10, 10)).rejects.toMatchObject({ code: 'INVALID_STATE' });
      await a.detach();
    });
  });

describe('spawn and exec with a terminal', () => {
  it('streams a process with stdin, stdout and stderr apart, and its exit', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { ...NO_NETWORK, engine });
    const p = c.spawn(['sh', '-c', 'while read l; do echo "out $l"; echo "err $l" >&2; done; exit 4']);
    const out = collect(p.stdout);
    const err = collect(p.stderr);
    p.stdin.write('a\nb\n');
    p.stdin.end();
    expect(await p.exited).toEqual({ exitCode: 4 });
    expect(out.text()).toBe('out a\nout b\n');
    expect(err.text()).toBe('err a\nerr b\n');
    expect(p.pid).toBeGreaterThan(1);
  });

  it('runs an interactive shell on a terminal: typed input, resize, Ctrl-C, signals', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { ...NO_NETWORK, engine, hostname: 'termbox' });
    const sh = c.spawn(['sh'], { tty: true, consoleSize: { cols: 90, rows: 20 } });
    const out = collect(sh.stdout);
    sh.stdin.write('hostname; tty; stty size\n');
    await out.until(/termbox\r\n\/dev\/pts\/\d+\r\n20 90\r\n/);
    await sh.resize(200, 50);
    sh.stdin.write('stty size\n');
    await out.until('50 200\r\n');
    sh.stdin.write('sleep 30\n');
    await new Promise((r) => setTimeout(r, 300));
    sh.stdin.write('\x03');
    sh.stdin.write('echo rc=$?\n');
    await out.until('rc=130');
    sh.stdin.write('exit 3\n');
    expect(await sh.exited).toEqual({ exitCode: 3 });
    expect(sh.stderr.read()).toBeNull();

    const victim = c.spawn(['sleep', '30'], { stdin: false });
    await victim.started;
    await victim.kill('SIGTERM');
    expect(await victim.exited).toEqual({ exitCode: 143, signal: 'SIGTERM' });
  });

  it('reports a failure to start through exited, and validates options at once', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { ...NO_NETWORK, engine });
    const p = c.spawn(['no-such-cmd']);
    await expect(p.exited).rejects.toMatchObject({ code: 'COMMAND_NOT_FOUND' });
    await expect(p.started).rejects.toMatchObject({ code: 'COMMAND_NOT_FOUND' });
    expect(() => c.spawn([])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }) as Error);
    expect(() => c.spawn(['sh'], { consoleSize: { cols: 0, rows: 1 } })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }) as Error,
    );
    const q = c.spawn(['true']);
    await expect(q.resize(10, 10)).rejects.toMatchObject({ code: 'INVALID_STATE' });
  });

  it('exec with tty gives one stream with terminal line endings', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { ...NO_NETWORK, engine, user: 'app' });
    const r = await c.exec(
      ['sh', '-c', 'tty; echo to-err >&2; [ -t 1 ] && echo is-tty; ls -ln $(tty) | awk "{print \\$3}"'],
      { tty: true },
    );
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.split('\r\n');
    expect(lines[0]).toMatch(/^\/dev\/pts\/\d+$/);
    expect(lines.slice(1, 3)).toEqual(['to-err', 'is-tty']);
    const uid = (await c.exec(['id', '-u'])).stdout.trim();
    expect(lines[3]).toBe(uid); // the terminal belongs to the process's user
  });
});
