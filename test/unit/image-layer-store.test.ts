/**
 * The layer store: stage/commit, deduplication by diffID (also across processes), rebuilding
 * the original archive, removal.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { NotFoundError, UnsafeLayerError } from '../../src/errors.js';
import { LayerStore } from '../../src/image/layer-store.js';
import { encodeHeader, END_OF_ARCHIVE } from '../../src/image/tar-writer.js';
import { tempDir } from '../helpers/tmp.js';

const REPO = resolve(import.meta.dirname, '../..');
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function file(name: string, content: string): Buffer {
  const body = Buffer.from(content);
  return Buffer.concat([
    encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 1_700_000_000 }),
    body,
    Buffer.alloc((512 - (body.length % 512)) % 512),
  ]);
}

const layerTar = (...files: Array<[string, string]>): Buffer =>
  Buffer.concat([...files.map(([n, c]) => file(n, c)), END_OF_ARCHIVE]);

async function drain(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

describe('LayerStore', () => {
  it('unpacks a layer once by diffID and rebuilds its original archive', async () => {
    const root = tempDir('layers');
    const store = new LayerStore(root);
    const tar = layerTar(['etc/hostname', 'box\n'], ['bin/x', '#!x']);
    const info = await store.unpack(gzipSync(tar));
    expect(info.diffId).toBe(sha(tar));
    expect(info.size).toBe(7);
    expect(info.tarSize).toBe(tar.length);
    expect(fs.readFileSync(join(store.fsDir(info.diffId), 'etc/hostname'), 'utf8')).toBe('box\n');
    expect(store.get(info.diffId)).toMatchObject({ diffId: info.diffId, size: 7 });
    const again = await store.unpack(tar);
    expect(again.created).toBe(info.created);
    expect(store.list()).toEqual([info.diffId]);
    expect((await drain(store.openTar(info.diffId))).equals(tar)).toBe(true);
    expect(fs.readdirSync(join(root, 'layers', 'staging'))).toEqual([]);
  });

  it('leaves nothing in staging when a layer is unsafe', async () => {
    const root = tempDir('layers');
    const store = new LayerStore(root);
    await expect(store.unpack(layerTar(['../evil', 'x']))).rejects.toBeInstanceOf(UnsafeLayerError);
    expect(fs.readdirSync(join(root, 'layers', 'staging'))).toEqual([]);
    expect(store.list()).toEqual([]);
  });

  it('stages without the lock and commits under it; a second commit of the same diffID is discarded', async () => {
    const root = tempDir('layers');
    const store = new LayerStore(root);
    const tar = layerTar(['a', '1']);
    const [s1, s2] = await Promise.all([store.stage(tar), store.stage(tar)]);
    expect(s1.diffId).toBe(s2.diffId);
    await store.commit(s1);
    await store.commit(s2);
    expect(fs.existsSync(s2.dir)).toBe(false);
    expect(store.list()).toEqual([s1.diffId]);
  });

  it('removes layers and reports missing ones', async () => {
    const root = tempDir('layers');
    const store = new LayerStore(root);
    const { diffId } = await store.unpack(layerTar(['a', '1']));
    expect(await store.remove(diffId)).toBe(true);
    expect(await store.remove(diffId)).toBe(false);
    expect(store.has(diffId)).toBe(false);
    expect(fs.existsSync(store.fsDir(diffId))).toBe(false);
    await expect(drain(store.openTar(diffId))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('lets two processes unpack the same layer at once: both succeed, one directory', async () => {
    const root = tempDir('layers');
    const files: Array<[string, string]> = Array.from({ length: 300 }, (_, i) => [
      `d${i % 7}/f${i}`,
      `content ${i}`.repeat(50),
    ]);
    const tar = layerTar(...files);
    fs.writeFileSync(join(root, 'layer.tar'), tar);
    const script = join(root, 'unpack.mts');
    fs.writeFileSync(
      script,
      `import { createReadStream } from 'node:fs';
import { LayerStore } from '${join(REPO, 'src/image/layer-store.ts')}';
const [root, tar] = process.argv.slice(2);
const store = new LayerStore(root);
let last;
for (let i = 0; i < 3; i++) last = await store.unpack(createReadStream(tar));
console.log(last.diffId);`,
    );
    const run = () =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', script, root, join(root, 'layer.tar')], { cwd: REPO });
    const out = await Promise.all([run(), run(), run()]);
    for (const o of out) expect(o.stdout.trim()).toBe(sha(tar));
    const store = new LayerStore(root);
    expect(store.list()).toEqual([sha(tar)]);
    expect(fs.readdirSync(join(root, 'layers', 'staging'))).toEqual([]);
    expect(fs.readFileSync(join(store.fsDir(sha(tar)), 'd3/f10'), 'utf8')).toBe('content 10'.repeat(50));
    expect((await drain(store.openTar(sha(tar)))).equals(tar)).toBe(true);
  }, 60_000);
});
