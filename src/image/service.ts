/**
 * The image service: Docker's policy for local images (import, inspect, list, tag, remove, and
 * resolving an image for a container) over the blob store, the layer store and the image records.
 * See `README.md` in this folder for the storage model.
 *
 * Every change to records, references and layers happens under one lock per root
 * (`<root>/images/lock`), so processes sharing a root see one consistent store; the slow part of
 * an import (unpacking) runs before the lock is taken.
 *
 * @module
 */
import { Readable } from 'node:stream';
import { NotFoundError } from '../errors.js';
import { BlobStore } from './blob-store.js';
import { globToRegExp, labelsMatch, referenceMatches, toList } from './filters.js';
import { runSettings, type OciImageConfig } from './image-config.js';
import { commitImage, importImage, storeBuiltImage, type NewImageContext } from './new-image.js';
import { ImageRecords, type ImageRecord } from './image-records.js';
import type { LayerSource } from './layer-unpack.js';
import { LayerStore, type StagedLayer } from './layer-store.js';
import { BuildCache } from './build/cache.js';
import { parseReference, type ImageReference } from './reference.js';
import { planRemoval } from './remove-plan.js';
import { deleteImage, pruneImages, type PruneContext } from './prune.js';
import { imageNotFound, resolveImage } from './resolve.js';
import { taggable } from './import-source.js';
import { pullImage, type PullContext, type PullImageOptions } from './pull.js';
import { pushImage, type PushImageOptions } from './push.js';
import { RegistryHub } from './registry/hub.js';
import type { PullProgress, PushProgress, RegistrySettings } from './registry/types.js';
import { loadArchive, type LoadArchiveOptions } from './archive/load.js';
import { withReserve } from '../state/reserve.js';
import { saveArchive, type SaveImage } from './archive/save.js';
import type { ArchiveFormat, LoadedImage, LoadProgress } from './archive/types.js';
import { historyRows, imageInfo, refsByImage, repoStrings } from './views.js';
import type {
  ImageHistoryItem,
  ImageInfo,
  ImageListOptions,
  ImagePruneResult,
  ImageRemoveOptions,
  ImageRemoveResult,
  ImageSummary,
  ImportOptions,
  ImportSource,
  ResolvedImage,
} from './types.js';

/** An event the image service appends to the engine's log. */
export interface ImageEvent {
  /** Always `image`. */
  type: 'image';
  /** `import`, `tag`, `untag` or `delete`. */
  action: string;
  /** The image id. */
  id: string;
  /** `name`: the reference concerned (as Docker prints it), or the id. */
  attributes: Record<string, string>;
}

/** What the image service needs from its engine; the engine passes an adapter. */
export interface ImageServiceContext {
  /** The engine's persistent state root. */
  root: string;
  /** The engine's event log. */
  eventLog: { append(e: ImageEvent): void | Promise<unknown> };
  /** Ids of the containers that use image `imageId` (any state); empty when none. */
  imageUsers(imageId: string): Promise<string[]>;
  /** How registries are reached (pull, push). Default: no insecure registries, system CAs, undici. */
  registry?: RegistrySettings;
  /** Layers something outside the image store sits on (the engine's snapshots): never deleted with an image. */
  keepLayers?(): Iterable<string>;
}

/** The image store of one engine root. */
export class ImageService {
  /** Run settings of image configs already read, by image id (immutable: the id is the config's digest). */
  readonly #runSettings = new Map<string, ReturnType<typeof runSettings>>();
  /** Image configs (and, later, manifests and compressed layers). */
  readonly blobs: BlobStore;
  /** Unpacked layers. */
  readonly layers: LayerStore;
  /** Image records and the reference index. */
  readonly records: ImageRecords;
  /** Registry state shared by this root's pulls and pushes (dispatchers, pings, tokens). */
  readonly registry: RegistryHub;
  /** What each Dockerfile build step produced (see `build/cache.ts`). */
  readonly buildCache: BuildCache;
  readonly #ctx: ImageServiceContext;

  /** Creates the service over `ctx.root`; touches nothing until used. */
  constructor(ctx: ImageServiceContext) {
    this.#ctx = ctx;
    this.blobs = new BlobStore(ctx.root);
    this.records = new ImageRecords(ctx.root);
    this.layers = new LayerStore(ctx.root, this.records.lockFile);
    this.registry = new RegistryHub(ctx.registry);
    this.buildCache = new BuildCache(ctx.root);
    // What killed pulls, loads, imports and commits left: gone before this store is used.
    void this.layers.sweep();
    this.blobs.sweep();
  }

