/**
 * `copyTo` of plain files without a container: each file is extracted into the deepest directory
 * above it that exists (the copy resolves it inside the root), named from there; contents are
 * root-owned 0644 files (names as the archive's binary strings); bad keys and missing host sources are refused.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../src/errors.js';
import { containerFilesSchema, planFiles, writeFiles, type ContainerFiles } from '../../src/container/fs/files.js';
import { readTar } from '../helpers/tar.js';
import { tempDir } from '../helpers/tmp.js';

/** Runs writeFiles against a fake copy whose root holds the directories `existing`; what each copy got. */
async function written(files: ContainerFiles, existing: string[]): Promise<Array<[dir: string, names: string[]]>> {
  const calls: Array<[string, string[]]> = [];
  await writeFiles(planFiles(files), async (dir, tar) => {
    if (!existing.includes(dir)) throw new NotFoundError('path', dir, `'${dir}' does not exist in the container`);
    calls.push([dir, [...(await readTar(tar)).keys()]]);
  });
  return calls;
}

describe('copyTo of plain files', () => {
  it.each<[string, ContainerFiles, string[], Array<[string, string[]]>]>([
    ['a file in an existing directory', { '/etc/app.conf': 'x' }, ['/', '/etc'], [['/etc', ['app.conf']]]],
    ['missing parents below the deepest existing one', { '/app/a/b/c.json': '{}' }, ['/'], [['/', ['app/a/b/c.json']]]],
    ['a partly existing path', { '/srv/www/x/i.html': '' }, ['/', '/srv'], [['/srv', ['www/x/i.html']]]],
    ['a file at the top', { '/f': 'x' }, ['/'], [['/', ['f']]]],
    [
      'several files, each on its own',
      { '/etc/a': '1', '//etc/./b': '2' },
      ['/', '/etc'],
      [
        ['/etc', ['a']],
        ['/etc', ['b']],
      ],
    ],
  ])('%s', async (_, files, existing, expected) => {
    expect(await written(files, existing)).toEqual(expected);
  });

  it('writes contents as root-owned 0644 files and a host directory as its tree', async () => {
    const host = tempDir('files-unit');
    fs.mkdirSync(join(host, 'd'));
    fs.writeFileSync(join(host, 'd', 'f'), 'F');
    const dirs: string[] = [];
    const tars: Array<Map<string, { entry: { mode: number; uid: number; type: string }; body: string }>> = [];
    await writeFiles(planFiles({ '/x/é.txt': 'É', '/y/tree': { source: join(host, 'd') } }), async (dir, tar) => {
      dirs.push(dir);
      tars.push(await readTar(tar));
    });
    // Names are binary strings in the archive: the UTF-8 bytes of the path.
    expect(tars[0]?.get(Buffer.from('é.txt').toString('latin1'))).toMatchObject({
      body: 'É',
      entry: { mode: 0o644, uid: 0, type: 'file' },
    });
    expect(dirs).toEqual(['/x', '/y']);
    expect([...(tars[1]?.keys() ?? [])]).toEqual(['tree', 'tree/f']);
    expect(tars[1]?.get('tree/f')).toMatchObject({ body: 'F', entry: { uid: 0 } });
  });

  it('a failure other than a missing directory is not retried higher up', async () => {
    const err = new NotFoundError('path', '/other');
    await expect(writeFiles(planFiles({ '/a/b': 'x' }), () => Promise.reject(err))).rejects.toBe(err);
  });

  it.each([
    [{ 'rel/p': 'x' }, 'rel/p'],
    [{ '/a/../b': 'x' }, '/a/../b'],
    [{ '/': 'x' }, '/'],
    [{ '/a': 5 }, '/a'],
  ])('refuses %j naming the key', (files, key) => {
    const r = containerFilesSchema.safeParse(files);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual([key]);
  });

  it('refuses a missing host source before anything is written', () => {
    expect(() => planFiles({ '/a': { source: '/nonexistent/berth' } })).toThrow(
      expect.objectContaining({ code: 'NOT_FOUND', ref: '/nonexistent/berth' }),
    );
  });
});
