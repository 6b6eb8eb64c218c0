/**
 * Unpacks one layer archive into a new directory, in a single pass:
 *
 * ```text
 * source ─▶ detect (magic) ─▶ gunzip/zstd? ─▶ sha256 (diffID) ─▶ TarReader ─▶ TarExtractor ─▶ <target>.tmp-*
 *                                                                                   └ on success: rename to <target>
 * ```
 *
 * The diffID (sha256 of the uncompressed tar) is computed from the same chunks the parser sees,
 * so the content is read once. Any failure — a malformed archive, an {@link UnsafeLayerError}, a
 * digest mismatch, an abort — removes the partial directory; `target` appears only whole.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { addAbortSignal, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { BerthError, cleanupAfterAsync, ConflictError, InvalidArgumentError, KernelError } from '../errors.js';
import { O_CLOEXEC, O_DIRECTORY, O_PATH } from '../kernel/constants.js';
import { TarExtractor } from './layer-writer.js';
import { TarReader, type TarSink } from './tar-reader.js';

/** How a layer archive is compressed, as detected from its first bytes. */
export type LayerCompression = 'none' | 'gzip' | 'zstd';

/** What {@link unpackLayer} reads: a byte stream or the whole archive in memory. */
export type LayerSource = Readable | AsyncIterable<Uint8Array> | Uint8Array;

/** Options for {@link unpackLayer}. */
export interface UnpackOptions {
  /** The diffID the uncompressed archive must have (from an image config); a mismatch rejects. */
  expectedDiffId?: string;
  /** Stops the unpack between chunks; the partial directory is removed. */
  signal?: AbortSignal;
  /**
   * Also receives every parser event (for example to record the archive's headers so that it
   * can be reassembled byte for byte later). Called after the file-system writer for each event.
   */
  observer?: TarSink;
}

/** What {@link unpackLayer} found. */
export interface UnpackResult {
  /** sha256 of the uncompressed archive: the layer's diffID. */
  diffId: string;
  /** Sum of the entries' content sizes in bytes (the size Docker reports for a layer). */
  size: number;
  /** Length of the uncompressed archive in bytes. */
  tarSize: number;
  /** The compression detected on input. */
  compression: LayerCompression;
  /** Number of archive entries. */
  entries: number;
}

/** Detects the compression of an archive from its first bytes. */
export function detectCompression(head: Uint8Array): LayerCompression | 'bzip2' | 'xz' {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return 'bzip2';
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a) return 'xz';
  return 'none';
}

type ZlibWithZstd = typeof zlib & { createZstdDecompress?: () => zlib.Gunzip };

function decompressor(kind: LayerCompression): NodeJS.ReadWriteStream {
  if (kind === 'gzip') return zlib.createGunzip({ chunkSize: 1 << 17 });
  const create = (zlib as ZlibWithZstd).createZstdDecompress;
  if (create === undefined) {
    throw new InvalidArgumentError(
      'layer',
      `zstd-compressed layers need Node.js with zlib zstd support (this is ${process.version})`,
    );
  }
  return create();
}

/** Yields the uncompressed bytes of `source`, reporting the compression through `found`. */
async function* uncompressed(
  source: AsyncIterable<Uint8Array>,
  found: (c: LayerCompression) => void,
): AsyncGenerator<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let headLength = 0;
  let ended = false;
  try {
    while (headLength < 6) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      head.push(r.value);
      headLength += r.value.byteLength;
    }
    const first = Buffer.concat(head);
    const kind = detectCompression(first);
    if (kind === 'bzip2' || kind === 'xz')
      throw new InvalidArgumentError('layer', `${kind}-compressed layers are not supported; use gzip, zstd or none`);
    found(kind);
    async function* all(): AsyncGenerator<Uint8Array> {
      if (first.byteLength > 0) yield first;
      while (!ended) {
        const r = await it.next();
        if (r.done) ended = true;
        else yield r.value;
      }
    }
    if (kind === 'none') {
      yield* all();
      return;
    }
    const z = decompressor(kind);
    const input = Readable.from(all(), { objectMode: false });
    const feeding = pipeline(input, z);
    // Awaited below; a rejection meanwhile (it also ends the read of z) must not count as unhandled.
    feeding.catch(() => undefined);
    try {
      for await (const chunk of z as AsyncIterable<Uint8Array>) yield chunk;
      await feeding;
    } finally {
      input.destroy();
      (z as unknown as Readable).destroy();
    }
  } finally {
    if (!ended) await it.return?.();
  }
}

