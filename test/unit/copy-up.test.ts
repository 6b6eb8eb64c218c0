/**
 * The copy-up protocol of the JavaScript init (`copyUp` in `runtime/copy-up.ts`) on plain
 * directories: what it does in each state a killed copier can leave a volume in. The same states
 * through both inits, and kills and concurrent starts, are in `integration/copy-up-crash.test.ts`.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COPY_UP_COMPLETE, COPY_UP_STAGING, copyUp } from '../../src/runtime/copy-up.js';
import { tempDir } from '../helpers/tmp.js';

/** An image directory: two directories of files and a symlink, mode 0750. */
function image(): string {
  const from = join(tempDir('copyup-from'), 'data');
  mkdirSync(join(from, 'a/b'), { recursive: true });
  mkdirSync(join(from, 'c'));
  writeFileSync(join(from, 'a/b/f'), 'f\n');
  writeFileSync(join(from, 'c/g'), 'g\n');
  symlinkSync('a/b/f', join(from, 'l'));
  chmodSync(from, 0o750);
  return from;
}

/** Relative paths under `dir` with the content of each file (symlinks followed), sorted. */
function tree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort().map((p) => {
    const st = statSync(join(dir, p), { throwIfNoEntry: false });
    return st?.isFile() ? `${p}=${readFileSync(join(dir, p), 'utf8').trim()}` : p;
  });
}

describe('copyUp (the protocol both inits follow)', () => {
  it("fills an empty volume and gives it the image directory's mode; nothing of its own stays", () => {
    const from = image();
    const to = tempDir('copyup-to');
    copyUp(from, to);
    expect(tree(to)).toEqual(tree(from));
    expect(statSync(to).mode & 0o7777).toBe(0o750);
  });

  it('leaves a volume holding anything else as it is', () => {
    const from = image();
    const to = tempDir('copyup-to');
    writeFileSync(join(to, 'mine'), 'x');
    copyUp(from, to);
    expect(tree(to)).toEqual(['mine=x']);
  });

  it("removes a dead copier's staging (a 300-deep tree) and makes the copy", () => {
    const from = image();
    const to = tempDir('copyup-to');
    let dir = join(to, COPY_UP_STAGING);
    for (let i = 0; i < 300; i++, dir = join(dir, 'd')) {
      mkdirSync(dir);
      writeFileSync(join(dir, 'junk'), 'j');
      symlinkSync('/', join(dir, 'root'));
    }
    copyUp(from, to);
    expect(tree(to)).toEqual(tree(from));
  });

  it('finishes a complete copy left half moved in, keeping an entry the volume got meanwhile, and copies nothing more', () => {
    const from = image();
    const to = tempDir('copyup-to');
    const done = join(to, COPY_UP_COMPLETE);
    mkdirSync(join(done, 'a/b'), { recursive: true });
    writeFileSync(join(done, 'a/b/f'), 'f\n');
    mkdirSync(join(done, 'c'));
    writeFileSync(join(done, 'c/g'), 'g\n');
    symlinkSync('a/b/f', join(done, 'l'));
    chmodSync(done, 0o700);
    renameSync(join(done, 'a'), join(to, 'a')); // moved in before the kill
    mkdirSync(join(to, 'c')); // and an entry of the volume's own with the same name as one to move in
    copyUp(from, to);
    expect(tree(to)).toEqual(['a', 'a/b', 'a/b/f=f', 'c', 'l=f']);
    expect(existsSync(done)).toBe(false);
    expect(statSync(to).mode & 0o7777).toBe(0o700); // the copy's, not the image's: it is that copy-up
  });
});
