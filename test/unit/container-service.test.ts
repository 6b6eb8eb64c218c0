/**
 * The container manager's policy against a fake runtime: its "containers" are plain `sleep`
 * processes, so signals and liveness checks are real while no namespace or mount is made.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ContainerService, type ContainerRuntime } from '../../src/container/service.js';
import { StartFailure } from '../../src/runtime/zygote-client.js';
import { processStartTime } from '../../src/runtime/proc.js';
import type { ExitRecord } from '../../src/runtime/protocol.js';
import type { Plan } from '../../src/runtime/plan.js';
import type { ExecPlan } from '../../src/runtime/init.js';
import { tempDir } from '../helpers/tmp.js';
import { containerRecordSchema } from '../../src/container/record.js';
import { fakeVolumes } from '../helpers/fake-volumes.js';

class FakeRuntime implements ContainerRuntime {
  readonly plans: Plan[] = [];
  readonly children: ChildProcess[] = [];
  readonly #listeners = new Set<(id: string, s: ExitRecord) => void>();
  fail: StartFailure | undefined;
  pid: number | undefined = process.pid;
  /** The fds the runtime reports holding for the container's stdio. */
  stdio: { stdinFd?: number } = {};
  /** What each "container" runs. */
  argv = ['sleep', '60'];

  async start(plan: Plan, _log: string, exitPath: string) {
    this.plans.push(plan);
    if (this.fail) throw this.fail;
    const child = spawn(this.argv[0]!, this.argv.slice(1), { stdio: 'ignore' });
    this.children.push(child);
    await new Promise((r) => child.once('spawn', r));
    child.once('exit', (code, signal) => {
      const status: ExitRecord = {
        pid: child.pid!,
        exitCode: signal ? 128 + (signal === 'SIGKILL' ? 9 : 15) : code!,
        finishedAt: Date.now(),
      };
      if (signal) status.signal = signal === 'SIGKILL' ? 9 : 15;
      try {
        writeFileSync(exitPath, JSON.stringify(status));
      } catch {
        // The test's root is already gone.
      }
      for (const l of this.#listeners) l(plan.spec.id, status);
    });
    return { pid: child.pid!, startTime: processStartTime(child.pid!)!, ...this.stdio };
  }

  onExit(listener: (id: string, s: ExitRecord) => void) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  hold() {
    return () => undefined;
  }

  readonly execs: ExecPlan[] = [];

  /** Runs the exec's argv on the host (the fake has no namespaces), streaming its output. */
  async exec(plan: ExecPlan, onOutput: (stream: 'stdout' | 'stderr', data: Buffer) => void) {
    this.execs.push(plan);
    const child = spawn(plan.process.args[0]!, plan.process.args.slice(1), {
      env: Object.fromEntries(plan.process.env.map((e) => e.split('='))),
    });
    child.stdout.on('data', (d: Buffer) => onOutput('stdout', d));
    child.stderr.on('data', (d: Buffer) => onOutput('stderr', d));
    const exited = new Promise<ExitRecord>((r) =>
      child.on('close', (code) => r({ pid: child.pid!, exitCode: code ?? 1, finishedAt: Date.now() })),
    );
    return { pid: child.pid!, startTime: 0, exited };
  }
}

/** The fake image's one layer. */
const LAYER = `sha256:${'a'.repeat(64)}`;

const runtimes: FakeRuntime[] = [];
afterEach(() => {
  for (const r of runtimes.splice(0)) for (const c of r.children) c.kill('SIGKILL');
});

