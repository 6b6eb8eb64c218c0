/**
 * The stdin pipes a start takes from attachments made before it (src/container/start-stdin.ts):
 * registering, taking, settling, letting go; each read end closed exactly once.
 */
import { fstatSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { closeFd, stdinPipe } from '../../src/runtime/host.js';
import type { Plan } from '../../src/runtime/plan.js';
import type { ContainerRecord } from '../../src/container/record.js';
import {
  addPendingAttach,
  hasPendingStdin,
  takePendingAttaches,
  withStdin,
  type PendingAttach,
} from '../../src/container/start-stdin.js';

/** Whether `fd` is still the pipe end with inode `ino`. */
function isOpen(fd: number, ino: number): boolean {
  try {
    return fstatSync(fd).ino === ino;
  } catch {
    return false;
  }
}

/** A pending attachment holding the read end of a new pipe; `w` is the test's to close. */
function withPipe(): { entry: PendingAttach; r: number; w: number; ino: number } {
  const [r, w] = stdinPipe();
  return { entry: { stdinR: r, failed: false }, r, w, ino: fstatSync(r).ino };
}

describe('attachments waiting for a start', () => {
  it('gives a start the read end one of them holds, closes it at settle, and tells each the outcome', () => {
    const id = 'c1';
    const a = withPipe();
    const plain: PendingAttach = { stdinR: -1, failed: false };
    const seen: Array<ContainerRecord | undefined> = [];
    plain.onStart = (rec) => seen.push(rec);
    const releaseA = addPendingAttach(id, a.entry);
    const releasePlain = addPendingAttach(id, plain);
    try {
      expect(hasPendingStdin(id)).toBe(true);
      const taken = takePendingAttaches(id);
      expect(taken.stdinFd).toBe(a.r);
      expect(hasPendingStdin(id)).toBe(false);
      expect(takePendingAttaches(id).stdinFd).toBeUndefined(); // taken once
      const running = { id } as ContainerRecord;
      taken.settle(running);
      expect(isOpen(a.r, a.ino)).toBe(false);
      expect(a.entry).toMatchObject({ stdinR: -1, failed: false });
      expect(seen).toEqual([running]);
      // Letting go after the start closes nothing twice.
      expect(() => releaseA()).not.toThrow();
      releasePlain();
    } finally {
      closeFd(a.w);
    }
  });

  it('marks them failed when the start failed, and closes a read end let go before any start', () => {
    const a = withPipe();
    addPendingAttach('c2', a.entry);
    takePendingAttaches('c2').settle(undefined);
    expect(a.entry.failed).toBe(true);
    expect(isOpen(a.r, a.ino)).toBe(false);
    closeFd(a.w);
    const b = withPipe();
    const release = addPendingAttach('c3', b.entry);
    release();
    expect(isOpen(b.r, b.ino)).toBe(false);
    expect(hasPendingStdin('c3')).toBe(false);
    expect(takePendingAttaches('c3').stdinFd).toBeUndefined();
    closeFd(b.w);
  });

  it.each([
    [undefined, undefined],
    [7, true],
  ])('withStdin(plan, %s) sets process.stdin to %s', (fd, stdin) => {
    const plan = { spec: { process: { args: ['cat'] } } } as unknown as Plan;
    expect(withStdin(plan, fd).spec.process.stdin).toBe(stdin);
    expect(plan.spec.process.stdin).toBeUndefined(); // not changed in place
  });
});
