/**
 * The cache-mount store across real processes sharing one root: first use with the mount's owner
 * and mode, reuse across processes, BuildKit's sharing modes (shared, locked, private), `noCache`
 * emptying, and a user killed with SIGKILL leaving no stale lock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { CacheMounts } from '../../src/image/build/sources/cache-mounts.js';
import { parseRunMount, type CacheMount } from '../../src/image/build/sources/run-mount.js';
import { tempDir } from '../helpers/tmp.js';

const children = new Set<ChildProcess>();
afterEach(async () => {
  const exits = [...children].map(
    (p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(0) : p.once('exit', r))),
  );
  for (const p of children) p.kill('SIGKILL');
  children.clear();
  await Promise.all(exits);
});

/** A process that holds the cache mount `spec` of the store in `dir` (test/fixtures/cache-mount-process.ts). */
async function holder(dir: string, spec: string, noCache = false) {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/fixtures/cache-mount-process.ts', dir, spec, noCache ? 'noCache' : ''],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.add(proc);
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => ((await lines.next()).value as string | undefined) ?? '<exited>';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const { path } = JSON.parse(await next()) as { path: string };
  const say = async (line: string): Promise<string> => {
    proc.stdin!.write(`${line}\n`);
    return next();
  };
  return { proc, path, say, exited };
}

const mount = (spec: string): CacheMount => parseRunMount(spec) as CacheMount;

describe('CacheMounts', () => {
  it("makes the directory on first use with the mount's uid, gid and mode, and keeps it across processes", async () => {
    const dir = tempDir('cache-mounts');
    const spec = 'type=cache,target=/root/.cache,uid=1000,gid=1001,mode=0710';
    const child = await holder(dir, spec);
    const st = fs.statSync(child.path);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([1000, 1001, 0o710]);
    expect(await child.say('write pip.db')).toBe('ok');
    expect(await child.say('release')).toBe('released');
    await child.exited;
    const lease = await new CacheMounts(dir).acquire(mount(spec), { noCache: false });
    expect(lease.path).toBe(child.path);
    expect(fs.readFileSync(join(lease.path, 'pip.db'), 'utf8')).toBe(String(child.proc.pid));
    await lease.release();
  });

  it('an id with other uid/gid/mode is another cache, as in BuildKit', async () => {
    const store = new CacheMounts(tempDir('cache-mounts'));
    const a = await store.acquire(mount('type=cache,target=/c,id=x'), { noCache: false });
    const b = await store.acquire(mount('type=cache,target=/d,id=x,uid=5'), { noCache: false });
    const c = await store.acquire(mount('type=cache,target=/e,id=x'), { noCache: false });
    expect(b.path).not.toBe(a.path);
    expect(c.path).toBe(a.path);
    await Promise.all([a.release(), b.release(), c.release()]);
  });

  it('shared: another process uses the same directory at the same time', async () => {
    const dir = tempDir('cache-mounts');
    const child = await holder(dir, 'type=cache,target=/c,id=s');
    const lease = await new CacheMounts(dir).acquire(mount('type=cache,target=/c,id=s,sharing=shared'), {
      noCache: false,
    });
    expect(lease.path).toBe(child.path);
    await lease.release();
  });

  it('locked: a second user waits until the holder in another process releases', async () => {
    const dir = tempDir('cache-mounts');
    const spec = 'type=cache,target=/c,id=l,sharing=locked';
    const child = await holder(dir, spec);
    const waiting = new CacheMounts(dir).acquire(mount(spec), { noCache: false });
    expect(await child.say('release')).toBe('released');
    const lease = await waiting;
    expect(lease.path).toBe(child.path);
    // The holder's last write happened before it released: we got the lock after it.
    expect(fs.existsSync(join(lease.path, `released-by-${child.proc.pid}`))).toBe(true);
    await lease.release();
  });

  it('private: a fresh directory while another process holds the cache, the shared one once it is free', async () => {
    const dir = tempDir('cache-mounts');
    const spec = 'type=cache,target=/c,id=p,sharing=private,mode=0700';
    const child = await holder(dir, spec);
    expect(await child.say('write mine')).toBe('ok');
    const store = new CacheMounts(dir);
    const fresh = await store.acquire(mount(spec), { noCache: false });
    expect(fresh.path).not.toBe(child.path);
    expect(fs.readdirSync(fresh.path)).toEqual([]);
    expect(fs.statSync(fresh.path).mode & 0o7777).toBe(0o700);
    expect(await child.say('release')).toBe('released');
    // a shared user of the same cache makes it busy for private users too
    const shared = await store.acquire(mount('type=cache,target=/c,id=p,mode=0700'), { noCache: false });
    expect(shared.path).toBe(child.path);
    const busy = await store.acquire(mount(spec), { noCache: false });
    expect([busy.path === child.path, busy.path === fresh.path]).toEqual([false, false]);
    await shared.release();
    const reused = await store.acquire(mount(spec), { noCache: false });
    expect(reused.path).toBe(child.path);
    expect(fs.readdirSync(reused.path).sort()).toEqual(['mine', `released-by-${child.proc.pid}`]);
    await Promise.all([fresh.release(), busy.release(), reused.release()]);
  });

  it.each(['shared', 'locked', 'private'])(
    'noCache empties the cache (%s) and makes it again with its uid, gid and mode',
    async (sharing) => {
      const dir = tempDir('cache-mounts');
      const store = new CacheMounts(dir);
      const spec = mount(`type=cache,target=/c,id=n,sharing=${sharing},uid=7,gid=8,mode=0750`);
      const first = await store.acquire(spec, { noCache: false });
      fs.mkdirSync(join(first.path, 'sub'));
      fs.writeFileSync(join(first.path, 'sub/f'), 'x');
      fs.chmodSync(first.path, 0o777);
      await first.release();
      const again = await store.acquire(spec, { noCache: true });
      expect(again.path).toBe(first.path);
      expect(fs.readdirSync(again.path)).toEqual([]);
      const st = fs.statSync(again.path);
      expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([7, 8, 0o750]);
      expect(fs.readdirSync(join(again.path, '..')).filter((n) => n.startsWith('.'))).toEqual([]);
      await again.release();
    },
  );

  it('a holder killed with SIGKILL leaves no stale lock, and what it left half made is swept', async () => {
    const dir = tempDir('cache-mounts');
    const spec = 'type=cache,target=/c,id=k,sharing=locked';
    const child = await holder(dir, spec);
    fs.mkdirSync(join(child.path, '..', '.new-0-deadbeef0000')); // as a user killed while making it leaves
    child.proc.kill('SIGKILL');
    await child.exited;
    const lease = await new CacheMounts(dir).acquire(mount(spec), { noCache: false });
    expect(lease.path).toBe(child.path);
    expect(fs.existsSync(join(child.path, '..', '.new-0-deadbeef0000'))).toBe(false);
    await lease.release();
  });

  it('seeds a new cache before anyone sees it, and only once', async () => {
    const store = new CacheMounts(tempDir('cache-mounts'));
    const spec = mount('type=cache,target=/c,id=seeded,from=base,source=/s');
    let seeded = 0;
    const seed = async (d: string): Promise<void> => {
      seeded++;
      fs.writeFileSync(join(d, 'from-base'), 'x');
    };
    const a = await store.acquire(spec, { noCache: false, base: 'sha256:abc', seed });
    expect(fs.readdirSync(a.path)).toEqual(['from-base']);
    await a.release();
    const b = await store.acquire(spec, { noCache: false, base: 'sha256:abc', seed });
    expect(b.path).toBe(a.path);
    expect(seeded).toBe(1);
    await b.release();
  });
});
