import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidArgumentError, KernelError } from '../../src/errors.js';
import { EventLog } from '../../src/events/event-log.js';
import type { BerthEvent, EventInput } from '../../src/events/types.js';
import { tempDir } from '../helpers/tmp.js';

const ev = (action: string, id = 'c1', extra: Partial<EventInput> = {}): EventInput => ({
  type: 'container',
  action,
  id,
  ...extra,
});

/** Collects what `iter` yields until `n` events arrived (or `ms` passed). */
async function take(iter: AsyncIterator<BerthEvent>, n: number, ms = 2000): Promise<BerthEvent[]> {
  const out: BerthEvent[] = [];
  const deadline = Date.now() + ms;
  while (out.length < n && Date.now() < deadline) {
    const r = await Promise.race([iter.next(), sleep(deadline - Date.now()).then(() => undefined)]);
    if (r === undefined || r.done) break;
    out.push(r.value);
  }
  return out;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('EventLog.append and read', () => {
  it('fills time and attributes, and reads back with filters', async () => {
    const log = new EventLog(tempDir('events'));
    const before = Date.now();
    const a = await log.append(ev('create'));
    expect(a.attributes).toEqual({});
    expect(a.time).toBeGreaterThanOrEqual(before);
    await log.append({ type: 'image', action: 'pull', id: 'sha256:1', attributes: { name: 'alpine' }, time: a.time });
    await log.append(ev('start', 'c1', { time: a.time + 10_000 }));
    expect((await log.read()).map((e) => e.action)).toEqual(['create', 'pull', 'start']);
    expect((await log.read({ type: 'image' }))[0]).toMatchObject({ id: 'sha256:1', attributes: { name: 'alpine' } });
    expect((await log.read({ action: ['start', 'create'] })).map((e) => e.action)).toEqual(['create', 'start']);
    expect((await log.read({ since: a.time + 1 })).map((e) => e.action)).toEqual(['start']);
    expect((await log.read({ until: a.time + 5000 })).map((e) => e.action)).toEqual(['create', 'pull']);
    expect(fs.readFileSync(log.file, 'utf8').split('\n')).toHaveLength(4);
  });

  it('reads nothing from a root with no log yet', async () => {
    expect(await new EventLog(path.join(tempDir('events'), 'none')).read()).toEqual([]);
  });

  it('rejects malformed events and filters before doing anything', async () => {
    const root = tempDir('events');
    const log = new EventLog(root);
    await expect(log.append({ type: 'pod', action: 'x', id: 'y' } as unknown as EventInput)).rejects.toMatchObject({
      field: 'type',
    });
    await expect(log.append(ev(''))).rejects.toMatchObject({ field: 'action' });
    await expect(log.append(ev('x', 'y', { attributes: { big: 'x'.repeat(70_000) } }))).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(log.read({ since: 'later' })).rejects.toMatchObject({ field: 'since' });
    expect(() => log.follow({ until: 'never' })).toThrow(InvalidArgumentError);
    expect(fs.readdirSync(root)).toEqual([]);
  });

  it('skips torn and foreign lines', async () => {
    const log = new EventLog(tempDir('events'));
    await log.append(ev('one'));
    fs.appendFileSync(
      log.file,
      '{"type":"container","act\n\nnot json\n{"type":"pod","action":"x","id":"y","attributes":{},"time":1}\n',
    );
    await log.append(ev('two'));
    fs.appendFileSync(log.file, '{"type":"container","action":"torn'); // a write cut short, no newline
    await log.append(ev('three'));
    expect((await log.read()).map((e) => e.action)).toEqual(['one', 'two', 'three']);
  });

  it('reports a full disk as a KernelError and writes nothing readable', async () => {
    const log = new EventLog(tempDir('events'));
    await log.append(ev('one'));
    vi.spyOn(fs, 'writeSync').mockImplementationOnce(() => {
      throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    });
    await expect(log.append(ev('lost'))).rejects.toBeInstanceOf(KernelError);
    await log.append(ev('two'));
    expect((await log.read()).map((e) => e.action)).toEqual(['one', 'two']);
  });

  it('rotates: keeps the most recent events within maxBytes', async () => {
    const log = new EventLog(tempDir('events'), { maxBytes: 16 * 1024 });
    for (let i = 0; i < 500; i++) await log.append(ev('tick', `c${i}`));
    const sizes = [log.file, `${log.file}.1`].map((f) => fs.statSync(f).size);
    expect(sizes[0]! + sizes[1]!).toBeLessThanOrEqual(16 * 1024 + 200);
    const ids = (await log.read()).map((e) => Number(e.id.slice(1)));
    expect(ids.at(-1)).toBe(499);
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => 500 - ids.length + i));
    expect(ids.length).toBeGreaterThan(50);
  });
});

