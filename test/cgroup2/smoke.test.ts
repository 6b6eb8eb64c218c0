/**
 * Runs the cgroup v2 smoke program (scripts/cgroup2-vm/smoke.mjs) on a cgroup-v2-only kernel and
 * reports each of its checks as a test. Only `vitest.cgroup2.config.ts` includes this file: it runs
 * in the cgroup2 guest (`npm run test:cgroup2`), where the program's first check proves the kernel
 * is v2 only, so it cannot pass on a v1 or hybrid machine.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

let out = '';
let code = 0;

beforeAll(async () => {
  try {
    out = (await promisify(execFile)(process.execPath, ['scripts/cgroup2-vm/smoke.mjs'], { maxBuffer: 1 << 22 }))
      .stdout;
  } catch (e) {
    const failed = e as { stdout?: string; stderr?: string; code?: number };
    out = `${failed.stdout ?? ''}${failed.stderr ?? ''}`;
    code = failed.code ?? 1;
  }
});

describe('the cgroup v2 smoke program', () => {
  it('passes every check: limits in memory.max, cpu.max and pids.max, pause through cgroup.freeze, stats, updates, OOM, removal', () => {
    expect(out.split('\n').filter((l) => l.startsWith('FAIL'))).toEqual([]);
    expect(out).toContain('cgroup2 smoke: all checks passed');
    expect(code).toBe(0);
  });

  it("checked each limit file in the container's v2 directory", () => {
    for (const file of [
      '/sys/fs/cgroup is cgroup2',
      'memory.max',
      'cpu.max',
      'pids.max',
      'cgroup.freeze after pause',
      'state.oomKilled',
    ]) {
      expect(out).toMatch(new RegExp(`^ok {3}${file.replace('.', '\\.')}`, 'm'));
    }
  });
});
