/**
 * One source for what berth's C programs share with the TypeScript side: `src/runtime/monitor/
 * constants.h` is generated from `src/kernel/constants.ts`, and `syscalls.h` from the kernel
 * headers' tables (`src/runtime/seccomp/syscall-tables.ts`), by `scripts/gen-native-constants.ts`,
 * and checked in; these tests fail when a header and its source drift apart, or a C file defines
 * one of their names again.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CONSTANTS_HEADER,
  MONITOR_DIR,
  SHARED_CONSTANTS,
  SHARED_SIGNALS,
  SYSCALLS_HEADER,
  renderConstantsHeader,
  renderSyscallsHeader,
  syscallsUsed,
} from '../../scripts/gen-native-constants.js';
import { SYSCALL_TABLES } from '../../src/runtime/seccomp/syscall-tables.js';
import * as K from '../../src/kernel/constants.js';

/** The C sources but the two generated headers. */
function cSources(): string[] {
  return readdirSync(MONITOR_DIR).filter((f) => /\.[ch]$/.test(f) && f !== 'constants.h' && f !== 'syscalls.h');
}

describe('native constants', () => {
  it('constants.h as checked in is what gen-native-constants writes from constants.ts now', () => {
    expect(readFileSync(CONSTANTS_HEADER, 'utf8')).toBe(renderConstantsHeader());
  });

  it('constants.h gives every shared name the value constants.ts has', () => {
    const text = readFileSync(CONSTANTS_HEADER, 'utf8');
    const values = Object.fromEntries(
      [...text.matchAll(/\b(\w+) = (-?(?:0x[0-9a-f]+|\d+)),/g)].map((m) => [m[1], Number(m[2])]),
    );
    const expected = Object.fromEntries([
      ...SHARED_CONSTANTS.map((n) => [n, K[n]]),
      ...SHARED_SIGNALS.map((n) => [n, K.SIGNALS[n]]),
    ]);
    expect(values).toEqual(expected);
  });

  it('no other C source of berth-init, berth-exec or berth-monitor defines a shared constant again', () => {
    const names = [...SHARED_CONSTANTS, ...SHARED_SIGNALS];
    const again: string[] = [];
    for (const file of cSources()) {
      const text = readFileSync(join(MONITOR_DIR, file), 'utf8');
      for (const name of names)
        if (new RegExp(`\\b${name}\\s*=[^=]|#define\\s+${name}\\b`).test(text)) again.push(`${file}: ${name}`);
    }
    expect(again).toEqual([]);
  });

  it('syscalls.h as checked in is what gen-native-constants writes for the system calls the C sources name', () => {
    expect(syscallsUsed()).toContain('openat');
    expect(readFileSync(SYSCALLS_HEADER, 'utf8')).toBe(renderSyscallsHeader());
  });

  it('syscalls.h numbers each system call as the kernel headers do on x86_64 and on aarch64', () => {
    const text = readFileSync(SYSCALLS_HEADER, 'utf8');
    const arm = text.indexOf('#elif defined(__aarch64__)');
    const numbers = (part: string) =>
      Object.fromEntries([...part.matchAll(/\bNR_(\w+) = (\d+),/g)].map((m) => [m[1], Number(m[2])]));
    const expected = (arch: 'x86_64' | 'aarch64') =>
      Object.fromEntries(syscallsUsed().map((n) => [n, SYSCALL_TABLES[arch][n]]));
    expect(numbers(text.slice(0, arm))).toEqual(expected('x86_64'));
    expect(numbers(text.slice(arm))).toEqual(expected('aarch64'));
  });

  it('no other C source numbers a system call itself', () => {
    const again = cSources().filter((file) => /\bNR_\w+\s*=[^=]/.test(readFileSync(join(MONITOR_DIR, file), 'utf8')));
    expect(again).toEqual([]);
  });
});