function setup(root = tempDir('svc')) {
  const runtime = new FakeRuntime();
  runtimes.push(runtime);
  const events: Array<{ action: string; id: string; attributes: Record<string, string> }> = [];
  /** Volumes acquired and not yet released, by name (a count: several containers may hold one). */
  const held = new Map<string, number>();
  const volumes = fakeVolumes();
  volumes.acquire = async (n) => void held.set(n, (held.get(n) ?? 0) + 1);
  volumes.release = async (n) => void (held.get(n) === 1 ? held.delete(n) : held.set(n, (held.get(n) ?? 0) - 1));
  /** Set to make the network manager fail to release an endpoint. */
  const faults: { releaseAttachment?: Error } = {};
  const svc = new ContainerService({
    root,
    zygote: runtime,
    networks: {
      prepareAttachment: async () => ({
        bridge: 'br-test',
        hostIfName: 'vbtest',
        ifName: 'eth0',
        mac: '02:42:0a:00:00:02',
        address: '10.0.0.2/24',
        gateway: '10.0.0.1',
        mtu: 1500,
        defaultRoute: true,
      }),
      releaseAttachment: async () => {
        if (faults.releaseAttachment) throw faults.releaseAttachment;
      },
      hostsFileFor: async () => '127.0.0.1\tlocalhost\n',
      attachmentsOf: async () => [],
    },
    volumes,
    appendEvent: async (e) => events.push(e),
    resolveImage: async (ref) => {
      if (ref !== 'img') throw Object.assign(new Error('no image'), { code: 'IMAGE_NOT_FOUND' });
      return { id: 'sha256:abc', config: { cmd: ['sh'], env: ['A=1'] }, layers: [LAYER] };
    },
    layerDir: (diffId) => `/layers/${diffId.slice(7)}/fs`,
    commitImage: async () => {
      throw new Error('no commit in these tests');
    },
  });
  return { svc, runtime, events, root, held, faults };
}

