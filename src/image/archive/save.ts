/**
 * `docker save`: images as one tar stream, in the docker-archive format or as an OCI layout.
 *
 * Layers are rebuilt byte for byte from their trees and tar-splits (`LayerStore.openTar`), so
 * their digests are the diffIDs the configs list; each is written once however many images share
 * it. Nothing is buffered beyond one chunk: the archive's layout (names and sizes) is known from
 * the records before the first byte is produced. Member times are 0 and names sorted where
 * order is free, so saving the same images twice gives the same bytes.
 *
 * @module
 */
import { BerthError, NotFoundError } from '../../errors.js';
import type { BlobStore } from '../blob-store.js';
import type { OciImageConfig } from '../image-config.js';
import type { LayerInfo, LayerStore } from '../layer-store.js';
import type { ImageReference } from '../reference.js';
import { END_OF_ARCHIVE, encodeHeader } from '../tar-writer.js';
import { dockerDocuments, v1LayerIds, v1LayerJson } from './docker-archive.js';
import { ociManifest, type OciLayoutImage } from './oci-layout.js';
import type { ArchiveFormat } from './types.js';

/** What the writer needs from the image service. */
export interface SaveContext {
  /** The content store (configs). */
  blobs: BlobStore;
  /** The layer store. */
  layers: LayerStore;
}

/** One image to save, with the references to name it by in the archive. */
export interface SaveImage {
  /** The image id. */
  id: string;
  /** References to write (`RepoTags`, index annotations). Empty: saved untagged. */
  refs: ImageReference[];
}

function header(name: string, size: number): Buffer {
  return encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 0 });
}

function dir(name: string): Buffer {
  return encodeHeader({ name: `${name}/`, type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 });
}

function pad(size: number): Buffer {
  return Buffer.alloc((512 - (size % 512)) % 512);
}

function file(name: string, content: string | Buffer): Buffer {
  const body = typeof content === 'string' ? Buffer.from(content) : content;
  return Buffer.concat([header(name, body.length), body, pad(body.length)]);
}

/** A layer's archive as a member: header, the rebuilt tar (length checked), padding. */
async function* layerMember(layers: LayerStore, name: string, diffId: string, info: LayerInfo): AsyncGenerator<Buffer> {
  yield header(name, info.tarSize);
  let written = 0;
  for await (const chunk of layers.openTar(diffId)) {
    written += chunk.length;
    if (written > info.tarSize) break;
    yield chunk;
  }
  if (written !== info.tarSize)
    throw new BerthError(
      'INTERNAL',
      `layer ${diffId} rebuilt as ${written} bytes, but ${info.tarSize} were recorded; remove and re-import the image`,
    );
  yield pad(info.tarSize);
}

interface Loaded {
  img: SaveImage;
  config: Buffer;
  parsed: OciImageConfig;
  layers: Array<{ diffId: string; info: LayerInfo }>;
}

async function gather(ctx: SaveContext, images: readonly SaveImage[]): Promise<Loaded[]> {
  const out: Loaded[] = [];
  for (const img of images) {
    const config = await ctx.blobs.read(img.id);
    const parsed = JSON.parse(config.toString('utf8')) as OciImageConfig;
    const layers = parsed.rootfs.diff_ids.map((diffId) => {
      const info = ctx.layers.get(diffId);
      if (info === undefined)
        throw new NotFoundError(
          'image',
          img.id,
          `layer ${diffId} of image ${img.id} is missing from the layer store; pull or load the image again`,
        );
      return { diffId, info };
    });
    out.push({ img, config, parsed, layers });
  }
  return out;
}

/**
 * Streams the images as an archive in `format`.
 *
 * @throws NotFoundError (through the stream) when an image or one of its layers is gone.
 */
export async function* saveArchive(
  ctx: SaveContext,
  images: readonly SaveImage[],
  format: ArchiveFormat,
): AsyncGenerator<Buffer> {
  const all = await gather(ctx, images);
  if (format === 'docker') yield* dockerArchive(ctx, all);
  else yield* ociLayout(ctx, all);
  yield END_OF_ARCHIVE;
}

async function* dockerArchive(ctx: SaveContext, all: readonly Loaded[]): AsyncGenerator<Buffer> {
  const done = new Set<string>();
  for (const { layers } of all) {
    const ids = v1LayerIds(layers.map((l) => l.diffId));
    for (const [i, { diffId, info }] of layers.entries()) {
      const id = ids[i] as string;
      if (done.has(id)) continue;
      done.add(id);
      yield dir(id);
      yield file(`${id}/VERSION`, '1.0');
      yield file(`${id}/json`, v1LayerJson(id, ids[i - 1]));
      yield* layerMember(ctx.layers, `${id}/layer.tar`, diffId, info);
    }
  }
  for (const { img, config } of all) {
    const name = `${img.id.slice(7)}.json`;
    if (done.has(name)) continue;
    done.add(name);
    yield file(name, config);
  }
  const docs = dockerDocuments(
    all.map(({ img, layers }) => ({ id: img.id, refs: img.refs, diffIds: layers.map((l) => l.diffId) })),
  );
  yield file('manifest.json', docs.manifest);
  if (docs.repositories !== undefined) yield file('repositories', docs.repositories);
}

async function* ociLayout(ctx: SaveContext, all: readonly Loaded[]): AsyncGenerator<Buffer> {
  yield file('oci-layout', '{"imageLayoutVersion":"1.0.0"}');
  yield dir('blobs');
  yield dir('blobs/sha256');
  const done = new Set<string>();
  const entries: object[] = [];
  for (const { img, config, parsed, layers } of all) {
    for (const { diffId, info } of layers) {
      if (done.has(diffId)) continue;
      done.add(diffId);
      yield* layerMember(ctx.layers, `blobs/sha256/${diffId.slice(7)}`, diffId, info);
    }
    const layout: OciLayoutImage = {
      id: img.id,
      configSize: config.length,
      platform: {
        os: parsed.os,
        architecture: parsed.architecture,
        ...(parsed.variant === undefined ? {} : { variant: parsed.variant }),
      },
      refs: img.refs,
      layers: layers.map((l) => ({ diffId: l.diffId, size: l.info.tarSize })),
    };
    const { manifest, entries: named } = ociManifest(layout);
    for (const [digest, body] of [
      [img.id, config],
      [(named[0] as { digest: string }).digest, Buffer.from(manifest)],
    ] as const) {
      if (done.has(digest)) continue;
      done.add(digest);
      yield file(`blobs/sha256/${digest.slice(7)}`, body);
    }
    entries.push(...named);
  }
  yield file(
    'index.json',
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries }),
  );
}
