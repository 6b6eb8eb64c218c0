/**
 * Wait strategies: `waitFor` of `Container.run` and `start` resolves once the container is ready,
 * and fails with its last log lines when it is not.
 */
import { describe, expect, it } from 'vitest';
import { Container } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine } from '../helpers/engine.js';

type TestEngine = Awaited<ReturnType<typeof testEngine>>['engine'];

const run = (
  engine: TestEngine,
  script: string,
  waitFor: Record<string, unknown>,
  opts: Record<string, unknown> = {},
) => Container.run(BUSYBOX_REF, ['sh', '-c', script], { ...NO_NETWORK, engine, waitFor, ...opts });

describe('waitFor', () => {
  it('log: resolves once a line matches, after a delay the program takes', async () => {
    const { engine } = await testEngine();
    await using c = await run(engine, 'echo starting; sleep 0.3; echo ready >&2; exec sleep 30', { log: /^ready$/ });
    expect(await c.logs()).toBe('starting\nready\n');
  });

  it('port: resolves once the port listens, so that connect succeeds at once', async () => {
    const { engine } = await testEngine();
    await using c = await run(engine, 'sleep 0.3; exec nc -l -p 8080 -e cat', { port: 8080 });
    const s = await c.connect(8080);
    s.destroy();
  });

  it('http: resolves once GET answers the status asked (busybox httpd started late)', async () => {
    const { engine } = await testEngine();
    await using c = await run(
      engine,
      'mkdir /www; echo hi > /www/index.html; sleep 0.3; exec httpd -f -p 8080 -h /www',
      { http: { port: 8080, path: '/index.html', status: 200 } },
    );
    const s = await c.connect(8080);
    s.destroy();
  });

  it('http: a status that never comes times out, naming the request', async () => {
    const { engine } = await testEngine();
    const err = await run(engine, 'mkdir /www; exec httpd -f -p 8080 -h /www', {
      http: { port: 8080, path: '/missing' },
      timeout: 1000,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TIMEOUT' });
    expect((err as Error).message).toContain('HTTP GET /missing on port 8080');
  });

  it('exec: resolves once the command exits 0', async () => {
    const { engine } = await testEngine();
    await using c = await run(engine, 'sleep 0.3; touch /tmp/ready; exec sleep 30', {
      exec: ['test', '-f', '/tmp/ready'],
    });
    expect((await c.exec(['test', '-f', '/tmp/ready'])).exitCode).toBe(0);
  });

  it('healthy: resolves once the health check reports healthy', async () => {
    const { engine } = await testEngine();
    await using c = await run(
      engine,
      'sleep 0.3; touch /ready; exec sleep 30',
      { healthy: true },
      { healthcheck: { test: ['CMD-SHELL', 'test -f /ready'], interval: 100, timeout: 2000, retries: 100 } },
    );
    expect((await c.inspect()).state.health.status).toBe('healthy');
  });

  it('all conditions: waits for the last of log and port', async () => {
    const { engine } = await testEngine();
    await using c = await run(engine, 'echo ready; sleep 0.3; exec nc -l -p 8080 -e cat', { log: 'ready', port: 8080 });
    (await c.connect(8080)).destroy();
  });

  it('run: a timeout rejects with TIMEOUT and the last 20 log lines, and removes the container', async () => {
    const { engine } = await testEngine();
    const err = await run(engine, 'for i in $(seq 1 30); do echo line$i; done; echo oops >&2; exec sleep 30', {
      log: 'never printed',
      timeout: 800,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TIMEOUT' });
    const message = (err as Error).message;
    expect(message).toContain('not ready after 800 ms: waiting for a log line matching never printed');
    expect(message).toContain('stdout: line30');
    expect(message).toContain('stderr: oops');
    expect(message).not.toContain('line10\n');
    expect(await Container.list({ all: true, engine })).toEqual([]);
  });

  it('run: a container that exits first rejects with NOT_RUNNING and its last log lines', async () => {
    const { engine } = await testEngine();
    const err = await run(engine, 'echo giving up; exit 3', { port: 8080 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NOT_RUNNING' });
    expect((err as Error).message).toContain('exit code 3');
    expect((err as Error).message).toContain('stdout: giving up');
    expect(await Container.list({ all: true, engine })).toEqual([]);
  });

  it('start: a timeout leaves the container running for the caller', async () => {
    const { engine } = await testEngine();
    await using c = await Container.create({ image: BUSYBOX_REF, command: ['sleep', '30'], ...NO_NETWORK, engine });
    await expect(c.start({ waitFor: { port: 8080, timeout: 300 } })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect((await c.inspect()).state.status).toBe('running');
  });

  it('rejects bad waitFor options before creating anything', async () => {
    const { engine } = await testEngine();
    await expect(run(engine, 'true', {})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'waitFor' });
    await expect(run(engine, 'true', { port: 70000 })).rejects.toMatchObject({ field: 'waitFor.port' });
    await expect(run(engine, 'true', { http: { port: 80, path: 'x' } })).rejects.toMatchObject({
      field: 'waitFor.http.path',
    });
    await expect(run(engine, 'true', { healthy: true, timeout: 100 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'waitFor.healthy',
    });
    expect(await Container.list({ all: true, engine })).toEqual([]);
  });
});
