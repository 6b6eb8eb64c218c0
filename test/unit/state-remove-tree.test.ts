/** removeTreeSync: deletes a tree, never follows symlinks, tolerates what is gone. */
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTreeSync } from '../../src/state/remove-tree.js';

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'berth-rmtree-'));
  made.push(d);
  return d;
}

describe('removeTreeSync', () => {
  it('deletes nested directories and files, and leaves what a symlink points to', () => {
    const base = tmp();
    const outside = join(base, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep'), 'x');
    const tree = join(base, 'tree');
    mkdirSync(join(tree, 'a/b/c'), { recursive: true });
    writeFileSync(join(tree, 'a/b/c/f'), 'x');
    writeFileSync(join(tree, 'top'), 'x');
    symlinkSync(outside, join(tree, 'a/link'));
    symlinkSync('/nonexistent', join(tree, 'dangling'));
    expect(removeTreeSync(tree)).toBe(true);
    expect(existsSync(tree)).toBe(false);
    expect(existsSync(join(outside, 'keep'))).toBe(true);
  });

  it('is true for a missing path and deletes a lone file', () => {
    const base = tmp();
    expect(removeTreeSync(join(base, 'missing'))).toBe(true);
    writeFileSync(join(base, 'file'), 'x');
    expect(removeTreeSync(join(base, 'file'))).toBe(true);
    expect(existsSync(join(base, 'file'))).toBe(false);
  });
});
