/**
 * berth's own programs cannot be written from a container (the CVE-2019-5736 class). A process
 * of the container that gets a handle on the `/proc/<pid>/exe` of `berth-init` (PID 1 with
 * `init: true`, the reaper) or of `berth-exec` (inside the container until it execs the program)
 * could reopen that file for writing once nothing executes it, and every later container would
 * run what it wrote, as root on the host. berth executes sealed in-memory copies of them
 * (`sealed-program.ts`) that stay non-dumpable until the program is exec'd: the container cannot
 * open their `exe` link, and with CAP_SYS_PTRACE (`privileged`) it finds a sealed memfd there.
 *
 * The attacks run through the probe (`probe.c`): `exe-handle` (the O_PATH handle), `catch`
 * (watch for the process, take the handle, reopen it for writing once it is free and write its
 * first byte back unchanged) and `seals`; proven on a writable binary a container runs itself.
 * `berth-monitor` needs no copy: the container cannot see it.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Container, type ContainerCreateOptions, type Engine } from '../../src/index.js';
import { nativeBinary } from '../../src/runtime/monitor-binary.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine, withInitPath } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';
import { probeBinary, runProbe, runProbeDuringExecs, type ProbeResult } from './probe.js';

/** sha256 of a file. */
function hash(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** `dev=… ino=…` as the probe prints a file's identity. */
function identity(path: string): string {
  const st = statSync(path, { bigint: true });
  return `dev=${st.dev} ino=${st.ino}`;
}

/**
 * A PATH of many directories that do not exist, then the real ones: an exec's program lookup
 * (after its privileges are dropped, before execve) takes tens of milliseconds, a window a process
 * of the container is sure to see. Such a PATH can come from the image (its `ENV PATH`).
 */
const SLOW_PATH = `PATH=${Array.from({ length: 6000 }, (_, i) => `/nonexistent/${i}`).join(':')}:/bin`;

/** `/probe catch berth-exec 4 exe` in a container made with `options`, while `true` is exec'd in it (with {@link SLOW_PATH}). */
function catchExec(
  engine: Engine,
  options: Omit<ContainerCreateOptions, 'image' | 'engine'>,
): Promise<ProbeResult & { execs: number }> {
  return runProbeDuringExecs(engine, ['catch', 'berth-exec', '4', 'exe'], options, {
    command: ['true'],
    env: [SLOW_PATH],
  });
}

describe('host binaries: berth-init', () => {
  withInitPath('native');

  it("a default container gets no handle on the host's berth-init through /proc/1/exe (init: true); its program is dumpable again", async () => {
    const { engine } = await testEngine();
    const binary = await nativeBinary('init');
    const before = hash(binary);
    const handle = await runProbe(engine, ['exe-handle', '/proc/1/exe'], { init: true });
    expect(handle.line).toMatch(/^err EACCES/);
    const write = await runProbe(engine, ['open-write', '/proc/1/exe'], { init: true });
    expect(write.succeeded).toBe(false);
    // The program, exec'd by the reaper, is an ordinary dumpable process (execve resets the flag).
    expect((await runProbe(engine, ['dumpable'], { init: true })).line).toBe('ok 1');
    expect(hash(binary)).toBe(before);
  });

  it('PID 1 runs a sealed memfd, not the host file: seen with CAP_SYS_PTRACE (privileged), and from the host (detached too)', async () => {
    const { engine } = await testEngine();
    const binary = await nativeBinary('init');
    const handle = await runProbe(engine, ['exe-handle', '/proc/1/exe'], { init: true, privileged: true });
    expect(handle.line).toMatch(/^ok .* link=\/memfd:berth-init \(deleted\)$/);
    expect(handle.line).not.toContain(identity(binary));
    // F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE
    expect((await runProbe(engine, ['seals', '/proc/1/exe'], { init: true, privileged: true })).line).toBe(
      'ok seals=15',
    );

    await using c = await Container.run(BUSYBOX_REF, ['sleep', '30'], { ...NO_NETWORK, init: true, engine });
    const { pid } = (await c.inspect()).state;
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe('/memfd:berth-init (deleted)');
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('berth-init');
    // The copy holds the host file's content.
    expect(
      createHash('sha256')
        .update(readFileSync(`/proc/${pid}/exe`))
        .digest('hex'),
    ).toBe(hash(binary));

    // A detached container's init is started by its monitor's parent, a fork of the zygote: the same copy.
    await using d = await Container.run(BUSYBOX_REF, ['sleep', '30'], {
      ...NO_NETWORK,
      init: true,
      detach: true,
      engine,
    });
    expect(readlinkSync(`/proc/${(await d.inspect()).state.pid}/exe`)).toBe('/memfd:berth-init (deleted)');
  });
});

describe('host binaries: berth-monitor', () => {
  it("a detached container cannot see its monitor (its parent, outside the container's PID namespace), so needs no sealed copy of it", async () => {
    const { engine } = await testEngine();
    const r = await runProbe(engine, ['catch', 'monitor', '1', 'exe'], { detach: true, privileged: true });
    expect(r.line).toBe('err ESRCH no process matched (matched 0 times)');
  });
});

describe('host binaries: berth-exec', () => {
  it('a default container catching berth-exec during execs gets no handle on it, and the host file is unchanged', async () => {
    const { engine } = await testEngine();
    const binary = await nativeBinary('exec');
    const before = hash(binary);
    const r = await catchExec(engine, {});
    expect(r.line).toMatch(/^err EACCES open\(\/proc\/<pid>\/exe, O_PATH\) \(matched [1-9]\d* times\)$/);
    expect(r.execs).toBeGreaterThan(0);
    expect(hash(binary)).toBe(before);
  });

  it('with CAP_SYS_PTRACE (privileged) the handle is a sealed memfd: reopened for writing, it refuses the write', async () => {
    const { engine } = await testEngine();
    const binary = await nativeBinary('exec');
    const before = hash(binary);
    const r = await catchExec(engine, { privileged: true });
    expect(r.line).toMatch(/^err EPERM pwrite \/memfd:berth-exec \(deleted\)$/);
    expect(r.execs).toBeGreaterThan(0);
    expect(hash(binary)).toBe(before);
  });

  it('the probe works: a default container catches a process running a writable binary and writes it', async () => {
    const { engine } = await testEngine();
    const dir = tempDir('victim');
    const victim = join(dir, 'victim');
    copyFileSync(probeBinary(), victim);
    const before = hash(victim);
    const r = await runProbe(engine, ['catch', 'victim', '10', 'exe'], {
      entrypoint: ['sh', '-c', '/victim sleep 1 >/dev/null & exec "$@"', 'sh'],
      mounts: [{ type: 'bind', source: victim, target: '/victim' }],
    });
    expect(r.line).toMatch(/^ok wrote .*\/victim$/);
    // Its first byte, written back unchanged.
    expect(hash(victim)).toBe(before);
  });
});
