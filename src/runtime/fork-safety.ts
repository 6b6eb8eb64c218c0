/**
 * Makes a Node process safe to `fork()` into a child that keeps running JavaScript until it
 * calls execve(2).
 *
 * V8 maps its heap and code space with `MADV_DONTFORK` (measured here: every
 * `v8::base::OS::Allocate` region), so a plain fork gives a child whose heap is missing and which
 * dies with SIGSEGV at its first JavaScript instruction. Before each fork we clear the flag over
 * the whole user address space with `MADV_DOFORK`: two madvise calls, ~20 µs. madvise walks the
 * range and skips holes (returning ENOMEM at the end, which is expected); the special mappings
 * `[vvar]`/`[vdso]` are left out because the kernel refuses advice on them. The child then shares
 * the parent's pages copy-on-write and touches only a few of them before execve.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { madvise } from '../kernel/process.js';
import { MADV_DOFORK } from '../kernel/constants.js';
import { BerthError } from '../errors.js';

const ENOMEM = 12;
const USER_SPACE_END = 0x7ffffffff000n;

let ranges: Array<[bigint, bigint]> | undefined;

function computeRanges(): Array<[bigint, bigint]> {
  let lo = USER_SPACE_END;
  let hi = 0n;
  for (const line of readFileSync('/proc/self/maps', 'latin1').split('\n')) {
    if (!/\[(vvar|vvar_vclock|vdso)\]/.test(line)) continue;
    const [a, b] = line
      .slice(0, line.indexOf(' '))
      .split('-')
      .map((h) => BigInt(`0x${h}`));
    if (a! < lo) lo = a!;
    if (b! > hi) hi = b!;
  }
  if (hi === 0n) return [[0n, USER_SPACE_END]];
  return [
    [0n, lo],
    [hi, USER_SPACE_END - hi],
  ];
}

/**
 * Clears `MADV_DONTFORK` on every mapping of this process, so that a child made by the next
 * `fork()` has the whole JavaScript heap. Call it right before each fork: V8 marks new regions
 * as it allocates them.
 */
export function allowForkOfHeap(): void {
  ranges ??= computeRanges();
  for (const [start, len] of ranges) {
    const errno = madvise(start, len, MADV_DOFORK);
    if (errno !== 0 && errno !== ENOMEM)
      throw new BerthError('KERNEL', `madvise(MADV_DOFORK) failed with errno ${errno}`);
  }
}
