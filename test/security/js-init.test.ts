/**
 * The JavaScript init (the fallback without `berth-init`, `BERTH_NATIVE_INIT=0`) and the forked
 * exec (without `berth-exec`, `BERTH_NATIVE_EXEC=0`) do not expose the engine. Both are forks of
 * the zygote, running the host's node binary with a copy of the zygote's memory: they are
 * non-dumpable from the fork on (a container's processes cannot open their `/proc/<pid>/environ`,
 * `mem` or `exe`), and the zygote is started with an environment of its own, not the engine's.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testEngine, withExecPath, withInitPath } from '../helpers/engine.js';
import { runProbe, runProbeDuringExecs } from './probe.js';

/** A variable of this (the engine's) process, set before each test's engine starts its zygote. */
let marker = '';

beforeEach(() => {
  marker = `ENGINE_SECRET_${randomBytes(6).toString('hex')}`;
  process.env[marker] = 'engine-only';
});

afterEach(() => {
  delete process.env[marker];
});

describe('JavaScript init (init: true keeps it as PID 1)', () => {
  withInitPath('js');

  it("a default container cannot read PID 1's environment or memory, nor get a handle on its node binary", async () => {
    const { engine } = await testEngine();
    expect((await runProbe(engine, ['read', '/proc/1/environ'], { init: true })).line).toBe('err EACCES open');
    expect((await runProbe(engine, ['open-read', '/proc/1/mem'], { init: true })).line).toBe(
      'err EACCES open(O_RDONLY)',
    );
    expect((await runProbe(engine, ['exe-handle', '/proc/1/exe'], { init: true })).line).toBe(
      'err EACCES open(O_PATH)',
    );
    // The program, exec'd by the reaper, is an ordinary dumpable process.
    expect((await runProbe(engine, ['dumpable'], { init: true })).line).toBe('ok 1');
  });

  it("with CAP_SYS_PTRACE (privileged) PID 1 is readable, and its environment is not the engine's", async () => {
    const { engine } = await testEngine();
    const environ = await runProbe(engine, ['read', '/proc/1/environ'], { init: true, privileged: true });
    expect(environ.succeeded).toBe(true);
    expect(environ.output).not.toContain(marker);
    expect(environ.output).not.toContain('engine-only');
    expect((await runProbe(engine, ['open-read', '/proc/1/mem'], { init: true, privileged: true })).line).toBe('ok');
    expect((await runProbe(engine, ['exe-handle', '/proc/1/exe'], { init: true, privileged: true })).line).toMatch(
      /^ok .* link=\/.*node/,
    );
  });
});

describe('forked exec (BERTH_NATIVE_EXEC=0)', () => {
  withExecPath('js');

  it("a default container catching the exec's fork of the zygote cannot open its environment", async () => {
    const { engine } = await testEngine();
    // A PATH of many missing directories: the fork looks the program up for a while after it
    // dropped its privileges, before execve (see host-binaries.test.ts).
    const slowPath = `PATH=${Array.from({ length: 3000 }, (_, i) => `/nonexistent/${i}`).join(':')}:/bin`;
    const r = await runProbeDuringExecs(
      engine,
      ['catch', 'berth-zygote', '4', 'environ'],
      {},
      { command: ['true'], env: [slowPath] },
    );
    expect(r.line).toMatch(/^err EACCES open\(\/proc\/<pid>\/<file>\) \(matched [1-9]\d* times\)$/);
    expect(r.execs).toBeGreaterThan(0);
  });
});
