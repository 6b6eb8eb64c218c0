/**
 * The image service on temporary roots, with a fake engine context (events recorded, container
 * users chosen by the test).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { ImageService, type ImageEvent } from '../../src/image/service.js';
import { globToRegExp, labelsMatch } from '../../src/image/filters.js';
import { planRemoval } from '../../src/image/remove-plan.js';
import { parseReference } from '../../src/image/reference.js';
import { encodeHeader, END_OF_ARCHIVE, packDirectory } from '../../src/image/tar-writer.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function rootfsTar(files: Record<string, string> = { 'bin/sh': '#!fake', 'etc/os-release': 'ID=test\n' }): Buffer {
  const parts: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const body = Buffer.from(content);
    parts.push(
      encodeHeader({ name, type: 'file', mode: 0o755, uid: 0, gid: 0, size: body.length, mtime: 1_700_000_000 }),
    );
    parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  return Buffer.concat([...parts, END_OF_ARCHIVE]);
}

function setup(users: Record<string, string[]> = {}): {
  svc: ImageService;
  root: string;
  events: ImageEvent[];
  users: Record<string, string[]>;
} {
  const root = tempDir('images');
  const events: ImageEvent[] = [];
  const svc = new ImageService({
    root,
    eventLog: { append: (e) => void events.push(e) },
    imageUsers: async (id) => users[id] ?? [],
  });
  return { svc, root, events, users };
}

describe('ImageService.import', () => {
  it('makes a one-layer image whose id is the sha256 of its config', async () => {
    const { svc, events } = setup();
    const tar = rootfsTar();
    const info = await svc.import(tar, {
      ref: 'app:1',
      changes: ['CMD ["/bin/sh"]', 'ENV A=1', 'LABEL team=web', 'EXPOSE 80'],
    });
    const config = await svc.blobs.read(info.id);
    expect(info.id).toBe(sha(config));
    const json = JSON.parse(config.toString());
    expect(json).toMatchObject({
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [sha(tar)] },
      config: { Cmd: ['/bin/sh'] },
    });
    expect(json.architecture).toBe(process.arch === 'x64' ? 'amd64' : process.arch);
    expect(info.repoTags).toEqual(['app:1']);
    expect(info.repoDigests).toEqual([]);
    expect(info.layers).toEqual([sha(tar)]);
    expect(info.size).toBe(6 + 8);
    expect(info.config).toMatchObject({
      cmd: ['/bin/sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=1'],
      labels: { team: 'web' },
      exposedPorts: ['80/tcp'],
      entrypoint: null,
      workdir: null,
    });
    expect(info.history).toEqual([{ created: info.created, comment: 'Imported from -', emptyLayer: false }]);
    expect(events.map((e) => [e.type, e.action, e.id, e.attributes.name])).toEqual([
      ['image', 'import', info.id, 'app:1'],
      ['image', 'tag', info.id, 'app:1'],
    ]);
  });

  it('imports a directory as the tar of its content, and a gzip file by path', async () => {
    const { svc, root } = setup();
    const src = join(root, 'rootfs');
    fs.mkdirSync(join(src, 'etc'), { recursive: true });
    fs.writeFileSync(join(src, 'etc/hostname'), 'box');
    fs.symlinkSync('hostname', join(src, 'etc/link'));
    const parts: Buffer[] = [];
    for await (const c of packDirectory(src)) parts.push(c);
    const fromDir = await svc.import(src, { ref: 'dir:latest', message: 'from a dir' });
    expect(fromDir.layers).toEqual([sha(Buffer.concat(parts))]);
    expect(fromDir.comment).toBe('from a dir');
    const run = await svc.resolveForRun('dir');
    expect(fs.readFileSync(join(svc.layers.fsDir(run.layers[0] as string), 'etc/hostname'), 'utf8')).toBe('box');
    expect(fs.readlinkSync(join(svc.layers.fsDir(run.layers[0] as string), 'etc/link'))).toBe('hostname');

    fs.writeFileSync(join(root, 'rootfs.tar.gz'), gzipSync(rootfsTar()));
    const fromFile = await svc.import(join(root, 'rootfs.tar.gz'));
    expect(fromFile.layers).toEqual([sha(rootfsTar())]);
    expect(fromFile.repoTags).toEqual([]);
    expect(fromFile.history[0]?.comment).toBe(`Imported from ${join(root, 'rootfs.tar.gz')}`);
  });

  it('rejects bad options before writing anything', async () => {
    const { svc, root } = setup();
    await expect(svc.import(rootfsTar(), { ref: 'Bad:Ref' })).rejects.toThrow(
      expect.objectContaining({ field: 'ref' }),
    );
    await expect(svc.import(rootfsTar(), { ref: `a@sha256:${'a'.repeat(64)}` })).rejects.toThrow(InvalidArgumentError);
    await expect(svc.import(rootfsTar(), { changes: ['RUN rm -rf /'] })).rejects.toThrow(
      expect.objectContaining({ field: 'changes' }),
    );
    await expect(svc.import(join(root, 'missing.tar'))).rejects.toBeInstanceOf(NotFoundError);
    expect(fs.readdirSync(root)).toEqual([]);
  });

  it('moves a tag on re-import, leaving the old image dangling', async () => {
    const { svc } = setup();
    const a = await svc.import(rootfsTar(), { ref: 'app' });
    const b = await svc.import(rootfsTar({ x: 'y' }), { ref: 'app' });
    expect((await svc.inspect('app')).id).toBe(b.id);
    expect((await svc.inspect(a.id)).repoTags).toEqual([]);
    expect((await svc.list({ dangling: true })).map((i) => i.id)).toEqual([a.id]);
    expect((await svc.list({ dangling: false })).map((i) => i.id)).toEqual([b.id]);
  });
});

describe('ImageService lookups', () => {
  it('finds images by reference, id, and unique id prefix', async () => {
    const { svc } = setup();
    const { id } = await svc.import(rootfsTar(), { ref: 'localhost:5000/team/app:v1' });
    for (const ref of ['localhost:5000/team/app:v1', id, id.slice(7), id.slice(0, 19), id.slice(7, 19)]) {
      expect((await svc.inspect(ref)).id).toBe(id);
    }
    expect(await svc.exists('localhost:5000/team/app:v2')).toBe(false);
    expect(await svc.exists(id)).toBe(true);
    await expect(svc.inspect('nope')).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
    await expect(svc.inspect(`sha256:${'0'.repeat(64)}`)).rejects.toBeInstanceOf(NotFoundError);
    await expect(svc.inspect('UPPER')).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('lists newest first with reference and label filters', async () => {
    const { svc } = setup();
    const a = await svc.import(rootfsTar(), { ref: 'web/app:1.0', changes: ['LABEL tier=front team=web'] });
    const b = await svc.import(rootfsTar(), { ref: 'web/api:2.0', changes: ['LABEL tier=back team=web'] });
    const c = await svc.import(rootfsTar(), { ref: 'busybox:1.36' });
    const ids = async (o: Parameters<ImageService['list']>[0]): Promise<string[]> =>
      (await svc.list(o)).map((i) => i.id);
    expect(await ids({})).toEqual([c.id, b.id, a.id]);
    expect(await ids({ reference: 'web/*' })).toEqual([b.id, a.id]);
    expect(await ids({ reference: 'web/app:1.*' })).toEqual([a.id]);
    expect(await ids({ reference: ['busybox', 'nothing'] })).toEqual([c.id]);
    expect(await ids({ label: 'team=web' })).toEqual([b.id, a.id]);
    expect(await ids({ label: ['team', 'tier=back'] })).toEqual([b.id]);
    expect(await ids({ label: 'tier=middle' })).toEqual([]);
    const [summary] = await svc.list({ reference: 'busybox' });
    expect(summary).toMatchObject({ id: c.id, repoTags: ['busybox:1.36'], repoDigests: [], labels: {} });
  });

  it('resolves an image for run: config and layer diffIDs', async () => {
    const { svc } = setup();
    const { id, layers } = await svc.import(rootfsTar(), {
      ref: 'run:me',
      changes: ['ENTRYPOINT ["/bin/sh"]', 'WORKDIR /w', 'USER 1:2', 'STOPSIGNAL SIGINT'],
    });
    const r = await svc.resolveForRun('run:me');
    expect(r.id).toBe(id);
    expect(r.layers).toEqual(layers);
    expect(r.config).toMatchObject({
      entrypoint: ['/bin/sh'],
      workdir: '/w',
      user: '1:2',
      stopSignal: 'SIGINT',
      cmd: null,
    });
    await expect(svc.resolveForRun('missing')).rejects.toMatchObject({
      code: 'IMAGE_NOT_FOUND',
      kind: 'image',
      ref: 'missing',
    });
  });
});

describe('ImageService.tag and remove', () => {
  it('tags, untags, and deletes with the last tag, sparing shared layers', async () => {
    const { svc, events } = setup();
    const a = await svc.import(rootfsTar(), { ref: 'a:1' });
    const b = await svc.import(rootfsTar(), { ref: 'b:1', changes: ['CMD ["x"]'] });
    expect(a.layers).toEqual(b.layers);
    expect(await svc.tag('a:1', 'a:2')).toBe('a:2');
    expect((await svc.inspect('a:1')).repoTags).toEqual(['a:1', 'a:2']);
    await expect(svc.tag('a:1', `a@sha256:${'1'.repeat(64)}`)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(svc.tag('zzz', 'a:3')).rejects.toBeInstanceOf(NotFoundError);
    events.length = 0;
    expect(await svc.remove('a:2')).toEqual([{ untagged: 'a:2' }]);
    expect(await svc.exists(a.id)).toBe(true);
    expect(await svc.remove('a:1')).toEqual([{ untagged: 'a:1' }, { deleted: a.id }]);
    expect(await svc.exists(a.id)).toBe(false);
    expect(await svc.blobs.has(a.id)).toBe(false);
    expect(svc.layers.has(b.layers[0] as string)).toBe(true);
    expect(events.map((e) => e.action)).toEqual(['untag', 'untag', 'delete']);
    expect(await svc.remove(b.id)).toEqual([{ untagged: 'b:1' }, { deleted: b.id }]);
    expect(svc.layers.list()).toEqual([]);
    await expect(svc.remove('b:1')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('refuses to remove an image a container uses; force untags and keeps the data', async () => {
    const { svc, users } = setup();
    const img = await svc.import(rootfsTar(), { ref: 'used:1' });
    users[img.id] = ['c0ffee0000000000000000000000000000000000000000000000000000000000'];
    const err = await svc.remove('used:1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).code).toBe('IN_USE');
    expect((err as Error).message).toContain('c0ffee000000');
    await expect(svc.remove(img.id)).rejects.toMatchObject({ code: 'IN_USE' });
    expect(await svc.remove('used:1', { force: true })).toEqual([{ untagged: 'used:1' }]);
    const run = await svc.resolveForRun(img.id);
    expect(fs.existsSync(svc.layers.fsDir(run.layers[0] as string))).toBe(true);
    expect(await svc.remove(img.id, { force: true })).toEqual([]);
    delete users[img.id];
    expect(await svc.remove(img.id)).toEqual([{ deleted: img.id }]);
  });

  it('untags a used image by one of several tags without force', async () => {
    const { svc, users } = setup();
    const img = await svc.import(rootfsTar(), { ref: 'x:1' });
    await svc.tag('x:1', 'x:2');
    users[img.id] = ['c1'];
    expect(await svc.remove('x:1')).toEqual([{ untagged: 'x:1' }]);
  });

  it('needs force to delete by id an image tagged in several repositories', async () => {
    const { svc } = setup();
    const img = await svc.import(rootfsTar(), { ref: 'one:1' });
    await svc.tag('one:1', 'two:1');
    await expect(svc.remove(img.id)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await svc.remove(img.id, { force: true })).toEqual([
      { untagged: 'one:1' },
      { untagged: 'two:1' },
      { deleted: img.id },
    ]);
  });
});

describe('planRemoval', () => {
  const id = `sha256:${'a'.repeat(64)}`;
  const other = `sha256:${'b'.repeat(64)}`;
  const key = (r: string): string => parseReference(r, { defaultTag: false }).toString();
  const digestRef = `docker.io/library/app@sha256:${'c'.repeat(64)}`;
  it.each([
    [
      'by tag, other tags remain',
      'app:1',
      { [key('app:1')]: id, [key('app:2')]: id },
      [],
      false,
      { untag: [key('app:1')], deleteImage: false },
    ],
    [
      'by tag, last one',
      'app:1',
      { [key('app:1')]: id, [key('z:1')]: other },
      [],
      false,
      { untag: [key('app:1')], deleteImage: true },
    ],
    [
      'by tag, only digests of the repo remain',
      'app:1',
      { [key('app:1')]: id, [digestRef]: id },
      [],
      false,
      { untag: [key('app:1'), digestRef], deleteImage: true },
    ],
    [
      'by tag, in use, forced',
      'app:1',
      { [key('app:1')]: id },
      ['c'],
      true,
      { untag: [key('app:1')], deleteImage: false },
    ],
    ['by id, one tag', undefined, { [key('app:1')]: id }, [], false, { untag: [key('app:1')], deleteImage: true }],
    [
      'by id, tag and digest of one repo',
      undefined,
      { [key('app:1')]: id, [digestRef]: id },
      [],
      false,
      { untag: [key('app:1'), digestRef], deleteImage: true },
    ],
    [
      'by id, in use, forced',
      undefined,
      { [key('app:1')]: id },
      ['c'],
      true,
      { untag: [key('app:1')], deleteImage: false },
    ],
  ] as const)('%s', (_, named, refs, users, force, expected) => {
    const plan = planRemoval({
      id,
      input: named ?? id,
      named: named ? parseReference(named) : undefined,
      refs,
      users,
      force,
    });
    expect(plan).toEqual(expected);
  });

  it.each([
    ['by tag, last one, in use', 'app:1', { [key('app:1')]: id }, ['c'], 'IN_USE'],
    ['by id, in use', undefined, {}, ['c'], 'IN_USE'],
    ['by id, two repositories', undefined, { [key('a:1')]: id, [key('b:1')]: id }, [], 'CONFLICT'],
  ] as const)('refuses %s', (_, named, refs, users, code) => {
    expect(() =>
      planRemoval({ id, input: id, named: named ? parseReference(named) : undefined, refs, users, force: false }),
    ).toThrow(expect.objectContaining({ code }));
  });
});

describe('filters', () => {
  it.each([
    ['busybox', 'busybox', true],
    ['busy*', 'busybox', true],
    ['*', 'user/app', false],
    ['*/*', 'user/app', true],
    ['app:1.?', 'app:1.2', true],
    ['app:[0-9]*', 'app:2x', true],
    ['app:[^0-9]*', 'app:2x', false],
    ['a.b', 'axb', false],
    ['\\*', '*', true],
  ])('glob %s on %s: %s', (glob, text, ok) => {
    expect(globToRegExp(glob).test(text)).toBe(ok);
  });

  it('matches labels', () => {
    expect(labelsMatch(['a', 'b=2'], { a: '', b: '2' })).toBe(true);
    expect(labelsMatch(['b=3'], { b: '2' })).toBe(false);
    expect(labelsMatch(['c'], { a: '1' })).toBe(false);
    expect(labelsMatch(['x=a=b'], { x: 'a=b' })).toBe(true);
  });
});
