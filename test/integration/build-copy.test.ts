/**
 * COPY's file work on real directories (as root): Docker/BuildKit's rules for sources and
 * destinations, ownership and modes, and hostile symlinks in the destination and source roots.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  HashCache,
  copyInto,
  createIgnoreMatcher,
  digestSources,
  resolveChown,
} from '../../src/image/build/context/index.js';
import { lgetxattr, lsetxattr } from '../../src/kernel/xattr.js';
import { tempDir } from '../helpers/tmp.js';

/** Writes `files` (relative path → content; a value ending in `/` makes a directory; `->target` a symlink) under `dir`. */
function tree(dir: string, files: Record<string, string>): string {
  for (const [rel, v] of Object.entries(files)) {
    const p = join(dir, rel);
    fs.mkdirSync(join(p, '..'), { recursive: true });
    if (v.startsWith('->')) fs.symlinkSync(v.slice(2), p);
    else if (v.endsWith('/')) fs.mkdirSync(p, { recursive: true });
    else fs.writeFileSync(p, v);
  }
  return dir;
}

function roots(): { src: string; dst: string; outside: string } {
  const base = tempDir('build-copy');
  const make = (n: string) => (fs.mkdirSync(join(base, n)), join(base, n));
  return { src: make('src'), dst: make('dst'), outside: make('outside') };
}

const read = (p: string) => fs.readFileSync(p, 'utf8');

