/**
 * berth-monitor (`src/runtime/monitor/monitor.c`), the real compiled binary, on the real kernel.
 *
 * Each test makes the monitor the parent of a workload the way the zygote does: a detached
 * (`setsid`) `/bin/sh` starts the workload in the background with its output on the write ends,
 * then `exec`s the monitor with `$!`. The monitor gets the read ends (or a pty master) as fds 3
 * and 4, the log file as fd 5 and, when asked, a stdin write end as fd 6. Every process group
 * started here is killed after each test, also when it fails; temp dirs go with the test.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { close, pipe2 } from '../../src/kernel/fd.js';
import { O_CLOEXEC } from '../../src/kernel/constants.js';
import { getWindowSize, openPty } from '../../src/kernel/pty.js';
import { decodeRecords, type LogRecord } from '../../src/runtime/log-format.js';
import { monitorBinary } from '../../src/runtime/monitor-binary.js';
import { parseExitRecord } from '../../src/runtime/protocol.js';
import { tempDir } from '../helpers/tmp.js';

const execFileAsync = promisify(execFile);
const isRoot = process.getuid?.() === 0;

/** Process groups started by a test (the monitor's pid: it is a session and group leader). */
const groups: number[] = [];

afterEach(() => {
  for (const pgid of groups.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

interface Monitored {
  /** The monitor process (first `sh`, then the monitor after exec, same pid). */
  proc: ChildProcess;
  dir: string;
  logPath: string;
  exitPath: string;
  /** When the monitor exited (Date.now()) and how. */
  done: Promise<{ at: number; code: number | null; signal: NodeJS.Signals | null }>;
}

interface Options {
  /** Output on a pty (fd 3 the master; fd 4 not open) instead of two pipes. */
  tty?: boolean;
  /** Pass this fd as the monitor's fd 6 (a stdin write end). */
  stdinFd?: number;
  /** Log to this path instead of `<dir>/log` (e.g. `/dev/full`). */
  logPath?: string;
}

/** Starts `workload` (a `sh -c` script) under a fresh monitor. */
async function monitored(workload: string, opts: Options = {}): Promise<Monitored> {
  const bin = await monitorBinary();
  const dir = tempDir('monitor');
  const logPath = opts.logPath ?? join(dir, 'log');
  const exitPath = join(dir, 'exit.json');
  const mine: number[] = [];
  try {
    let out: number, err: number | undefined, outW: number, errW: number;
    if (opts.tty) {
      const pty = openPty({ size: { rows: 24, cols: 80 } });
      mine.push(pty.master, pty.slave);
      [out, outW, errW] = [pty.master, pty.slave, pty.slave];
    } else {
      const o = pipe2(O_CLOEXEC);
      const e = pipe2(O_CLOEXEC);
      mine.push(...o, ...e);
      [out, outW, err, errW] = [o[0], o[1], e[0], e[1]];
    }
    const logFd = openSync(logPath, 'a');
    mine.push(logFd);
    const stdio: StdioOptions = [
      'ignore',
      'ignore',
      'ignore',
      out,
      err ?? 'ignore',
      logFd,
      opts.stdinFd ?? 'ignore',
      outW,
      errW,
    ];
    const script = 'sh -c "$1" >&7 2>&8 3<&- 4<&- 5>&- 6>&- 7>&- 8>&- </dev/null & exec "$2" "$!" "$3" 7>&- 8>&-';
    const proc = spawn('/bin/sh', ['-c', script, 'sh', workload, bin, exitPath], { stdio, detached: true });
    groups.push(proc.pid!);
    const done = new Promise<{ at: number; code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proc.on('exit', (code, signal) => resolve({ at: Date.now(), code, signal })),
    );
    return { proc, dir, logPath, exitPath, done };
  } finally {
    // The child has its own copies now; ours would keep the pipes from reaching end of file.
    for (const fd of mine) close(fd);
  }
}

function records(logPath: string): LogRecord[] {
  const buf = readFileSync(logPath);
  const { records, consumed } = decodeRecords(buf);
  expect(consumed, 'the log ends with a whole record').toBe(buf.length);
  return records;
}

function joined(recs: LogRecord[], stream: 'stdout' | 'stderr'): Buffer {
  return Buffer.concat(recs.filter((r) => r.stream === stream).map((r) => r.data));
}

function exitFile(m: Monitored) {
  const text = readFileSync(m.exitPath, 'utf8');
  const record = parseExitRecord(JSON.parse(text));
  if (!record) throw new Error(`not an exit record: ${text}`);
  return { text, record };
}

/** Waits until the monitor has exec'd (sh replaced by berth-monitor). */
async function execd(pid: number, bin: string): Promise<void> {
  bin = realpathSync(bin);
  for (let i = 0; i < 500; i++) {
    try {
      if (readlinkSync(`/proc/${pid}/exe`) === bin) return;
    } catch {
      // Not there yet, or gone.
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`process ${pid} never became the monitor`);
}

describe.skipIf(!isRoot)('berth-monitor', () => {
  it('logs stdout and stderr as timestamped records, then writes the exit code', async () => {
    const t0 = Date.now();
    const m = await monitored('echo $$; sleep 0.05; printf "to stderr" >&2; sleep 0.05; echo last; exit 42');
    const { at, code } = await m.done;
    expect(code).toBe(0);

    const recs = records(m.logPath);
    expect(recs.map((r) => [r.stream, r.data.toString()])).toEqual([
      ['stdout', expect.stringMatching(/^\d+\n$/)],
      ['stderr', 'to stderr'],
      ['stdout', 'last\n'],
    ]);
    const times = recs.map((r) => r.timeNs);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThan(30_000_000n); // the sleeps
    expect(times[0]!).toBeGreaterThanOrEqual(BigInt(t0 - 1000) * 1_000_000n);
    expect(times.at(-1)!).toBeLessThanOrEqual(BigInt(at + 1000) * 1_000_000n);

    const { text, record } = exitFile(m);
    const pid = Number(recs[0]!.data.toString());
    expect(text).toBe(`{"pid":${pid},"exitCode":42,"finishedAt":${record.finishedAt}}`);
    expect(record.finishedAt).toBeGreaterThanOrEqual(t0);
    expect(record.finishedAt).toBeLessThanOrEqual(at);
    expect(at - record.finishedAt, 'no wait for the 2 s grace once the pipes closed').toBeLessThan(1500);
    expect(readdirSync(m.dir).sort(), 'no temporary exit file left').toEqual(['exit.json', 'log']);
  });

  it('keeps binary output byte-exact, in records of at most 64 KiB', async () => {
    const dir = tempDir('monitor-data');
    const all = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) all[i] = i;
    const outData = Buffer.concat([all, randomBytes(300_000), all]);
    const errData = Buffer.concat([randomBytes(100_000), all]);
    writeFileSync(join(dir, 'out'), outData);
    writeFileSync(join(dir, 'err'), errData);
    const m = await monitored(`cat '${dir}/out'; cat '${dir}/err' >&2`);
    expect((await m.done).code).toBe(0);
    const recs = records(m.logPath);
    expect(joined(recs, 'stdout').equals(outData)).toBe(true);
    expect(joined(recs, 'stderr').equals(errData)).toBe(true);
    for (const r of recs) expect(r.data.length).toBeLessThanOrEqual(65536);
    expect(recs.length).toBeGreaterThan(6); // 400 KB cannot fit in fewer records
    expect(exitFile(m).record.exitCode).toBe(0);
  });

  it.each([
    ['KILL', 9],
    ['TERM', 15],
  ])('reports death by SIG%s as 128+n and the signal', async (name, n) => {
    const m = await monitored(`echo before; kill -${name} $$; sleep 5`);
    expect((await m.done).code).toBe(0);
    const { text, record } = exitFile(m);
    expect(record).toMatchObject({ exitCode: 128 + n, signal: n });
    expect(text).toMatch(new RegExp(`^\\{"pid":\\d+,"exitCode":${128 + n},"signal":${n},"finishedAt":\\d+\\}$`));
    expect(joined(records(m.logPath), 'stdout').toString()).toBe('before\n');
  });

  it('never stalls a workload that writes a lot while nobody else reads', async () => {
    const size = 16 * 1024 * 1024;
    const m = await monitored(`head -c ${size} /dev/zero; head -c ${size} /dev/zero >&2`);
    const { code } = await m.done;
    expect(code).toBe(0);
    const recs = records(m.logPath);
    expect(joined(recs, 'stdout').length).toBe(size);
    expect(joined(recs, 'stderr').length).toBe(size);
    expect(exitFile(m).record.exitCode).toBe(0);
  });

  it('drops records it cannot write (ENOSPC) and still finishes', async () => {
    const m = await monitored('head -c 1000000 /dev/zero; echo gone >&2; exit 7', { logPath: '/dev/full' });
    expect((await m.done).code).toBe(0);
    expect(exitFile(m).record.exitCode).toBe(7);
  });

  it('keeps the log whole records when the disk fills up in the middle of one', async () => {
    const dir = tempDir('monitor-small');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=100k', 'berth-monitor-test', dir]);
    try {
      const m = await monitored('head -c 1000000 /dev/urandom; exit 4', { logPath: join(dir, 'log') });
      expect((await m.done).code).toBe(0);
      expect(exitFile(m).record.exitCode).toBe(4);
      const recs = records(m.logPath); // asserts the file ends on a record boundary
      expect(recs.length).toBeGreaterThan(0);
      expect(statSync(m.logPath).size).toBeLessThanOrEqual(100 * 1024);
    } finally {
      execFileSync('umount', [dir]);
    }
  });

  it('gives up on pipes a grandchild holds open 2 s after the exit; the exit file appears whole', async () => {
    const m = await monitored('(sleep 0.3; echo late; exec sleep 30) & echo early; exit 3');
    // The exit file must never be seen half-written.
    const torn: string[] = [];
    const watcher = setInterval(() => {
      let text: string;
      try {
        text = readFileSync(m.exitPath, 'utf8');
      } catch {
        return; // not there yet
      }
      try {
        if (!parseExitRecord(JSON.parse(text))) throw new Error(`not an exit record: ${text}`);
      } catch {
        torn.push(text);
      }
    }, 2);
    let result;
    try {
      result = await m.done;
    } finally {
      clearInterval(watcher);
    }
    expect(result.code).toBe(0);
    const { record } = exitFile(m);
    expect(record.exitCode).toBe(3);
    const waited = result.at - record.finishedAt;
    console.log(`monitor exited ${waited} ms after the workload (grandchild holding the pipes)`);
    expect(waited).toBeGreaterThanOrEqual(1900);
    expect(waited).toBeLessThan(3500);
    expect(joined(records(m.logPath), 'stdout').toString()).toBe('early\nlate\n');
    expect(readdirSync(m.dir).sort()).toEqual(['exit.json', 'log']);
    expect(torn).toEqual([]);
  });

  it('reads a pty master as stream 1 and takes EIO as end of file', async () => {
    const m = await monitored('[ -t 1 ] && echo tty; stty size <&1; printf "to stderr" >&2; exit 5', { tty: true });
    const { at, code } = await m.done;
    expect(code).toBe(0);
    const recs = records(m.logPath);
    expect(recs.every((r) => r.stream === 'stdout')).toBe(true);
    expect(joined(recs, 'stdout').toString()).toBe('tty\r\n24 80\r\nto stderr');
    const { record } = exitFile(m);
    expect(record.exitCode).toBe(5);
    expect(at - record.finishedAt, 'EIO ends the drain, not the 2 s grace').toBeLessThan(1500);
  });

  it('sets and reads a pty window size', () => {
    const pty = openPty({ size: { rows: 40, cols: 132 } });
    try {
      expect(pty.path).toMatch(/^\/dev\/pts\/\d+$/);
      expect(getWindowSize(pty.master)).toMatchObject({ rows: 40, cols: 132 });
    } finally {
      close(pty.master);
      close(pty.slave);
    }
  });

  it('stays under 1 MiB PSS, keeps fd 6 open and ignores hangups and interrupts while it runs', async () => {
    const bin = await monitorBinary();
    const stdin = pipe2(O_CLOEXEC);
    let m: Monitored;
    try {
      m = await monitored('head -c 300000 /dev/urandom; sleep 3', { stdinFd: stdin[1] });
    } finally {
      close(stdin[1]);
    }
    try {
      const pid = m.proc.pid!;
      await execd(pid, bin);
      for (let i = 0; i < 300 && (!existsSync(m.logPath) || statSync(m.logPath).size < 300_000); i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(statSync(m.logPath).size).toBeGreaterThanOrEqual(300_000);
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      const pss = Number(/^Pss:\s+(\d+) kB/m.exec(rollup)![1]);
      const rss = Number(/^Rss:\s+(\d+) kB/m.exec(rollup)![1]);
      console.log(`berth-monitor: PSS ${pss} KiB, RSS ${rss} KiB, binary ${statSync(bin).size} bytes`);
      expect(pss).toBeLessThan(1024);
      expect(readlinkSync(`/proc/${pid}/fd/6`)).toMatch(/^pipe:/);
      for (const sig of ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGPIPE', 'SIGTTIN', 'SIGTTOU'] as const)
        process.kill(pid, sig);
    } finally {
      close(stdin[0]);
    }
    expect(await m.done).toMatchObject({ code: 0, signal: null });
    expect(exitFile(m).record.exitCode).toBe(0);
  });

  it('exits 2 on bad arguments and 1 when the child cannot be opened, writing nothing', async () => {
    const bin = await monitorBinary();
    const dir = tempDir('monitor-args');
    const run = (args: string[]) =>
      execFileAsync(bin, args).then(
        () => 0,
        (e: { code?: number }) => e.code,
      );
    expect(await run([])).toBe(2);
    expect(await run(['12x', join(dir, 'exit.json')])).toBe(2);
    expect(await run(['1', ''])).toBe(2);
    expect(await run(['999999999', join(dir, 'exit.json')])).toBe(1);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('monitorBinary', () => {
  /** A fresh copy of the module (its own cache), with BERTH_MONITOR set to `env` meanwhile. */
  async function fresh<T>(
    env: string | undefined,
    use: (m: typeof import('../../src/runtime/monitor-binary.js')) => Promise<T>,
  ): Promise<T> {
    const saved = process.env.BERTH_MONITOR;
    if (env === undefined) delete process.env.BERTH_MONITOR;
    else process.env.BERTH_MONITOR = env;
    try {
      vi.resetModules();
      return await use(await import('../../src/runtime/monitor-binary.js'));
    } finally {
      if (saved === undefined) delete process.env.BERTH_MONITOR;
      else process.env.BERTH_MONITOR = saved;
    }
  }

  it('compiles from sources once and returns the same cached path', async () => {
    await fresh(undefined, async ({ monitorBinary }) => {
      const a = monitorBinary();
      expect(monitorBinary()).toBe(a);
      const path = await a;
      expect(path).toMatch(new RegExp(`/node_modules/\\.cache/berth/monitor-[0-9a-f]{16}-${process.arch}$`));
      expect(statSync(path).mode & 0o777).toBe(0o755);
      expect(await monitorBinary()).toBe(path);
    });
  });

  it('takes BERTH_MONITOR as it is', async () => {
    await fresh('/opt/somewhere/berth-monitor', async ({ monitorBinary }) => {
      expect(await monitorBinary()).toBe('/opt/somewhere/berth-monitor');
    });
  });
});
