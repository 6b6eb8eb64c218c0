/**
 * `image.save()` → `Image.load()` → run, through the public API on real engine roots: the busybox
 * image saved in both formats is loaded into a fresh root and runs there; options are checked
 * before anything happens; prune and history on a real root.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { Container, Image, InvalidArgumentError, type LoadProgress } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';

describe('save → load → run', () => {
  for (const format of ['docker', 'oci'] as const) {
    it(`runs busybox saved as ${format} and loaded into a fresh root`, async () => {
      const { engine: source } = await testEngine();
      const original = await new Image(BUSYBOX_REF, { engine: source }).inspect();
      const file = join(tempDir('archive'), `busybox.${format}.tar`);
      await pipeline(new Image(BUSYBOX_REF, { engine: source }).save({ format }), fs.createWriteStream(file));

      const { engine } = await testEngine({ image: false });
      const op = Image.load(file, { engine });
      const progress: LoadProgress[] = [];
      for await (const p of op) progress.push(p);
      const images = await op;
      expect(images.map((i) => i.ref)).toEqual(['test/busybox:latest']);
      expect(progress.at(-1)).toMatchObject({ status: 'Loaded image', id: original.id, ref: 'test/busybox:latest' });
      const loaded = await images[0]!.inspect();
      expect(loaded.id).toBe(original.id);
      expect(loaded.repoTags).toEqual(original.repoTags);
      expect(loaded.layers).toEqual(original.layers);
      expect(loaded.size).toBe(original.size);

      const c = await Container.run(BUSYBOX_REF, ['echo', 'hi'], { engine });
      expect((await c.wait()).exitCode).toBe(0);
      expect(await c.logs()).toBe('hi\n');
      await c.remove();

      // The saved image saves again to the same bytes from the new root.
      const again = join(tempDir('archive'), 'again.tar');
      await pipeline(Image.save([BUSYBOX_REF], { engine, format }), fs.createWriteStream(again));
      expect(fs.readFileSync(again).equals(fs.readFileSync(file))).toBe(true);
    });
  }

  it('rejects bad options before any side effect, naming the field', async () => {
    const { engine, root } = await testEngine({ image: false });
    await expect(Image.load('/nonexistent.tar', { engine, platform: 'linux/../x' })).rejects.toMatchObject({
      field: 'platform',
    });
    await expect(Image.load('/nonexistent.tar', { engine, nope: 1 } as never)).rejects.toMatchObject({ field: 'nope' });
    await expect(Image.load(42 as never, { engine })).rejects.toMatchObject({ field: 'source' });
    await expect(Image.load('/nonexistent.tar', { engine })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(() => new Image('x', { engine }).save({ format: 'zip' } as never)).toThrow(InvalidArgumentError);
    expect(() => Image.save([], { engine })).toThrow(expect.objectContaining({ field: 'refs' }));
    expect(() => Image.save(['BAD'], { engine })).toThrow(expect.objectContaining({ field: 'refs.0' }));
    await expect(Image.prune({ engine, all: 'yes' } as never)).rejects.toMatchObject({ field: 'all' });
    expect(fs.existsSync(join(root, 'images', 'records'))).toBe(false);
  });

  it('prunes what no container uses and reports history', async () => {
    const { engine } = await testEngine();
    const img = new Image(BUSYBOX_REF, { engine });
    const [row] = await img.history();
    expect(row).toMatchObject({ id: (await img.inspect()).id, tags: ['test/busybox:latest'], emptyLayer: false });
    expect(row!.size).toBe((await img.inspect()).size);
    const c = await Container.create({ image: BUSYBOX_REF, command: ['true'], engine });
    expect(await Image.prune({ engine, all: true })).toEqual({ deleted: [], untagged: [], spaceReclaimed: 0 });
    await c.remove();
    const pruned = await Image.prune({ engine, all: true });
    expect(pruned.untagged).toEqual(['test/busybox:latest']);
    expect(pruned.spaceReclaimed).toBe(row!.size);
    expect(await img.exists()).toBe(false);
  });
});
