/**
 * The layer unpacker against a corpus of hand-made archives, hostile ones first. Every hostile
 * case checks that the unpack was rejected with UnsafeLayerError, that nothing is left in the
 * sandbox (no target, no temp directory), and that nothing was written outside it.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { BerthError, UnsafeLayerError } from '../../src/errors.js';
import { lgetxattr } from '../../src/kernel/xattr.js';
import { cleanEntryName } from '../../src/image/extract-paths.js';
import { detectCompression, unpackLayer } from '../../src/image/layer-unpack.js';
import { tempDir } from '../helpers/tmp.js';

const isRoot = process.getuid?.() === 0;

interface Spec {
  name: string;
  type?: tar.Header['type'];
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

/** Builds an archive with tar-stream (an encoder independent of berth's). */
async function makeTar(entries: Spec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const { content, ...header } = e;
    await new Promise<void>((resolve, reject) =>
      pack.entry(
        { mtime: new Date(1_600_000_000_000), ...header } as Partial<tar.Header> & { name: string },
        content ?? '',
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** One hand-made ustar member: header and padded content. */
function rawEntry(name: Buffer, flag: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  name.copy(header, 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('13000000000\0', 136);
  header.write('        ', 148);
  header.write(flag, 156);
  header.write('ustar\x0000', 257, 'latin1');
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const padded = Buffer.alloc(Math.ceil(content.length / 512) * 512);
  content.copy(padded);
  return Buffer.concat([header, padded]);
}

/** A PAX record `"<len> key=value\n"` with a raw value. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len++;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** Every path under `dir` (relative), sorted. */
function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const name of fs.readdirSync(d)) {
      const r = rel ? `${rel}/${name}` : name;
      out.push(r);
      const st = fs.lstatSync(join(d, name));
      if (st.isDirectory()) walk(join(d, name), r);
    }
  };
  walk(dir, '');
  return out.sort();
}

function sandbox(): { root: string; target: string; outside: string } {
  const root = tempDir('layer');
  const outside = join(root, 'outside');
  fs.mkdirSync(outside);
  fs.mkdirSync(join(root, 'work'));
  return { root, target: join(root, 'work', 'layer'), outside };
}

async function expectRejected(entries: Spec[], check?: (root: string) => void): Promise<UnsafeLayerError> {
  const { root, target } = sandbox();
  const before = listTree(root);
  const err = await unpackLayer(await makeTar(entries), target).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UnsafeLayerError);
  expect((err as UnsafeLayerError).code).toBe('UNSAFE_LAYER');
  expect(listTree(root)).toEqual(before);
  check?.(root);
  return err as UnsafeLayerError;
}

describe('cleanEntryName', () => {
  it.each([
    ['a/b', 'a/b'],
    ['./a//b/', 'a/b'],
    ['/abs/evil', 'abs/evil'],
    ['/../evil', 'evil'],
    ['a/../b', 'b'],
    ['.', ''],
    ['./', ''],
    ['/', ''],
  ])('%s → %s', (name, clean) => {
    expect(cleanEntryName(name)).toBe(clean);
  });

  it.each(['..', '../evil', 'a/../../evil', './../x', 'a/b/../../../c'])('rejects %s', (name) => {
    expect(() => cleanEntryName(name)).toThrow(UnsafeLayerError);
  });
});

describe('detectCompression', () => {
  it('reads magic numbers', () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('gzip');
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
    expect(detectCompression(Buffer.from('BZh91AY'))).toBe('bzip2');
    expect(detectCompression(Buffer.from('hello'))).toBe('none');
  });
});

