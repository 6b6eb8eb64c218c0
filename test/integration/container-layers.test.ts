/**
 * A container's image layers as its record holds them (diffIDs, resolved to the layer store's
 * directories where they are used), on the real kernel: a record of an older version (absolute
 * `layerDirs`) still starts, and a container made from an already-resolved image (the image
 * builder's path, no image record needed) runs and yields its layer tar.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Container } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine } from '../helpers/engine.js';
import { readTar } from '../helpers/tar.js';

describe('container layers stored as diffIDs', () => {
  it('starts a container whose record an older version wrote (layerDirs), and saves it with layers', async () => {
    const { engine, root } = await testEngine();
    const c = await Container.create({ image: BUSYBOX_REF, command: ['sh', '-c', 'echo old'], ...NO_NETWORK, engine });
    const rec = await engine.containers.get(c.ref);
    const file = join(root, 'containers', `${rec.id}.json`);
    const { layers, ...rest } = JSON.parse(readFileSync(file, 'utf8')) as { layers: string[] };
    const layerDirs = layers.map((d) => engine.images.layers.fsDir(d));
    writeFileSync(file, JSON.stringify({ ...rest, layerDirs }));

    await c.start();
    expect(await c.wait()).toMatchObject({ exitCode: 0 });
    expect(await c.logs()).toBe('old\n');
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(saved.layers).toEqual(layers);
    expect(saved).not.toHaveProperty('layerDirs');
    await c.remove();
  });

  it("runs a container made from the busybox image's resolved layers and takes its upper dir as a layer tar", async () => {
    const { engine } = await testEngine();
    const base = await engine.images.resolveForRun(BUSYBOX_REF);
    const resolved = { id: base.id, config: base.config, layers: base.layers };
    const svc = engine.containers;
    const rec = await svc.create(
      { image: 'build-step', command: ['sh', '-c', 'echo hi > /f && cat /f'], ...NO_NETWORK },
      resolved,
    );
    expect(rec.layers).toEqual(base.layers);
    await svc.start(rec.id);
    expect(await svc.wait(rec.id)).toMatchObject({ exitCode: 0 });
    expect(await new Container(rec.id, { engine }).logs()).toBe('hi\n');
    const tar = await readTar((await svc.layerTar(rec.id)).tar);
    expect(tar.get('f')).toMatchObject({ entry: { type: 'file' }, body: 'hi\n' });
    expect(tar.has('bin/busybox')).toBe(false);
    await svc.remove(rec.id);
    await expect(svc.get(rec.id)).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
  });
});
