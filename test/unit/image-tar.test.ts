/**
 * The tar reader and writer against GNU tar, and tar-split reassembly (byte for byte).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { unpackLayer } from '../../src/image/layer-unpack.js';
import { TarReader, type TarEntry } from '../../src/image/tar-reader.js';
import { TarSplitRecorder, assembleLayerTar } from '../../src/image/tar-split.js';
import { encodeHeader, packDirectory } from '../../src/image/tar-writer.js';
import { tempDir } from '../helpers/tmp.js';

const isRoot = process.getuid?.() === 0;
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Seen {
  entry: TarEntry;
  data: Buffer;
}

/** Parses `archive`, fed in pieces of `step` bytes. */
function parse(archive: Buffer, step = archive.length): { entries: Seen[]; raw: number } {
  const entries: Seen[] = [];
  let raw = 0;
  let parts: Buffer[] = [];
  const reader = new TarReader({
    entry: (e) => {
      parts = [];
      entries.push({ entry: e, data: Buffer.alloc(0) });
    },
    data: (c) => parts.push(Buffer.from(c)),
    entryEnd: () => {
      (entries.at(-1) as Seen).data = Buffer.concat(parts);
    },
    raw: (c) => {
      raw += c.byteLength;
    },
  });
  for (let i = 0; i < archive.length; i += step) reader.write(archive.subarray(i, i + step));
  reader.end();
  return { entries, raw };
}

/** A small tree with the interesting cases: long names, hardlinks, symlinks, empty files. */
function makeTree(dir: string): void {
  const long = join(dir, 'l'.repeat(60), 'm'.repeat(60), 'n'.repeat(90));
  fs.mkdirSync(long, { recursive: true });
  fs.writeFileSync(join(long, 'f'.repeat(120)), 'deep');
  fs.writeFileSync(join(dir, 'a.txt'), 'hello\n');
  fs.linkSync(join(dir, 'a.txt'), join(dir, 'hard'));
  fs.symlinkSync(`/target/${'t'.repeat(150)}`, join(dir, 'longlink'));
  fs.symlinkSync('a.txt', join(dir, 'sym'));
  fs.writeFileSync(join(dir, 'empty'), '');
  fs.writeFileSync(join(dir, 'big'), Buffer.alloc(700_000, 5));
  fs.mkdirSync(join(dir, 'd'), { mode: 0o750 });
  fs.chmodSync(join(dir, 'd'), 0o750);
  fs.utimesSync(join(dir, 'a.txt'), 1_500_000_000, 1_500_000_000);
}

describe('TarReader', () => {
  it('reads GNU and PAX archives made by GNU tar, whatever the chunking', () => {
    const root = tempDir('tar');
    makeTree(join(root, 'src'));
    for (const format of ['gnu', 'pax']) {
      const archive = execFileSync('tar', ['-C', join(root, 'src'), `--format=${format}`, '-cf', '-', '.'], {
        maxBuffer: 1 << 26,
      });
      const whole = parse(archive);
      const names = whole.entries.map((e) => e.entry.name);
      expect(names).toContain(`./${'l'.repeat(60)}/${'m'.repeat(60)}/${'n'.repeat(90)}/${'f'.repeat(120)}`);
      const link = whole.entries.find((e) => e.entry.name === './longlink');
      expect(link?.entry.linkname).toBe(`/target/${'t'.repeat(150)}`);
      const hard = whole.entries.filter((e) => e.entry.type === 'link');
      expect(hard).toHaveLength(1);
      expect(whole.entries.find((e) => e.entry.name === './a.txt')?.entry.mtime).toBe(1_500_000_000);
      expect(whole.entries.find((e) => e.entry.name === './big')?.data.length).toBe(700_000);
      const dataBytes = whole.entries.reduce((n, e) => n + e.data.length, 0);
      expect(whole.raw + dataBytes).toBe(archive.length);
      for (const step of [1, 511, 513, 4096]) {
        const pieces = parse(archive, step);
        expect(pieces.entries.map((e) => [e.entry.name, e.data.length])).toEqual(
          whole.entries.map((e) => [e.entry.name, e.data.length]),
        );
      }
    }
  }, 60_000);

  it('rejects garbage, truncation, and sparse files', () => {
    expect(() => parse(Buffer.alloc(512, 0x41))).toThrow(InvalidArgumentError);
    const ok = encodeHeader({ name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 10, mtime: 0 });
    expect(() => parse(Buffer.concat([ok, Buffer.alloc(5)]))).toThrow(/truncated/);
    const sparse = Buffer.from(ok);
    sparse.write('S', 156);
    let sum = 0;
    sparse.write('        ', 148);
    for (const b of sparse) sum += b;
    sparse.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    expect(() => parse(Buffer.concat([sparse, Buffer.alloc(1024)]))).toThrow(/unsupported entry type 'S'/);
  });

  it('accepts an archive without end marker, and ignores what follows the marker', () => {
    const h = encodeHeader({ name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 });
    expect(parse(h).entries).toHaveLength(1);
    expect(parse(Buffer.concat([h, Buffer.alloc(1024), Buffer.from('trailing junk')])).entries).toHaveLength(1);
  });
});

