/**
 * Local images through the public API on a real engine root: importing the busybox rootfs,
 * inspect, list, tag, remove, events, and two processes importing into one root at once.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Engine, Image, InvalidArgumentError, NotFoundError } from '../../src/index.js';
import { busyboxImage } from '../helpers/busybox.js';
import { tempDir } from '../helpers/tmp.js';

const REPO = resolve(import.meta.dirname, '../..');

function engineOn(root: string): Engine {
  return new Engine({ root, runRoot: join(root, 'run') });
}

describe('Image (busybox rootfs)', () => {
  it('imports, inspects, lists, tags and removes', async () => {
    const { tar } = await busyboxImage();
    const root = tempDir('image');
    const engine = engineOn(root);
    try {
      const img = await Image.import(tar, {
        ref: 'test/busybox',
        changes: ['CMD ["sh"]', 'LABEL suite=image'],
        engine,
      });
      expect(img.ref).toBe('test/busybox');
      expect(img.name).toBe('docker.io/test/busybox:latest');
      const info = await img.inspect();
      expect(info.id).toMatch(/^sha256:[a-f0-9]{64}$/);
      expect(info.repoTags).toEqual(['test/busybox:latest']);
      expect(info.os).toBe('linux');
      expect(info.config.cmd).toEqual(['sh']);
      expect(info.layers).toHaveLength(1);
      expect(info.size).toBeGreaterThan(500_000);

      const run = await engine.images.resolveForRun('test/busybox');
      const busybox = fs.lstatSync(join(engine.images.layers.fsDir(run.layers[0] as string), 'bin/busybox'));
      expect(busybox.isFile()).toBe(true);
      expect(busybox.mode & 0o111).not.toBe(0);

      const tagged = await img.tag('localhost:5000/tools/bb:1.0');
      expect(tagged.ref).toBe('localhost:5000/tools/bb:1.0');
      expect((await tagged.inspect()).repoTags).toEqual(['localhost:5000/tools/bb:1.0', 'test/busybox:latest']);
      expect((await Image.list({ engine, reference: 'localhost:5000/*/*' })).map((i) => i.id)).toEqual([info.id]);
      expect((await Image.list({ engine, label: 'suite=image' })).map((i) => i.id)).toEqual([info.id]);

      expect(await new Image('test/busybox', { engine }).remove()).toEqual([{ untagged: 'test/busybox:latest' }]);
      expect(await new Image(info.id.slice(7, 19), { engine }).exists()).toBe(true);
      expect(await tagged.remove()).toEqual([{ untagged: 'localhost:5000/tools/bb:1.0' }, { deleted: info.id }]);
      expect(await img.exists()).toBe(false);
      await expect(img.inspect()).rejects.toBeInstanceOf(NotFoundError);
      expect(fs.readdirSync(join(root, 'layers', 'sha256'))).toEqual([]);

      const events = (await engine.eventLog.read({ type: 'image' })).map((e) => `${e.action} ${e.attributes.name}`);
      expect(events).toEqual([
        'import test/busybox:latest',
        'tag test/busybox:latest',
        'tag localhost:5000/tools/bb:1.0',
        'untag test/busybox:latest',
        'untag localhost:5000/tools/bb:1.0',
        `delete ${info.id}`,
      ]);
    } finally {
      engine.close();
    }
  });

  it('rejects bad input before touching the root', async () => {
    const root = join(tempDir('image'), 'state');
    const engine = engineOn(root);
    try {
      const handle = new Image('busybox', { engine });
      expect(handle.name).toBe('docker.io/library/busybox:latest');
      expect(() => new Image('Not/Valid', { engine })).toThrow(InvalidArgumentError);
      await expect(Image.import('/nonexistent', { ref: 'BAD', engine })).rejects.toMatchObject({ field: 'ref' });
      await expect(Image.import('/nonexistent', { changes: ['RUN x'], engine })).rejects.toMatchObject({
        field: 'changes',
      });
      await expect(Image.import('/nonexistent', { refs: 'x', engine } as never)).rejects.toMatchObject({
        field: 'refs',
      });
      await expect(Image.import(42 as never, { engine })).rejects.toMatchObject({ field: 'source' });
      await expect(Image.list({ engine, dangling: 'yes' } as never)).rejects.toMatchObject({ field: 'dangling' });
      await expect(handle.remove({ force: 1 } as never)).rejects.toMatchObject({ field: 'force' });
      expect(fs.existsSync(root)).toBe(false);
    } finally {
      engine.close();
    }
  });

  it('stays consistent when two processes import into one root at once', async () => {
    const { tar } = await busyboxImage();
    const root = tempDir('image');
    const script = join(root, 'import.mts');
    fs.writeFileSync(
      script,
      `import { Engine, Image } from '${join(REPO, 'src/index.ts')}';
const [root, tar, name] = process.argv.slice(2);
const engine = new Engine({ root, runRoot: root + '/run' });
for (let i = 0; i < 4; i++) {
  // Each import's own message: two identical configs made in the same millisecond would be one image.
  await Image.import(tar, { ref: 'shared:latest', message: name + ' shared ' + i, engine });
  await Image.import(tar, { ref: name + ':' + i, changes: ['ENV N=' + i], message: name + ' ' + i, engine });
}
engine.close();
console.log('done');`,
    );
    const run = (name: string) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', script, root, tar, name], { cwd: REPO });
    const out = await Promise.all([run('p1'), run('p2')]);
    expect(out.map((o) => o.stdout.trim())).toEqual(['done', 'done']);

    const engine = engineOn(root);
    try {
      const images = await Image.list({ engine });
      expect(images).toHaveLength(16);
      const tags = images.flatMap((i) => i.repoTags).sort();
      expect(tags).toEqual(['p1:0', 'p1:1', 'p1:2', 'p1:3', 'p2:0', 'p2:1', 'p2:2', 'p2:3', 'shared:latest']);
      const layers = fs.readdirSync(join(root, 'layers', 'sha256'));
      expect(layers).toHaveLength(1);
      expect(fs.readdirSync(join(root, 'layers', 'staging'))).toEqual([]);
      for (const i of images) {
        const r = await engine.images.resolveForRun(i.id);
        expect(fs.existsSync(join(engine.images.layers.fsDir(r.layers[0] as string), 'bin/busybox'))).toBe(true);
      }
      // Deleting every image leaves an empty store.
      for (const i of images) await new Image(i.id, { engine }).remove({ force: true });
      expect(await Image.list({ engine })).toEqual([]);
      expect(fs.readdirSync(join(root, 'layers', 'sha256'))).toEqual([]);
      expect(await engine.images.blobs.list()).toEqual([]);
      const actions = (await engine.eventLog.read({ type: 'image' })).map((e) => e.action);
      expect(actions.filter((a) => a === 'import')).toHaveLength(16);
      expect(actions.filter((a) => a === 'delete')).toHaveLength(16);
    } finally {
      engine.close();
    }
  }, 120_000);
});
