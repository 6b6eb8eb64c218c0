/**
 * `ContainerProcess` against a fake starter: stdin written before the process runs is delivered,
 * output is demultiplexed, `exited` maps the runtime's status, and a failure to start rejects
 * `started` and `exited` without unhandled rejections.
 */
import { readFileSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { ContainerProcess } from '../../src/container/process.js';
import { close, pipe2 } from '../../src/kernel/fd.js';
import { O_CLOEXEC } from '../../src/kernel/constants.js';
import { CommandError } from '../../src/errors.js';
import type { ExitRecord } from '../../src/runtime/protocol.js';

describe('ContainerProcess', () => {
  it('delivers stdin written before the start, demultiplexes output and maps the exit', async () => {
    const [r, w] = pipe2(O_CLOEXEC);
    let finish!: (s: ExitRecord) => void;
    let emit!: (stream: 'stdout' | 'stderr', d: Buffer) => void;
    const p = new ContainerProcess({
      start: async (onOutput) => {
        emit = onOutput;
        await new Promise((res) => setTimeout(res, 20));
        return { pid: 42, startTime: 1, stdin: w, exited: new Promise<ExitRecord>((res) => (finish = res)) };
      },
      signal: () => undefined,
    });
    p.stdin.write('early ');
    expect(p.pid).toBeUndefined();
    await p.started;
    expect(p.pid).toBe(42);
    p.stdin.end('late');
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (err += d));
    emit('stdout', Buffer.from('o'));
    emit('stderr', Buffer.from('e'));
    // The pipe's reader sees everything, then end of file once stdin ends.
    await new Promise((res) => p.stdin.once('finish', res));
    await new Promise((res) => setTimeout(res, 20));
    expect(readFileSync(`/proc/self/fd/${r}`, 'utf8')).toBe('early late');
    close(r);
    finish({ pid: 42, exitCode: 137, signal: 9, finishedAt: Date.now() });
    expect(await p.exited).toEqual({ exitCode: 137, signal: 'SIGKILL' });
    expect([out, err]).toEqual(['o', 'e']);
    await finished(p.stdout);
    await finished(p.stderr);
  });

  it('rejects started and exited when the process cannot start', async () => {
    const p = new ContainerProcess({
      start: () => Promise.reject(new CommandError('nope', 127, 'exec: "nope": executable file not found in $PATH')),
      signal: () => undefined,
    });
    await expect(p.exited).rejects.toMatchObject({ code: 'COMMAND_NOT_FOUND' });
    await expect(p.started).rejects.toMatchObject({ code: 'COMMAND_NOT_FOUND' });
    await expect(p.kill()).rejects.toMatchObject({ code: 'COMMAND_NOT_FOUND' });
    await expect(p.resize(0, 10)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('passes signals on by number, and refuses unknown ones', async () => {
    const sent: number[] = [];
    const p = new ContainerProcess({
      start: async () => ({ pid: 7, startTime: 3, exited: new Promise<ExitRecord>(() => undefined) }),
      signal: (_pid, _st, s) => sent.push(s),
    });
    await p.kill('INT');
    await p.kill(15);
    await expect(p.kill('SIGNOPE')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(sent).toEqual([2, 15]);
  });
});
