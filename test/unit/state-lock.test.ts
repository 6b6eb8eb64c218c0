import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { TimeoutError } from '../../src/errors.js';
import { LOCK_EX, LOCK_SH, LOCK_UN, flock, tryFlock } from '../../src/kernel/flock.js';
import { acquireLock, withLock, withSharedLock } from '../../src/state/lock.js';
import { tempDir } from '../helpers/tmp.js';

/** Locks `file` through a descriptor of its own, as another process would. */
function foreignLock(file: string, op = LOCK_EX): { fd: number; release(): void } {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_CREAT);
  flock(fd, op);
  return {
    fd,
    release: () => {
      flock(fd, LOCK_UN);
      fs.closeSync(fd);
    },
  };
}

/** Whether some other descriptor holds a lock on `file` that excludes an exclusive one. */
function isLockedElsewhere(file: string): boolean {
  const fd = fs.openSync(file, fs.constants.O_RDONLY);
  try {
    const free = tryFlock(fd, LOCK_EX);
    if (free) flock(fd, LOCK_UN);
    return !free;
  } finally {
    fs.closeSync(fd);
  }
}

describe('withLock in one process', () => {
  it('runs callers one at a time, in arrival order', async () => {
    const file = path.join(tempDir('lock'), 'a.lock');
    let inside = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        withLock(file, async () => {
          expect(++inside).toBe(1);
          await sleep(1);
          order.push(i);
          inside--;
        }),
      ),
    );
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('holds the flock while running and releases it on exceptions', async () => {
    const file = path.join(tempDir('lock'), 'sub', 'a.lock');
    await expect(
      withLock(file, () => {
        expect(isLockedElsewhere(file)).toBe(true);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(isLockedElsewhere(file)).toBe(false);
    expect(fs.existsSync(file)).toBe(true); // the lock file stays
    expect(await withLock(file, () => 42)).toBe(42);
  });

  it('lets shared holders in together and makes an exclusive one wait for them', async () => {
    const file = path.join(tempDir('lock'), 'a.lock');
    const log: string[] = [];
    const reader = (name: string) =>
      withSharedLock(file, async () => {
        log.push(`${name}+`);
        await sleep(20);
        log.push(`${name}-`);
      });
    const writer = withLock(file, () => void log.push('w'));
    await Promise.all([writer, reader('a'), reader('b')]);
    expect(log[0]).toBe('w');
    expect(log.slice(1, 3).sort()).toEqual(['a+', 'b+']);

    log.length = 0;
    const r1 = reader('a');
    const w = withLock(file, () => void log.push('w'));
    const r2 = reader('b'); // queued behind the writer: readers do not starve it
    await Promise.all([r1, w, r2]);
    expect(log).toEqual(['a+', 'a-', 'w', 'b+', 'b-']);
  });

  it('gives up after the timeout or on abort, and the queue goes on', async () => {
    const file = path.join(tempDir('lock'), 'a.lock');
    const held = await acquireLock(file);
    await expect(withLock(file, () => 1, { timeout: 30 })).rejects.toBeInstanceOf(TimeoutError);
    const ac = new AbortController();
    const aborted = withLock(file, () => 1, { signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    const next = withLock(file, () => 'next');
    held.release();
    held.release(); // idempotent
    expect(await next).toBe('next');
  });
});

describe('withLock across descriptors (as across processes)', () => {
  it('waits without blocking the event loop while another holder has it', async () => {
    const file = path.join(tempDir('lock'), 'a.lock');
    const other = foreignLock(file);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 2);
    let got = false;
    const p = withLock(file, () => {
      got = true;
    });
    await sleep(60);
    expect(got).toBe(false);
    expect(ticks).toBeGreaterThan(5);
    other.release();
    await p;
    clearInterval(ticker);
    expect(got).toBe(true);
  });

  it('times out with a TimeoutError that names the lock', async () => {
    const file = path.join(tempDir('lock'), 'a.lock');
    const other = foreignLock(file, LOCK_SH);
    try {
      const err = await withLock(file, () => 1, { timeout: 40 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as Error).message).toContain(file);
      expect(await withSharedLock(file, () => 'shared ok')).toBe('shared ok');
    } finally {
      other.release();
    }
  });

  it('moves to the new lock file when the one it waited on was deleted', async () => {
    const file = path.join(tempDir('lock'), 'a.lock');
    const other = foreignLock(file);
    let inode = 0;
    const p = withLock(file, () => {
      inode = fs.statSync(file).ino;
      expect(isLockedElsewhere(file)).toBe(true);
    });
    await sleep(10);
    const oldInode = fs.fstatSync(other.fd).ino;
    fs.unlinkSync(file); // the holder deletes it while holding it, then lets go
    flock(other.fd, LOCK_UN); // (keeping it open, so that its inode number cannot be reused)
    await p;
    fs.closeSync(other.fd);
    expect(inode).not.toBe(0);
    expect(inode).not.toBe(oldInode);
  });

  it('lets a waiting process in before taking the lock again', async () => {
    const file = path.join(tempDir('lock'), 'a.lock');
    await withLock(file, () => {
      const t = Date.now() / 1000 - 100;
      fs.utimesSync(file, t, t); // what a waiting process does after each failed attempt
    });
    const again = withLock(file, () => 'again'); // yields: does not grab the lock at once
    await sleep(1);
    const other = fs.openSync(file, fs.constants.O_RDONLY);
    expect(tryFlock(other, LOCK_EX)).toBe(true);
    await sleep(20);
    flock(other, LOCK_UN);
    fs.closeSync(other);
    expect(await again).toBe('again');
  });

  it('deletes the lock file on request while held exclusively', async () => {
    const file = path.join(tempDir('lock'), 'a.lock');
    await withLock(file, (lock) => lock.removeFile());
    expect(fs.existsSync(file)).toBe(false);
    await expect(withSharedLock(file, (lock) => lock.removeFile())).rejects.toMatchObject({ code: 'INVALID_STATE' });
  });
});
