/**
 * `save` and `load` on temporary roots: round trips in both formats, multi-platform OCI indexes
 * made by hand, gzip layers, and hostile archives (each must be refused with a typed error and
 * leave the store as it was). Also `prune` and `history`.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError, UnsafeLayerError } from '../../src/errors.js';
import { parsePlatform, platformMatches, hostPlatform, formatPlatform } from '../../src/image/archive/platform.js';
import type { LoadProgress } from '../../src/image/archive/types.js';
import { ImageService, type ImageEvent } from '../../src/image/service.js';
import { encodeHeader, END_OF_ARCHIVE } from '../../src/image/tar-writer.js';
import type { TarEntryType } from '../../src/image/tar-reader.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Member {
  name: string;
  body?: Buffer | string;
  type?: TarEntryType;
  linkname?: string;
}

/** A tar made by hand, members in the order given. */
function tarOf(members: Member[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const body = m.body === undefined ? Buffer.alloc(0) : Buffer.from(m.body);
    const type = m.type ?? 'file';
    parts.push(
      encodeHeader({
        name: m.name,
        type,
        mode: type === 'directory' ? 0o755 : 0o644,
        uid: 0,
        gid: 0,
        size: body.length,
        mtime: 1_700_000_000,
        linkname: m.linkname ?? '',
      }),
    );
    if (type === 'file') parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  return Buffer.concat([...parts, END_OF_ARCHIVE]);
}

function setup(users: Record<string, string[]> = {}): { svc: ImageService; root: string; events: ImageEvent[] } {
  const root = tempDir('archive');
  const events: ImageEvent[] = [];
  const svc = new ImageService({
    root,
    eventLog: { append: (e) => void events.push(e) },
    imageUsers: async (id) => users[id] ?? [],
  });
  return { svc, root, events };
}

/** What a store holds, to compare before and after a refused load. */
function storeState(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (
        p.includes(`${join(root, 'layers', 'sha256')}/`) &&
        p.split('/').length > join(root, 'layers', 'sha256').split('/').length + 1
      )
        continue;
      if (e.name === 'lock') continue;
      out.push(p.slice(root.length));
      if (e.isDirectory()) walk(p);
    }
  };
  if (fs.existsSync(root)) walk(root);
  return out.sort();
}

const layerA = tarOf([
  { name: 'bin/', type: 'directory' },
  { name: 'bin/tool', body: '#!/bin/sh\necho a\n' },
]);
const layerB = tarOf([
  { name: 'etc/', type: 'directory' },
  { name: 'etc/motd', body: 'hello from b\n' },
]);

function configFor(
  layers: Buffer[],
  platform: { architecture: string; os?: string; variant?: string } = hostPlatform(),
): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      ...(platform.variant ? { variant: platform.variant } : {}),
      os: platform.os ?? 'linux',
      created: '2024-01-02T03:04:05Z',
      config: { Cmd: ['/bin/tool'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => sha(l)) },
      history: [
        { created: '2024-01-02T03:04:05Z', created_by: 'ADD a /' },
        { created: '2024-01-02T03:04:05Z', created_by: 'ENV X=1', empty_layer: true },
        ...layers.slice(1).map(() => ({ created: '2024-01-02T03:04:06Z', created_by: 'ADD b /', comment: 'second' })),
      ],
    }),
  );
}

/** An OCI layout: blobs for the given documents and layers, and index.json. */
function ociLayout(index: object, blobs: Buffer[], extra: Member[] = []): Buffer {
  const seen = new Set<string>();
  const members: Member[] = [{ name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' }];
  for (const b of blobs) {
    const d = sha(b);
    if (seen.has(d)) continue;
    seen.add(d);
    members.push({ name: `blobs/sha256/${d.slice(7)}`, body: b });
  }
  return tarOf([...members, ...extra, { name: 'index.json', body: JSON.stringify(index) }]);
}

function manifestFor(config: Buffer, layers: Array<{ blob: Buffer; mediaType?: string }>): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: layers.map((l) => ({
        mediaType: l.mediaType ?? 'application/vnd.oci.image.layer.v1.tar',
        digest: sha(l.blob),
        size: l.blob.length,
      })),
    }),
  );
}

const desc = (b: Buffer, extra: object = {}): object => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: sha(b),
  size: b.length,
  ...extra,
});

