/**
 * `ADD` of a local archive: which files are archives, and extracting one into a step's root.
 *
 * A file is an archive when BuildKit would unpack it (`solver/llbsolver/file/unpack.go`): a
 * regular file (not a symlink) whose content, decompressed when it starts with the magic bytes of
 * gzip, bzip2, xz or zstd, starts with a valid tar header. Its name does not matter: a `.tar.gz`
 * named `data.bin` is unpacked, and a `.tar` that is not a tar is copied as it is.
 *
 * Extraction follows BuildKit's untar: the destination directory is resolved inside the root
 * (symlinks followed inside it, as in a chroot) and made with its parents (owned by the `--chown`
 * user); entries keep the archive's owners unless `--chown` is given (then every entry gets it);
 * a later entry replaces an existing file, directory over directory merges, a non-directory
 * replaces a directory; `.wh.` names are plain files (whiteouts are not interpreted); the
 * archive's root entry does not change the destination. The entries go through berth's one
 * extractor of hostile archives (`TarExtractor`, kind `add`): an entry that climbs out with `..`
 * or would be written through a symlink (one of the archive's own, or one an earlier `RUN` left in
 * the destination) is refused with `UnsafeLayerError` where BuildKit's chroot would follow the
 * link inside the destination.
 *
 * @module
 */
import { createReadStream, promises as fsp } from 'node:fs';
import * as fs from 'node:fs';
import { ReadableStream, DecompressionStream } from 'node:stream/web';
import { BerthError, InvalidArgumentError, UnsafeLayerError } from '../../../errors.js';
import { ensureDirInRoot } from '../context/root.js';
import { TarExtractor } from '../../layer-writer.js';
import { detectCompression } from '../../layer-unpack.js';
import { decodeZstd } from '../../pull.js';
import { TarReader, type TarEntry, type TarSink } from '../../tar-reader.js';

/** What {@link detectArchive} finds: a tar and how it is compressed (`tar`: not at all). */
export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/** Options of {@link extractArchiveInto}. */
export interface ExtractArchiveOptions {
  /** The archive file on the host (a file of the build context, or a fetched one). */
  archive: string;
  /** The step's root file system (a mounted rootfs; hostile: earlier steps made its content). */
  destRoot: string;
  /** The directory inside `destRoot` to extract into (made when missing), e.g. `/app`. */
  dest: string;
  /** `ADD --chown`: the owner of every entry and of the directories made for `dest`. */
  chown?: { uid: number; gid: number };
  /** Stops the extraction between chunks (what was written stays; the step fails). */
  signal?: AbortSignal;
}

/** What {@link extractArchiveInto} did. */
export interface ExtractArchiveResult {
  /** The archive's kind. */
  kind: ArchiveKind;
  /** Number of entries. */
  entries: number;
  /** Sum of the files' sizes in bytes. */
  size: number;
}

/** How much decompressed data is read at most to find the first header (PAX/GNU records before it included). */
const DETECT_LIMIT = (1 << 20) + 4096;

/**
 * Whether `path` is an archive `ADD` unpacks, and of which kind; null for anything else (copied
 * as it is): not a regular file, no valid tar header after decompression, or a compressed stream
 * that does not decompress.
 *
 * @example
 * ```ts
 * await detectArchive('ctx/rootfs.bin'); // 'gzip' for a gzip-compressed tar, whatever its name
 * ```
 */
