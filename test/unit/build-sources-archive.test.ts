/**
 * Which files `ADD` unpacks (BuildKit's rule: a regular file whose decompressed content starts with
 * a valid tar header), whatever they are named.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectArchive, type ArchiveKind } from '../../src/image/build/sources/archive.js';
import { HAVE, compress, makeTar, type Compression } from '../helpers/archive.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('build-archive');
const tarball = await makeTar([{ name: 'etc/hello.txt', content: 'hi\n' }]);
const paxFirst = await makeTar([
  { name: `long/${'n'.repeat(150)}/file`, content: 'x', pax: { comment: 'x'.repeat(4000) } },
]);

const files: [name: string, content: () => Buffer, expected: ArchiveKind | null][] = [
  ['plain.tar', () => tarball, 'tar'],
  ['data.bin (a tar under another name)', () => tarball, 'tar'],
  ['pax.tar (a PAX record before the first entry)', () => paxFirst, 'tar'],
  ['notes.txt.gz (a gzip-compressed tar under another name)', () => compress('gzip', tarball), 'gzip'],
  ['app.tar (text, not a tar)', () => Buffer.from('just some text\n'.repeat(100)), null],
  ['text.gz (gzip of text, not of a tar)', () => compress('gzip', Buffer.from('text\n'.repeat(200))), null],
  ['empty.tar', () => Buffer.alloc(0), null],
  ['zeros.tar (only the end-of-archive blocks)', () => Buffer.alloc(1024), null],
  ['short.tar (a truncated header)', () => tarball.subarray(0, 300), null],
  [
    'bad-sum.tar (a header whose checksum is wrong)',
    () => Buffer.concat([Buffer.from('x'), tarball.subarray(1)]),
    null,
  ],
  [
    'broken.gz (gzip magic, then garbage)',
    () => Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(600, 7)]),
    null,
  ],
];
const compressed: [Compression, ArchiveKind][] = [
  ['zstd', 'zstd'],
  ['bzip2', 'bzip2'],
  ['xz', 'xz'],
];

describe('detectArchive', () => {
  it.each(files)('%s → %s', async (name, content, expected) => {
    const path = join(dir, name.split(' ')[0] as string);
    fs.writeFileSync(path, content());
    expect(await detectArchive(path)).toBe(expected);
  });

  for (const [kind, expected] of compressed) {
    it.skipIf(!HAVE[kind])(`a ${kind}-compressed tar named blob → ${expected}`, async () => {
      const path = join(dir, `blob-${kind}`);
      fs.writeFileSync(path, compress(kind, tarball));
      expect(await detectArchive(path)).toBe(expected);
    });
    it.skipIf(!HAVE[kind])(`${kind} of text, not of a tar → null`, async () => {
      const path = join(dir, `text-${kind}`);
      fs.writeFileSync(path, compress(kind, Buffer.from('plain text\n'.repeat(300))));
      expect(await detectArchive(path)).toBeNull();
    });
  }

  it('a symlink to a tar → null (copied as a link, never unpacked)', async () => {
    fs.writeFileSync(join(dir, 'real.tar'), tarball);
    fs.symlinkSync('real.tar', join(dir, 'link.tar'));
    expect(await detectArchive(join(dir, 'link.tar'))).toBeNull();
  });

  it('a directory → null', async () => {
    fs.mkdirSync(join(dir, 'sub.tar'));
    expect(await detectArchive(join(dir, 'sub.tar'))).toBeNull();
  });
});