function toIterable(source: LayerSource, signal: AbortSignal | undefined): AsyncIterable<Uint8Array> {
  // A stream that stops sending would hold the read forever: the signal destroys it.
  if (signal !== undefined && source instanceof Readable) return addAbortSignal(signal, source);
  if (source instanceof Uint8Array) {
    return (async function* () {
      for (let off = 0; off < source.byteLength; off += 1 << 20) yield source.subarray(off, off + (1 << 20));
    })();
  }
  return source as AsyncIterable<Uint8Array>;
}

/**
 * Turns a Node.js system error into a {@link KernelError} naming its path, or else `dir` (the
 * unpack's target: a full disk names the file system to free); keeps berth errors.
 */
function asLayerError(e: unknown, dir: string): unknown {
  if (e instanceof BerthError) return e;
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code === 'string' && typeof err.errno === 'number' && err.syscall) {
    const path = err.path === undefined ? dir : String(err.path);
    return new KernelError(err.syscall, Math.abs(err.errno), err.code, undefined, path, { cause: e });
  }
  if (err?.code === 'Z_DATA_ERROR' || err?.code === 'Z_BUF_ERROR' || err?.code?.startsWith?.('ERR_ZSTD')) {
    return new InvalidArgumentError('layer', `the compressed layer is corrupt: ${err.message}`, { cause: e });
  }
  return e;
}

/**
 * Unpacks the layer archive `source` (plain tar, gzip or zstd) into the new directory `target`,
 * whose parent must exist, and returns its diffID and size.
 *
 * @throws UnsafeLayerError when an entry tries to escape the layer (nothing is left behind).
 * @throws InvalidArgumentError (field `layer`) when the archive is malformed, or (field
 *   `expectedDiffId`) when its digest differs from the expected one.
 * @throws ConflictError when `target` already exists and is not empty.
 *
 * @example
 * ```ts
 * import { createReadStream } from 'node:fs';
 * const { diffId } = await unpackLayer(createReadStream('layer.tar.gz'), '/var/lib/berth/tmp/fs');
 * ```
 */
export async function unpackLayer(
  source: LayerSource,
  target: string,
  options: UnpackOptions = {},
): Promise<UnpackResult> {
  options.signal?.throwIfAborted();
  const tmp = `${target}.tmp-${randomBytes(8).toString('hex')}`;
  fs.mkdirSync(tmp, 0o700);
  fs.chmodSync(tmp, 0o755);
  const dest = fs.openSync(tmp, O_PATH | O_DIRECTORY | O_CLOEXEC);
  const writer = new TarExtractor(dest, 'layer');
  const observer = options.observer;
  const sink: TarSink =
    observer === undefined
      ? writer
      : {
          entry: (e) => (writer.entry(e), observer.entry(e)),
          data: (c) => (writer.data(c), observer.data(c)),
          entryEnd: () => (writer.entryEnd(), observer.entryEnd()),
          raw: (c) => observer.raw?.(c),
        };
  const reader = new TarReader(sink);
  const hash = createHash('sha256');
  let tarSize = 0;
  let compression: LayerCompression = 'none';
  try {
    for await (const chunk of uncompressed(toIterable(source, options.signal), (c) => (compression = c))) {
      options.signal?.throwIfAborted();
      hash.update(chunk);
      tarSize += chunk.byteLength;
      reader.write(chunk);
    }
    reader.end();
    writer.finish();
    const diffId = `sha256:${hash.digest('hex')}`;
    if (options.expectedDiffId !== undefined && diffId !== options.expectedDiffId) {
      throw new InvalidArgumentError(
        'expectedDiffId',
        `the layer's content has diffID ${diffId}, but ${options.expectedDiffId} was expected`,
      );
    }
    try {
      fs.renameSync(tmp, target);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST')
        throw new ConflictError('CONFLICT', `cannot unpack a layer into '${target}': it exists and is not empty`, {
          cause: e,
        });
      throw e;
    }
    return { diffId, size: writer.size, tarSize, compression, entries: writer.entries };
  } catch (e) {
    throw await cleanupAfterAsync(
      asLayerError(e, target),
      () => writer.abort(),
      () => fs.promises.rm(tmp, { recursive: true, force: true }),
    );
  } finally {
    fs.closeSync(dest);
  }
}
