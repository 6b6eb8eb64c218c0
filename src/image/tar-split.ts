/**
 * Tar-split: what it takes to rebuild a layer's archive byte for byte from its unpacked
 * directory, so that the rebuilt archive has the layer's diffID again (for `save`, `push`,
 * `export`), without keeping a second copy of the content. The idea is Docker's tar-split.
 *
 * While a layer is unpacked, {@link TarSplitRecorder} observes the parser and writes a gzip'd
 * sequence of records:
 *
 * ```text
 * 'R' u32 length, bytes          raw archive bytes: headers, PAX/GNU records, padding, trailer
 * 'F' u32 length, u64 size, path content of a regular file: read `size` bytes from <fs>/<path>
 * ```
 *
 * Content that is not stored as a regular file in the layer directory (the body of a whiteout
 * entry, AUFS metadata) is kept inline as raw bytes. {@link assembleLayerTar} replays the records.
 * An archive that wrote the same file name twice keeps only the last content on disk; the rebuilt
 * archive then differs, which the reader detects by size or by the digest the caller checks.
 *
 * @module
 */
import * as fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { BerthError, UnsafeLayerError } from '../errors.js';
import { cleanEntryName } from './extract-paths.js';
import { WHITEOUT_META_PREFIX, WHITEOUT_PREFIX } from './layer-writer.js';
import type { TarEntry, TarSink } from './tar-reader.js';

const RAW = 0x52; // 'R'
const FILE = 0x46; // 'F'
const FLUSH_AT = 1 << 18;

/** Records a layer's tar-split while it is unpacked; pass it as `observer` to `unpackLayer`. */
export class TarSplitRecorder implements TarSink {
  readonly #gz = zlib.createGzip({ level: 1 });
  readonly #done: Promise<void>;
  #raw: Buffer[] = [];
  #rawLength = 0;
  #out: Buffer[] = [];
  #outLength = 0;
  #inline = false;

  /** A recorder writing to the new file `file`. */
  constructor(file: string) {
    this.#done = pipeline(this.#gz, fs.createWriteStream(file, { flags: 'wx', mode: 0o644 }));
    // Awaited by finish(); a rejection before then must not count as unhandled.
    this.#done.catch(() => undefined);
  }

  /** {@inheritDoc TarSink.raw} */
  raw(chunk: Uint8Array): void {
    this.#raw.push(Buffer.from(chunk)); // a copy: the parser reuses its header buffer
    this.#rawLength += chunk.byteLength;
    if (this.#rawLength >= FLUSH_AT) this.#flushRaw();
  }

  /** {@inheritDoc TarSink.entry} */
  entry(e: TarEntry): void {
    this.#inline = false;
    if (e.type !== 'file' || e.size === 0) return;
    let rel: string;
    try {
      rel = cleanEntryName(e.name);
    } catch {
      // A name the layer writer refuses (and fails the layer for): kept inline, as below.
      rel = '';
    }
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    if (rel === '' || base.startsWith(WHITEOUT_PREFIX) || rel.startsWith(WHITEOUT_META_PREFIX)) {
      this.#inline = true;
      return;
    }
    this.#flushRaw();
    const path = Buffer.from(rel, 'latin1');
    const head = Buffer.alloc(13);
    head[0] = FILE;
    head.writeUInt32LE(8 + path.length, 1);
    head.writeBigUInt64LE(BigInt(e.size), 5);
    this.#push(head);
    this.#push(path);
  }

  /** {@inheritDoc TarSink.data} */
  data(chunk: Uint8Array): void {
    if (this.#inline) this.raw(chunk);
  }

  /** {@inheritDoc TarSink.entryEnd} */
  entryEnd(): void {
    this.#inline = false;
  }

  /** Writes what is buffered and closes the file. */
  async finish(): Promise<void> {
    this.#flushRaw();
    this.#flushOut();
    this.#gz.end();
    await this.#done;
  }

  /** Abandons the recording (the caller removes the file). */
  abort(): void {
    this.#gz.destroy();
  }

  /** Closes the current raw record. */
  #flushRaw(): void {
    if (this.#rawLength === 0) return;
    const head = Buffer.alloc(5);
    head[0] = RAW;
    head.writeUInt32LE(this.#rawLength, 1);
    this.#push(head);
    for (const b of this.#raw) this.#push(b);
    this.#raw = [];
    this.#rawLength = 0;
  }

  /** Queues record bytes; hands them to gzip in large writes (each write is a thread-pool job). */
  #push(b: Buffer): void {
    this.#out.push(b);
    this.#outLength += b.length;
    if (this.#outLength >= FLUSH_AT) this.#flushOut();
  }

  #flushOut(): void {
    if (this.#outLength === 0) return;
    this.#gz.write(Buffer.concat(this.#out, this.#outLength));
    this.#out = [];
    this.#outLength = 0;
  }
}

/** Opens `rel` under `root` for reading without following any symlink on the way. */
function openInside(root: string, rel: Buffer): number {
  const parts = rel.toString('latin1').split('/');
  let cur = Buffer.from(root, 'utf8');
  for (let i = 0; i < parts.length - 1; i++) {
    cur = Buffer.concat([cur, Buffer.from(`/${parts[i]}`, 'latin1')]);
    if (!fs.lstatSync(cur).isDirectory()) {
      throw new UnsafeLayerError(
        rel.toString('latin1'),
        `cannot rebuild the layer archive: a parent of '${rel.toString('utf8')}' is no longer a directory`,
      );
    }
  }
  const path = Buffer.concat([Buffer.from(`${root}/`, 'utf8'), rel]);
  return fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
}

async function* fileContent(root: string, rel: Buffer, size: number): AsyncGenerator<Buffer> {
  const fd = openInside(root, rel);
  try {
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(left, 1 << 20));
      const n = await new Promise<number>((resolve, reject) =>
        fs.read(fd, buf, 0, buf.length, null, (e, r) => (e ? reject(e) : resolve(r))),
      );
      if (n === 0) break;
      left -= n;
      yield buf.subarray(0, n);
    }
    if (left !== 0) {
      throw new BerthError(
        'INTERNAL',
        `cannot rebuild the layer archive: '${rel.toString('utf8')}' is shorter than recorded; the layer directory was modified`,
      );
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Rebuilds the original (uncompressed) archive of a layer from its unpacked directory `fsDir`
 * and the tar-split file recorded when it was unpacked.
 *
 * @throws BerthError (`INTERNAL`) when the directory no longer matches the recording.
 */
export async function* assembleLayerTar(fsDir: string, splitFile: string): AsyncGenerator<Buffer> {
  let pending = Buffer.alloc(0);
  const gunzip = fs.createReadStream(splitFile).pipe(zlib.createGunzip());
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let off = 0;
      while (pending.length - off >= 5) {
        const tag = pending[off];
        const len = pending.readUInt32LE(off + 1);
        if (pending.length - off - 5 < len) break;
        const body = pending.subarray(off + 5, off + 5 + len);
        off += 5 + len;
        if (tag === RAW) yield body;
        else if (tag === FILE)
          yield* fileContent(fsDir, Buffer.from(body.subarray(8)), Number(body.readBigUInt64LE(0)));
        else throw new BerthError('INTERNAL', `tar-split file ${splitFile} is corrupt`);
      }
      pending = pending.subarray(off);
    }
    if (pending.length !== 0) throw new BerthError('INTERNAL', `tar-split file ${splitFile} is truncated`);
  } finally {
    gunzip.destroy();
  }
}
