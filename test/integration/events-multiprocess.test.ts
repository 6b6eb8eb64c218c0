/**
 * The event log shared by several real processes: delivery latency, concurrent appenders with
 * rotation, and followers that must not keep a process alive.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { EventHub } from '../../src/events/event-hub.js';
import { EventLog } from '../../src/events/event-log.js';
import { INDEX_STEP, indexFileOf } from '../../src/events/log-index.js';
import type { BerthEvent } from '../../src/events/types.js';
import { tempDir } from '../helpers/tmp.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const children = new Set<ChildProcess>();

interface Child {
  proc: ChildProcess;
  line(): Promise<string>;
  exited: Promise<number | string>;
}

/** Starts `source` (TypeScript, ESM) as `node --import tsx` (one process, so signals reach it). */
function child(dir: string, source: string, args: string[]): Child {
  const script = path.join(dir, `child-${Math.random().toString(36).slice(2)}.mts`);
  fs.writeFileSync(script, source.replaceAll('@src', path.join(REPO, 'src')));
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.add(proc);
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else lines.push(l);
  });
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  void exited.then(() => children.delete(proc));
  return {
    proc,
    exited,
    line: () => (lines.length > 0 ? Promise.resolve(lines.shift()!) : new Promise((r) => waiting.push(r))),
  };
}

afterEach(() => {
  for (const p of children) p.kill('SIGKILL');
  children.clear();
});

const APPENDER = `
import { EventLog } from '@src/events/event-log.ts';
const [root, worker, count, gap, maxBytes] = process.argv.slice(2);
const log = new EventLog(root!, { maxBytes: Number(maxBytes) });
console.log('ready');
await new Promise((r) => process.stdin.once('data', r));
for (let i = 0; i < Number(count); i++) {
  await log.append({ type: 'container', action: 'tick', id: worker + '-' + i, attributes: { worker: worker!, i: String(i) } });
  if (Number(gap) > 0) await new Promise((r) => setTimeout(r, Number(gap)));
}
console.log('done');
process.stdin.destroy();
`;

async function collect(
  iter: AsyncIterator<BerthEvent>,
  n: number,
  ms: number,
  onEvent?: (e: BerthEvent) => void,
): Promise<BerthEvent[]> {
  const out: BerthEvent[] = [];
  const deadline = Date.now() + ms;
  while (out.length < n && Date.now() < deadline) {
    const r = await Promise.race([iter.next(), sleep(Math.max(0, deadline - Date.now())).then(() => undefined)]);
    if (r === undefined || r.done) break;
    onEvent?.(r.value);
    out.push(r.value);
  }
  return out;
}