describe('EventLog.follow', () => {
  it('yields only events appended after the call, without since', async () => {
    const log = new EventLog(tempDir('events'));
    await log.append(ev('old'));
    const it = log.follow();
    await log.append(ev('new1'));
    await log.append(ev('new2'));
    expect((await take(it, 2)).map((e) => e.action)).toEqual(['new1', 'new2']);
    await it.return();
  });

  it('yields past events from since, then live ones, filtered', async () => {
    const log = new EventLog(tempDir('events'));
    const t0 = (await log.append(ev('create'))).time;
    await log.append({ type: 'image', action: 'pull', id: 'i' });
    const it = log.follow({ since: t0, type: ['container'] });
    const first = await take(it, 1);
    await log.append(ev('start'));
    await log.append({ type: 'volume', action: 'create', id: 'v' });
    await log.append(ev('die'));
    expect([...first, ...(await take(it, 2))].map((e) => e.action)).toEqual(['create', 'start', 'die']);
    await it.return();
  });

  it('ends at until, whether past or future', async () => {
    const log = new EventLog(tempDir('events'));
    const t0 = (await log.append(ev('a'))).time;
    await log.append(ev('b', 'c1', { time: t0 + 1 }));
    const past: string[] = [];
    for await (const e of log.follow({ since: t0, until: t0 })) past.push(e.action);
    expect(past).toEqual(['a']);
    const started = Date.now();
    const live: string[] = [];
    const p = (async () => {
      for await (const e of log.follow({ until: Date.now() + 150 })) live.push(e.action);
    })();
    await sleep(20);
    await log.append(ev('c'));
    await p;
    expect(live).toEqual(['c']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('ends when the signal aborts', async () => {
    const log = new EventLog(tempDir('events'));
    const ac = new AbortController();
    const seen: string[] = [];
    const p = (async () => {
      for await (const e of log.follow({}, ac.signal)) seen.push(e.action);
    })();
    await sleep(10);
    await log.append(ev('x'));
    await sleep(30);
    ac.abort();
    await p;
    expect(seen).toEqual(['x']);
  });

  it('follows across rotations, each event exactly once and in order', async () => {
    const log = new EventLog(tempDir('events'), { maxBytes: 8 * 1024 });
    const it = log.follow();
    const got = take(it, 400, 5000);
    for (let i = 0; i < 400; i++) {
      await log.append(ev('tick', `c${i}`));
      if (i % 50 === 0) await sleep(1);
    }
    expect((await got).map((e) => e.id)).toEqual(Array.from({ length: 400 }, (_, i) => `c${i}`));
    await it.return();
  });

  it('delivers an event to two followers once each', async () => {
    const log = new EventLog(tempDir('events'));
    const a = log.follow();
    const b = log.follow({ action: 'x' });
    await log.append(ev('x'));
    await log.append(ev('y'));
    expect((await take(a, 3, 300)).map((e) => e.action)).toEqual(['x', 'y']);
    expect((await take(b, 2, 300)).map((e) => e.action)).toEqual(['x']);
    await a.return();
    await b.return();
  });
});