describe('unpackLayer: hostile archives', () => {
  it('rejects ../evil', async () => {
    await expectRejected([{ name: '../evil', content: 'x' }]);
  });

  it('rejects a/../../evil', async () => {
    await expectRejected([
      { name: 'a/', type: 'directory' },
      { name: 'a/../../evil', content: 'x' },
    ]);
  });

  it('rejects writing through a symlink to an absolute directory (s -> /etc, s/passwd)', async () => {
    const probe = `berth-test-${process.pid}-${Date.now()}`;
    await expectRejected([
      { name: 's', type: 'symlink', linkname: '/etc' },
      { name: `s/${probe}`, content: 'pwned' },
    ]);
    expect(fs.existsSync(`/etc/${probe}`)).toBe(false);
  });

  it('rejects writing through a symlink to a decoy outside the sandbox', async () => {
    const { root, target, outside } = sandbox();
    const err = await unpackLayer(
      await makeTar([
        { name: 'etc/', type: 'directory' },
        { name: 'etc/s', type: 'symlink', linkname: outside },
        { name: 'etc/s/passwd', content: 'pwned' },
      ]),
      target,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeLayerError);
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(fs.readdirSync(join(root, 'work'))).toEqual([]);
  });

  it('rejects s -> .. then s/x', async () => {
    await expectRejected([
      { name: 'd/', type: 'directory' },
      { name: 'd/s', type: 'symlink', linkname: '..' },
      { name: 'd/s/x', content: 'x' },
    ]);
    await expectRejected([
      { name: 's', type: 'symlink', linkname: '..' },
      { name: 's/x', content: 'x' },
    ]);
  });

  it('rejects a hardlink to ../../etc/passwd', async () => {
    const err = await expectRejected([{ name: 'passwd', type: 'link', linkname: '../../etc/passwd' }]);
    expect(err.entry).toBe('passwd');
  });

  it('rejects a hardlink through a symlinked directory', async () => {
    const { outside } = sandbox();
    fs.writeFileSync(join(outside, 'secret'), 'secret');
    await expectRejected([
      { name: 'd', type: 'symlink', linkname: outside },
      { name: 'h', type: 'link', linkname: 'd/secret' },
    ]);
    expect(fs.statSync(join(outside, 'secret')).nlink).toBe(1);
  });

  it('rejects a hardlink through a symlink to /etc', async () => {
    await expectRejected([
      { name: 'e', type: 'symlink', linkname: '/etc' },
      { name: 'pw', type: 'link', linkname: 'e/passwd' },
    ]);
    expect(fs.statSync('/etc/passwd').nlink).toBe(1);
  });

  it('rejects a hardlink to a missing target or to a directory', async () => {
    await expectRejected([{ name: 'h', type: 'link', linkname: 'nope' }]);
    await expectRejected([
      { name: 'd/', type: 'directory' },
      { name: 'h', type: 'link', linkname: 'd' },
    ]);
  });

  it('rejects a directory replaced by a symlink, then written through', async () => {
    const { outside } = sandbox();
    await expectRejected([
      { name: 'd/', type: 'directory' },
      { name: 'd/a', content: 'fine' },
      { name: 'd', type: 'symlink', linkname: outside },
      { name: 'd/evil', content: 'pwned' },
    ]);
    expect(fs.readdirSync(outside)).toEqual([]);
  });

  it('rejects a file written through a symlink that is the parent of a parent', async () => {
    const { outside } = sandbox();
    fs.mkdirSync(join(outside, 'sub'));
    await expectRejected([
      { name: 'l', type: 'symlink', linkname: outside },
      { name: 'l/sub/x', content: 'pwned' },
    ]);
    expect(fs.readdirSync(join(outside, 'sub'))).toEqual([]);
  });

  it('rejects an entry that would replace the root, and a whiteout of ..', async () => {
    await expectRejected([{ name: './', type: 'symlink', linkname: '/' }]);
    await expectRejected([{ name: 'a/.wh...', content: '' }]);
  });

  it('does not follow a symlink when a file entry replaces it', async () => {
    const { target, outside } = sandbox();
    fs.writeFileSync(join(outside, 'victim'), 'original');
    await unpackLayer(
      await makeTar([
        { name: 'f', type: 'symlink', linkname: join(outside, 'victim') },
        { name: 'f', content: 'replaced' },
      ]),
      target,
    );
    expect(fs.readFileSync(join(outside, 'victim'), 'utf8')).toBe('original');
    expect(fs.lstatSync(join(target, 'f')).isFile()).toBe(true);
    expect(fs.readFileSync(join(target, 'f'), 'utf8')).toBe('replaced');
  });

  it('links to a symlink itself, never to what it points at', async () => {
    const { target, outside } = sandbox();
    fs.writeFileSync(join(outside, 'victim'), 'v');
    await unpackLayer(
      await makeTar([
        { name: 'l', type: 'symlink', linkname: join(outside, 'victim') },
        { name: 'h', type: 'link', linkname: 'l' },
        { name: 'etc', type: 'symlink', linkname: '/etc' },
      ]),
      target,
    );
    expect(fs.lstatSync(join(target, 'h')).isSymbolicLink()).toBe(true);
    expect(fs.statSync(join(outside, 'victim')).nlink).toBe(1);
    expect(fs.readlinkSync(join(target, 'etc'))).toBe('/etc');
  });

  it('rejects malformed archives and leaves nothing behind', async () => {
    const { root, target } = sandbox();
    const good = await makeTar([{ name: 'a', content: 'x'.repeat(2000) }]);
    const truncated = good.subarray(0, 1000);
    const err = await unpackLayer(truncated, target).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BerthError);
    expect((err as BerthError).code).toBe('INVALID_ARGUMENT');
    const corrupt = Buffer.from(good);
    corrupt[10] = 0x41;
    expect(await unpackLayer(corrupt, target).catch((e: unknown) => (e as BerthError).code)).toBe('INVALID_ARGUMENT');
    expect(fs.readdirSync(join(root, 'work'))).toEqual([]);
  });
});

