/**
 * examples/sandbox-service.ts runs as a user would run it (on the built package, as its own
 * process) and its three scripts get what the sandbox promises: the polite one its output, the
 * endless one killed at the time limit, the flood cut at the output cap.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('examples/sandbox-service.ts', () => {
  it('answers the polite script with its output as nobody, kills the endless one at 2 s and cuts the flood at 16 KiB', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/sandbox-service.ts'], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(out).toContain(
      'polite: exit 0, timed out false, truncated false, 20 bytes of output: hello from nobody\\n4\\n',
    );
    expect(out).toContain('endless: exit 137, timed out true, truncated false, 8 bytes of output: started\\n');
    expect(out).toMatch(/flood: exit 137, timed out true, truncated true, 16384 bytes of output: flood\\nflood/);
    expect(code).toBe(0);
  }, 60_000);
});
