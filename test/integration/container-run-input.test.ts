/**
 * stdin of a run's main program without races, on the real kernel: `run`/`start` with `input`
 * (string, Buffer, Readable, several MiB, a program that reads nothing, detached), and `attach()`
 * on a created container before its start (`docker start -a -i`): output from the first byte,
 * input to the program, end of file when the attachment's stdin ends.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Container } from '../../src/index.js';
import { BUSYBOX_REF, INIT_PATHS, NO_NETWORK, testEngine, withInitPath } from '../helpers/engine.js';

/** The pipes this process holds open (`/proc/self/fd` entries naming `pipe:`). */
function openPipes(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('pipe:')) n++;
    } catch {
      // The directory's own fd, closed by now.
    }
  }
  return n;
}

/** Everything a stream delivers, with each chunk's stream name appended to `order` as it comes. */
function collect(
  stream: Readable,
  name: string,
  order: string[],
): { text: () => string; until: (s: string) => Promise<void> } {
  let text = '';
  const waiters = new Set<() => void>();
  stream.on('data', (d: Buffer) => {
    text += d.toString('utf8');
    order.push(`${name}:${d.toString('utf8')}`);
    for (const w of waiters) w();
  });
  return {
    text: () => text,
    until: (s) =>
      new Promise((resolve) => {
        const check = () => {
          if (!text.includes(s)) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      }),
  };
}

for (const path of INIT_PATHS)
  describe(`run input and attach before start (${path} init)`, () => {
    withInitPath(path);

    it('gives the program exactly a string, a Buffer (NUL bytes included) or a Readable on stdin, then end of file', async () => {
      const { engine } = await testEngine();
      const opts = { ...NO_NETWORK, engine };
      await using a = await Container.run(BUSYBOX_REF, ['cat'], { ...opts, input: 'from a string\nwith ü\0nul\n' });
      expect((await a.wait()).exitCode).toBe(0);
      expect(await a.logs()).toBe('from a string\nwith ü\0nul\n');
      const bytes = Buffer.from([0, 1, 2, 255, 0x0a]);
      await using b = await Container.run(BUSYBOX_REF, ['od', '-An', '-tx1'], { ...opts, input: bytes });
      expect((await b.wait()).exitCode).toBe(0);
      expect((await b.logs()).trim()).toBe('00 01 02 ff 0a');
      const stream = Readable.from(['one\n', 'two\n', 'three\n']);
      await using c = await Container.run(BUSYBOX_REF, ['sort', '-r'], { ...opts, input: stream });
      expect((await c.wait()).exitCode).toBe(0);
      expect(await c.logs()).toBe('two\nthree\none\n');
      // The program reads end of file after the input: `read` of a second line fails.
      await using d = await Container.run(BUSYBOX_REF, ['sh', '-c', 'read x; echo "x=$x"; read y || echo eof'], {
        ...opts,
        input: 'hello\n',
      });
      expect((await d.wait()).exitCode).toBe(0);
      expect(await d.logs()).toBe('x=hello\neof\n');
    });

    it('streams a 5 MiB input (more than a pipe holds) through wc -c, and start does not wait for it', async () => {
      const { engine } = await testEngine();
      const size = 5 * 1024 * 1024;
      await using c = await Container.run(BUSYBOX_REF, ['wc', '-c'], {
        ...NO_NETWORK,
        engine,
        input: Buffer.alloc(size, 0x61),
      });
      expect((await c.wait()).exitCode).toBe(0);
      expect((await c.logs()).trim()).toBe(String(size));
      // A Readable of many chunks, 5 MiB in all.
      const chunk = Buffer.alloc(64 * 1024, 0x62);
      const chunks = Readable.from(
        (function* () {
          for (let i = 0; i < size / chunk.length; i++) yield chunk;
        })(),
      );
      await using s = await Container.run(BUSYBOX_REF, ['wc', '-c'], { ...NO_NETWORK, engine, input: chunks });
      expect((await s.wait()).exitCode).toBe(0);
      expect((await s.logs()).trim()).toBe(String(size));
    });

    it('runs a program that reads nothing, or stops reading, without failing run or leaving a pipe open', async () => {
      const { engine } = await testEngine();
      const before = openPipes();
      const big = Buffer.alloc(3 * 1024 * 1024, 0x61);
      const quiet = await Container.run(BUSYBOX_REF, ['true'], { ...NO_NETWORK, engine, input: big });
      expect((await quiet.wait()).exitCode).toBe(0);
      const head = await Container.run(BUSYBOX_REF, ['head', '-c', '3'], { ...NO_NETWORK, engine, input: big });
      expect((await head.wait()).exitCode).toBe(0);
      expect(await head.logs()).toBe('aaa');
      await quiet.remove();
      await head.remove();
      // The writes ended with EPIPE and closed their pipe: no pipe of this process is left.
      await expect.poll(openPipes).toBe(before);
    });

    it('gives input to a detached container, whose monitor holds no write end (end of file after it)', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'cat; echo end'], {
        ...NO_NETWORK,
        engine,
        detach: true,
        input: 'to the detached one\n',
      });
      expect((await c.wait()).exitCode).toBe(0);
      expect(await c.logs()).toBe('to the detached one\nend\n');
    });

    it('attached before the start: output from the first byte, in order; stdin reaches the program; its end is end of file', async () => {
      const { engine } = await testEngine();
      const c = await Container.create({
        image: BUSYBOX_REF,
        command: ['sh', '-c', 'echo first; read x; echo "err $x" >&2; read y; echo "got $y"; cat; echo end'],
        stdin: true,
        ...NO_NETWORK,
        engine,
      });
      const a = await c.attach();
      const order: string[] = [];
      const out = collect(a.stdout, 'out', order);
      const err = collect(a.stderr, 'err', order);
      await c.start();
      await out.until('first\n');
      a.stdin!.write('one\n');
      await err.until('err one\n');
      a.stdin!.write('two\n');
      await out.until('got two\n');
      a.stdin!.end('rest\n');
      await a.closed;
      expect((await c.wait()).exitCode).toBe(0);
      // Each stream's turns in the order the program wrote them (a turn may come in several chunks).
      const turns = order.map((o) => o.slice(0, 3)).filter((name, i, all) => name !== all[i - 1]);
      expect(turns).toEqual(['out', 'err', 'out']);
      expect(out.text()).toBe('first\ngot two\nrest\nend\n');
      expect(err.text()).toBe('err one\n');
      await c.remove();
    });

    it('attached before a detached container starts: its program reads the attachment and ends at its end of file', async () => {
      const { engine } = await testEngine();
      await using c = await Container.create({
        image: BUSYBOX_REF,
        command: ['sh', '-c', 'echo ready; cat; echo done'],
        stdin: true,
        detach: true,
        ...NO_NETWORK,
        engine,
      });
      const a = await c.attach();
      const out = collect(a.stdout, 'out', []);
      await c.start();
      await out.until('ready\n');
      a.stdin!.end('piped\n');
      await a.closed;
      expect((await c.wait()).exitCode).toBe(0);
      expect(out.text()).toBe('ready\npiped\ndone\n');
    });
  });

