/**
 * `ADD` of local archives into a step's root, for real (root, the real kernel): each compression,
 * BuildKit's rules for owners, overwrites and `.wh.` names, and a hostile root whose symlinks an
 * earlier `RUN` made. Every hostile case checks that nothing was written outside the root.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, UnsafeLayerError } from '../../src/errors.js';
import { extractArchiveInto } from '../../src/image/build/sources/archive.js';
import { HAVE, compress, makeTar, type Compression, type Member } from '../helpers/archive.js';
import { tempDir } from '../helpers/tmp.js';

/** A sandbox: `root` (the step's rootfs) beside `outside`, which nothing may reach. */
function sandbox(): { root: string; outside: string; archive: (data: Buffer) => string } {
  const dir = tempDir('build-add');
  const root = join(dir, 'root');
  const outside = join(dir, 'outside');
  fs.mkdirSync(root);
  fs.mkdirSync(outside);
  let n = 0;
  return {
    root,
    outside,
    archive: (data) => {
      const path = join(dir, `archive-${n++}`);
      fs.writeFileSync(path, data);
      return path;
    },
  };
}

const APP: Member[] = [
  { name: 'app/', type: 'directory', mode: 0o750, uid: 1234, gid: 4321 },
  { name: 'app/bin/run', content: '#!/bin/sh\n', mode: 0o755, uid: 1234, gid: 4321 },
  { name: 'app/link', type: 'symlink', linkname: 'bin/run', uid: 1234, gid: 4321 },
  { name: 'app/hard', type: 'link', linkname: 'app/bin/run' },
];