describe('copyInto: sources and destinations', () => {
  it('copies a directory source’s contents, not the directory itself', async () => {
    const { src, dst } = roots();
    tree(src, { 'dir/a.txt': 'A', 'dir/sub/b.txt': 'B' });
    await copyInto({ sourceRoot: src, sources: ['dir'], destRoot: dst, dest: '/app/' });
    expect(read(join(dst, 'app/a.txt'))).toBe('A');
    expect(read(join(dst, 'app/sub/b.txt'))).toBe('B');
    expect(fs.existsSync(join(dst, 'app/dir'))).toBe(false);
  });

  it('copies a file to a new name when the destination has no trailing slash, and into it when it has one', async () => {
    const { src, dst } = roots();
    tree(src, { 'a.txt': 'A' });
    await copyInto({ sourceRoot: src, sources: ['a.txt'], destRoot: dst, dest: '/x/renamed' });
    await copyInto({ sourceRoot: src, sources: ['a.txt'], destRoot: dst, dest: '/y/' });
    expect(read(join(dst, 'x/renamed'))).toBe('A');
    expect(read(join(dst, 'y/a.txt'))).toBe('A');
  });

  it('copies a file into an existing directory named without a trailing slash', async () => {
    const { src, dst } = roots();
    tree(src, { 'a.txt': 'A' });
    fs.mkdirSync(join(dst, 'etc'));
    await copyInto({ sourceRoot: src, sources: ['a.txt'], destRoot: dst, dest: '/etc' });
    expect(read(join(dst, 'etc/a.txt'))).toBe('A');
  });

  it('refuses several sources, or a glob matching several, without a trailing slash on the destination', async () => {
    const { src, dst } = roots();
    tree(src, { 'a.txt': 'A', 'b.txt': 'B' });
    await expect(copyInto({ sourceRoot: src, sources: ['a.txt', 'b.txt'], destRoot: dst, dest: '/d' })).rejects.toThrow(
      InvalidArgumentError,
    );
    await expect(copyInto({ sourceRoot: src, sources: ['*.txt'], destRoot: dst, dest: '/d' })).rejects.toThrow(
      InvalidArgumentError,
    );
    expect(fs.readdirSync(dst)).toEqual([]);
    await copyInto({ sourceRoot: src, sources: ['*.txt'], destRoot: dst, dest: '/d/' });
    expect(fs.readdirSync(join(dst, 'd')).sort()).toEqual(['a.txt', 'b.txt']);
  });

  it('fails with NotFoundError for a missing source and for a glob that matches nothing', async () => {
    const { src, dst } = roots();
    await expect(copyInto({ sourceRoot: src, sources: ['nope'], destRoot: dst, dest: '/d/' })).rejects.toThrow(
      NotFoundError,
    );
    await expect(copyInto({ sourceRoot: src, sources: ['*.none'], destRoot: dst, dest: '/d/' })).rejects.toThrow(
      NotFoundError,
    );
  });

  it('keeps file modes and mtimes, makes owners 0:0, and keeps symlinks inside a copied directory as links', async () => {
    const { src, dst } = roots();
    tree(src, { 'dir/run.sh': 'x', 'dir/link': '->run.sh' });
    fs.chmodSync(join(src, 'dir/run.sh'), 0o751);
    fs.chownSync(join(src, 'dir/run.sh'), 1234, 5678);
    fs.utimesSync(join(src, 'dir/run.sh'), 1_000_000, 1_000_000);
    await copyInto({ sourceRoot: src, sources: ['dir'], destRoot: dst, dest: '/d' });
    const st = fs.statSync(join(dst, 'd/run.sh'));
    expect([st.mode & 0o7777, st.uid, st.gid, Math.floor(st.mtimeMs / 1000)]).toEqual([0o751, 0, 0, 1_000_000]);
    expect(fs.readlinkSync(join(dst, 'd/link'))).toBe('run.sh');
  });

  it('follows a symlink named as a source, inside the source root', async () => {
    const { src, dst } = roots();
    tree(src, { 'real/f.txt': 'F', ln: '->/real' });
    await copyInto({ sourceRoot: src, sources: ['ln'], destRoot: dst, dest: '/d/' });
    expect(read(join(dst, 'd/f.txt'))).toBe('F');
  });

  it('--chown owns the copied entries and the parents it creates; --chmod sets files and directories', async () => {
    const { src, dst } = roots();
    tree(src, { 'dir/sub/f': 'F' });
    fs.mkdirSync(join(dst, 'existing'));
    await copyInto({
      sourceRoot: src,
      sources: ['dir'],
      destRoot: dst,
      dest: '/existing/new/deep/',
      chown: { uid: 1000, gid: 2000 },
      chmod: 0o640,
    });
    const own = (p: string) => {
      const st = fs.lstatSync(join(dst, p));
      return [st.uid, st.gid, st.mode & 0o7777];
    };
    expect(own('existing')).toEqual([0, 0, 0o755]);
    expect(own('existing/new')).toEqual([1000, 2000, 0o755]);
    expect(own('existing/new/deep')).toEqual([1000, 2000, 0o640]);
    expect(own('existing/new/deep/sub')).toEqual([1000, 2000, 0o640]);
    expect(own('existing/new/deep/sub/f')).toEqual([1000, 2000, 0o640]);
  });

  it('--exclude leaves out matching paths below a directory source', async () => {
    const { src, dst } = roots();
    tree(src, { 'dir/a.txt': 'A', 'dir/b.log': 'B', 'dir/sub/c.log': 'C' });
    await copyInto({ sourceRoot: src, sources: ['dir'], destRoot: dst, dest: '/d/', exclude: ['*.log', 'sub'] });
    expect(fs.readdirSync(join(dst, 'd'))).toEqual(['a.txt']);
  });

  it('--parents keeps each source’s path, after a /./ pivot', async () => {
    const { src, dst } = roots();
    tree(src, { 'x/y/f.txt': 'F', 'p/q/g.txt': 'G' });
    await copyInto({
      sourceRoot: src,
      sources: ['x/y/f.txt', 'p/./q/g.txt'],
      destRoot: dst,
      dest: '/d/',
      parents: true,
    });
    expect(read(join(dst, 'd/x/y/f.txt'))).toBe('F');
    expect(read(join(dst, 'd/q/g.txt'))).toBe('G');
  });

  it('applies .dockerignore: ignored files are not copied, a ! exception re-includes a child of an ignored directory', async () => {
    const { src, dst } = roots();
    tree(src, { 'a.txt': 'A', 'secret.key': 'S', 'docs/keep.md': 'K', 'docs/drop.md': 'D' });
    const ignore = createIgnoreMatcher(['*.key', 'docs', '!docs/keep.md']);
    await copyInto({ sourceRoot: src, sources: ['.'], destRoot: dst, dest: '/d/', ignore });
    expect(fs.readdirSync(join(dst, 'd')).sort()).toEqual(['a.txt', 'docs']);
    expect(fs.readdirSync(join(dst, 'd/docs'))).toEqual(['keep.md']);
    await expect(
      copyInto({ sourceRoot: src, sources: ['secret.key'], destRoot: dst, dest: '/e/', ignore }),
    ).rejects.toThrow(NotFoundError);
  });
});

