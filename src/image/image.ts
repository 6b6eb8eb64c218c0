/**
 * The public `Image` handle.
 *
 * @module
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { Engine, engineSchema } from '../engine.js';
import { InvalidArgumentError } from '../errors.js';
import { Operation } from '../operation.js';
import { stopShape, underOperationStop, underStop } from '../container/call-stop.js';
import { parsePlatform } from './archive/platform.js';
import type { LoadOptions, LoadProgress, SaveOptions } from './archive/types.js';
import type { ImageHistoryItem, ImagePruneResult } from './types.js';
import { parseAnyReference, parseReference } from './reference.js';
import { normalizePlatform } from './registry/manifest.js';
import type { PullOptions, PullProgress, PushOptions, PushProgress } from './registry/types.js';
import { checkImportOptions } from './import-source.js';
import { ociPlatform } from './image-config.js';
import { buildOptionsSchema, checkBuildOptions } from './build/options.js';
import type { BuildOptions, BuildProgress } from './build/types.js';
import type {
  ImageInfo,
  ImageListOptions,
  ImageRemoveOptions,
  ImageRemoveResult,
  ImageSummary,
  ImportOptions,
  ImportSource,
} from './types.js';

export type {
  HealthcheckInfo,
  ImageHistoryEntry,
  ImageInfo,
  ImageListOptions,
  ImageRemoveOptions,
  ImageRemoveResult,
  ImageRunSettings,
  ImageSummary,
  ImportOptions,
  ImportSource,
} from './types.js';
export type { ArchiveFormat, LoadOptions, LoadProgress, SaveOptions } from './archive/types.js';
export type { ImageHistoryItem, ImagePruneResult } from './types.js';
export type { BuildContextSource, BuildOptions, BuildProgress } from './build/types.js';

export type {
  PullOptions,
  PullPlatform,
  PullProgress,
  PushOptions,
  PushProgress,
  RegistryAuth,
  RegistryDispatcher,
  RegistrySettings,
} from './registry/types.js';

/** The engine option every image call accepts. */
export interface ImageEngineOption {
  /** The engine to use. Default {@link Engine.default}. */
  engine?: Engine;
}

/** Options of {@link Image.build}. */
export type ImageBuildOptions = BuildOptions & ImageEngineOption;

/** Options of {@link Image.import}. */
export type ImageImportOptions = ImportOptions & ImageEngineOption;

/** Options of {@link Image.list}. */
export type ImageListCallOptions = ImageListOptions & ImageEngineOption;

const stringOrList = z.union([z.string(), z.array(z.string())]);

const buildSchema = buildOptionsSchema.extend({ engine: engineSchema });

/** This machine's platform as `os/arch[/variant]`. */
function hostPlatform(): string {
  const p = ociPlatform();
  return ['linux', p.architecture, ...(p.variant ? [p.variant] : [])].join('/');
}

const importSchema = z.strictObject({
  engine: engineSchema,
  ref: z.string().min(1).optional(),
  changes: stringOrList.optional(),
  message: z.string().optional(),
  ...stopShape,
});

const listSchema = z.strictObject({
  engine: engineSchema,
  all: z.boolean().optional(),
  dangling: z.boolean().optional(),
  reference: stringOrList.optional(),
  label: stringOrList.optional(),
});

/** Options of {@link Image.load}. */
export type ImageLoadOptions = LoadOptions & ImageEngineOption;

/** Options of the static {@link Image.save}. */
export type ImageSaveOptions = SaveOptions & ImageEngineOption;

/** Options of {@link Image.prune}. */
export interface ImagePruneOptions extends ImageEngineOption {
  /** Also delete tagged images no container uses, as `docker image prune -a`. Default: only dangling ones. */
  all?: boolean;
}

const saveSchema = z.strictObject({ format: z.enum(['docker', 'oci']).optional() });
const saveStaticSchema = saveSchema.extend({ engine: engineSchema });
const loadSchema = z.strictObject({
  engine: engineSchema,
  platform: z.string().min(1).optional(),
  ...stopShape,
});
const pruneSchema = z.strictObject({ engine: engineSchema, all: z.boolean().optional() });