describe('extractArchiveInto', () => {
  for (const kind of ['tar', 'gzip', 'zstd', 'bzip2', 'xz'] as Compression[]) {
    it.skipIf(!HAVE[kind])(`unpacks a ${kind} archive into dest, keeping the archive's owners and modes`, async () => {
      const s = sandbox();
      const archive = s.archive(compress(kind, await makeTar(APP)));
      const r = await extractArchiveInto({ archive, destRoot: s.root, dest: '/srv/data' });
      expect(r).toMatchObject({ kind, entries: 4 });
      const run = fs.lstatSync(join(s.root, 'srv/data/app/bin/run'));
      expect(fs.readFileSync(join(s.root, 'srv/data/app/bin/run'), 'utf8')).toBe('#!/bin/sh\n');
      expect([run.uid, run.gid, run.mode & 0o7777]).toEqual([1234, 4321, 0o755]);
      expect(run.mtimeMs).toBe(1_600_000_000_000);
      expect(run.nlink).toBe(2);
      const app = fs.statSync(join(s.root, 'srv/data/app'));
      expect([app.uid, app.gid, app.mode & 0o7777]).toEqual([1234, 4321, 0o750]);
      expect(fs.readlinkSync(join(s.root, 'srv/data/app/link'))).toBe('bin/run');
      // dest's missing parents are made 0755, owned by root (no --chown)
      const made = fs.statSync(join(s.root, 'srv'));
      expect([made.uid, made.gid, made.mode & 0o7777]).toEqual([0, 0, 0o755]);
    });
  }

  it('--chown owns every entry and the directories made for dest', async () => {
    const s = sandbox();
    const archive = s.archive(compress('gzip', await makeTar(APP)));
    await extractArchiveInto({ archive, destRoot: s.root, dest: 'opt/x', chown: { uid: 1000, gid: 1001 } });
    for (const p of ['opt', 'opt/x', 'opt/x/app', 'opt/x/app/bin/run', 'opt/x/app/link']) {
      const st = fs.lstatSync(join(s.root, p));
      expect([p, st.uid, st.gid]).toEqual([p, 1000, 1001]);
    }
  });

  it('keeps what dest holds: a file is replaced, a directory merged, and a file replaces a directory (BuildKit)', async () => {
    const s = sandbox();
    fs.mkdirSync(join(s.root, 'd/keep/sub'), { recursive: true });
    fs.writeFileSync(join(s.root, 'd/keep/old.txt'), 'old');
    fs.writeFileSync(join(s.root, 'd/over.txt'), 'before');
    fs.mkdirSync(join(s.root, 'd/was-dir/inner'), { recursive: true });
    const archive = s.archive(
      await makeTar([
        { name: 'keep/', type: 'directory', mode: 0o700 },
        { name: 'keep/new.txt', content: 'new' },
        { name: 'over.txt', content: 'after' },
        { name: 'was-dir', content: 'now a file' },
      ]),
    );
    await extractArchiveInto({ archive, destRoot: s.root, dest: '/d' });
    expect(fs.readdirSync(join(s.root, 'd/keep')).sort()).toEqual(['new.txt', 'old.txt', 'sub']);
    expect(fs.statSync(join(s.root, 'd/keep')).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(join(s.root, 'd/over.txt'), 'utf8')).toBe('after');
    expect(fs.readFileSync(join(s.root, 'd/was-dir'), 'utf8')).toBe('now a file');
  });

  it(".wh. names are plain files (no whiteout), and the archive's root entry leaves dest's mode alone", async () => {
    const s = sandbox();
    fs.mkdirSync(join(s.root, 'w'), { mode: 0o755 });
    fs.chmodSync(join(s.root, 'w'), 0o755);
    fs.writeFileSync(join(s.root, 'w/foo'), 'stays');
    const archive = s.archive(
      await makeTar([
        { name: './', type: 'directory', mode: 0o700 },
        { name: '.wh.foo', content: 'a file' },
        { name: '.wh..wh..opq', content: 'also a file' },
      ]),
    );
    await extractArchiveInto({ archive, destRoot: s.root, dest: '/w' });
    expect(fs.readFileSync(join(s.root, 'w/foo'), 'utf8')).toBe('stays');
    expect(fs.readFileSync(join(s.root, 'w/.wh.foo'), 'utf8')).toBe('a file');
    expect(fs.readFileSync(join(s.root, 'w/.wh..wh..opq'), 'utf8')).toBe('also a file');
    expect(fs.statSync(join(s.root, 'w')).mode & 0o777).toBe(0o755);
  });

  it('dest through a symlink that climbs above the root (/app -> /../../outside) lands inside the root', async () => {
    const s = sandbox();
    fs.symlinkSync('/../../outside', join(s.root, 'app'));
    const archive = s.archive(await makeTar([{ name: 'f.txt', content: 'in' }]));
    await extractArchiveInto({ archive, destRoot: s.root, dest: '/app/sub' });
    expect(fs.readFileSync(join(s.root, 'outside/sub/f.txt'), 'utf8')).toBe('in');
    expect(fs.readdirSync(s.outside)).toEqual([]);
  });

  const hostile: [title: string, prepare: (root: string) => void, members: Member[]][] = [
    ['an entry that climbs out with ..', () => {}, [{ name: '../../outside/evil', content: 'x' }]],
    [
      "an entry through the archive's own symlink to /",
      () => {},
      [
        { name: 'up', type: 'symlink', linkname: '/../../outside' },
        { name: 'up/evil', content: 'x' },
      ],
    ],
    [
      'an entry through a symlink an earlier RUN left in dest',
      (root) => {
        fs.mkdirSync(join(root, 'app'));
        fs.symlinkSync('../../outside', join(root, 'app/sub'));
      },
      [{ name: 'sub/evil', content: 'x' }],
    ],
    ['a hardlink to a file outside dest', () => {}, [{ name: 'h', type: 'link', linkname: '../../outside/secret' }]],
  ];

  it.each(hostile)('refuses %s, and writes nothing outside the root', async (_title, prepare, members) => {
    const s = sandbox();
    fs.writeFileSync(join(s.outside, 'secret'), 'keep');
    fs.mkdirSync(join(s.root, 'app'), { recursive: true });
    fs.rmdirSync(join(s.root, 'app'));
    prepare(s.root);
    const archive = s.archive(compress('gzip', await makeTar(members)));
    await expect(extractArchiveInto({ archive, destRoot: s.root, dest: '/app' })).rejects.toBeInstanceOf(
      UnsafeLayerError,
    );
    expect(fs.readdirSync(s.outside)).toEqual(['secret']);
    expect(fs.statSync(join(s.outside, 'secret')).nlink).toBe(1);
  });

  it('refuses a file that is not an archive, and a dest that is a file', async () => {
    const s = sandbox();
    fs.writeFileSync(join(s.root, 'file'), '');
    const text = s.archive(Buffer.from('not a tar\n'));
    await expect(extractArchiveInto({ archive: text, destRoot: s.root, dest: '/x' })).rejects.toMatchObject({
      field: 'archive',
    });
    const archive = s.archive(await makeTar([{ name: 'a', content: 'a' }]));
    const err = await extractArchiveInto({ archive, destRoot: s.root, dest: '/file' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toMatchObject({ field: 'dest' });
  });

  it("unpacks GNU tar's own archive (tar -czf of a tree, with its ./ entry) and leaves dest's owner alone", async () => {
    const s = sandbox();
    const src = join(s.outside, 'tree');
    fs.mkdirSync(join(src, 'etc/app'), { recursive: true });
    fs.writeFileSync(join(src, 'etc/app/conf'), 'k=v\n');
    fs.symlinkSync('conf', join(src, 'etc/app/link'));
    const archive = join(s.outside, 'tree.tgz');
    execFileSync('tar', ['-C', src, '--owner=42', '--group=43', '-czf', archive, '.']);
    fs.mkdirSync(join(s.root, 'dst'));
    fs.chownSync(join(s.root, 'dst'), 5, 6);
    expect(await extractArchiveInto({ archive, destRoot: s.root, dest: '/dst' })).toMatchObject({ kind: 'gzip' });
    expect(fs.readFileSync(join(s.root, 'dst/etc/app/link'), 'utf8')).toBe('k=v\n');
    expect(fs.statSync(join(s.root, 'dst/etc/app/conf')).uid).toBe(42);
    expect([fs.statSync(join(s.root, 'dst')).uid, fs.statSync(join(s.root, 'dst')).gid]).toEqual([5, 6]);
  });

  it('an aborted extraction rejects with the reason', async () => {
    const s = sandbox();
    const archive = s.archive(await makeTar([{ name: 'a', content: 'a' }]));
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(extractArchiveInto({ archive, destRoot: s.root, dest: '/x', signal: ac.signal })).rejects.toThrow(
      'stop',
    );
    expect(fs.readdirSync(s.root)).toEqual([]);
  });

  it('a corrupt archive past its first header is an InvalidArgumentError naming the archive', async () => {
    const s = sandbox();
    const big = await makeTar([
      { name: 'a', content: Buffer.alloc(100_000, 1) },
      { name: 'b', content: 'b' },
    ]);
    const gz = compress('gzip', big);
    const archive = s.archive(gz.subarray(0, gz.length - 200));
    const err = await extractArchiveInto({ archive, destRoot: s.root, dest: '/c' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain(archive);
  });
});
