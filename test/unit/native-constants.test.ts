/**
 * One source for the kernel constants berth's C programs share with `src/kernel/constants.ts`:
 * `src/runtime/monitor/constants.h` is generated from it (`scripts/gen-native-constants.ts`) and
 * checked in; these tests fail when the two drift apart or a C file defines a shared name again.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONSTANTS_HEADER, SHARED_CONSTANTS, SHARED_SIGNALS, renderConstantsHeader } from '../../scripts/gen-native-constants.js';
import * as K from '../../src/kernel/constants.js';

const MONITOR = join(import.meta.dirname, '..', '..', 'src', 'runtime', 'monitor');

describe('native constants', () => {
  it('constants.h as checked in is what gen-native-constants writes from constants.ts now', () => {
    expect(readFileSync(CONSTANTS_HEADER, 'utf8')).toBe(renderConstantsHeader());
  });

  it('constants.h gives every shared name the value constants.ts has', () => {
    const text = readFileSync(CONSTANTS_HEADER, 'utf8');
    const values = Object.fromEntries([...text.matchAll(/\b(\w+) = (-?(?:0x[0-9a-f]+|\d+)),/g)].map((m) => [m[1], Number(m[2])]));
    const expected = Object.fromEntries([
      ...SHARED_CONSTANTS.map((n) => [n, K[n]]),
      ...SHARED_SIGNALS.map((n) => [n, K.SIGNALS[n]]),
    ]);
    expect(values).toEqual(expected);
  });

  it('no other C source of berth-init, berth-exec or berth-monitor defines a shared constant again', () => {
    const names = [...SHARED_CONSTANTS, ...SHARED_SIGNALS];
    const again: string[] = [];
    for (const file of readdirSync(MONITOR).filter((f) => /\.[ch]$/.test(f) && f !== 'constants.h')) {
      const text = readFileSync(join(MONITOR, file), 'utf8');
      for (const name of names) if (new RegExp(`\\b${name}\\s*=[^=]|#define\\s+${name}\\b`).test(text)) again.push(`${file}: ${name}`);
    }
    expect(again).toEqual([]);
  });
});