describe('unpackLayer: content', () => {
  it('lands absolute names inside the layer', async () => {
    const { target, root } = sandbox();
    await unpackLayer(await makeTar([{ name: '/abs/evil', content: 'inside' }]), target);
    expect(fs.readFileSync(join(target, 'abs/evil'), 'utf8')).toBe('inside');
    expect(fs.existsSync('/abs/evil')).toBe(false);
    expect(listTree(root).filter((p) => !p.startsWith('work/layer'))).toEqual(['outside', 'work']);
  });

  it('unpacks files, dirs, symlinks, hardlinks, modes, owners and times; diffID = sha256 of the tar', async () => {
    const { target } = sandbox();
    const longName = `${'deep/'.repeat(30)}${'n'.repeat(120)}`;
    const tarball = await makeTar([
      { name: './', type: 'directory', mode: 0o755 },
      { name: 'bin/', type: 'directory', mode: 0o755, mtime: new Date(1_000_000_000_000) },
      { name: 'bin/tool', content: '#!/bin/sh\necho hi\n', mode: 0o4755, uid: 1000, gid: 1001 },
      { name: 'bin/alias', type: 'link', linkname: 'bin/tool' },
      { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' },
      { name: 'tmp/', type: 'directory', mode: 0o1777 },
      { name: 'empty', content: '' },
      { name: longName, content: 'long' },
      { name: 'a/b/c/implicit', content: 'parents made' },
    ]);
    const r = await unpackLayer(tarball, target);
    expect(r.diffId).toBe(`sha256:${createHash('sha256').update(tarball).digest('hex')}`);
    expect(r.tarSize).toBe(tarball.length);
    expect(r.compression).toBe('none');
    expect(r.size).toBe(18 + 4 + 12);
    const tool = fs.statSync(join(target, 'bin/tool'));
    expect(tool.mode & 0o7777).toBe(0o4755);
    if (isRoot) expect([tool.uid, tool.gid]).toEqual([1000, 1001]);
    expect(tool.mtimeMs).toBe(1_600_000_000_000);
    expect(tool.nlink).toBe(2);
    expect(fs.statSync(join(target, 'bin/alias')).ino).toBe(tool.ino);
    expect(fs.readlinkSync(join(target, 'bin/sh'))).toBe('/bin/busybox');
    expect(fs.statSync(join(target, 'tmp')).mode & 0o7777).toBe(0o1777);
    expect(fs.statSync(join(target, 'bin')).mtimeMs).toBe(1_000_000_000_000);
    expect(fs.statSync(join(target, 'empty')).size).toBe(0);
    expect(fs.readFileSync(join(target, longName), 'utf8')).toBe('long');
    expect(fs.statSync(join(target, 'a/b')).mode & 0o777).toBe(0o755);
    expect(fs.readFileSync(join(target, 'a/b/c/implicit'), 'utf8')).toBe('parents made');
  });

  it.skipIf(!isRoot)('gives exact owners and modes despite setgid parents and the umask', async () => {
    const { target } = sandbox();
    await unpackLayer(
      await makeTar([
        { name: 'sg/', type: 'directory', mode: 0o2775, gid: 50 },
        { name: 'sg/root-owned', content: 'x', mode: 0o644 },
        { name: 'sg/link', type: 'symlink', linkname: 'root-owned' },
        { name: 'sg/sub/', type: 'directory', mode: 0o755 },
        { name: 'open', content: 'x', mode: 0o666 },
        { name: 'suid', content: 'x', mode: 0o4755 },
        { name: 'sgid', content: 'x', mode: 0o2711, gid: 5 },
      ]),
      target,
    );
    const st = (p: string): fs.Stats => fs.lstatSync(join(target, p));
    expect(st('sg').gid).toBe(50);
    expect(st('sg').mode & 0o7777).toBe(0o2775);
    expect([st('sg/root-owned').uid, st('sg/root-owned').gid]).toEqual([0, 0]);
    expect(st('sg/link').gid).toBe(0);
    expect(st('sg/sub').gid).toBe(0);
    expect(st('sg/sub').mode & 0o7777).toBe(0o755);
    expect(st('open').mode & 0o7777).toBe(0o666);
    expect(st('suid').mode & 0o7777).toBe(0o4755);
    expect(st('sgid').mode & 0o7777).toBe(0o2711);
    expect(st('sgid').gid).toBe(5);
  });

  it('detects gzip and hashes the uncompressed stream', async () => {
    const { target } = sandbox();
    const tarball = await makeTar([{ name: 'f', content: 'gz' }]);
    const r = await unpackLayer(gzipSync(tarball), target);
    expect(r.compression).toBe('gzip');
    expect(r.diffId).toBe(`sha256:${createHash('sha256').update(tarball).digest('hex')}`);
    expect(fs.readFileSync(join(target, 'f'), 'utf8')).toBe('gz');
  });

  it('unpacks zstd when this Node.js can, and says so clearly when it cannot', async () => {
    const { target, root } = sandbox();
    const tarball = await makeTar([{ name: 'z', content: 'zstd' }]);
    fs.writeFileSync(join(root, 'l.tar'), tarball);
    try {
      execFileSync('zstd', ['-q', join(root, 'l.tar'), '-o', join(root, 'l.tar.zst')]);
    } catch {
      console.warn('skipped: no zstd command');
      return;
    }
    const r = await unpackLayer(fs.readFileSync(join(root, 'l.tar.zst')), target).catch((e: unknown) => e);
    if ('createZstdDecompress' in zlib) expect((r as { compression: string }).compression).toBe('zstd');
    else expect(r).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'layer' });
  });

  it('streams a source in small pieces', async () => {
    const { target } = sandbox();
    const tarball = gzipSync(
      await makeTar([
        { name: 'big', content: Buffer.alloc(300_000, 7) },
        { name: 'small', content: 's' },
      ]),
    );
    async function* drip(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < tarball.length; i += 3) yield tarball.subarray(i, i + 3);
    }
    await unpackLayer(drip(), target);
    expect(fs.statSync(join(target, 'big')).size).toBe(300_000);
  });

  it('checks the expected diffID', async () => {
    const { target, root } = sandbox();
    const err = await unpackLayer(await makeTar([{ name: 'f' }]), target, {
      expectedDiffId: `sha256:${'0'.repeat(64)}`,
    }).catch((e: unknown) => e);
    expect((err as BerthError).code).toBe('INVALID_ARGUMENT');
    expect(fs.readdirSync(join(root, 'work'))).toEqual([]);
  });

  it('lets a later entry replace an earlier one, keeping directories merged', async () => {
    const { target } = sandbox();
    await unpackLayer(
      await makeTar([
        { name: 'd/', type: 'directory' },
        { name: 'd/keep', content: 'k' },
        { name: 'd/', type: 'directory', mode: 0o700 },
        { name: 'x/', type: 'directory' },
        { name: 'x/gone', content: 'g' },
        { name: 'x', content: 'now a file' },
      ]),
      target,
    );
    expect(fs.readFileSync(join(target, 'd/keep'), 'utf8')).toBe('k');
    expect(fs.statSync(join(target, 'd')).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(join(target, 'x'), 'utf8')).toBe('now a file');
  });

  it.skipIf(!isRoot)('makes device nodes and fifos', async () => {
    const { target } = sandbox();
    await unpackLayer(
      await makeTar([
        { name: 'dev/', type: 'directory' },
        { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
        { name: 'dev/loop9', type: 'block-device', devmajor: 7, devminor: 9, mode: 0o660 },
        { name: 'fifo', type: 'fifo', mode: 0o600 },
      ]),
      target,
    );
    const nul = fs.lstatSync(join(target, 'dev/null'));
    expect(nul.isCharacterDevice()).toBe(true);
    expect(nul.rdev).toBe((1 << 8) | 3);
    expect(nul.mode & 0o777).toBe(0o666);
    expect(fs.lstatSync(join(target, 'dev/loop9')).isBlockDevice()).toBe(true);
    expect(fs.lstatSync(join(target, 'fifo')).isFIFO()).toBe(true);
  });

  it.skipIf(!isRoot)('turns whiteouts into overlayfs whiteouts and opaque markers', async () => {
    const { target } = sandbox();
    await unpackLayer(
      await makeTar([
        { name: 'etc/', type: 'directory' },
        { name: 'etc/.wh.motd', content: '' },
        { name: 'opq/', type: 'directory' },
        { name: 'opq/.wh..wh..opq', content: '' },
        { name: 'opq/new', content: 'n' },
        { name: '.wh..wh.plnk/', type: 'directory' },
      ]),
      target,
    );
    const wh = fs.lstatSync(join(target, 'etc/motd'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    expect(fs.existsSync(join(target, 'etc/.wh.motd'))).toBe(false);
    expect(lgetxattr(join(target, 'opq'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(fs.readdirSync(join(target, 'opq'))).toEqual(['new']);
    expect(fs.readdirSync(target).sort()).toEqual(['etc', 'opq']);
  });

  it.skipIf(!isRoot)('keeps binary xattr values (security.capability) byte for byte', async () => {
    const { target } = sandbox();
    const cap = Buffer.from([
      0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00,
    ]);
    const archive = Buffer.concat([
      rawEntry(Buffer.from('PaxHeader'), 'x', paxRecord('SCHILY.xattr.security.capability', cap)),
      rawEntry(Buffer.from('ping'), '0', Buffer.from('elf')),
      Buffer.alloc(1024),
    ]);
    await unpackLayer(archive, target);
    expect(lgetxattr(join(target, 'ping'), 'security.capability')).toEqual(cap);
  });

  it.skipIf(!isRoot)('sets PAX xattrs and drops trusted.overlay.* from archives', async () => {
    const { target } = sandbox();
    const pack = await makeTar([
      {
        name: 'f',
        content: 'x',
        pax: { 'SCHILY.xattr.user.note': 'hello', 'SCHILY.xattr.trusted.overlay.redirect': '/x' },
      },
      { name: 'd/', type: 'directory', pax: { 'SCHILY.xattr.trusted.berth': 'dir' } },
    ]);
    await unpackLayer(pack, target);
    expect(lgetxattr(join(target, 'f'), 'user.note')?.toString()).toBe('hello');
    expect(lgetxattr(join(target, 'f'), 'trusted.overlay.redirect')).toBeUndefined();
    expect(lgetxattr(join(target, 'd'), 'trusted.berth')?.toString()).toBe('dir');
  });

  it('keeps names that are not UTF-8', async () => {
    const { target } = sandbox();
    const name = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in Latin-1
    await unpackLayer(Buffer.concat([rawEntry(name, '0', Buffer.from('ok')), Buffer.alloc(1024)]), target);
    const names = fs.readdirSync(target, { encoding: 'buffer' });
    expect(names.map((n) => [...n])).toEqual([[0x63, 0x61, 0x66, 0xe9]]);
  });
});