describe('packDirectory', () => {
  it('writes a deterministic archive that GNU tar reads back identically', async () => {
    const root = tempDir('tar');
    const src = join(root, 'src');
    makeTree(src);
    const collect = async (): Promise<Buffer> => {
      const parts: Buffer[] = [];
      for await (const c of packDirectory(src)) parts.push(c);
      return Buffer.concat(parts);
    };
    const a = await collect();
    expect(sha(await collect())).toBe(sha(a));
    fs.writeFileSync(join(root, 'out.tar'), a);
    fs.mkdirSync(join(root, 'gnu'));
    execFileSync('tar', ['-C', join(root, 'gnu'), '-xf', join(root, 'out.tar')]);
    const listing = (dir: string): string =>
      execFileSync('sh', ['-c', `cd '${dir}' && find . -printf '%p %y %m %s %l\\n' | sort`]).toString();
    expect(listing(join(root, 'gnu'))).toBe(listing(src));
    expect(fs.statSync(join(root, 'gnu', 'hard')).ino).toBe(fs.statSync(join(root, 'gnu', 'a.txt')).ino);
    expect(fs.statSync(join(root, 'gnu', 'a.txt')).mtimeMs).toBe(1_500_000_000_000);
  });
});

describe('tar-split', () => {
  it('rebuilds archives byte for byte from the unpacked tree', async () => {
    const root = tempDir('tar');
    makeTree(join(root, 'src'));
    const archives: Record<string, Buffer> = {};
    for (const format of ['gnu', 'pax']) {
      archives[format] = execFileSync('tar', ['-C', join(root, 'src'), `--format=${format}`, '-cf', '-', '.'], {
        maxBuffer: 1 << 26,
      });
    }
    const parts: Buffer[] = [];
    for await (const c of packDirectory(join(root, 'src'))) parts.push(c);
    archives.berth = Buffer.concat([...parts, Buffer.alloc(2048)]); // padding after the end marker too
    if (isRoot) {
      // whiteouts: their bodies are kept inline
      const wh = encodeHeader({ name: 'dir/.wh.gone', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtime: 0 });
      archives.whiteout = Buffer.concat([wh, Buffer.from('abc'), Buffer.alloc(509), Buffer.alloc(1024)]);
    }
    for (const [name, archive] of Object.entries(archives)) {
      const dir = join(root, name);
      fs.mkdirSync(dir);
      const recorder = new TarSplitRecorder(join(dir, 'split.gz'));
      const r = await unpackLayer(archive, join(dir, 'fs'), { observer: recorder });
      await recorder.finish();
      expect(r.diffId).toBe(sha(archive));
      const rebuilt: Buffer[] = [];
      for await (const c of assembleLayerTar(join(dir, 'fs'), join(dir, 'split.gz'))) rebuilt.push(c);
      expect(sha(Buffer.concat(rebuilt)), name).toBe(sha(archive));
    }
  });

  it('fails when the tree was modified', async () => {
    const root = tempDir('tar');
    const h = encodeHeader({ name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 4, mtime: 0 });
    const archive = Buffer.concat([h, Buffer.from('data'), Buffer.alloc(508), Buffer.alloc(1024)]);
    const recorder = new TarSplitRecorder(join(root, 'split.gz'));
    await unpackLayer(archive, join(root, 'fs'), { observer: recorder });
    await recorder.finish();
    fs.writeFileSync(join(root, 'fs', 'f'), 'd');
    const drain = async (): Promise<void> => {
      for await (const _ of assembleLayerTar(join(root, 'fs'), join(root, 'split.gz'))) void _;
    };
    await expect(drain()).rejects.toThrow(/shorter than recorded/);
  });
});
