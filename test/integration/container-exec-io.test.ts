/**
 * `exec` for untrusted programs: input on stdin without a race, and bounded output (head or
 * tail) that says it was cut, on both exec paths.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Container } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine, withExecPath } from '../helpers/engine.js';

for (const path of ['native', 'js'] as const) {
  describe(`exec input and output caps (${path})`, () => {
    withExecPath(path);

    it('writes input to the command and closes its stdin, from a string, a Buffer and a stream', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, ...NO_NETWORK });
      expect((await c.exec(['cat'], { input: 'from a string\n' })).stdout).toBe('from a string\n');
      expect((await c.exec(['wc', '-c'], { input: Buffer.alloc(300_000, 1) })).stdout.trim()).toBe('300000');
      const stream = Readable.from(['one\n', 'two\n']);
      expect((await c.exec(['sort', '-r'], { input: stream })).stdout).toBe('two\none\n');
      // Without input, stdin is /dev/null: cat ends at once.
      expect((await c.exec(['cat'])).stdout).toBe('');
    });

    it('ends a command that stops reading early without failing the exec', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, ...NO_NETWORK });
      const r = await c.exec(['head', '-c', '3'], { input: Buffer.alloc(2_000_000, 0x61) });
      expect(r).toMatchObject({ exitCode: 0, stdout: 'aaa' });
    });

    it('keeps the head or the tail of each stream up to maxOutput and says which stream was cut', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, ...NO_NETWORK });
      const script = 'i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done; echo small >&2';
      const head = await c.exec(['sh', '-c', script], { maxOutput: 1000 });
      expect(head.stdout.length).toBe(1000);
      expect(head.stdout.startsWith('line 0\nline 1\n')).toBe(true);
      expect(head.stderr).toBe('small\n');
      expect(head.truncated).toEqual({ stdout: true, stderr: false });
      const tail = await c.exec(['sh', '-c', script], { maxOutput: 1000, keep: 'tail' });
      expect(tail.stdout.length).toBe(1000);
      expect(tail.stdout.endsWith('line 19999\n')).toBe(true);
      expect(tail.truncated).toEqual({ stdout: true, stderr: false });
      expect((await c.exec(['echo', 'hi'])).truncated).toBeUndefined();
    });

    it('kills a command at its timeout or when its signal fires, with TIMEOUT or ABORTED', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, ...NO_NETWORK });
      await expect(c.exec(['sleep', '30'], { timeout: 200 })).rejects.toMatchObject({ code: 'TIMEOUT' });
      const ac = new AbortController();
      const pending = c.exec(['sh', '-c', 'echo started; sleep 30'], { signal: ac.signal });
      setTimeout(() => ac.abort(new Error('test over')), 300);
      await expect(pending).rejects.toMatchObject({ code: 'ABORTED', cause: { message: 'test over' } });
      // Nothing of either is left running in the container.
      expect((await c.exec(['ps', '-o', 'args'])).stdout).not.toMatch(/sleep 30/);
      await expect(c.exec(['true'], { signal: AbortSignal.abort() })).rejects.toBeDefined();
    });

    it('stops waiting for a container at the timeout or the signal, and leaves it running', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, ...NO_NETWORK });
      await expect(c.wait({ timeout: 200 })).rejects.toMatchObject({ code: 'TIMEOUT' });
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      await expect(c.wait({ signal: ac.signal })).rejects.toMatchObject({ code: 'ABORTED' });
      expect((await c.inspect()).state.status).toBe('running');
    });

    it('ends a log follow at its timeout or signal with TIMEOUT or ABORTED, after the lines read so far', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'echo first; sleep 60'], { engine, ...NO_NETWORK });
      const seen: string[] = [];
      const follow = async (o: { timeout?: number; signal?: AbortSignal }): Promise<void> => {
        for await (const l of c.logs({ follow: true, ...o })) seen.push(l.text);
      };
      await expect(follow({ timeout: 300 })).rejects.toMatchObject({ code: 'TIMEOUT' });
      expect(seen).toEqual(['first\n']);
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 200);
      await expect(follow({ signal: ac.signal })).rejects.toMatchObject({ code: 'ABORTED' });
      expect((await c.inspect()).state.status).toBe('running');
    });

    it('ends a stats stream at its signal with ABORTED', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, ...NO_NETWORK });
      const ac = new AbortController();
      let samples = 0;
      const reading = (async () => {
        for await (const _ of c.stats({ interval: 50, signal: ac.signal })) if (++samples === 2) ac.abort();
      })();
      await expect(reading).rejects.toMatchObject({ code: 'ABORTED' });
      expect(samples).toBe(2);
    });

    it('refuses a bad maxOutput naming the field', async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, ...NO_NETWORK });
      await expect(c.exec(['true'], { maxOutput: 0 })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'maxOutput',
      });
    });
  });
}