describe('copyInto: hostile roots', () => {
  it('a destination symlink /app -> /../../outside is resolved inside the destination root', async () => {
    const { src, dst, outside } = roots();
    tree(src, { 'f.txt': 'F' });
    fs.symlinkSync(`/../../${outside.split('/').slice(-1)[0]}`, join(dst, 'app'));
    fs.symlinkSync(outside, join(dst, 'abs'));
    await copyInto({ sourceRoot: src, sources: ['f.txt'], destRoot: dst, dest: '/app/' });
    await copyInto({ sourceRoot: src, sources: ['f.txt'], destRoot: dst, dest: '/abs/sub/f' });
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(read(join(dst, 'outside/f.txt'))).toBe('F');
    expect(read(join(dst, outside, 'sub/f'))).toBe('F');
  });

  it('a destination symlink where the copy puts a directory is replaced by the directory, never written through', async () => {
    const { src, dst, outside } = roots();
    tree(src, { 'dir/lib/x.so': 'X' });
    fs.mkdirSync(join(dst, 'app'));
    fs.symlinkSync(outside, join(dst, 'app/lib'));
    await copyInto({ sourceRoot: src, sources: ['dir'], destRoot: dst, dest: '/app/' });
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(fs.lstatSync(join(dst, 'app/lib')).isDirectory()).toBe(true);
    expect(read(join(dst, 'app/lib/x.so'))).toBe('X');
  });

  it('a source symlink pointing out of the source root is resolved inside it', async () => {
    const { src, dst, outside } = roots();
    tree(outside, { passwd: 'HOST' });
    tree(src, { esc: `->${outside}/passwd`, up: '->../../../../outside/passwd' });
    await expect(copyInto({ sourceRoot: src, sources: ['esc'], destRoot: dst, dest: '/d' })).rejects.toThrow(
      NotFoundError,
    );
    await expect(copyInto({ sourceRoot: src, sources: ['up'], destRoot: dst, dest: '/d' })).rejects.toThrow(
      NotFoundError,
    );
    expect(fs.existsSync(join(dst, 'd'))).toBe(false);
  });
});

describe('digestSources', () => {
  it('is equal for equal content, ignores mtimes and owners, and changes with content, names and modes', async () => {
    const a = tree(tempDir('digest-a'), { 'd/f': 'F', 'd/g': 'G', 'd/l': '->f' });
    const b = tree(tempDir('digest-b'), { 'd/f': 'F', 'd/g': 'G', 'd/l': '->f' });
    fs.utimesSync(join(b, 'd/f'), 1, 1);
    fs.chownSync(join(b, 'd/g'), 7, 7);
    const cacheDir = tempDir('digest-cache');
    const key = (root: string) => digestSources({ sourceRoot: root, sources: ['d'], cacheDir });
    const first = await key(a);
    expect(await key(b)).toBe(first);
    fs.writeFileSync(join(b, 'd/g'), 'G2');
    const changed = await key(b);
    expect(changed).not.toBe(first);
    fs.chmodSync(join(a, 'd/f'), 0o600);
    expect(await key(a)).not.toBe(first);
    fs.renameSync(join(a, 'd/g'), join(a, 'd/h'));
    expect(await key(a)).not.toBe(first);
  });
});

describe('digestSources: hash cache', () => {
  it('remembers a file’s content hash under the cache directory, keyed by its stat, for the next process', async () => {
    const root = tree(tempDir('digest-cache-src'), { 'f.txt': 'content' });
    const cacheDir = tempDir('digest-cache-dir');
    await sleep(120); // older than the racy window
    await digestSources({ sourceRoot: root, sources: ['f.txt'], cacheDir });
    const sha = createHash('sha256').update('content').digest('hex');
    expect(HashCache.open(cacheDir).get(fs.statSync(join(root, 'f.txt')))).toBe(sha);
    fs.writeFileSync(join(root, 'f.txt'), 'CONTENT');
    expect(HashCache.open(cacheDir).get(fs.statSync(join(root, 'f.txt')))).toBeUndefined();
  });
});

