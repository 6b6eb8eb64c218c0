/**
 * The escape suite's probe (`probe.c`): built once, static, and bound read-only at `/probe` in the
 * containers the suite runs. {@link runProbe} runs one attempt and returns what it printed.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Container, type ContainerCreateOptions, type Engine } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK } from '../helpers/engine.js';

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, 'probe.c');

let built: string | undefined;

/** The path of the static probe binary, compiled from `probe.c` on first use (cached by its hash). */
export function probeBinary(): string {
  if (built) return built;
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 16);
  const dir = join(here, '..', '..', 'node_modules', '.cache', 'berth-test');
  const out = join(dir, `probe-${hash}-${process.arch}`);
  if (!existsSync(out)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    execFileSync('gcc', ['-static', '-O1', '-o', tmp, source], { stdio: ['ignore', 'ignore', 'pipe'] });
    renameSync(tmp, out);
  }
  built = out;
  return out;
}

/** The mount that puts the probe at `/probe` in a container. */
export function probeMount(): { type: 'bind'; source: string; target: string; readOnly: true } {
  return { type: 'bind', source: probeBinary(), target: '/probe', readOnly: true };
}

/** What one attempt printed: `ok` (it worked) or `err ERRNO …` (the kernel refused it). */
export interface ProbeResult {
  /** 0: the attempt succeeded; 1: refused; 2: a usage error of the probe. */
  exitCode: number;
  /** The whole output. */
  output: string;
  /** The first line: `ok …` or `err ERRNO what`. */
  line: string;
  /** Whether the attempt succeeded. */
  succeeded: boolean;
  /** The errno name when refused (EPERM, ENOSYS, …). */
  errno?: string;
}

/**
 * Runs `/probe ...args` in a new busybox container (loopback only unless `options` says
 * otherwise) and returns what it printed. `options` are `Container.run` options
 * (`privileged`, `securityOpt`, `capAdd`, …); `mounts` are added to the probe's own.
 */
export async function runProbe(
  engine: Engine,
  args: string[],
  options: Omit<ContainerCreateOptions, 'image' | 'engine'> = {},
): Promise<ProbeResult> {
  const c = await startProbe(engine, args, options);
  const { exitCode } = await c.wait();
  const output = await c.logs();
  await c.remove({ force: true });
  return parseProbe(exitCode, output);
}

/** Reads a probe's output. */
export function parseProbe(exitCode: number, output: string): ProbeResult {
  const line = output.split('\n')[0] ?? '';
  if (exitCode === 2 || !/^(ok|err)\b/.test(line))
    throw new Error(`the probe did not run its attempt (exit ${exitCode}): ${output}`);
  const errno = line.startsWith('err ') ? line.split(' ')[1] : undefined;
  return { exitCode, output, line, succeeded: exitCode === 0, errno };
}

/** The container of {@link runProbe}, started. */
function startProbe(
  engine: Engine,
  args: string[],
  options: Omit<ContainerCreateOptions, 'image' | 'engine'>,
): Promise<Container> {
  const { mounts = [], ...rest } = options;
  return Container.run(BUSYBOX_REF, ['/probe', ...args], {
    ...NO_NETWORK,
    ...rest,
    mounts: [probeMount(), ...mounts],
    engine,
  });
}

/**
 * {@link runProbe}, and while the probe runs, `exec.command` (with `exec.env`) exec'd in its
 * container again and again, for at most a minute: for attempts that watch for an exec's
 * process. Also returns how many execs ran.
 */
export async function runProbeDuringExecs(
  engine: Engine,
  args: string[],
  options: Omit<ContainerCreateOptions, 'image' | 'engine'>,
  exec: { command: string[]; env?: string[] },
): Promise<ProbeResult & { execs: number }> {
  const c = await startProbe(engine, args, options);
  let ended = false;
  const waited = c.wait().finally(() => (ended = true));
  let execs = 0;
  const deadline = Date.now() + 60_000;
  while (!ended && Date.now() < deadline) {
    // A failure is fine (the container may end while an exec starts): the probe's verdict counts.
    await c.exec(exec.command, { env: exec.env ?? [] }).then(
      () => execs++,
      () => undefined,
    );
    // Back to the event loop each time: a failed exec can settle without it, and the exit
    // that ends this loop would never be read.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const { exitCode } = await waited;
  const output = await c.logs();
  await c.remove({ force: true });
  return { ...parseProbe(exitCode, output), execs };
}