async function importTwoLayers(svc: ImageService): Promise<string> {
  // Import makes one-layer images; a two-layer image comes in through a hand-made docker-archive.
  const config = configFor([layerA, layerB]);
  const archive = tarOf([
    { name: 'a/layer.tar', body: layerA },
    { name: 'b/layer.tar', body: layerB },
    { name: `${sha(config).slice(7)}.json`, body: config },
    {
      name: 'manifest.json',
      body: JSON.stringify([
        { Config: `${sha(config).slice(7)}.json`, RepoTags: ['app:1'], Layers: ['a/layer.tar', 'b/layer.tar'] },
      ]),
    },
  ]);
  const [loaded] = await svc.load(archive);
  return loaded!.id;
}

describe('save and load', () => {
  for (const format of ['docker', 'oci'] as const) {
    it(`round-trips images through the ${format} format`, async () => {
      const a = setup();
      const id = await importTwoLayers(a.svc);
      const single = await a.svc.import(layerB, { ref: 'localhost:5000/team/single:2.0' });
      const before = await a.svc.inspect('app:1');
      const bytes = await buffer(a.svc.save(['app:1', 'localhost:5000/team/single:2.0', 'app:1'], { format }));
      expect(await buffer(a.svc.save(['app:1', 'localhost:5000/team/single:2.0'], { format }))).toEqual(bytes); // deterministic

      const b = setup();
      const file = join(tempDir('archive-file'), 'images.tar');
      fs.writeFileSync(file, bytes);
      const events: LoadProgress[] = [];
      const loaded = await b.svc.load(file, {}, (p) => events.push(p));
      expect(loaded).toEqual([
        { id, refs: ['app:1'], format },
        { id: single.id, refs: ['localhost:5000/team/single:2.0'], format },
      ]);
      const after = await b.svc.inspect('app:1');
      expect(after).toEqual(before);
      expect((await b.svc.inspect('localhost:5000/team/single:2.0')).layers).toEqual([sha(layerB)]);
      expect(fs.readFileSync(join(b.svc.layers.fsDir(sha(layerB)), 'etc/motd'), 'utf8')).toBe('hello from b\n');
      // The shared layer was written once and unpacked once.
      expect(
        events
          .filter((e) => e.status === 'Loaded layer')
          .map((e) => e.id)
          .sort(),
      ).toEqual([sha(layerA), sha(layerB)].sort());
      expect(b.events.map((e) => `${e.action} ${e.attributes.name}`)).toEqual([
        'load app:1',
        'tag app:1',
        'load localhost:5000/team/single:2.0',
        'tag localhost:5000/team/single:2.0',
      ]);

      // A stream loads too, and layers already present are not read again.
      const c = setup();
      await c.svc.import(layerA);
      const events2: LoadProgress[] = [];
      await c.svc.load(Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), {}, (p) => events2.push(p));
      expect(events2.find((e) => e.status === 'Already exists')?.id).toBe(sha(layerA));
      expect((await c.svc.inspect(id)).repoTags).toEqual(['app:1']);
      expect(fs.readdirSync(join(c.root, 'layers', 'staging'))).toEqual([]);
    });
  }

  it('follows symlinked layers inside the archive, as docker save writes shared layers', async () => {
    const config = configFor([layerA, layerA]);
    const name = `${sha(config).slice(7)}.json`;
    const archive = tarOf([
      { name: 'a/', type: 'directory' },
      { name: 'a/layer.tar', body: layerA },
      { name: 'b/', type: 'directory' },
      { name: 'b/layer.tar', type: 'symlink', linkname: '../a/layer.tar' },
      { name: 'c', type: 'symlink', linkname: 'a' },
      { name, body: config },
      {
        name: './manifest.json',
        body: JSON.stringify([{ Config: name, RepoTags: null, Layers: ['b/layer.tar', 'c/layer.tar'] }]),
      },
    ]);
    const { svc } = setup();
    expect(await svc.load(archive)).toEqual([{ id: sha(config), refs: [], format: 'docker' }]);
    expect((await svc.inspect(sha(config))).layers).toEqual([sha(layerA), sha(layerA)]);
  });

  it('stops when aborted, leaving nothing', async () => {
    const { svc, root } = setup();
    const id = await importTwoLayers(svc);
    const bytes = await buffer(svc.save([id]));
    const b = setup();
    const ac = new AbortController();
    const loading = b.svc.load(bytes, { signal: ac.signal }, (p) => {
      if (p.status === 'Loading layer') ac.abort();
    });
    await expect(loading).rejects.toMatchObject({ name: 'AbortError' });
    expect(fs.readdirSync(join(b.root, 'layers', 'staging'))).toEqual([]);
    expect(fs.existsSync(join(b.root, 'images', 'records'))).toBe(false);
    expect(root).not.toBe(b.root);
  });

  it('loads an image layout directory, and refuses one whose links leave it', async () => {
    const { svc } = setup();
    const id = await importTwoLayers(svc);
    for (const format of ['oci', 'docker'] as const) {
      const dir = tempDir('archive-dir');
      fs.writeFileSync(join(dir, 'x.tar'), await buffer(svc.save(['app:1'], { format })));
      const layout = join(dir, 'layout');
      fs.mkdirSync(layout);
      (await import('node:child_process')).execFileSync('tar', ['-xf', join(dir, 'x.tar'), '-C', layout]);
      const b = setup();
      expect(await b.svc.load(layout)).toEqual([{ id, refs: ['app:1'], format }]);
      if (format === 'docker') continue;
      // index.json through a symlink that stays inside is fine; one that leaves is refused.
      fs.renameSync(join(layout, 'index.json'), join(layout, 'real-index.json'));
      fs.symlinkSync('blobs/../real-index.json', join(layout, 'index.json'));
      expect(await setup().svc.load(layout)).toEqual([{ id, refs: ['app:1'], format }]);
      fs.rmSync(join(layout, 'index.json'));
      fs.symlinkSync('../outside.json', join(layout, 'index.json'));
      fs.writeFileSync(join(dir, 'outside.json'), fs.readFileSync(join(layout, 'real-index.json')));
      await expect(setup().svc.load(layout)).rejects.toBeInstanceOf(UnsafeLayerError);
      fs.rmSync(join(layout, 'index.json'));
      fs.symlinkSync(join(layout, 'real-index.json'), join(layout, 'index.json'));
      await expect(setup().svc.load(layout)).rejects.toBeInstanceOf(UnsafeLayerError);
      fs.rmSync(join(layout, 'index.json'));
      fs.renameSync(join(layout, 'real-index.json'), join(layout, 'index.json'));
      fs.rmSync(join(layout, 'blobs'), { recursive: true });
      fs.symlinkSync('/', join(layout, 'blobs'));
      await expect(setup().svc.load(layout)).rejects.toBeInstanceOf(UnsafeLayerError);
    }
  });

  it('writes the docker-archive layout docker load expects', async () => {
    const { svc } = setup();
    const id = await importTwoLayers(svc);
    const dir = tempDir('archive-x');
    fs.writeFileSync(join(dir, 'a.tar'), await buffer(svc.save(['app:1'])));
    const names = (await import('node:child_process'))
      .execFileSync('tar', ['-tf', join(dir, 'a.tar')])
      .toString()
      .trim()
      .split('\n');
    expect(names).toContain('manifest.json');
    expect(names).toContain('repositories');
    expect(names).toContain(`${id.slice(7)}.json`);
    expect(names.filter((n) => n.endsWith('/layer.tar'))).toHaveLength(2);
    (await import('node:child_process')).execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', dir]);
    const manifest = JSON.parse(fs.readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(manifest).toEqual([{ Config: `${id.slice(7)}.json`, RepoTags: ['app:1'], Layers: expect.any(Array) }]);
    expect(sha(fs.readFileSync(join(dir, manifest[0].Layers[1])))).toBe(sha(layerB));
    const repos = JSON.parse(fs.readFileSync(join(dir, 'repositories'), 'utf8'));
    expect(repos).toEqual({ app: { '1': manifest[0].Layers[1].split('/')[0] } });
  });

  it('saves an image named by id untagged, and fails the stream for a missing image', async () => {
    const { svc } = setup();
    const id = await importTwoLayers(svc);
    const b = setup();
    const file = join(tempDir('archive-file'), 'x.tar');
    fs.writeFileSync(file, await buffer(svc.save([id.slice(7, 19)], { format: 'oci' })));
    expect(await b.svc.load(file)).toEqual([{ id, refs: [], format: 'oci' }]);
    await expect(buffer(svc.save(['nope:1']))).rejects.toBeInstanceOf(NotFoundError);
  });

  it("takes this machine's image from a multi-platform index, nested or flat, and says so", async () => {
    const host = hostPlatform();
    const other = host.architecture === 's390x' ? { architecture: 'riscv64' } : { architecture: 's390x' };
    const hostConfig = configFor([layerA]);
    const hostManifest = manifestFor(hostConfig, [{ blob: layerA }]);
    const tiny = tarOf([{ name: 'x', body: 'other platform' }]);
    const otherConfig = configFor([tiny], other);
    const otherManifest = manifestFor(otherConfig, [{ blob: tiny }]);
    const platform = (p: { architecture: string; variant?: string }): object => ({ platform: { os: 'linux', ...p } });
    const nested = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [desc(otherManifest, platform(other)), desc(hostManifest, platform(host))],
      }),
    );
    const named = {
      annotations: {
        'io.containerd.image.name': 'docker.io/library/multi:1',
        'org.opencontainers.image.ref.name': '1',
      },
    };
    const layouts = {
      nested: ociLayout(
        {
          schemaVersion: 2,
          manifests: [{ ...desc(nested), mediaType: 'application/vnd.oci.image.index.v1+json', ...named }],
        },
        [nested, hostManifest, hostConfig, layerA, otherManifest, otherConfig, tiny],
      ),
      flat: ociLayout(
        {
          schemaVersion: 2,
          manifests: [
            desc(otherManifest, { ...platform(other), ...named }),
            desc(hostManifest, { ...platform(host), ...named }),
          ],
        },
        [hostManifest, hostConfig, layerA, otherManifest, otherConfig, tiny],
      ),
    };
    for (const [kind, bytes] of Object.entries(layouts)) {
      const { svc } = setup();
      const events: LoadProgress[] = [];
      const loaded = await svc.load(bytes, {}, (p) => events.push(p));
      expect(loaded, kind).toEqual([
        { id: sha(hostConfig), refs: ['multi:1'], format: 'oci', platform: formatPlatform(host) },
      ]);
      const chosen = events.find((e) => e.status === 'Selected platform');
      expect(chosen, kind).toMatchObject({
        id: sha(hostManifest),
        platform: formatPlatform(host),
        available: [formatPlatform({ os: 'linux', ...other }), formatPlatform(host)],
      });
      expect(svc.layers.has(sha(tiny))).toBe(false);

      const { svc: svc2 } = setup();
      const [o] = await svc2.load(bytes, { platform: parsePlatform(`linux/${other.architecture}`) });
      expect(o?.id).toBe(sha(otherConfig));
      const { svc: svc3, root } = setup();
      await expect(svc3.load(bytes, { platform: parsePlatform('linux/mips64le') })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'platform',
      });
      expect(storeState(root).filter((p) => p !== '/layers' && p !== '/layers/staging')).toEqual([]);
    }
  });

  it('loads gzip and zstd-typed OCI layers, checking the blob digest of the compressed bytes', async () => {
    const gz = gzipSync(layerB);
    const config = configFor([layerA, layerB]);
    const manifest = manifestFor(config, [
      { blob: layerA },
      { blob: gz, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
    ]);
    const bytes = ociLayout(
      {
        schemaVersion: 2,
        manifests: [desc(manifest, { annotations: { 'org.opencontainers.image.ref.name': 'localhost:5000/gz:1' } })],
      },
      [manifest, config, layerA, gz],
    );
    const { svc } = setup();
    expect(await svc.load(bytes)).toEqual([{ id: sha(config), refs: ['localhost:5000/gz:1'], format: 'oci' }]);
    expect(fs.readFileSync(join(svc.layers.fsDir(sha(layerB)), 'etc/motd'), 'utf8')).toBe('hello from b\n');
    // A bare tag as ref.name (skopeo's) names no repository: the image loads untagged.
    const bare = ociLayout(
      {
        schemaVersion: 2,
        manifests: [desc(manifest, { annotations: { 'org.opencontainers.image.ref.name': 'latest' } })],
      },
      [manifest, config, layerA, gz],
    );
    expect((await setup().svc.load(bare))[0]?.refs).toEqual([]);
  });

  it('reports history newest first with layer sizes, and prunes dangling or unused images', async () => {
    const users: Record<string, string[]> = {};
    const { svc } = setup(users);
    const id = await importTwoLayers(svc);
    const history = await svc.history('app:1');
    expect(history.map((h) => [h.id, h.createdBy, h.emptyLayer, h.size, h.tags])).toEqual([
      [id, 'ADD b /', false, 13, ['app:1']],
      [null, 'ENV X=1', true, 0, []],
      [null, 'ADD a /', false, 17, []],
    ]);
    expect(history[0]?.comment).toBe('second');

    const dangling = await svc.import(tarOf([{ name: 'd', body: '12345' }]));
    const used = await svc.import(tarOf([{ name: 'u', body: '1234567' }]));
    users[used.id] = ['c1'];
    expect(await svc.prune()).toEqual({ deleted: [dangling.id], untagged: [], spaceReclaimed: 5 });
    const shared = await svc.import(layerA, { ref: 'shares-a:1' });
    const all = await svc.prune({ all: true });
    expect(all.deleted.sort()).toEqual([id, shared.id].sort());
    expect(all.untagged.sort()).toEqual(['app:1', 'shares-a:1']);
    expect(all.spaceReclaimed).toBe(17 + 13);
    expect((await svc.list()).map((i) => i.id)).toEqual([used.id]);
    expect(await svc.prune({ all: true })).toEqual({ deleted: [], untagged: [], spaceReclaimed: 0 });
  });
});