export async function detectArchive(path: string): Promise<ArchiveKind | null> {
  const st = await fsp.lstat(path);
  if (!st.isFile()) return null;
  const fh = await fsp.open(path, 'r');
  let head: Buffer;
  try {
    const buf = Buffer.alloc(6);
    const { bytesRead } = await fh.read(buf, 0, 6, 0);
    head = buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  const kind = kindOf(head);
  let found = false;
  const sink: TarSink = { entry: () => void (found = true), data: () => {}, entryEnd: () => {} };
  const reader = new TarReader(sink);
  let read = 0;
  const source = createReadStream(path, { end: DETECT_LIMIT * 2 });
  try {
    for await (const chunk of decompress(source, kind)) {
      reader.write(chunk.subarray(0, DETECT_LIMIT - read));
      read += chunk.byteLength;
      if (found || read >= DETECT_LIMIT || reader.done) break;
    }
  } catch {
    return null; // not a tar, or not a valid compressed stream: BuildKit copies it as it is
  } finally {
    source.destroy();
  }
  return found ? kind : null;
}

/**
 * Extracts the archive `archive` (tar, or tar compressed with gzip, bzip2, xz or zstd) into the
 * directory `dest` inside `destRoot`, as `ADD` does (see the module's notes).
 *
 * @throws InvalidArgumentError (field `archive`) when the file is not an archive (see
 *   {@link detectArchive}) or is corrupt past its first header; (field `dest`) when `dest` is not
 *   a directory inside the root.
 * @throws UnsafeLayerError when an entry would land outside `dest` or be written through a symlink.
 *
 * @example
 * ```ts
 * await extractArchiveInto({ archive: 'ctx/app.tar.gz', destRoot: rootfs, dest: '/srv', chown: { uid: 1000, gid: 1000 } });
 * ```
 */
export async function extractArchiveInto(options: ExtractArchiveOptions): Promise<ExtractArchiveResult> {
  const { archive, destRoot, dest, chown, signal } = options;
  signal?.throwIfAborted();
  const kind = await detectArchive(archive);
  if (kind === null) throw new InvalidArgumentError('archive', `'${archive}' is not a tar archive`);
  const rootFd = fs.openSync(destRoot, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  let destFd = -1;
  try {
    destFd = ensureDirInRoot(rootFd, dest, chown, 'dest');
    const extractor = new TarExtractor(destFd, 'add');
    const reader = new TarReader(chown === undefined ? extractor : owned(extractor, chown));
    try {
      for await (const chunk of decompress(createReadStream(archive), kind)) {
        signal?.throwIfAborted();
        reader.write(chunk);
      }
      reader.end();
      extractor.finish();
    } catch (e) {
      extractor.abort();
      throw e;
    }
    return { kind, entries: extractor.entries, size: extractor.size };
  } catch (e) {
    throw asArchiveError(e, archive, kind);
  } finally {
    if (destFd >= 0) fs.closeSync(destFd);
    fs.closeSync(rootFd);
  }
}

/** A sink that gives every entry the owner `chown` before `sink` sees it (`ADD --chown`). */
function owned(sink: TarSink, chown: { uid: number; gid: number }): TarSink {
  return {
    entry: (e: TarEntry) => sink.entry({ ...e, uid: chown.uid, gid: chown.gid }),
    data: (c) => sink.data(c),
    entryEnd: () => sink.entryEnd(),
  };
}

/** The archive kind the first bytes announce (before checking there is a tar inside). */
function kindOf(head: Uint8Array): ArchiveKind {
  const c = detectCompression(head);
  return c === 'none' ? 'tar' : c;
}

/** The uncompressed bytes of `source`, compressed as `kind`. */
async function* decompress(source: AsyncIterable<Uint8Array>, kind: ArchiveKind): AsyncGenerator<Uint8Array> {
  switch (kind) {
    case 'tar':
      return yield* source;
    case 'zstd':
      return yield* decodeZstd(source);
    case 'gzip':
      return yield* ReadableStream.from(source).pipeThrough(new DecompressionStream('gzip'));
    case 'xz': {
      const mod = await import('xz-decompress'); // CommonJS: its exports are the default export in ESM
      const { XzReadableStream } = ('default' in mod ? mod.default : mod) as typeof import('xz-decompress');
      return yield* new XzReadableStream(ReadableStream.from(source) as globalThis.ReadableStream<Uint8Array>);
    }
    case 'bzip2':
      return yield* bunzip2(source);
  }
}

/** bzip2 through unbzip2-stream, a pure-JavaScript decoder that emits synchronously on write. */
async function* bunzip2(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const { default: unbzip2 } = await import('unbzip2-stream');
  const d = unbzip2();
  const out: Uint8Array[] = [];
  let failed: unknown;
  d.on('data', (c: Uint8Array) => out.push(c));
  d.on('error', (e: unknown) => (failed ??= e));
  for await (const chunk of source) {
    d.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if (failed !== undefined) throw failed;
    while (out.length > 0) yield out.shift() as Uint8Array;
  }
  d.end();
  if (failed !== undefined) throw failed;
  while (out.length > 0) yield out.shift() as Uint8Array;
}

/** A failure as the build reports it: berth errors as they are (a malformed tar named as the archive), a decoder's error as a corrupt archive. */
function asArchiveError(e: unknown, archive: string, kind: ArchiveKind): unknown {
  if (e instanceof UnsafeLayerError) return e;
  if (e instanceof InvalidArgumentError && e.field === 'layer') {
    return new InvalidArgumentError('archive', `'${archive}': ${e.message.replace(/^invalid layer: /, '')}`, {
      cause: e,
    });
  }
  if (e instanceof BerthError || (e as NodeJS.ErrnoException)?.syscall !== undefined) return e;
  if ((e as Error)?.name === 'AbortError') return e;
  return new InvalidArgumentError(
    'archive',
    `'${archive}' is a corrupt ${kind} archive: ${(e as Error)?.message ?? e}`,
    {
      cause: e,
    },
  );
}