describe('EventLog across processes', () => {
  it('a follower sees events appended by another process within 200 ms', async () => {
    const root = tempDir('events-mp');
    const log = new EventLog(root);
    const stream = log.follow();
    const w = child(root, APPENDER, [root, 'a', '20', '25', String(8 << 20)]);
    expect(await w.line()).toBe('ready');
    w.proc.stdin!.write('go\n');
    const latencies: number[] = [];
    const got = await collect(stream, 20, 10_000, (e) => latencies.push(Date.now() - e.time));
    await stream.return();
    expect(got.map((e) => e.id)).toEqual(Array.from({ length: 20 }, (_, i) => `a-${i}`));
    expect(Math.max(...latencies)).toBeLessThan(200);
    expect(await w.exited).toBe(0);
  });

  it('4 concurrent appenders across rotations: no torn line, every event followed exactly once, in each writer’s order', async () => {
    const root = tempDir('events-mp');
    // ~130 bytes an event: 4000 events make 4 rotations. (A follower that falls about maxBytes
    // behind loses events, and these writers write ~10 MB/s: keep the margin generous.)
    const maxBytes = 256 * 1024;
    const log = new EventLog(root, { maxBytes });
    const stream = log.follow();
    const hub = new EventHub(new EventLog(root));
    const hubSeen: string[] = [];
    hub.on('container', (e) => hubSeen.push(e.id));
    const workers = ['a', 'b', 'c', 'd'].map((name) =>
      child(root, APPENDER, [root, name, '1000', '0', String(maxBytes)]),
    );
    for (const w of workers) expect(await w.line()).toBe('ready');
    for (const w of workers) w.proc.stdin!.write('go\n');
    const got = await collect(stream, 4000, 20_000);
    await stream.return();
    for (const w of workers) expect(await w.line()).toBe('done');
    await sleep(150);
    hub.removeAllListeners();

    const ids = got.map((e) => e.id);
    expect(new Set(ids).size).toBe(4000);
    expect(ids).toHaveLength(4000);
    for (const name of ['a', 'b', 'c', 'd']) {
      const mine = got.filter((e) => e.attributes.worker === name).map((e) => Number(e.attributes.i));
      expect(mine).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    }
    expect(hubSeen).toEqual(ids);
    const files = [log.file, `${log.file}.1`];
    let total = 0;
    for (const f of files) {
      const lines = fs.readFileSync(f, 'utf8').split('\n');
      expect(lines.pop()).toBe('');
      // No torn or interleaved line. (An empty line may appear: an append that sees the file
      // mid-write of another one starts with a newline, in case the other one was torn.)
      for (const l of lines) if (l !== '') JSON.parse(l);
      total += fs.statSync(f).size;
    }
    expect(total).toBeLessThanOrEqual(2 * maxBytes); // rotation waits for a moment without appenders
    expect((await log.read()).at(-1)?.id).toBe(got.at(-1)?.id);
  });

  it('3 appenders with clocks out of order, one killed with SIGKILL mid-way, and readers meanwhile: a read from since returns exactly what a full scan does', async () => {
    const root = tempDir('events-mp');
    const maxBytes = 24 * INDEX_STEP; // rotations, and several checkpoints a file
    const SKEWED = `
import { EventLog } from '@src/events/event-log.ts';
const [root, worker, maxBytes] = process.argv.slice(2);
const log = new EventLog(root!, { maxBytes: Number(maxBytes) });
let seed = worker!.charCodeAt(0);
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pad = 'p'.repeat(100);
console.log('ready');
await new Promise((r) => process.stdin.once('data', r));
for (let i = 0; ; i++) {
  // each writer's clock is off by up to a minute either way, as if its appends waited
  const time = Date.now() + Math.floor((random() - 0.5) * 120_000);
  await log.append({ type: 'container', action: 'tick', id: worker + '-' + i, attributes: { pad }, time });
  if (i === 3000) console.log('done');
  if (i >= 3000 && worker !== 'k') break;
}
process.stdin.destroy();
`;
    const workers = ['a', 'b', 'k'].map((name) => child(root, SKEWED, [root, name, String(maxBytes)]));
    for (const w of workers) expect(await w.line()).toBe('ready');
    for (const w of workers) w.proc.stdin!.write('go\n');
    const reader = new EventLog(root, { maxBytes });
    const killer = workers[2]!;
    await sleep(300);
    killer.proc.kill('SIGKILL'); // wherever it is: appending, extending an index, rotating
    expect(await killer.exited).toBe('SIGKILL');
    let finished = false;
    const done = Promise.all(workers.slice(0, 2).map((w) => w.line())).finally(() => (finished = true));
    for (let reads = 0; !finished || reads === 0; reads++) {
      await reader.read({ since: Date.now() - 10_000 }); // readers extend the index too
      await sleep(20);
    }
    expect(await done).toEqual(['done', 'done']);
    expect(await Promise.all(workers.slice(0, 2).map((w) => w.exited))).toEqual([0, 0]);

    const all = await new EventLog(root, { maxBytes }).read(); // no since: every line, parsed
    // Enough to span a rotation and many checkpoints; how many events the two kept files hold
    // depends on when rotations found a moment without appenders (fewer under load).
    // (A file is rotated once past half of maxBytes.)
    expect(fs.statSync(`${reader.file}.1`).size).toBeGreaterThan(maxBytes / 2);
    expect(all.length).toBeGreaterThan(1000);
    const times = all.map((e) => e.time);
    const probes = [
      ...times.filter((_, i) => i % 97 === 0),
      ...times.filter((_, i) => i % 89 === 0).map((t) => t + 1),
      Math.min(...times),
      Date.now(),
    ];
    for (const t of probes) expect(await reader.read({ since: t })).toEqual(all.filter((e) => e.time >= t));
    expect(fs.existsSync(indexFileOf(reader.file))).toBe(true);
  });

  it('followers and hub listeners do not keep a process alive, unless asked to', async () => {
    const root = tempDir('events-mp');
    const IDLE = `
import { EventLog } from '@src/events/event-log.ts';
import { EventHub } from '@src/events/event-hub.ts';
const [root, keepAlive] = process.argv.slice(2);
const log = new EventLog(root!);
void (async () => {
  for await (const e of log.follow({ keepAlive: keepAlive === '1' })) console.log(e.id);
})();
new EventHub(log).on('event', (e) => console.log('hub', e.id));
console.log('following');
`;
    const idle = child(root, IDLE, [root, '0']);
    expect(await idle.line()).toBe('following');
    const code = await Promise.race([idle.exited, sleep(5000).then(() => 'still running')]);
    expect(code).toBe(0);

    const kept = child(root, IDLE, [root, '1']);
    expect(await kept.line()).toBe('following');
    await sleep(300);
    expect(kept.proc.exitCode).toBeNull();
    await new EventLog(root).append({ type: 'network', action: 'create', id: 'n1' });
    expect([await kept.line(), await kept.line()].sort()).toEqual(['hub n1', 'n1']);
    kept.proc.kill('SIGKILL');
  });
});