describe('hostile and broken archives leave nothing behind', () => {
  const config = configFor([layerA]);
  const configName = `${sha(config).slice(7)}.json`;
  const manifest = (over: object = {}): string =>
    JSON.stringify([{ Config: configName, RepoTags: ['evil:1'], Layers: ['l/layer.tar'], ...over }]);
  const evilLayer = tarOf([{ name: '../../escape', body: 'x' }]);
  const evilConfig = configFor([evilLayer]);
  const ociManifest = manifestFor(config, [{ blob: layerA }]);
  const tampered = Buffer.from(layerA);
  tampered[600] = 0x41;
  const cases: Array<[string, Buffer, new (...a: never[]) => Error, string]> = [
    [
      'a member named above the root',
      tarOf([{ name: '../manifest.json', body: manifest() }]),
      UnsafeLayerError,
      'UNSAFE_LAYER',
    ],
    [
      'an absolute member name',
      tarOf([
        { name: '/etc/x', body: 'x' },
        { name: 'manifest.json', body: manifest() },
      ]),
      UnsafeLayerError,
      'UNSAFE_LAYER',
    ],
    [
      'a symlink out of the archive',
      tarOf([
        { name: 'l', type: 'symlink', linkname: '../../etc' },
        { name: 'manifest.json', body: manifest() },
      ]),
      UnsafeLayerError,
      'UNSAFE_LAYER',
    ],
    [
      'a manifest pointing outside',
      tarOf([{ name: 'manifest.json', body: manifest({ Config: '../../etc/passwd' }) }]),
      UnsafeLayerError,
      'UNSAFE_LAYER',
    ],
    [
      'a manifest pointing at an absolute path',
      tarOf([
        { name: configName, body: config },
        { name: 'manifest.json', body: manifest({ Layers: ['/etc/passwd'] }) },
      ]),
      UnsafeLayerError,
      'UNSAFE_LAYER',
    ],
    [
      'a member given twice',
      tarOf([
        { name: 'manifest.json', body: manifest() },
        { name: 'manifest.json', body: '[]' },
      ]),
      UnsafeLayerError,
      'UNSAFE_LAYER',
    ],
    [
      'a link loop',
      tarOf([
        { name: 'l', type: 'symlink', linkname: 'm' },
        { name: 'm', type: 'symlink', linkname: 'l' },
        { name: configName, body: config },
        { name: 'manifest.json', body: manifest({ Layers: ['l'] }) },
      ]),
      UnsafeLayerError,
      'UNSAFE_LAYER',
    ],
    [
      'a layer escaping its directory',
      tarOf([
        { name: 'l/layer.tar', body: evilLayer },
        { name: `${sha(evilConfig).slice(7)}.json`, body: evilConfig },
        {
          name: 'manifest.json',
          body: JSON.stringify([{ Config: `${sha(evilConfig).slice(7)}.json`, Layers: ['l/layer.tar'] }]),
        },
      ]),
      UnsafeLayerError,
      'UNSAFE_LAYER',
    ],
    [
      'a config whose name is not its digest',
      tarOf([
        { name: 'l/layer.tar', body: layerA },
        { name: configName, body: configFor([layerA], { architecture: 'arm' }) },
        { name: 'manifest.json', body: manifest() },
      ]),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    ],
    [
      "a layer that is not the config's diffID",
      tarOf([
        { name: 'l/layer.tar', body: layerB },
        { name: configName, body: config },
        { name: 'manifest.json', body: manifest() },
      ]),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    ],
    [
      'a missing layer',
      tarOf([
        { name: configName, body: config },
        { name: 'manifest.json', body: manifest() },
      ]),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    ],
    [
      "a layer count that is not the config's",
      tarOf([
        { name: 'l/layer.tar', body: layerA },
        { name: configName, body: config },
        { name: 'manifest.json', body: manifest({ Layers: ['l/layer.tar', 'l/layer.tar'] }) },
      ]),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    ],
    [
      'a malformed manifest.json',
      tarOf([{ name: 'manifest.json', body: '{"Config":' }]),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    ],
    [
      'a bad RepoTag',
      tarOf([
        { name: 'l/layer.tar', body: layerA },
        { name: configName, body: config },
        { name: 'manifest.json', body: manifest({ RepoTags: ['UPPER:case'] }) },
      ]),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    ],
    ['neither format', tarOf([{ name: 'hello', body: 'x' }]), InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['not a tar', Buffer.from('this is not an archive at all'.repeat(40)), InvalidArgumentError, 'INVALID_ARGUMENT'],
    [
      'a truncated tar',
      tarOf([{ name: 'l/layer.tar', body: layerA }]).subarray(0, 1000),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    ],
    [
      'an OCI layer blob whose bytes are not its digest',
      ociLayout(
        { schemaVersion: 2, manifests: [desc(ociManifest)] },
        [ociManifest, config],
        [{ name: `blobs/sha256/${sha(layerA).slice(7)}`, body: tampered }],
      ),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    ],
    [
      'an OCI manifest whose bytes are not its digest',
      ociLayout(
        { schemaVersion: 2, manifests: [{ ...desc(ociManifest), digest: sha('other') }] },
        [config, layerA],
        [{ name: `blobs/sha256/${sha('other').slice(7)}`, body: ociManifest }],
      ),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    ],
    [
      'an OCI descriptor with the wrong size',
      ociLayout({ schemaVersion: 2, manifests: [{ ...desc(ociManifest), size: 3 }] }, [ociManifest, config, layerA]),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    ],
    [
      'an OCI descriptor with a path in its digest',
      ociLayout({ schemaVersion: 2, manifests: [{ ...desc(ociManifest), digest: 'sha256:../../../etc/passwd' }] }, [
        ociManifest,
        config,
        layerA,
      ]),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    ],
  ];
  for (const [what, bytes, cls, code] of cases) {
    it(`refuses ${what}`, async () => {
      const { svc, root, events } = setup();
      await svc.import(layerB, { ref: 'keep:1' });
      const before = storeState(root);
      const err = await svc.load(bytes).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(cls);
      expect(err).toMatchObject({ code });
      expect(storeState(root)).toEqual(before);
      expect(fs.readdirSync(join(root, 'layers', 'staging'))).toEqual([]);
      expect(events.map((e) => e.action)).toEqual(['import', 'tag']);
    });
  }

  it('refuses a tampered layer in a spooled stream, removing the spool file', async () => {
    const { svc, root } = setup();
    const bytes = tarOf([
      { name: 'l/layer.tar', body: tampered },
      { name: configName, body: config },
      { name: 'manifest.json', body: manifest() },
    ]);
    await expect(svc.load(Readable.from([bytes]))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(fs.readdirSync(join(root, 'layers', 'staging'))).toEqual([]);
    expect(fs.existsSync(join(root, 'layers', 'sha256'))).toBe(false);
    expect(
      fs.existsSync(join(root, 'images', 'records')) ? fs.readdirSync(join(root, 'images', 'records')) : [],
    ).toEqual([]);
  });
});

describe('platforms', () => {
  it('parses and matches platforms as containerd does', () => {
    expect(parsePlatform('linux/arm64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm/v7')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(parsePlatform('x86_64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(() => parsePlatform('linux/../x')).toThrow(InvalidArgumentError);
    expect(
      platformMatches({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }),
    ).toBe(true);
    expect(
      platformMatches(
        { os: 'linux', architecture: 'arm', variant: 'v6' },
        { os: 'linux', architecture: 'arm', variant: 'v7' },
      ),
    ).toBe(false);
    expect(platformMatches(undefined, hostPlatform())).toBe(false);
  });
});
