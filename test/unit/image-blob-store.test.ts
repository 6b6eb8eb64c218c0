/**
 * The content store: hashing while writing, verification, atomic visibility, concurrent ingests
 * of the same blob (in one process and in several).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { BlobStore } from '../../src/image/blob-store.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const REPO = resolve(import.meta.dirname, '../..');

describe('BlobStore', () => {
  it('ingests bytes, strings and streams, and reads them back', async () => {
    const store = new BlobStore(tempDir('blobs'));
    const a = await store.ingest('hello');
    expect(a).toEqual({ digest: sha('hello'), size: 5 });
    const big = Buffer.alloc(3 << 20, 1);
    const b = await store.ingest(Readable.from([big.subarray(0, 1000), big.subarray(1000)]));
    expect(b.digest).toBe(sha(big));
    expect(await store.has(b.digest)).toBe(true);
    expect(fs.statSync(store.path(b.digest)).size).toBe(big.length);
    expect((await store.read(a.digest)).toString()).toBe('hello');
    const chunks: Buffer[] = [];
    for await (const c of await store.openRead(b.digest)) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(big)).toBe(true);
    expect((await store.list()).sort()).toEqual([a.digest, b.digest].sort());
    expect(await store.stat(a.digest)).toEqual({ digest: a.digest, size: 5 });
  });

  it('verifies expected digest and size, storing nothing on mismatch', async () => {
    const root = tempDir('blobs');
    const store = new BlobStore(root);
    await expect(store.ingest('abc', { expectedDigest: sha('abd') })).rejects.toThrow(InvalidArgumentError);
    await expect(store.ingest('abc', { expectedSize: 4 })).rejects.toThrow(
      expect.objectContaining({ field: 'expectedSize' }),
    );
    await expect(store.ingest('abcdef', { expectedSize: 2 })).rejects.toThrow(InvalidArgumentError);
    expect(await store.list()).toEqual([]);
    expect(fs.readdirSync(join(root, 'blobs', 'ingest'))).toEqual([]);
    expect(await store.ingest('abc', { expectedDigest: sha('abc'), expectedSize: 3 })).toEqual({
      digest: sha('abc'),
      size: 3,
    });
    await expect(store.ingest('x', { expectedDigest: 'sha256:nothex' })).rejects.toThrow(
      expect.objectContaining({ field: 'expectedDigest' }),
    );
  });

  it('removes the temp file when the source fails', async () => {
    const root = tempDir('blobs');
    const store = new BlobStore(root);
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('part');
      throw new Error('network down');
    }
    await expect(store.ingest(failing())).rejects.toThrow('network down');
    expect(fs.readdirSync(join(root, 'blobs', 'ingest'))).toEqual([]);
  });

  it('reports missing blobs and deletes', async () => {
    const store = new BlobStore(tempDir('blobs'));
    await expect(store.read(sha('nope'))).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.openRead(sha('nope'))).rejects.toBeInstanceOf(NotFoundError);
    const { digest } = await store.ingest('x');
    expect(await store.delete(digest)).toBe(true);
    expect(await store.delete(digest)).toBe(false);
    expect(await store.has(digest)).toBe(false);
    expect(() => store.path('md5:abc')).toThrow(InvalidArgumentError);
  });

  it('lets many concurrent ingests of one blob all succeed with one file', async () => {
    const root = tempDir('blobs');
    const store = new BlobStore(root);
    const data = Buffer.alloc(1 << 20, 9);
    const results = await Promise.all(
      Array.from({ length: 8 }, () => new BlobStore(root).ingest(Readable.from([data]))),
    );
    expect(new Set(results.map((r) => r.digest))).toEqual(new Set([sha(data)]));
    expect(await store.list()).toEqual([sha(data)]);
    expect(fs.readdirSync(join(root, 'blobs', 'ingest'))).toEqual([]);
  });

  it('lets two processes ingest the same blob at once', async () => {
    const root = tempDir('blobs');
    const script = join(root, 'ingest.mts');
    fs.writeFileSync(
      script,
      `import { BlobStore } from '${join(REPO, 'src/image/blob-store.ts')}';
const store = new BlobStore(process.argv[2]);
const data = Buffer.alloc(8 << 20, 3);
for (let i = 0; i < 5; i++) await store.ingest(data);
console.log((await store.ingest(data)).digest);`,
    );
    const run = () => promisify(execFile)(process.execPath, ['--import', 'tsx', script, root], { cwd: REPO });
    const [a, b] = await Promise.all([run(), run()]);
    const expected = sha(Buffer.alloc(8 << 20, 3));
    expect(a.stdout.trim()).toBe(expected);
    expect(b.stdout.trim()).toBe(expected);
    expect(await new BlobStore(root).list()).toEqual([expected]);
    expect(fs.readdirSync(join(root, 'blobs', 'ingest'))).toEqual([]);
  });
});
