import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BerthError, KernelError } from '../../src/errors.js';
import {
  createFileExclusive,
  isTempFileName,
  readJsonFile,
  readJsonFileSync,
  writeFileAtomic,
  writeFileAtomicSync,
} from '../../src/state/atomic.js';
import { tempDir } from '../helpers/tmp.js';

const enospc = (): never => {
  throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
    code: 'ENOSPC',
    errno: -28,
    syscall: 'write',
  });
};

afterEach(() => {
  vi.restoreAllMocks();
});

describe('writeFileAtomic', () => {
  it('writes a new file and replaces an existing one', async () => {
    const file = path.join(tempDir('atomic'), 'a.json');
    await writeFileAtomic(file, '{"v":1}');
    expect(await readJsonFile(file)).toEqual({ v: 1 });
    await writeFileAtomic(file, Buffer.from('{"v":2}'), { fsync: false });
    expect(await readJsonFile(file)).toEqual({ v: 2 });
    expect(fs.readdirSync(path.dirname(file))).toEqual(['a.json']);
  });

  it('creates the directory when missing and applies the mode', async () => {
    const file = path.join(tempDir('atomic'), 'x', 'y', 'a.json');
    await writeFileAtomic(file, '{}', { mode: 0o600 });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('leaves the old content and no temp file when the disk is full', async () => {
    const dir = tempDir('atomic');
    const file = path.join(dir, 'a.json');
    writeFileAtomicSync(file, '{"v":"old"}');
    vi.spyOn(fs, 'writeSync').mockImplementationOnce(enospc);
    const err = await writeFileAtomic(file, '{"v":"new"}').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelError);
    expect(err).toMatchObject({ code: 'NO_SPACE', errnoCode: 'ENOSPC' });
    expect(await readJsonFile(file)).toEqual({ v: 'old' });
    expect(fs.readdirSync(dir)).toEqual(['a.json']);
  });

  it('removes the temp file when the fsync or the rename fails', async () => {
    const dir = tempDir('atomic');
    vi.spyOn(fs, 'fsyncSync').mockImplementationOnce(() => {
      throw Object.assign(new Error('EIO'), { code: 'EIO', errno: -5, syscall: 'fsync' });
    });
    await expect(writeFileAtomic(path.join(dir, 'a.json'), '{}')).rejects.toMatchObject({ errnoCode: 'EIO' });
    fs.mkdirSync(path.join(dir, 'isdir'));
    await expect(writeFileAtomic(path.join(dir, 'isdir'), '{}')).rejects.toMatchObject({ syscall: 'rename' });
    expect(fs.readdirSync(dir)).toEqual(['isdir']);
  });

  it('names temp files so that listings can skip them', async () => {
    const dir = tempDir('atomic');
    const seen: string[] = [];
    const real = fs.openSync;
    vi.spyOn(fs, 'openSync').mockImplementation(((p: fs.PathLike, ...rest: never[]) => {
      seen.push(path.basename(String(p)));
      return (real as (...a: unknown[]) => number)(p, ...rest);
    }) as typeof fs.openSync);
    await writeFileAtomic(path.join(dir, 'abc.json'), '{}', { fsync: false });
    const temp = seen.find((n) => n !== 'abc.json');
    expect(temp).toBeDefined();
    expect(isTempFileName(temp!)).toBe(true);
    expect(temp!.endsWith('.json')).toBe(false);
    expect(isTempFileName('abc.json')).toBe(false);
    expect(isTempFileName('.abc.json')).toBe(false);
  });
});

describe('createFileExclusive', () => {
  it('creates once, then reports the file exists without touching it', async () => {
    const file = path.join(tempDir('atomic'), 'a.json');
    expect(await createFileExclusive(file, '{"v":1}')).toBe(true);
    expect(await createFileExclusive(file, '{"v":2}')).toBe(false);
    expect(readJsonFileSync(file)).toEqual({ v: 1 });
    expect(fs.readdirSync(path.dirname(file))).toEqual(['a.json']);
  });
});

describe('readJsonFile', () => {
  it('returns undefined for a missing file', async () => {
    expect(await readJsonFile(path.join(tempDir('atomic'), 'nope.json'))).toBeUndefined();
  });

  it('rejects a corrupt file with an INTERNAL error naming it', async () => {
    const file = path.join(tempDir('atomic'), 'bad.json');
    fs.writeFileSync(file, '{"half":');
    const err = await readJsonFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BerthError);
    expect(err).toMatchObject({ code: 'INTERNAL' });
    expect((err as Error).message).toContain(file);
  });

  it('wraps other read failures as kernel errors', async () => {
    await expect(readJsonFile(tempDir('atomic'))).rejects.toMatchObject({ errnoCode: 'EISDIR' });
  });
});
