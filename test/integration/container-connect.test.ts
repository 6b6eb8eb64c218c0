/**
 * `Container.connect`: a TCP socket made in the container's network namespace and connected to its
 * loopback from the engine's process, with no published port.
 */
import { createServer, connect as hostConnect, type Socket } from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Container } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine } from '../helpers/engine.js';

/** A TCP port free on the host's loopback now (bound, then released). */
async function freeHostPort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  srv.close();
  await once(srv, 'close');
  return port;
}

/** Runs an echo server (`nc -l -e cat`) on `port` and waits until it listens. */
async function echoServer(engine: Awaited<ReturnType<typeof testEngine>>['engine'], port: number, network = 'none') {
  const c = await Container.run(BUSYBOX_REF, ['nc', '-l', '-p', String(port), '-e', 'cat'], { network, engine });
  const ready = await c.exec(['sh', '-c', `until netstat -ltn | grep -q ":${port} "; do usleep 10000; done`]);
  expect(ready.exitCode).toBe(0);
  return c;
}

/** Writes `text` and reads until the peer ends; the text read. */
async function roundTrip(s: Socket, text: string): Promise<string> {
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  s.write(text);
  while (Buffer.concat(chunks).length < text.length) await once(s, 'data');
  s.destroy();
  return Buffer.concat(chunks).toString();
}

describe('Container.connect', () => {
  it('reaches a port on the loopback of a network-none container, which the host cannot reach', async () => {
    const { engine } = await testEngine();
    const port = await freeHostPort();
    await using c = await echoServer(engine, port);
    const s = await c.connect(port);
    expect(s.remoteAddress).toBe('127.0.0.1');
    expect(await roundTrip(s, 'hello through the namespace\n')).toBe('hello through the namespace\n');
    const host = hostConnect(port, '127.0.0.1');
    const [err] = (await once(host, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
  });

  it('rejects a port nothing listens on with ECONNREFUSED naming the address and container', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '30'], { ...NO_NETWORK, engine });
    const err = await c.connect(9).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'KERNEL', syscall: 'connect', errnoCode: 'ECONNREFUSED' });
    expect((err as Error).message).toContain('127.0.0.1:9');
    expect((err as Error).message).toContain(await c.id().then((id) => id.slice(0, 12)));
  });

  it('rejects a stopped container with NOT_RUNNING, and a bad port with INVALID_ARGUMENT', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['true'], { ...NO_NETWORK, engine });
    await c.wait();
    await expect(c.connect(8080)).rejects.toMatchObject({ code: 'NOT_RUNNING' });
    await expect(c.connect(0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'port' });
    await expect(c.connect(80, { timeout: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'timeout' });
  });

  it("rejects with the signal's reason when the signal is already aborted, leaving the port free", async () => {
    const { engine } = await testEngine();
    const port = await freeHostPort();
    await using c = await echoServer(engine, port);
    const reason = new Error('test gave up');
    await expect(c.connect(port, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(await roundTrip(await c.connect(port), 'still there\n')).toBe('still there\n');
  });

  it('reaches the loopback of a container on the default bridge network, where no port is published', async () => {
    const { engine } = await testEngine();
    await using c = await echoServer(engine, 8080, 'bridge');
    expect((await c.inspect()).networkSettings.ports).toEqual([]);
    expect(await roundTrip(await c.connect(8080), 'over the bridge netns\n')).toBe('over the bridge netns\n');
  });

  it("reaches the host's loopback from a container on the host network", async () => {
    const { engine } = await testEngine();
    const srv = createServer((s) => s.end('from the host\n')).listen(0, '127.0.0.1');
    await once(srv, 'listening');
    try {
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '30'], { network: 'host', engine });
      const s = await c.connect((srv.address() as { port: number }).port);
      const chunks: Buffer[] = [];
      for await (const d of s) chunks.push(d as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('from the host\n');
    } finally {
      srv.close();
    }
  });
});
