/**
 * The public `Image` handle.
 *
 * @module
 */
import { z } from 'zod';
import { Engine } from '../engine.js';
import { InvalidArgumentError } from '../errors.js';
import { parseAnyReference } from './reference.js';
import { checkImportOptions } from './service.js';
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

/** The engine option every image call accepts. */
export interface ImageEngineOption {
  /** The engine to use. Default {@link Engine.default}. */
  engine?: Engine;
}

/** Options of {@link Image.import}. */
export type ImageImportOptions = ImportOptions & ImageEngineOption;

/** Options of {@link Image.list}. */
export type ImageListCallOptions = ImageListOptions & ImageEngineOption;

const engineSchema = z.custom<Engine>((v) => v instanceof Engine, 'expected an Engine').optional();
const stringOrList = z.union([z.string(), z.array(z.string())]);

const importSchema = z.strictObject({
  engine: engineSchema,
  ref: z.string().min(1).optional(),
  changes: stringOrList.optional(),
  message: z.string().optional(),
  signal: z.instanceof(AbortSignal).optional(),
});

const listSchema = z.strictObject({
  engine: engineSchema,
  all: z.boolean().optional(),
  dangling: z.boolean().optional(),
  reference: stringOrList.optional(),
  label: stringOrList.optional(),
});

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
    if (typeof ref !== 'string' || ref === '') throw new InvalidArgumentError('ref', 'expected an image reference or id');
    const any = parseAnyReference(ref, 'ref');
    this.ref = ref;
    this.name = any.kind === 'id' ? any.id : any.ref.toString();
    this.#engine = parse(z.strictObject({ engine: engineSchema }), options).engine;
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
    if (!isSource(source)) throw new InvalidArgumentError('source', 'expected a path, a tar stream or the bytes of a tar');
    const { engine, ...o } = parse(importSchema, options);
    checkImportOptions(o);
    const info = await (engine ?? Engine.default()).images.import(source, o);
    return new Image(o.ref ?? info.id, engine === undefined ? {} : { engine });
  }
}
