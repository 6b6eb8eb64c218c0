/**
 * An engine opened without the privileges berth needs refuses its first use with
 * `PERMISSION_DENIED` saying what berth needs, and makes nothing: real child processes, one run as
 * an unprivileged user (`setpriv --reuid=65534`), one as root without CAP_SYS_ADMIN in its
 * bounding set (as in an unprivileged container).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ENGINE_CAPABILITIES } from '../../src/runtime/capabilities.js';
import { tempDir } from '../helpers/tmp.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Each public first use of a fresh engine on `root`; prints one JSON line per call: its error's code and message. */
const CHILD = `
import { Engine, Container, Image, Volume, Network } from '@src/index.ts';
const [dir] = process.argv.slice(2);
const calls = {
  'Volume.list': (engine) => Volume.list({ engine }),
  'Container.list': (engine) => Container.list({ engine, all: true }),
  'Container.create': (engine) => Container.create({ engine, image: 'busybox' }),
  'Image.list': (engine) => Image.list({ engine }),
  'Image.import': (engine) => Image.import(Buffer.alloc(1024), { engine, ref: 'x:1' }),
  'Network.list': (engine) => Network.list({ engine }),
  'engine.events': async (engine) => { for await (const _ of engine.events({ until: new Date() })) break; },
};
for (const [name, call] of Object.entries(calls)) {
  const engine = new Engine({ root: dir + '/root', runRoot: dir + '/run' });
  const out = await Promise.resolve().then(() => call(engine)).then(() => ({ code: 'OK' }), (e) => ({ code: e.code ?? e.name, message: e.message }));
  engine.close();
  console.log(JSON.stringify({ name, ...out }));
}
`;

/** Runs {@link CHILD} through `setpriv` with `privArgs` against a fresh directory; returns its results by call, and what it left in the directory. */
function runChild(privArgs: string[]): { results: Record<string, { code: string; message?: string }>; left: string[] } {
  const dir = tempDir('engine-privileges');
  // Writable by anyone, so that a missing check would succeed in making the root there.
  chmodSync(dir, 0o777);
  const script = path.join(dir, 'child.mts');
  writeFileSync(script, CHILD.replaceAll('@src', path.join(REPO, 'src')));
  chmodSync(script, 0o644);
  const r = spawnSync('setpriv', [...privArgs, process.execPath, '--import', 'tsx', script, dir], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, HOME: '/nonexistent' },
  });
  if (r.status !== 0) throw new Error(`child failed (${r.status ?? r.signal}): ${r.stderr}`);
  const results = Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => {
        const { name, ...rest } = JSON.parse(l) as { name: string; code: string; message?: string };
        return [name, rest];
      }),
  );
  return { results, left: readdirSync(dir).filter((n) => n !== 'child.mts') };
}

describe('an engine without the privileges berth needs', () => {
  it('refuses every first use as an unprivileged user (uid 65534) with PERMISSION_DENIED naming root and the capabilities, and creates no root', () => {
    const { results, left } = runChild(['--reuid=65534', '--regid=65534', '--clear-groups']);
    expect(Object.keys(results)).toHaveLength(7);
    for (const [name, r] of Object.entries(results)) {
      expect({ name, code: r.code }).toEqual({ name, code: 'PERMISSION_DENIED' });
      expect(r.message).toMatch(/needs root/);
      expect(r.message).toContain('uid 65534');
      for (const c of ENGINE_CAPABILITIES) expect(r.message).toContain(c);
    }
    expect(left).toEqual([]);
  });

  it('refuses root without CAP_SYS_ADMIN (dropped from the bounding set) naming that capability, and creates no root', () => {
    const { results, left } = runChild(['--bounding-set=-sys_admin']);
    for (const [name, r] of Object.entries(results)) {
      expect({ name, code: r.code }).toEqual({ name, code: 'PERMISSION_DENIED' });
      expect(r.message).toContain('lacks CAP_SYS_ADMIN');
    }
    expect(left).toEqual([]);
  });
});
