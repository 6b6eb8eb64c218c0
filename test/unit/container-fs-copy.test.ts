/**
 * `docker cp` into and out of a directory fd (the container root): hostile archives cannot
 * write outside the destination, nor through symlinks; paths resolve inside the root.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { extractPath, packPath } from '../../src/container/fs/copy.js';
import { TarReader } from '../../src/image/tar-reader.js';
import { END_OF_ARCHIVE, encodeHeader } from '../../src/image/tar-writer.js';
import { tempDir } from '../helpers/tmp.js';

type Spec = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; body?: string; linkname?: string };

function makeTar(entries: Spec[]): Buffer {
  const parts: Buffer[] = [];
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;
  for (const e of entries) {
    const type = e.type ?? 'file';
    const body = Buffer.from(e.body ?? '');
    parts.push(
      encodeHeader({
        name: type === 'directory' ? `${e.name}/` : e.name,
        type,
        mode: type === 'directory' ? 0o755 : 0o644,
        uid,
        gid,
        size: type === 'file' ? body.length : 0,
        mtime: 1_700_000_000,
        ...(e.linkname ? { linkname: e.linkname } : {}),
      }),
    );
    if (type === 'file') parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

function setup(): { root: string; outside: string; fd: number } {
  const d = tempDir('copy');
  const root = join(d, 'root');
  const outside = join(d, 'outside');
  fs.mkdirSync(join(root, 'dst'), { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(join(outside, 'f'), 'host');
  fs.symlinkSync(outside, join(root, 'abs'));
  fs.symlinkSync('../../outside', join(root, 'rel'));
  fs.symlinkSync('/', join(root, 'etc'));
  fs.symlinkSync(outside, join(root, 'dst', 'out'));
  return { root, outside, fd: fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY) };
}

async function names(gen: AsyncIterable<Buffer>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let name = '';
  let body: Buffer[] = [];
  const r = new TarReader({
    entry: (e) => {
      name = e.name;
      body = [];
    },
    data: (c) => body.push(Buffer.from(c)),
    entryEnd: () => out.set(name, Buffer.concat(body).toString()),
  });
  for await (const c of gen) r.write(c);
  r.end();
  return out;
}

describe('copy into a root', () => {
  it('extracts, merging directories, and follows the destination symlink inside the root', async () => {
    const { root, outside, fd } = setup();
    await extractPath(
      fd,
      '/dst',
      makeTar([
        { name: 'd', type: 'directory' },
        { name: 'd/a', body: 'A' },
        { name: 'd/l', type: 'symlink', linkname: '/x' },
        { name: 'd/h', type: 'link', linkname: 'd/a' },
      ]),
    );
    expect(fs.readFileSync(join(root, 'dst/d/a'), 'utf8')).toBe('A');
    expect(fs.readlinkSync(join(root, 'dst/d/l'))).toBe('/x');
    expect(fs.statSync(join(root, 'dst/d/h')).ino).toBe(fs.statSync(join(root, 'dst/d/a')).ino);
    await extractPath(fd, '/etc/dst', makeTar([{ name: 'via-etc', body: 'E' }]));
    expect(fs.readFileSync(join(root, 'dst/via-etc'), 'utf8')).toBe('E');
    // Absolute and relative symlinks out of the root resolve inside it (here: they do not exist).
    await expect(extractPath(fd, '/abs', makeTar([{ name: 'f', body: 'x' }]))).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(extractPath(fd, '/rel', makeTar([{ name: 'f', body: 'x' }]))).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(fs.readFileSync(join(outside, 'f'), 'utf8')).toBe('host');
    fs.closeSync(fd);
  });

  it('rejects entries that climb out, go through symlinks or link outside', async () => {
    const { outside, fd } = setup();
    for (const bad of [
      [{ name: '../../outside/f', body: 'x' }],
      [{ name: 'out/f', body: 'x' }],
      [{ name: 's', type: 'symlink', linkname: outside } as Spec, { name: 's/f', body: 'x' }],
      [{ name: 'h', type: 'link', linkname: '../../outside/f' } as Spec],
      [{ name: 'h', type: 'link', linkname: 'out/f' } as Spec],
    ]) {
      await expect(extractPath(fd, '/dst', makeTar(bad))).rejects.toMatchObject({ code: 'UNSAFE_LAYER' });
    }
    expect(fs.readdirSync(outside)).toEqual(['f']);
    expect(fs.readFileSync(join(outside, 'f'), 'utf8')).toBe('host');
    fs.closeSync(fd);
  });

  it('refuses to replace a directory with a file, and rejects a truncated archive', async () => {
    const { fd } = setup();
    await extractPath(fd, '/', makeTar([{ name: 'dst/x', type: 'directory' }]));
    await expect(extractPath(fd, '/', makeTar([{ name: 'dst/x', body: 'f' }]))).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    await expect(
      extractPath(fd, '/dst', makeTar([{ name: 'big', body: 'x'.repeat(2000) }]).subarray(0, 1024)),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    fs.closeSync(fd);
  });
});

describe('copy into a root, by the rules of the layer extractor', () => {
  it('keeps a file that a later hardlink entry names as its own target', async () => {
    const { root, fd } = setup();
    await extractPath(
      fd,
      '/dst',
      makeTar([
        { name: 'f', body: 'kept' },
        { name: 'f', type: 'link', linkname: 'f' },
      ]),
    );
    expect(fs.readFileSync(join(root, 'dst/f'), 'utf8')).toBe('kept');
    fs.closeSync(fd);
  });

  it.skipIf(process.geteuid?.() !== 0)('makes a device node whose name is not UTF-8', async () => {
    const { root, fd } = setup();
    const name = Buffer.from([0x6e, 0x75, 0x6c, 0xe9]).toString('latin1'); // "nulé" in Latin-1
    const tar = Buffer.concat([
      encodeHeader({
        name,
        type: 'character-device',
        mode: 0o666,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: 1_700_000_000,
        devmajor: 1,
        devminor: 3,
      }),
      END_OF_ARCHIVE,
    ]);
    await extractPath(fd, '/dst', tar);
    const names = fs.readdirSync(join(root, 'dst'), { encoding: 'buffer' }).filter((n) => n.includes(0xe9));
    expect(names.map((n) => [...n])).toEqual([[0x6e, 0x75, 0x6c, 0xe9]]);
    const st = fs.lstatSync(Buffer.concat([Buffer.from(join(root, 'dst/')), names[0]!]));
    expect([st.isCharacterDevice(), st.rdev, st.mode & 0o777]).toEqual([true, (1 << 8) | 3, 0o666]);
    fs.closeSync(fd);
  });
});

describe('copy out of a root', () => {
  it('packs a file or a tree under its base name, resolving inside the root', async () => {
    const { root, fd } = setup();
    fs.mkdirSync(join(root, 'dst/tree/sub'), { recursive: true });
    fs.writeFileSync(join(root, 'dst/tree/sub/f'), 'F');
    expect([...(await names(packPath(fd, '/dst/tree'))).keys()]).toEqual(['tree/', 'tree/sub/', 'tree/sub/f']);
    expect((await names(packPath(fd, '/etc/etc/dst/tree/sub/f'))).get('f')).toBe('F');
    // A symlink out of the root is copied as a symlink; through it, nothing is found.
    expect([...(await names(packPath(fd, '/dst/out'))).keys()]).toEqual(['out']);
    await expect(names(packPath(fd, '/dst/out/f'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(names(packPath(fd, '/abs/f'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(names(packPath(fd, '/../../outside/f'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    fs.closeSync(fd);
  });
});
