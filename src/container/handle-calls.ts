/**
 * The longer calls of the `Container` handle that read over time — `wait`, `logs`, `stats` — with
 * their `{ signal, timeout }`: each validates its options and drives the container service, and a
 * stop becomes the call's typed error (`ABORTED`, `TIMEOUT`; see `call-stop.ts`).
 *
 * @module
 */
import { z } from 'zod';
import type { CgroupStats } from '../runtime/cgroups/index.js';
import { callStop, sleepUnless, stopShape, underStop } from './call-stop.js';
import { linesToText, type LogLine, type LogsOptions } from './logs.js';
import { parseOptions } from './options.js';
import type { ContainerService, WaitCondition } from './service.js';
import { toSummary, type ContainerSummary } from './info.js';
import type { ContainerStatus } from './record.js';

const waitSchema = z.strictObject({
  condition: z.enum(['not-running', 'next-exit', 'removed']).optional(),
  ...stopShape,
});

const statsSchema = z.strictObject({ interval: z.number().int().min(10).optional(), ...stopShape });

/** `container.wait()`: the exit code once `condition` holds; `TIMEOUT`/`ABORTED` leave the container as it is. */
export async function waitUntil(
  svc: ContainerService,
  ref: string,
  options: { condition?: WaitCondition; signal?: AbortSignal; timeout?: number },
): Promise<{ exitCode: number }> {
  const o = parseOptions(waitSchema, options);
  return underStop(`waiting for container ${ref}`, o, async (signal) => {
    const { exitCode } = await svc.wait(ref, signal, o.condition ?? 'not-running');
    return { exitCode };
  });
}

/** `container.stats()`: samples every `interval` ms while it runs; ends when it stops. */
export async function* sampleStats(
  svc: ContainerService,
  ref: string,
  options: { interval?: number; signal?: AbortSignal; timeout?: number },
): AsyncGenerator<CgroupStats & { time: Date }> {
  const o = parseOptions(statsSchema, options);
  const stop = callStop(o.signal, o.timeout);
  for (;;) {
    stop.throwIfStopped(`sampling the stats of container ${ref}`);
    if (svc.closed) return; // the engine closed: the stream ends
    let s;
    try {
      s = await svc.stats(ref);
    } catch (e) {
      if ((e as { code?: string }).code === 'NOT_RUNNING') return;
      throw e;
    }
    yield { ...s, time: new Date() };
    await sleepUnless(o.interval ?? 1000, stop.signal);
  }
}

/** `container.logs()`: lines to iterate, or the text when awaited. `o` is validated by the caller. */
export function readLogs(
  svc: ContainerService,
  ref: string,
  options: LogsOptions,
): AsyncIterable<LogLine> & PromiseLike<string> {
  const { signal, timeout, ...o } = options;
  const lines = async function* (): AsyncGenerator<LogLine> {
    const stop = callStop(signal, timeout);
    yield* svc.logLines(ref, { ...o, ...(stop.signal ? { signal: stop.signal } : {}) });
    stop.throwIfStopped(`reading the logs of container ${ref}`);
  };
  return {
    [Symbol.asyncIterator]: () => lines(),
    then(onFulfilled, onRejected) {
      const all = (async () => {
        const out: LogLine[] = [];
        for await (const l of lines()) out.push(l);
        return linesToText(out, o.timestamps ?? false);
      })();
      return all.then(onFulfilled, onRejected);
    },
  };
}

/** `Container.list()`: the records as summaries, newest first; `o` is validated by the caller. */
export async function listContainers(
  svc: ContainerService,
  o: { all?: boolean; label: string[]; name: string[]; status: ContainerStatus[] },
): Promise<ContainerSummary[]> {
  const recs = await svc.list({
    ...(o.all !== undefined ? { all: o.all } : {}),
    label: o.label,
    name: o.name,
    status: o.status,
  });
  return recs.map((r) => toSummary(r));
}

/** `Container.prune()`: removes every stopped container; returns the ids removed (one that cannot be is skipped, as Docker). */
export async function pruneStopped(svc: ContainerService): Promise<string[]> {
  const removed: string[] = [];
  for (const r of await svc.list({ status: ['exited', 'created', 'dead'] })) {
    await svc.remove(r.id).then(
      () => removed.push(r.id),
      () => undefined, // in use again, or removed meanwhile by another process: not pruned here
    );
  }
  return removed;
}
