/**
 * `Container.getOrCreate` on the real kernel: processes sharing a root that call it at once get
 * one container; a stopped one of the same spec is started again; a container of that name made
 * from another spec, or by `create`, is a `NAME_CONFLICT` and stays as it was.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Container, SPEC_HASH_LABEL } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';

/** Runs `n` processes that call getOrCreate of `name` on `root` at the same moment; their ids. */
async function racers(root: string, name: string, n: number): Promise<string[]> {
  const procs = Array.from({ length: n }, () =>
    spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/get-or-create-process.ts', root, BUSYBOX_REF, name], {
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  try {
    const ids = procs.map(
      (p) =>
        new Promise<string>((resolve, reject) => {
          let out = '';
          p.stdout.on('data', (d: Buffer) => (out += d.toString()));
          p.on('error', reject);
          p.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`racer exited with ${code}`))));
        }),
    );
    // Every process has loaded berth and opened its engine before any is let go (the line is read then).
    for (const p of procs) p.stdin.write('go\n');
    return await Promise.all(ids);
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}

describe('Container.getOrCreate', () => {
  it('four processes calling it at once on one root get one container, created once', async () => {
    const { engine, root } = await testEngine();
    const ids = await racers(root, 'shared-db', 4);
    expect(ids[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(ids)).toEqual(new Set([ids[0]]));
    const all = await Container.list({ all: true, engine });
    expect(all.map((s) => [s.id, s.name, s.state])).toEqual([[ids[0], 'shared-db', 'running']]);
    // This process gets the same one (its creator is gone: it was made detached).
    const again = await Container.getOrCreate({
      name: 'shared-db',
      image: BUSYBOX_REF,
      command: ['sleep', '600'],
      engine,
    });
    expect(await again.id()).toBe(ids[0]);
    expect((await again.inspect()).config.labels[SPEC_HASH_LABEL]).toMatch(/^[0-9a-f]{64}$/);
  });

  it('starts a stopped container of the same spec again, and refuses one of another spec or made by create', async () => {
    const { engine } = await testEngine();
    const spec = { name: 'web', image: BUSYBOX_REF, command: ['sleep', '600'], env: { A: '1' }, engine };
    const first = await Container.getOrCreate(spec);
    const id = await first.id();
    await first.stop({ timeout: 0 });
    expect((await first.inspect()).state.status).toBe('exited');
    // The same spec, its keys in another order: the same hash.
    const second = await Container.getOrCreate({
      env: { A: '1' },
      command: ['sleep', '600'],
      image: BUSYBOX_REF,
      name: 'web',
      engine,
    });
    expect(await second.id()).toBe(id);
    expect((await second.inspect()).state.status).toBe('running');
    await expect(Container.getOrCreate({ ...spec, env: { A: '2' } })).rejects.toMatchObject({
      code: 'NAME_CONFLICT',
      message: expect.stringMatching(/spec hash [0-9a-f]{12}.*asked spec hash [0-9a-f]{12}/),
    });
    expect((await second.inspect()).state.status).toBe('running');
    await Container.create({ name: 'plain', image: BUSYBOX_REF, command: ['true'], engine });
    await expect(Container.getOrCreate({ ...spec, name: 'plain' })).rejects.toMatchObject({ code: 'NAME_CONFLICT' });
    expect((await new Container('plain', { engine }).inspect()).state.status).toBe('created');
    await expect(Container.getOrCreate({ image: BUSYBOX_REF, engine } as never)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'name',
    });
    expect((await Container.list({ all: true, engine })).map((s) => s.name).sort()).toEqual(['plain', 'web']);
  });
});