const authSchema = z.union([
  z.strictObject({ username: z.string(), password: z.string() }),
  z.strictObject({ identitytoken: z.string().min(1) }),
  z.strictObject({ registrytoken: z.string().min(1) }),
]);
const pullSchema = z.strictObject({
  platform: z
    .union([
      z.string().min(1),
      z.strictObject({
        os: z.string().min(1).optional(),
        architecture: z.string().min(1),
        variant: z.string().min(1).optional(),
      }),
    ])
    .optional(),
  auth: authSchema.optional(),
  ...stopShape,
});
const pushSchema = z.strictObject({ auth: authSchema.optional(), ...stopShape });

const removeSchema = z.strictObject({
  force: z.boolean().optional(),
  noPrune: z.boolean().optional(),
});

/** Parses options with `schema`; a failure names the offending field. */
function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  let field = issue?.path.map(String).join('.') ?? '';
  let message = issue?.message ?? 'invalid options';
  if (issue?.code === 'unrecognized_keys') {
    field = [field, issue.keys[0]].filter(Boolean).join('.');
    message = `unknown option '${issue.keys[0]}'`;
  }
  throw new InvalidArgumentError(field || 'options', message, { cause: r.error });
}

function isSource(v: unknown): v is ImportSource {
  if (typeof v === 'string') return v.length > 0;
  if (v instanceof Uint8Array) return true;
  return typeof v === 'object' && v !== null && Symbol.asyncIterator in v;
}

/**
 * An image, by reference (`ubuntu:14.04` → `docker.io/library/ubuntu:14.04`), full id or unique
 * id prefix. The constructor only checks the syntax; each method looks the image up.
 *
 * @example
 * ```ts
 * import { Image } from 'berth';
 * const img = await Image.import('/tmp/rootfs.tar', { ref: 'myapp:1.0', changes: ['CMD ["/bin/sh"]'] });
 * const info = await img.inspect();
 * console.log(info.id, info.repoTags); // sha256:… [ 'myapp:1.0' ]
 * await img.tag('myapp:latest');
 * await new Image('myapp:1.0').remove(); // untags; the image stays under myapp:latest
 * ```
 */
export class Image {
  /** The reference or id this handle was made with, as given. */
  readonly ref: string;
  /** The normalised reference (`docker.io/library/ubuntu:14.04`), or the full id for an id. */
  readonly name: string;
  readonly #engine: Engine | undefined;

  /**
   * A handle on the image `ref`; touches nothing.
   *
   * @throws InvalidArgumentError (field `ref`) when `ref` is not a valid reference or id.
   */
  constructor(ref: string, options: ImageEngineOption = {}) {
    if (typeof ref !== 'string' || ref === '')
      throw new InvalidArgumentError('ref', 'expected an image reference or id');
    const any = parseAnyReference(ref, 'ref');
    this.ref = ref;
    this.name = any.kind === 'id' ? any.id : any.ref.toString();
    this.#engine = parse(z.strictObject({ engine: engineSchema }), options).engine;
  }

  /** The engine this handle uses; undefined: {@link Engine.default}. */
  get engine(): Engine | undefined {
    return this.#engine;
  }

  get #svc() {
    return (this.#engine ?? Engine.default()).images;
  }

