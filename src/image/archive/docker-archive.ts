/**
 * The docker-archive format, as `docker save` writes it and `docker load` reads it:
 *
 * ```text
 * manifest.json          [{ "Config": "<id hex>.json", "RepoTags": ["busybox:latest"], "Layers": ["<v1 id>/layer.tar", …] }]
 * <id hex>.json          the image config
 * <v1 id>/layer.tar      each layer, uncompressed (a compressed tar is accepted on load)
 * <v1 id>/json, VERSION  legacy v1 metadata (written for old readers, ignored on load)
 * repositories           legacy: { "busybox": { "latest": "<top v1 id>" } }
 * ```
 *
 * Docker 25+ writes the same `manifest.json` inside an OCI layout (`Layers` then name
 * `blobs/sha256/<hex>`); that reads here too, with the digests in the names checked.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { InvalidArgumentError } from '../../errors.js';
import type { ImageReference } from '../reference.js';
import type { ArchiveReader } from './archive-index.js';
import { archiveReference, digestInName, parseDocument, readVerified, type PlannedImage } from './plan.js';

const manifestSchema = z
  .array(
    z.looseObject({
      Config: z.string().min(1),
      RepoTags: z.array(z.string()).nullable().optional(),
      Layers: z.array(z.string().min(1)),
    }),
  )
  .min(1);

/** Whether the archive is a docker-archive (it has `manifest.json`). */
export function isDockerArchive(index: ArchiveReader): boolean {
  return index.has('manifest.json');
}

/**
 * Reads the images of a docker-archive and checks the config digests its names encode.
 *
 * @throws InvalidArgumentError (field `archive`); UnsafeLayerError for paths outside the archive.
 */
export async function readDockerArchive(index: ArchiveReader): Promise<PlannedImage[]> {
  const { bytes } = await readVerified(index, index.resolve('manifest.json'), undefined);
  const manifest = parseDocument(bytes, manifestSchema, 'manifest.json');
  const out: PlannedImage[] = [];
  for (const [i, item] of manifest.entries()) {
    const configFile = index.resolve(item.Config);
    const { bytes: config, digest: id } = await readVerified(
      index,
      configFile,
      digestInName(configFile.name),
      64 << 20,
    );
    const refs = (item.RepoTags ?? []).map((t) => archiveReference(t, `manifest.json entry ${i}`));
    const layers = item.Layers.map((l) => {
      const file = index.resolve(l);
      const blobDigest = /^blobs\/sha256\/[a-f0-9]{64}$/.test(file.name) ? digestInName(file.name) : undefined;
      return blobDigest === undefined ? { file } : { file, blobDigest };
    });
    out.push({ id, config, refs, layers });
  }
  return out;
}

/** One image as the docker-archive writer lays it out. */
export interface DockerArchiveImage {
  /** The image id. */
  id: string;
  /** References to list in `RepoTags`. */
  refs: ImageReference[];
  /** The layers' diffIDs, bottom first. */
  diffIds: string[];
}

const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * The legacy v1 ids `docker save` names layer directories with: one per layer position, chained
 * through the parent's id and the chain id of the layers below, so that images sharing a base
 * share its directories.
 */
export function v1LayerIds(diffIds: readonly string[]): string[] {
  const ids: string[] = [];
  let chain = '';
  let parent = '';
  for (const d of diffIds) {
    chain = chain === '' ? d : `sha256:${sha256Hex(`${chain} ${d}`)}`;
    parent = sha256Hex(JSON.stringify({ layer_id: chain, parent }));
    ids.push(parent);
  }
  return ids;
}

/** The `json` file of a legacy layer directory. */
export function v1LayerJson(id: string, parent: string | undefined): string {
  return JSON.stringify({
    id,
    ...(parent === undefined ? {} : { parent }),
    created: '1970-01-01T00:00:00Z',
    container_config: {},
    os: 'linux',
  });
}

/** `manifest.json` and `repositories` for the images of a save. */
export function dockerDocuments(images: readonly DockerArchiveImage[]): {
  manifest: string;
  repositories: string | undefined;
} {
  const manifest = images.map((img) => {
    const ids = v1LayerIds(img.diffIds);
    return {
      Config: `${img.id.slice(7)}.json`,
      RepoTags: img.refs.length === 0 ? null : img.refs.map((r) => r.familiar),
      Layers: ids.map((v) => `${v}/layer.tar`),
    };
  });
  const repos: Record<string, Record<string, string>> = {};
  for (const img of images) {
    const top = v1LayerIds(img.diffIds).at(-1);
    if (top === undefined) continue;
    for (const r of img.refs) {
      if (r.tag === undefined) throw new InvalidArgumentError('ref', `'${r.familiar}' has no tag`);
      (repos[r.familiarName] ??= {})[r.tag] = top;
    }
  }
  return {
    manifest: JSON.stringify(manifest),
    repositories: Object.keys(repos).length === 0 ? undefined : `${JSON.stringify(repos)}\n`,
  };
}