describe('container manager', () => {
  it('creates, starts, records the exit once, and removes', async () => {
    const { svc, runtime, events, root } = setup();
    const rec = await svc.create({ image: 'img', name: 'web' });
    expect(rec.state.status).toBe('created');
    expect(rec.path).toBe('sh');
    const started = await svc.start('web');
    expect(started.state).toMatchObject({ status: 'running', pid: runtime.children[0]!.pid });
    expect(rec.layers).toEqual([LAYER]);
    expect(runtime.plans[0]!.spec.rootfs.lowerDirs).toEqual([`/layers/${'a'.repeat(64)}/fs`]);
    // A second manager on the same root (another process) sees the same container.
    const other = setup(root);
    expect((await other.svc.get('web')).state.status).toBe('running');
    runtime.children[0]!.kill('SIGTERM');
    const { exitCode } = await svc.wait('web');
    expect(exitCode).toBe(143);
    expect((await other.svc.get(rec.id)).state).toMatchObject({ status: 'exited', exitCode: 143, signal: 15 });
    expect(events.filter((e) => e.action === 'die')).toHaveLength(1);
    await svc.remove('web');
    await expect(other.svc.get('web')).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
    expect(events.map((e) => e.action)).toEqual(['create', 'start', 'die', 'destroy']);
  });

  it('refuses a taken name and a running container’s removal, and changes nothing', async () => {
    const { svc } = setup();
    await svc.create({ image: 'img', name: 'a' });
    await expect(svc.create({ image: 'img', name: 'a' })).rejects.toMatchObject({ code: 'NAME_CONFLICT' });
    await expect(svc.create({ image: 'img', name: 'b', user: 'x:y:z' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'user',
    });
    expect((await svc.list({ all: true })).map((r) => r.name)).toEqual(['a']);
    await svc.start('a');
    await expect(svc.remove('a')).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await svc.remove('a', { force: true });
    expect(await svc.list({ all: true })).toEqual([]);
  });

  it('reports a start failure on the record and as a typed error', async () => {
    const { svc, runtime } = setup();
    runtime.fail = new StartFailure({
      step: 'exec',
      message: 'exec: "x": executable file not found in $PATH',
      kind: 'command',
      exitCode: 127,
    });
    const rec = await svc.create({ image: 'img', command: ['x'] });
    await expect(svc.start(rec.id)).rejects.toMatchObject({ code: 'COMMAND_NOT_FOUND', exitCode: 127 });
    expect((await svc.get(rec.id)).state).toMatchObject({
      status: 'created',
      exitCode: 127,
      error: expect.stringContaining('not found'),
    });
  });

  it('records a container whose owner died without an exit record as exited 137', async () => {
    const { svc, runtime } = setup();
    const rec = await svc.create({ image: 'img' });
    await svc.start(rec.id);
    // The owner (here: a process that is gone) and the container process both vanish.
    const dead = spawn('true');
    await new Promise((r) => dead.once('exit', r));
    const { records } = svc;
    await records.update(rec.id, (r) => ({ ...r, state: { ...r.state, ownerPid: dead.pid!, ownerStart: 1 } }));
    const child = runtime.children[0]!;
    child.removeAllListeners('exit');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect((await svc.get(rec.id)).state).toMatchObject({
      status: 'exited',
      exitCode: 137,
      error: expect.stringContaining('owned it exited'),
    });
  });

  it('execs with the container’s env merged under the exec’s, and refuses a stopped container', async () => {
    const { svc, runtime } = setup();
    const rec = await svc.create({ image: 'img', env: { B: '2' }, user: 'app' });
    await expect(svc.exec(rec.id, ['true'])).rejects.toMatchObject({ code: 'NOT_RUNNING' });
    await svc.start(rec.id);
    const r = await svc.exec(rec.id, ['sh', '-c', 'echo $A$B$C; echo e >&2; exit 3'], { env: { C: '3' } });
    expect(r).toEqual({ exitCode: 3, stdout: '123\n', stderr: 'e\n' });
    expect(runtime.execs[0]!.process).toMatchObject({ user: 'app', cwd: '/' });
    expect(runtime.execs[0]!.targetPid).toBe(runtime.children[0]!.pid);
  });

  it('stops with the stop signal alone when the process dies of it: no SIGKILL', async () => {
    const { svc, events } = setup();
    const rec = await svc.create({ image: 'img', stopSignal: 'SIGUSR1' });
    await svc.start(rec.id);
    // sleep dies of SIGUSR1 at once (default action), so no SIGKILL is needed.
    const stopped = await svc.stop(rec.id, 60);
    // The fake runtime records any signal but SIGKILL as 15 (143), SIGKILL as 9 (137).
    expect(stopped.state).toMatchObject({ status: 'exited', exitCode: 143, signal: 15 });
    expect(events.filter((e) => e.action === 'kill').map((e) => e.attributes.signal)).toEqual(['10']);
    await expect(svc.kill(rec.id, 9)).rejects.toMatchObject({ code: 'NOT_RUNNING' });
  });

  it('releases the volumes a failed start acquired', async () => {
    const { svc, runtime, held } = setup();
    runtime.fail = new StartFailure({
      step: 'exec',
      message: 'exec: "x": executable file not found in $PATH',
      kind: 'command',
      exitCode: 127,
    });
    const rec = await svc.create({ image: 'img', command: ['x'], volumes: ['data:/data'] });
    await expect(svc.start(rec.id)).rejects.toMatchObject({ code: 'COMMAND_NOT_FOUND' });
    expect([...held.keys()]).toEqual([]);
  });

  it('releases the volumes a start acquired when the container whose network it joins is not running', async () => {
    const { svc, held } = setup();
    await svc.create({ image: 'img', name: 'net' });
    const rec = await svc.create({ image: 'img', network: 'container:net', volumes: ['data:/data'] });
    await expect(svc.start(rec.id)).rejects.toMatchObject({
      code: 'NOT_RUNNING',
      current: 'created',
      attempted: 'join',
    });
    expect([...held.keys()]).toEqual([]);
  });

  it('attaches an endpoint a failed start could not release to the start error as its cause', async () => {
    const { svc, runtime, faults } = setup();
    runtime.fail = new StartFailure({
      step: 'exec',
      message: 'exec: "x": executable file not found in $PATH',
      kind: 'command',
      exitCode: 127,
    });
    faults.releaseAttachment = new Error('endpoint record unreadable');
    const rec = await svc.create({ image: 'img', command: ['x'] });
    const e = await svc.start(rec.id).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(e).toMatchObject({ code: 'COMMAND_NOT_FOUND' });
    expect(e?.cause).toBe(faults.releaseAttachment);
  });

  it('refuses to remove a container whose endpoint it cannot release, and keeps its record until it can', async () => {
    const { svc, runtime, faults } = setup();
    const rec = await svc.create({ image: 'img' });
    await svc.start(rec.id);
    runtime.children[0]!.kill('SIGKILL');
    await svc.wait(rec.id);
    faults.releaseAttachment = new Error('endpoint record unreadable');
    await expect(svc.remove(rec.id)).rejects.toBe(faults.releaseAttachment);
    expect((await svc.get(rec.id)).state.status).toBe('exited');
    delete faults.releaseAttachment;
    await svc.remove(rec.id);
    await expect(svc.get(rec.id)).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
  });

  it("records the process holding a run's stdio once, as the run's owner, and no stopping flag", async () => {
    const { svc, runtime, root } = setup();
    runtime.stdio = { stdinFd: 7 };
    const rec = await svc.create({ image: 'img', stdin: true });
    await svc.start(rec.id);
    const stored = JSON.parse(readFileSync(join(root, 'containers', `${rec.id}.json`), 'utf8')) as {
      state: Record<string, unknown>;
    };
    expect(stored.state).toMatchObject({ ownerPid: process.pid, stdio: { stdinFd: 7 } });
    expect(stored.state.stdio).not.toHaveProperty('holderPid');
    expect(stored.state).not.toHaveProperty('stopping');
  });

  it('a rename whose record write fails throws that failure, with the failure to release the new name as its cause', async () => {
    const { svc } = setup();
    const rec = await svc.create({ image: 'img', name: 'before' });
    const writeFailure = new Error('cannot write the record');
    const releaseFailure = new Error('cannot release the name');
    vi.spyOn(svc.records, 'update').mockRejectedValueOnce(writeFailure);
    vi.spyOn(svc.records, 'releaseName').mockRejectedValueOnce(releaseFailure);
    const err = await svc.rename(rec.id, 'after').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBe(writeFailure);
    expect((err as Error).cause).toBe(releaseFailure);
    vi.restoreAllMocks();
    expect((await svc.get(rec.id)).name).toBe('before');
  });

  it('stores resource limits typed: a record whose limits hold a size string is refused', () => {
    const resources = containerRecordSchema.out.shape.config.shape.resources;
    expect(resources.parse({ memory: 268435456, memorySwap: 536870912, cpusetCpus: '0' })).toEqual({
      memory: 268435456,
      memorySwap: 536870912,
      cpusetCpus: '0',
    });
    expect(resources.safeParse({ memory: '256m' }).success).toBe(false);
  });

  it('stops with the stop signal, then SIGKILL after the timeout when the process survives it', async () => {
    const { svc, runtime, events, root } = setup();
    const ready = join(root, 'ready');
    const got = join(root, 'got-stop-signal');
    // A process that handles the stop signal (notes it) and goes on running.
    const script = `const fs = require('node:fs');
      process.on('SIGUSR2', () => fs.writeFileSync(${JSON.stringify(got)}, ''));
      fs.writeFileSync(${JSON.stringify(ready)}, '');
      setInterval(() => {}, 60_000);`;
    runtime.argv = [process.execPath, '-e', script];
    const rec = await svc.create({ image: 'img', stopSignal: 'SIGUSR2' });
    await svc.start(rec.id);
    await expect.poll(() => existsSync(ready)).toBe(true);
    const stopped = await svc.stop(rec.id, 1);
    expect(existsSync(got)).toBe(true);
    expect(stopped.state).toMatchObject({ status: 'exited', exitCode: 137, signal: 9 });
    expect(events.filter((e) => e.action === 'kill').map((e) => e.attributes.signal)).toEqual(['12', '9']);
    expect(events.map((e) => e.action).slice(-2)).toEqual(['die', 'stop']);
  });
});