  #options(): ImageEngineOption {
    return this.#engine === undefined ? {} : { engine: this.#engine };
  }

  /** Whether the image exists locally, as `docker image inspect` succeeding. */
  async exists(): Promise<boolean> {
    return this.#svc.exists(this.ref);
  }

  /**
   * The image's details, as `docker image inspect`.
   *
   * @throws NotFoundError (`IMAGE_NOT_FOUND`) when it does not exist.
   */
  async inspect(): Promise<ImageInfo> {
    return this.#svc.inspect(this.ref);
  }

  /**
   * Adds a reference to this image, as `docker tag`, and returns a handle on it. A reference that
   * pointed at another image moves.
   *
   * @throws NotFoundError when this image does not exist; InvalidArgumentError (field `ref`) for a
   *   malformed reference or one with a digest.
   */
  async tag(ref: string): Promise<Image> {
    if (typeof ref !== 'string' || ref === '') throw new InvalidArgumentError('ref', 'expected an image reference');
    const tagged = await this.#svc.tag(this.ref, ref);
    return new Image(tagged, this.#options());
  }

  /**
   * Removes this reference or image, as `docker rmi`: a tag goes alone unless it is the image's
   * last; an id (or the last tag) deletes the image and the layers no other image uses. An image
   * a container uses is refused unless `force`, which only untags it (its data stays while a
   * container needs it).
   *
   * @returns what was untagged and deleted, in order.
   * @throws NotFoundError; ConflictError (`IN_USE`, `CONFLICT`).
   */
  async remove(options: ImageRemoveOptions = {}): Promise<ImageRemoveResult[]> {
    const o = parse(removeSchema, options);
    return this.#svc.remove(this.ref, o);
  }

  /**
   * The image's history, newest first, as `docker history`: one row per build step, with the
   * size of the layer each step made.
   *
   * @throws NotFoundError (`IMAGE_NOT_FOUND`) when it does not exist.
   *
   * @example
   * ```ts
   * for (const row of await new Image('busybox').history()) console.log(row.createdBy, row.size);
   * ```
   */
  async history(): Promise<ImageHistoryItem[]> {
    return this.#svc.history(this.ref);
  }

  /**
   * This image as an archive stream, as `docker save`: the docker-archive format by default, or
   * an OCI image layout with `{ format: 'oci' }`. Named by a tag, the image carries that tag in
   * the archive; named by id, none. A missing image fails the stream (`IMAGE_NOT_FOUND`).
   *
   * @throws InvalidArgumentError (field `format`) at once, before the stream exists.
   *
   * @example
   * ```ts
   * import { createWriteStream } from 'node:fs';
   * import { pipeline } from 'node:stream/promises';
   * await pipeline(new Image('busybox').save({ format: 'oci' }), createWriteStream('busybox.tar'));
   * ```
   */
  save(options: SaveOptions = {}): Readable {
    const o = parse(saveSchema, options);
    return this.#svc.save([this.ref], o);
  }

  /**
   * Several images in one archive stream, as `docker save a b c`; layers they share are written
   * once. See {@link Image.save | image.save()}.
   *
   * @throws InvalidArgumentError (fields `refs`, `format`) at once.
   *
   * @example
   * ```ts
   * const tar = Image.save(['app:1.0', 'app:1.1'], { format: 'docker' });
   * ```
   */
  static save(refs: ReadonlyArray<string | Image>, options: ImageSaveOptions = {}): Readable {
    const { engine, ...o } = parse(saveStaticSchema, options);
    if (!Array.isArray(refs) || refs.length === 0)
      throw new InvalidArgumentError('refs', 'expected a non-empty list of image references or Image handles');
    const names = refs.map((r, i) => {
      if (r instanceof Image) return r.ref;
      if (typeof r !== 'string' || r === '')
        throw new InvalidArgumentError(`refs.${i}`, 'expected an image reference or an Image');
      parseAnyReference(r, `refs.${i}`);
      return r;
    });
    return (engine ?? Engine.default()).images.save(names, o);
  }

  /**
   * Loads the images of an archive, as `docker load`: a docker-archive (`docker save`'s format)
   * or an OCI image layout, detected, from a tar file, a layout directory (as `skopeo copy … oci:dir`
   * writes), a tar stream or bytes. Images are tagged as the
   * archive says. From a multi-platform OCI index, the image for `platform` (default: this
   * machine's) is taken, and a `Selected platform` progress event says which. Every digest is
   * checked; a bad or hostile archive is refused and leaves nothing behind.
   *
   * @returns an operation resolving to handles on the loaded images (by tag, or by id when
   *   untagged), and iterable for {@link LoadProgress} events.
   * @throws InvalidArgumentError (fields `source`, `platform`, …; `archive` for malformed
   *   archives and digest mismatches); UnsafeLayerError for paths escaping the archive or a layer;
   *   AbortedError (`ABORTED`) or TimeoutError (`TIMEOUT`) for `signal` or `timeout` (ms), tagging nothing.
   *
   * @example
   * ```ts
   * const [img] = await Image.load('/tmp/busybox.tar');
   * for await (const p of Image.load('/tmp/multi.oci.tar', { platform: 'linux/arm64' })) console.log(p.status, p.id);
   * ```
   */
  static load(source: ImportSource, options: ImageLoadOptions = {}): Operation<Image[], LoadProgress> {
    return new Operation<Image[], LoadProgress>(async (emit, signal) => {
      if (!isSource(source))
        throw new InvalidArgumentError('source', 'expected a path, a tar stream or the bytes of a tar');
      const { engine, platform, ...stop } = parse(loadSchema, options);
      const want = platform === undefined ? undefined : parsePlatform(platform);
      const loaded = await underOperationStop('loading images', signal, stop, (all) =>
        (engine ?? Engine.default()).images.load(source, { ...(want ? { platform: want } : {}), signal: all }, emit),
      );
      const opts = engine === undefined ? {} : { engine };
      return loaded.map((l) => new Image(l.refs[0] ?? l.id, opts));
    });
  }

  /**
   * Deletes the dangling images (no tag), or with `all` every image, that no container uses, as
   * `docker image prune [-a]`.
   *
   * @returns the ids deleted, the references removed and the bytes freed.
   *
   * @example
   * ```ts
   * const { deleted, spaceReclaimed } = await Image.prune({ all: true });
   * ```
   */
  static async prune(options: ImagePruneOptions = {}): Promise<ImagePruneResult> {
    const { engine, ...o } = parse(pruneSchema, options);
    return (engine ?? Engine.default()).images.prune(o);
  }

  /**
   * Pulls this image from its registry, as `docker pull`: the manifest (for this machine's
   * platform, or `platform`, from a multi-platform index), the config and the layers not already
   * stored, several at once, each unpacked while it downloads. Credentials come from `auth`, else
   * from the Docker config. Tags and the repo digest are recorded.
   *
   * @returns an operation that resolves to a handle on the image and yields {@link PullProgress}
   *   events as `docker pull` prints them.
   * @throws InvalidArgumentError (fields `ref`, `platform`, `auth`) before any request; RegistryError
   *   (`IMAGE_NOT_FOUND`, `REGISTRY_AUTH`, `REGISTRY_UNREACHABLE`, `REGISTRY`); UnsafeLayerError;
   *   `ABORTED` or `TIMEOUT` for `signal` or `timeout` (ms): nothing tagged, no partial layer left.
   *
   * @example
   * ```ts
   * const img = await new Image('localhost:5000/tools/busybox:1.36').pull();
   * for await (const p of new Image('redis:7').pull({ platform: 'linux/arm64' })) console.log(p.id, p.status, p.current ?? '');
   * ```
   */
  pull(options: PullOptions = {}): Operation<Image, PullProgress> {
    return new Operation<Image, PullProgress>(async (emit, signal) => {
      const o = parse(pullSchema, options);
      const ref = parseReference(this.ref, { field: 'ref' });
      if (o.platform !== undefined) normalizePlatform(o.platform);
      await underOperationStop(`pulling ${ref.familiar}`, signal, o, (all) =>
        this.#svc.pull(ref.toString(), { platform: o.platform, auth: o.auth }, emit, all),
      );
      return new Image(this.ref, this.#options());
    });
  }

  /**
   * Pushes this image (a tag) to its registry, as `docker push`: blobs the registry has are
   * skipped, blobs in another repository of the same registry are mounted, the others uploaded
   * (layers gzip-compressed, in chunks), then the manifest.
   *
   * @returns an operation that resolves when the manifest is pushed and yields {@link PushProgress}.
   * @throws InvalidArgumentError (fields `ref`, `auth`) before any request; NotFoundError when no
   *   local image has this tag; RegistryError; `ABORTED` or `TIMEOUT` for `signal` or `timeout`
   *   (ms): the manifest goes last, so the registry gets no tag.
   *
   * @example
   * ```ts
   * await new Image('busybox').tag('localhost:5000/tools/busybox:1.36');
   * await new Image('localhost:5000/tools/busybox:1.36').push({ auth: { username: 'me', password: 's3cret' } });
   * ```
   */
  push(options: PushOptions = {}): Operation<void, PushProgress> {
    return new Operation<void, PushProgress>(async (emit, signal) => {
      const o = parse(pushSchema, options);
      const ref = parseReference(this.ref, { field: 'ref' });
      await underOperationStop(`pushing ${ref.familiar}`, signal, o, (all) =>
        this.#svc.push(ref.toString(), { auth: o.auth }, emit, all),
      );
    });
  }

  /**
   * Builds an image from a Dockerfile, as `docker build` (BuildKit): the stages the target needs,
   * independent ones at the same time; `RUN` steps in the default sandbox with no network unless
   * `network` says otherwise; every step's result cached across processes sharing the root, so an
   * unchanged rebuild gives the same image id. The context may be a directory (read in place), a
   * tar stream or a map of in-memory files. See {@link BuildOptions}.
   *
   * @returns an operation that resolves to a handle on the image (by its first tag, or by id) and
   *   yields {@link BuildProgress} events: each step running, done or cached, and `RUN` output.
   * @throws InvalidArgumentError naming the field (a Dockerfile syntax error names `dockerfile`
   *   and its line) before anything runs; BuildError (`BUILD_FAILED`) with the failing step's
   *   line, text, exit code and last output; `ABORTED` or `TIMEOUT` for `signal` or `timeout` (ms).
   *   Nothing is tagged after a failure, and nothing of it (container, mount, scratch directory) is left.
   *
   * @example
   * ```ts
   * const img = await Image.build({
   *   context: { Dockerfile: 'FROM busybox\nRUN echo hi > /greeting\nCMD ["cat", "/greeting"]' },
   *   tag: 'greeter:1',
   * });
   * for await (const p of Image.build({ context: './app', tag: 'app:dev' })) if (p.type === 'output') process.stdout.write(p.text);
   * ```
   */
  static build(options: ImageBuildOptions): Operation<Image, BuildProgress> {
    return new Operation<Image, BuildProgress>(async (emit, signal) => {
      const { engine, ...rest } = parse(buildSchema, options);
      const checked = checkBuildOptions(rest, hostPlatform());
      const e = engine ?? Engine.default();
      const info = await underOperationStop('building an image', signal, rest, (all) => e.build(checked, emit, all));
      return new Image(checked.tags[0] ?? info.id, engine === undefined ? {} : { engine });
    });
  }

  /**
   * The local images, newest first, as `docker images` with its filters.
   *
   * @example
   * ```ts
   * const dangling = await Image.list({ dangling: true });
   * const mine = await Image.list({ reference: 'myapp:*', label: 'team=web' });
   * ```
   */
  static async list(options: ImageListCallOptions = {}): Promise<ImageSummary[]> {
    const { engine, ...filters } = parse(listSchema, options);
    return (engine ?? Engine.default()).images.list(filters);
  }

  /**
   * Makes a one-layer image from a root filesystem, as `docker import`: a tar file (plain or
   * gzip), a directory, a tar stream or the bytes of a tar. Returns a handle on the new image
   * (by `ref`, or by id when untagged).
   *
   * @throws InvalidArgumentError naming the field (`ref`, `changes`, `source`, …) before anything
   *   is written; UnsafeLayerError when the archive tries to escape its directory.
   *
   * @example
   * ```ts
   * const img = await Image.import('/srv/rootfs', { ref: 'tools:dev', changes: ['ENV DEBUG=1', 'WORKDIR /work'] });
   * ```
   */
  static async import(source: ImportSource, options: ImageImportOptions = {}): Promise<Image> {
    if (!isSource(source))
      throw new InvalidArgumentError('source', 'expected a path, a tar stream or the bytes of a tar');
    const { engine, timeout, ...o } = parse(importSchema, options);
    checkImportOptions(o);
    const info = await underStop(`importing ${o.ref ?? 'a root file system'}`, { signal: o.signal, timeout }, (s) =>
      (engine ?? Engine.default()).images.import(source, { ...o, signal: s }),
    );
    return new Image(o.ref ?? info.id, engine === undefined ? {} : { engine });
  }
}