describe('copyInto: cancellation', () => {
  it('rejects with the signal’s reason and writes nothing when aborted before it starts', async () => {
    const { src, dst } = roots();
    tree(src, { 'a.txt': 'A' });
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(
      copyInto({ sourceRoot: src, sources: ['a.txt'], destRoot: dst, dest: '/d/', signal: ac.signal }),
    ).rejects.toThrow('stop');
    expect(fs.readdirSync(dst)).toEqual([]);
  });
});

describe('copyInto: file capabilities', () => {
  it('keeps security.capability of a file named as a source and of files below a directory source', async () => {
    const { src, dst } = roots();
    tree(src, { ping: 'P', 'dir/ping2': 'P' });
    // VFS_CAP_REVISION_2, effective, permitted = CAP_NET_RAW (13).
    const cap = Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    for (const f of ['ping', 'dir/ping2']) lsetxattr(join(src, f), 'security.capability', cap);
    await copyInto({ sourceRoot: src, sources: ['ping', 'dir'], destRoot: dst, dest: '/bin/' });
    expect(lgetxattr(join(dst, 'bin/ping'), 'security.capability')).toEqual(cap);
    expect(lgetxattr(join(dst, 'bin/ping2'), 'security.capability')).toEqual(cap);
  });
});

describe('copyInto: links and conflicts', () => {
  it('keeps two names of one file inside a directory source as hardlinks', async () => {
    const { src, dst } = roots();
    tree(src, { 'dir/a': 'A' });
    fs.linkSync(join(src, 'dir/a'), join(src, 'dir/b'));
    await copyInto({ sourceRoot: src, sources: ['dir'], destRoot: dst, dest: '/d/' });
    expect(fs.statSync(join(dst, 'd/a')).ino).toBe(fs.statSync(join(dst, 'd/b')).ino);
  });

  it('refuses to put a file where the destination holds a directory', async () => {
    const { src, dst } = roots();
    tree(src, { 'dir/x': 'X' });
    fs.mkdirSync(join(dst, 'd/x'), { recursive: true });
    await expect(copyInto({ sourceRoot: src, sources: ['dir'], destRoot: dst, dest: '/d/' })).rejects.toThrow(
      ConflictError,
    );
  });
});

describe('resolveChown', () => {
  it('reads names from the root’s passwd and group, takes gid = uid for a bare uid, and names an unknown user', async () => {
    const root = tree(tempDir('chown'), {
      'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n',
      'etc/group': 'root:x:0:\napp:x:1001:\nstaff:x:50:app\n',
    });
    expect(await resolveChown(root, 'app')).toEqual({ uid: 1000, gid: 1001 });
    expect(await resolveChown(root, 'app:staff')).toEqual({ uid: 1000, gid: 50 });
    expect(await resolveChown(root, '1000:staff')).toEqual({ uid: 1000, gid: 50 });
    expect(await resolveChown(root, '42')).toEqual({ uid: 42, gid: 42 });
    expect(await resolveChown(root, '42:7')).toEqual({ uid: 42, gid: 7 });
    await expect(resolveChown(root, 'ghost')).rejects.toThrow(/ghost/);
    await expect(resolveChown(root, 'app:nogroup')).rejects.toThrow(NotFoundError);
    await expect(resolveChown(root, 'a:b:c')).rejects.toThrow(InvalidArgumentError);
  });

  it('reads /etc/passwd through a symlink inside the root only', async () => {
    const host = tree(tempDir('chown-host'), { passwd: 'evil:x:7:7::/:/bin/sh\n' });
    const root = tree(tempDir('chown-root'), { 'etc/passwd': `->${host}/passwd` });
    await expect(resolveChown(root, 'evil')).rejects.toThrow(NotFoundError);
  });
});
