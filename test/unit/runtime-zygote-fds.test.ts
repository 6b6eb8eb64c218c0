import { fstatSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { closeHeld, FdSet } from '../../src/runtime/zygote/fds.js';
import { close, pipe2 } from '../../src/kernel/fd.js';
import { O_CLOEXEC } from '../../src/kernel/constants.js';

/** Whether `fd` is still the pipe end with inode `ino` (a closed number may be reused by another file). */
function isOpen(fd: number, ino: number): boolean {
  try {
    return fstatSync(fd).ino === ino;
  } catch {
    return false;
  }
}

describe('FdSet: the fds a zygote operation owns until it hands them over', () => {
  it('close() closes an owned fd once and ignores a released or already closed one; closeAll() closes only what is still owned', () => {
    const fds = new FdSet();
    const [r1, w1] = fds.pipe();
    const [r2, w2] = fds.pipe();
    const ino1 = fstatSync(r1).ino;
    const ino2 = fstatSync(r2).ino;
    try {
      fds.close(w1);
      expect(isOpen(w1, ino1)).toBe(false);
      expect(() => fds.close(w1)).not.toThrow(); // not owned any more: no second close(2)
      expect(fds.release(r2)).toBe(r2);
      fds.close(r2); // released: left open for its new owner
      expect(isOpen(r2, ino2)).toBe(true);
      expect(fds.add(-1)).toBe(-1);
      fds.closeAll();
      expect(isOpen(r1, ino1)).toBe(false);
      expect(isOpen(w2, ino2)).toBe(false);
      expect(isOpen(r2, ino2)).toBe(true);
      expect(() => fds.closeAll()).not.toThrow(); // empty now
    } finally {
      if (isOpen(r2, ino2)) close(r2);
    }
  });

  it('closeHeld closes the fd in a field once and leaves -1 there', () => {
    const [r, w] = pipe2(O_CLOEXEC);
    const ino = fstatSync(r).ino;
    const holder = { ctrlW: w, stdinW: -1 };
    try {
      closeHeld(holder, 'ctrlW');
      expect(holder.ctrlW).toBe(-1);
      expect(isOpen(w, ino)).toBe(false);
      expect(() => closeHeld(holder, 'ctrlW')).not.toThrow();
      expect(() => closeHeld(holder, 'stdinW')).not.toThrow();
    } finally {
      close(r);
      if (isOpen(w, ino)) close(w);
    }
  });
});