describe('attach before start: what it holds', () => {
  it('keeps input to a terminal until the start made it, then types it; resizes once it runs', async () => {
    const { engine } = await testEngine();
    await using c = await Container.create({
      image: BUSYBOX_REF,
      command: ['sh', '-c', 'echo ready; read x; echo "got $x"; read y; stty size'],
      tty: true,
      ...NO_NETWORK,
      engine,
    });
    const a = await c.attach();
    const out = collect(a.stdout, 'out', []);
    await expect(a.resize(50, 20)).rejects.toMatchObject({ code: 'INVALID_STATE' });
    // Typed before the start: kept until the terminal exists, then read by the program.
    a.stdin!.write('early\n');
    await c.start();
    await out.until('got early\r\n');
    await a.resize(100, 30);
    a.stdin!.write('\n');
    await a.closed;
    expect((await c.wait()).exitCode).toBe(0);
    expect(out.text()).toContain('ready\r\n');
    expect(out.text().endsWith('got early\r\n\r\n30 100\r\n')).toBe(true);
  });

  it('lets go of its pipe when it detaches before the start: the program then gets its usual held-open stdin', async () => {
    const { engine } = await testEngine();
    const before = openPipes();
    await using c = await Container.create({
      image: BUSYBOX_REF,
      command: ['sh', '-c', 'read x; echo "got $x"'],
      stdin: true,
      ...NO_NETWORK,
      engine,
    });
    const a = await c.attach();
    expect(a.stdin).not.toBeNull();
    await a.detach();
    expect(openPipes()).toBe(before);
    await c.start();
    const later = await c.attach();
    later.stdin!.write('later\n');
    expect((await c.wait()).exitCode).toBe(0);
    await later.closed;
    expect(await c.logs()).toBe('got later\n');
  });

  it('has no stdin without stdin: true, or for a second attachment of a stdin container; output still from the start', async () => {
    const { engine } = await testEngine();
    await using plain = await Container.create({
      image: BUSYBOX_REF,
      command: ['sh', '-c', 'echo at-once; cat'],
      ...NO_NETWORK,
      engine,
    });
    const p = await plain.attach();
    expect(p.stdin).toBeNull();
    const out = collect(p.stdout, 'out', []);
    await plain.start();
    await p.closed;
    expect(out.text()).toBe('at-once\n');
    await using two = await Container.create({
      image: BUSYBOX_REF,
      command: ['cat'],
      stdin: true,
      ...NO_NETWORK,
      engine,
    });
    const first = await two.attach();
    const second = await two.attach();
    expect(first.stdin).not.toBeNull();
    expect(second.stdin).toBeNull();
    await first.detach();
    await second.detach();
  });

  it('ends the output of an attachment whose start fails, and refuses attach on an exited container', async () => {
    const { engine } = await testEngine();
    await using c = await Container.create({
      image: BUSYBOX_REF,
      command: ['/no/such/program'],
      stdin: true,
      ...NO_NETWORK,
      engine,
    });
    const a = await c.attach();
    await expect(c.start()).rejects.toMatchObject({ code: 'COMMAND_NOT_FOUND' });
    await a.closed;
    await using done = await Container.run(BUSYBOX_REF, ['true'], { ...NO_NETWORK, engine });
    await done.wait();
    await expect(done.attach()).rejects.toMatchObject({ code: 'NOT_RUNNING' });
  });

  it('refuses bad input options with typed errors before making anything', async () => {
    const { engine } = await testEngine();
    const opts = { ...NO_NETWORK, engine };
    await expect(
      Container.run(BUSYBOX_REF, ['cat'], { ...opts, input: 42 as unknown as string }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'input' });
    await expect(Container.run(BUSYBOX_REF, ['cat'], { ...opts, input: 'x', tty: true })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'input',
    });
    await expect(
      Container.run(BUSYBOX_REF, ['cat'], { ...opts, input: 'x', restart: 'on-failure' }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'input',
    });
    expect(await Container.list({ all: true, engine })).toEqual([]);
    // start({ input }) checks the record: a container with a restart policy, one that runs already.
    await using r = await Container.create({ image: BUSYBOX_REF, command: ['cat'], restart: 'always', ...opts });
    await expect(r.start({ input: 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'input' });
    expect((await r.inspect()).state.status).toBe('created');
    await using running = await Container.run(BUSYBOX_REF, ['sleep', '60'], opts);
    await expect(running.start({ input: 'x' })).rejects.toMatchObject({ code: 'INVALID_STATE' });
  });

  it('starts a created container with input, and a later start of it gets no input', async () => {
    const { engine } = await testEngine();
    await using c = await Container.create({ image: BUSYBOX_REF, command: ['cat'], ...NO_NETWORK, engine });
    await c.start({ input: 'first run\n' });
    expect((await c.wait()).exitCode).toBe(0);
    await c.start();
    expect((await c.wait()).exitCode).toBe(0);
    expect(await c.logs()).toBe('first run\n');
  });
});

describe('input is bytes', () => {
  it('passes NUL bytes of a string input to exec as to run (stdin is not a C string)', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { ...NO_NETWORK, engine });
    expect((await c.exec(['od', '-An', '-c'], { input: 'a\0b' })).stdout.trim()).toBe('a  \\0   b');
  });
});
