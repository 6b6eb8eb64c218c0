/** The bounded output collector of `exec` (`container/output-cap.ts`). */
import { describe, expect, it } from 'vitest';
import { CappedOutput } from '../../src/container/output-cap.js';

const feed = (c: CappedOutput, parts: string[]): CappedOutput => {
  for (const p of parts) c.push(Buffer.from(p));
  return c;
};

describe('CappedOutput', () => {
  it.each([
    ['keeps everything without a limit', undefined, 'head', ['abc', 'def'], 'abcdef', false],
    ['keeps everything that fits', 6, 'head', ['abc', 'def'], 'abcdef', false],
    ['keeps the head across chunks', 4, 'head', ['abc', 'def', 'ghi'], 'abcd', true],
    ['keeps the tail across chunks', 4, 'tail', ['abc', 'def', 'ghi'], 'fghi', true],
    ['keeps the tail inside one chunk', 2, 'tail', ['abcdef'], 'ef', true],
    ['says nothing was cut when the tail fits', 9, 'tail', ['abc', 'def'], 'abcdef', false],
  ] as const)('%s', (_t, max, keep, parts, text, truncated) => {
    const c = feed(new CappedOutput(max, keep), [...parts]);
    expect(c.text()).toBe(text);
    expect(c.truncated).toBe(truncated);
  });

  it('holds no more than the limit however much arrives', () => {
    const c = new CappedOutput(1024, 'tail');
    for (let i = 0; i < 10_000; i++) c.push(Buffer.alloc(4096, i % 256));
    expect(Buffer.byteLength(c.text(), 'latin1')).toBeLessThanOrEqual(4096);
    expect(c.truncated).toBe(true);
  });
});