  /** What making a new image needs of this service (see `new-image.ts`). */
  #newImage(): NewImageContext {
    return {
      blobs: this.blobs,
      layers: this.layers,
      records: this.records,
      record: (ref) => this.#record(ref),
      config: (id) => this.#config(id),
      info: (rec) => this.#info(rec),
      event: (a, id, n) => this.#event(a, id, n),
    };
  }

  /**
   * Imports a root filesystem (tar file, directory, tar stream or bytes; plain or gzip) as a
   * one-layer image, as `docker import`, and returns it. With `ref`, the tag moves to the new
   * image; an image it pointed at before stays, untagged.
   *
   * @throws InvalidArgumentError (fields `ref`, `changes`, `layer`) before anything is written;
   *   UnsafeLayerError when the archive tries to escape its directory; NotFoundError for a missing
   *   path.
   */
  import(source: ImportSource, options: ImportOptions = {}): Promise<ImageInfo> {
    return importImage(this.#newImage(), source, options);
  }

  /**
   * Adds a layer on top of image `parentId` and records the result as a new image, as
   * `docker commit` does: the config is the parent's, with the run settings `runConfig` derives
   * from the parent's, and one history entry appended. With `ref`, the tag moves to the new image.
   *
   * @throws NotFoundError when the parent is gone; InvalidArgumentError (field `ref`);
   *   UnsafeLayerError when the layer tries to escape its directory.
   */
  commitLayer(parentId: string, layer: LayerSource, options: Parameters<typeof commitImage>[3]): Promise<ImageInfo> {
    return commitImage(this.#newImage(), parentId, layer, options);
  }

  /**
   * Details of an image, by reference, full id or unique id prefix.
   *
   * @throws NotFoundError when there is no such image.
   */
  async inspect(ref: string): Promise<ImageInfo> {
    return this.#info(this.#record(ref));
  }

  /** Whether `ref` names an image here (a malformed reference is an error, not `false`). */
  async exists(ref: string): Promise<boolean> {
    try {
      this.#record(ref);
      return true;
    } catch (e) {
      if (e instanceof NotFoundError) return false;
      throw e;
    }
  }

  /** The images, newest first, filtered as `docker images --filter`. */
  async list(options: ImageListOptions = {}): Promise<ImageSummary[]> {
    const refsById = this.#refsById();
    const patterns = toList(options.reference).map(globToRegExp);
    const labels = toList(options.label);
    const out: ImageSummary[] = [];
    for (const rec of this.records.list()) {
      const refs = refsById.get(rec.id) ?? [];
      if (options.dangling === true && refs.some((r) => r.tag !== undefined)) continue;
      if (options.dangling === false && !refs.some((r) => r.tag !== undefined)) continue;
      if (patterns.length > 0 && !refs.some((r) => patterns.some((p) => referenceMatches(p, r)))) continue;
      const config = await this.#config(rec.id).catch(() => undefined);
      const imageLabels = config?.config?.Labels ?? {};
      if (!labelsMatch(labels, imageLabels)) continue;
      out.push({ id: rec.id, ...repoStrings(refs), created: rec.created, size: rec.size, labels: { ...imageLabels } });
    }
    return out.sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
  }

  /**
   * Adds the reference `newRef` to the image `src`, as `docker tag`; moves it if it pointed at
   * another image. Returns the new reference as Docker prints it.
   *
   * @throws NotFoundError when `src` does not exist; InvalidArgumentError (field `ref`) when
   *   `newRef` is malformed or has a digest.
   */
  async tag(src: string, newRef: string): Promise<string> {
    const ref = taggable(newRef);
    const id = await this.records.locked(() => {
      const found = this.#record(src).id;
      const refs = this.records.refs();
      refs[ref.toString()] = found;
      this.records.setRefs(refs);
      return found;
    });
    await this.#event('tag', id, ref.familiar);
    return ref.familiar;
  }

  /**
   * Removes a reference or an image, as `docker rmi`: by tag, only the tag goes unless it was
   * the last one; by id (or the last tag), the image and the layers no other image uses are
   * deleted. An image a container uses is refused with `ConflictError('IN_USE')` unless `force`;
   * forced, it is untagged and its data kept while a container needs it.
   *
   * @throws NotFoundError, ConflictError (`IN_USE`, or `CONFLICT` for an id with tags in several
   *   repositories without `force`).
   */
  async remove(ref: string, options: ImageRemoveOptions = {}): Promise<ImageRemoveResult[]> {
    let events: Array<[string, string, string]> = [];
    // On a full disk the refs file cannot be rewritten: the root's reserve gives the room (see
    // state/reserve.ts). Nothing changed before that write, so the whole step runs again.
    const results = await withReserve(this.#ctx.root, () =>
      this.records.locked(async () => {
        events = [];
        const { id, named } = this.#resolve(ref);
        const refs = this.records.refs();
        const users = await this.#ctx.imageUsers(id);
        const plan = planRemoval({ id, input: ref, named, refs, users, force: options.force === true });
        for (const key of plan.untag) {
          delete refs[key];
          events.push(['untag', id, parseReference(key).familiar]);
        }
        this.records.setRefs(refs);
        const out: ImageRemoveResult[] = plan.untag.map((k) => ({ untagged: parseReference(k).familiar }));
        if (!plan.deleteImage) return out;
        await deleteImage(this, id);
        events.push(['delete', id, id]);
        out.push({ deleted: id });
        return out;
      }),
    );
    for (const [action, id, name] of events) await withReserve(this.#ctx.root, () => this.#event(action, id, name));
    return results;
  }

  /**
   * What a container needs to run `ref`: its id, defaults and layers' diffIDs (topmost first;
   * `LayerStore.fsDir` gives their directories).
   *
   * @throws NotFoundError (`IMAGE_NOT_FOUND`) when there is no such image.
   */
  async resolveForRun(ref: string): Promise<ResolvedImage> {
    const rec = this.#record(ref);
    // The config is content-addressed (the id is its digest): read once per engine.
    let run = this.#runSettings.get(rec.id);
    if (!run) {
      run = runSettings((await this.#config(rec.id)).config);
      if (this.#runSettings.size >= 256) this.#runSettings.delete(this.#runSettings.keys().next().value!);
      this.#runSettings.set(rec.id, run);
    }
    for (const d of rec.layers) {
      if (!this.layers.has(d)) throw imageNotFound(ref);
    }
    return { id: rec.id, config: structuredClone(run), layers: [...rec.layers].reverse() };
  }

  /**
   * Loads the images of an archive (docker-archive or OCI layout, detected), as `docker load`,
   * and tags them as the archive says. See `archive/load.ts`.
   *
   * @throws InvalidArgumentError (fields `archive`, `platform`, `source`); UnsafeLayerError;
   *   NotFoundError for a missing path. The store is unchanged after a failure.
   */
  async load(
    source: ImportSource,
    options: LoadArchiveOptions = {},
    emit: (p: LoadProgress) => void = () => undefined,
  ): Promise<LoadedImage[]> {
    const ctx = {
      blobs: this.blobs,
      layers: this.layers,
      records: this.records,
      event: (a: string, id: string, n: string) => this.#event(a, id, n),
    };
    return loadArchive(ctx, source, options, emit);
  }

  /**
   * The images `refs` (references, ids or id prefixes) as one archive stream, as `docker save`.
   * An image named by a tag carries that tag in the archive; one named by id carries none. The
   * images are looked up when the stream is first read; a missing one fails the stream.
   */
  save(refs: readonly string[], options: { format?: ArchiveFormat } = {}): Readable {
    const format = options.format ?? 'docker';
    const gen = async function* (this: ImageService): AsyncGenerator<Buffer> {
      const images: SaveImage[] = [];
      for (const ref of refs) {
        const { id, named } = this.#resolve(ref);
        let img = images.find((i) => i.id === id);
        if (img === undefined) images.push((img = { id, refs: [] }));
        if (
          named?.tag !== undefined &&
          named.digest === undefined &&
          !img.refs.some((r) => r.toString() === named.toString())
        )
          img.refs.push(named);
      }
      yield* saveArchive({ blobs: this.blobs, layers: this.layers }, images, format);
    };
    return Readable.from(gen.call(this), { objectMode: false, highWaterMark: 1 << 20 });
  }

  /**
   * Deletes dangling images (no tag), or with `all` every image, that no container uses, as
   * `docker image prune [-a]`.
   */
  async prune(options: { all?: boolean } = {}): Promise<ImagePruneResult> {
    const ctx: PruneContext = {
      blobs: this.blobs,
      layers: this.layers,
      records: this.records,
      imageUsers: (id) => this.#ctx.imageUsers(id),
      keepLayers: () => this.keepLayers(),
      event: (a, id, n) => this.#event(a, id, n),
    };
    return pruneImages(ctx, options);
  }

  /**
   * The image's history, newest first, as `docker history`: one row per config history entry,
   * with the size of the layer each non-empty step made. An image whose config has no history
   * gets one row per layer.
   *
   * @throws NotFoundError when there is no such image.
   */
  async history(ref: string): Promise<ImageHistoryItem[]> {
    const rec = this.#record(ref);
    return historyRows(
      rec.id,
      await this.#config(rec.id),
      this.#refsById().get(rec.id) ?? [],
      (d) => this.layers.get(d)?.size ?? 0,
    );
  }

  /**
   * Pulls `ref` from its registry, as `docker pull`, and returns the image's details. Layers
   * already stored are not downloaded; the others are unpacked while they download.
   *
   * @throws InvalidArgumentError (field `ref`, `platform`); RegistryError (`IMAGE_NOT_FOUND`,
   *   `REGISTRY_AUTH`, `REGISTRY_UNREACHABLE`, `REGISTRY`); UnsafeLayerError.
   */
  async pull(
    ref: string,
    options: PullImageOptions = {},
    emit: (p: PullProgress) => void = () => undefined,
    signal: AbortSignal = new AbortController().signal,
  ): Promise<ImageInfo> {
    const parsed = parseReference(ref, { field: 'ref' });
    const id = await pullImage(this.#pullContext(), parsed, options, emit, signal);
    return this.inspect(id);
  }

  /**
   * Pushes the local tag `ref` to its registry, as `docker push`; returns the manifest digest.
   *
   * @throws InvalidArgumentError (field `ref`); NotFoundError; RegistryError.
   */
  async push(
    ref: string,
    options: PushImageOptions = {},
    emit: (p: PushProgress) => void = () => undefined,
    signal: AbortSignal = new AbortController().signal,
  ): Promise<string> {
    const parsed = parseReference(ref, { field: 'ref' });
    return (await pushImage(this.#pullContext(), parsed, options, emit, signal)).digest;
  }

  #pullContext(): PullContext {
    return {
      root: this.#ctx.root,
      blobs: this.blobs,
      layers: this.layers,
      records: this.records,
      hub: this.registry,
      event: (a, id, n) => this.#event(a, id, n),
    };
  }

  /**
   * The id and config of an image, by reference, id or unique id prefix (a build's `FROM` and
   * `COPY --from`).
   *
   * @throws NotFoundError when there is no such image or one of its layers is gone.
   */
  async configOf(ref: string): Promise<{ id: string; config: OciImageConfig }> {
    const rec = this.#record(ref);
    for (const d of rec.layers) if (!this.layers.has(d)) throw imageNotFound(ref);
    return { id: rec.id, config: await this.#config(rec.id) };
  }

  /**
   * Under the store lock: commits `staged` (a build step's layer; none for a step without one)
   * and runs `record`, which must reference it (the build cache's entry) before the lock goes.
   */
  async commitBuildLayer(staged: StagedLayer | undefined, record: () => Promise<void>): Promise<void> {
    await this.records.locked(async () => {
      if (staged !== undefined) await this.layers.commit(staged);
      await record();
    });
  }

  /**
   * Records a built image (its config, whose layers are committed) and moves `tags` to it; sends
   * a `build` event and a `tag` event per tag.
   *
   * @throws NotFoundError when a layer of the config is gone (removed meanwhile; build again).
   */
  storeBuilt(config: OciImageConfig, tags: readonly string[]): Promise<ImageInfo> {
    return storeBuiltImage(this.#newImage(), config, tags);
  }

  /**
   * Layers the build cache hands out, and those the context keeps (snapshots): never deleted with
   * an image. Call under the store lock.
   */
  keepLayers(): ReadonlySet<string> {
    const keep = this.buildCache.layersInUse();
    for (const d of this.#ctx.keepLayers?.() ?? []) keep.add(d);
    return keep;
  }

  /**
   * Deletes those of the layers `diffIds` that nothing uses any more (no image record, build
   * cache entry or {@link ImageServiceContext.keepLayers} holder): the layers a removed snapshot
   * kept after their image was removed.
   */
  async releaseLayers(diffIds: Iterable<string>): Promise<void> {
    await this.records.locked(async () => {
      const used = new Set([...this.records.list().flatMap((r) => r.layers), ...this.keepLayers()]);
      for (const d of new Set(diffIds)) if (!used.has(d) && this.layers.has(d)) await this.layers.remove(d);
    });
  }

  /** Finds an image as `docker inspect` does: full id, reference, then unique id prefix. */
  #resolve(input: string): { id: string; named: ImageReference | undefined } {
    return resolveImage(this.records, input);
  }

  #record(ref: string): ImageRecord {
    const rec = this.records.get(this.#resolve(ref).id);
    if (rec === undefined) throw imageNotFound(ref);
    return rec;
  }

  async #config(id: string): Promise<OciImageConfig> {
    return JSON.parse((await this.blobs.read(id)).toString('utf8')) as OciImageConfig;
  }

  #refsById(): Map<string, ImageReference[]> {
    return refsByImage(this.records.refs());
  }

  async #info(rec: ImageRecord): Promise<ImageInfo> {
    return imageInfo(rec, await this.#config(rec.id), this.#refsById().get(rec.id) ?? []);
  }

  async #event(action: string, id: string, name: string): Promise<void> {
    await this.#ctx.eventLog.append({ type: 'image', action, id, attributes: { name } });
  }
}
