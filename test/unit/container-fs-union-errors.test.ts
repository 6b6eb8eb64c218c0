/**
 * The union walks take only a directory that is gone (or became a file) for an empty one: any
 * other failure to list a directory is thrown, so that `docker diff`, `docker export` and a
 * commit layer never silently miss a directory's content. The failure is injected into
 * `readdirSync` (as root, a real EIO or EACCES cannot be provoked on a plain directory).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { upperChanges, walkUnion, walkUpper } from '../../src/container/fs/union.js';
import { tempDir } from '../helpers/tmp.js';

/** Directories whose listing fails, with the errno code it fails with. */
const failing = vi.hoisted(() => new Map<string, string>());

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const readdirSync = ((p: fs.PathLike, o?: unknown) => {
    const code = failing.get(Buffer.isBuffer(p) ? p.toString('utf8') : String(p));
    if (code !== undefined) throw Object.assign(new Error(`${code}: injected, readdir '${String(p)}'`), { code });
    return (real.readdirSync as (p: fs.PathLike, o?: unknown) => unknown)(p, o);
  }) as typeof real.readdirSync;
  return { ...real, default: { ...real, readdirSync }, readdirSync };
});

function upperWithDir(): { upper: string; sub: string } {
  const upper = tempDir('union-errors');
  const sub = join(upper, 'sub');
  fs.mkdirSync(sub);
  fs.writeFileSync(join(sub, 'file'), 'x');
  return { upper, sub };
}

const WALKS: Array<[string, (upper: string) => unknown]> = [
  ['walkUpper (the commit layer)', (upper) => [...walkUpper(upper, [])]],
  ['walkUnion (export)', (upper) => [...walkUnion([upper])]],
  ['upperChanges (diff)', (upper) => upperChanges(upper, [])],
];

describe('union walks and a directory that cannot be listed', () => {
  for (const [name, walk] of WALKS) {
    it(`${name} throws an EIO listing a directory instead of taking it for empty`, () => {
      const { upper, sub } = upperWithDir();
      failing.set(sub, 'EIO');
      try {
        expect(() => walk(upper)).toThrow(expect.objectContaining({ code: 'EIO' }));
      } finally {
        failing.clear();
      }
    });

    it(`${name} takes a directory removed meanwhile (ENOENT) for an empty one`, () => {
      const { upper, sub } = upperWithDir();
      failing.set(sub, 'ENOENT');
      try {
        expect(() => walk(upper)).not.toThrow();
      } finally {
        failing.clear();
      }
    });
  }
});
