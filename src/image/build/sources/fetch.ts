/**
 * `ADD <url>`: downloads a file over HTTP(S) as BuildKit's HTTP source does
 * (`source/http/source.go`, named by `dockerfile2llb/convert_copy.go`): the file is named after
 * the last segment of the URL's path (`__unnamed__` when there is none; `Content-Disposition` is
 * not consulted for a Dockerfile's ADD), written with mode 0600, its modification time is the
 * response's `Last-Modified` (the epoch when absent), redirects are followed (10 at most, as Go's
 * client), and `--checksum` is checked against the content. A downloaded archive is not
 * extracted (Docker's rule). Git URLs are not handled here.
 *
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import { posix, join } from 'node:path';
import { request, type Dispatcher } from 'undici';
import { DownloadError, InvalidArgumentError } from '../../../errors.js';

/** Options of {@link fetchSource}. */
export interface FetchSourceOptions {
  /** `ADD --checksum`: the content's digest, `sha256:<hex>` (also `sha384:`, `sha512:`). A mismatch rejects. */
  checksum?: string;
  /** Stops the download; the partial file is removed. */
  signal?: AbortSignal;
  /** A directory of the build's own; the file is written in a new private directory under it. */
  tmpDir: string;
  /** Largest file accepted, in bytes; default: no limit. A larger one rejects (before or while downloading). */
  maxBytes?: number;
  /** Most redirects followed; default 10. */
  maxRedirects?: number;
}

/** A downloaded file. */
export interface FetchedSource {
  /** The file on the host (mode 0600, in a new directory under `tmpDir`; the caller removes it). */
  path: string;
  /** The name `ADD` gives it: the last segment of the URL's path (percent-decoded), or `__unnamed__`. */
  name: string;
  /** Its modification time: the response's `Last-Modified`, or the epoch. */
  mtime: Date;
  /** sha256 of its content, `sha256:<hex>`. */
  digest: string;
  /** Its size in bytes. */
  size: number;
}

/** A parsed `--checksum` value. */
export interface Checksum {
  /** The hash algorithm. */
  algorithm: 'sha256' | 'sha384' | 'sha512';
  /** The expected digest in lowercase hex. */
  hex: string;
}

const HEX_LENGTH = { sha256: 64, sha384: 96, sha512: 128 } as const;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Parses an `ADD --checksum` value as go-digest does: `<algorithm>:<hex>` with sha256, sha384 or
 * sha512 and the algorithm's length of lowercase hex.
 *
 * @throws InvalidArgumentError (field `checksum`).
 */
export function parseChecksum(value: string): Checksum {
  const m = /^([a-z0-9]+):([a-f0-9]+)$/.exec(value);
  const algorithm = m?.[1] as Checksum['algorithm'] | undefined;
  if (m === null || algorithm === undefined || !(algorithm in HEX_LENGTH)) {
    throw new InvalidArgumentError('checksum', `'${value}' is not a digest (sha256:<64 hex digits>)`);
  }
  const hex = m[2] as string;
  if (hex.length !== HEX_LENGTH[algorithm]) {
    throw new InvalidArgumentError(
      'checksum',
      `'${value}': a ${algorithm} digest has ${HEX_LENGTH[algorithm]} hex digits`,
    );
  }
  return { algorithm, hex };
}

/**
 * The file name `ADD` gives a URL's content: the last segment of its path, percent-decoded and
 * made safe as BuildKit does (`download` when it is empty, `.`, `..` or holds a control
 * character), or `__unnamed__` when the path has none.
 */
export function urlFileName(url: URL): string {
  const base = posix.basename(url.pathname);
  if (base === '' || base === '.' || base === '/') return '__unnamed__';
  let name: string;
  try {
    name = decodeURIComponent(base);
  } catch {
    name = base;
  }
  name = posix.basename(name.trim());
  // eslint-disable-next-line no-control-regex
  if (name === '' || name === '.' || name === '..' || /[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'download';
  return name;
}

/**
 * Downloads `url` for `ADD` (see the module's notes).
 *
 * @throws InvalidArgumentError (field `url`) for a URL that is not http(s); (field `checksum`) for
 *   a malformed checksum, or content whose digest differs (the message names the URL).
 * @throws DownloadError for an error status (`NOT_FOUND` for 404/410), a failed connection, too
 *   many redirects, or a file larger than `maxBytes`.
 *
 * @example
 * ```ts
 * const f = await fetchSource('https://example.com/tool.tar.gz', { tmpDir, checksum: 'sha256:…' });
 * // f.name === 'tool.tar.gz'; copied as it is (not extracted)
 * ```
 */
export async function fetchSource(url: string, options: FetchSourceOptions): Promise<FetchedSource> {
  let target: URL;
  try {
    target = new URL(url);
  } catch (e) {
    throw new InvalidArgumentError('url', `'${url}' is not a URL`, { cause: e });
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new InvalidArgumentError('url', `'${url}' is not an http or https URL`);
  }
  const checksum = options.checksum === undefined ? undefined : parseChecksum(options.checksum);
  options.signal?.throwIfAborted();
  const name = urlFileName(target);
  const res = await get(url, target, options);
  const dir = fs.mkdtempSync(join(options.tmpDir, 'url-'));
  const path = join(dir, name);
  try {
    const hashes = { sha256: createHash('sha256'), extra: undefined as Hash | undefined };
    if (checksum !== undefined && checksum.algorithm !== 'sha256') hashes.extra = createHash(checksum.algorithm);
    const size = await save(url, res, path, hashes, options);
    const digest = `sha256:${hashes.sha256.digest('hex')}`;
    if (checksum !== undefined) {
      const got = checksum.algorithm === 'sha256' ? digest : `${checksum.algorithm}:${hashes.extra?.digest('hex')}`;
      const expected = `${checksum.algorithm}:${checksum.hex}`;
      if (got !== expected) {
        throw new InvalidArgumentError('checksum', `digest mismatch for ${url}: ${got} (expected: ${expected})`);
      }
    }
    const modified = Date.parse(String(res.headers['last-modified'] ?? ''));
    const mtime = new Date(Number.isNaN(modified) ? 0 : modified);
    fs.utimesSync(path, mtime, mtime);
    return { path, name, mtime, digest, size };
  } catch (e) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch (cleanup) {
      throw new AggregateError(
        [e, cleanup],
        `download of ${url} failed, and its temporary files could not be removed`,
        {
          cause: cleanup,
        },
      );
    }
    throw e;
  }
}

/** The successful response to GET `url`, after redirects. */
async function get(url: string, first: URL, options: FetchSourceOptions): Promise<Dispatcher.ResponseData> {
  const max = options.maxRedirects ?? 10;
  let target = first;
  for (let redirects = 0; ; redirects++) {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(target, {
        method: 'GET',
        headers: { 'user-agent': 'berth' },
        signal: options.signal ?? null,
        headersTimeout: 60_000,
        bodyTimeout: 120_000,
      });
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw new DownloadError(url, `cannot download ${url}: ${(e as Error)?.message ?? e}`, undefined, { cause: e });
    }
    const location = res.headers.location;
    if (REDIRECTS.has(res.statusCode) && typeof location === 'string') {
      await res.body.dump();
      if (redirects >= max) throw new DownloadError(url, `cannot download ${url}: more than ${max} redirects`);
      const next = new URL(location, target);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new DownloadError(url, `cannot download ${url}: redirected to '${next.href}', which is not http(s)`);
      }
      target = next;
      continue;
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      await res.body.dump();
      throw new DownloadError(
        url,
        `cannot download ${url}: the server answered ${res.statusCode}${target === first ? '' : ` for ${target.href}`}`,
        res.statusCode,
      );
    }
    const length = Number(res.headers['content-length']);
    if (options.maxBytes !== undefined && Number.isFinite(length) && length > options.maxBytes) {
      await res.body.dump();
      throw new DownloadError(url, tooLarge(url, options.maxBytes), res.statusCode);
    }
    return res;
  }
}

/** Writes the body of `res` to the new file `path` (mode 0600), hashing it; returns its size. */
async function save(
  url: string,
  res: Dispatcher.ResponseData,
  path: string,
  hashes: { sha256: Hash; extra: Hash | undefined },
  options: FetchSourceOptions,
): Promise<number> {
  const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  let size = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      if (options.maxBytes !== undefined && size > options.maxBytes) {
        throw new DownloadError(url, tooLarge(url, options.maxBytes), res.statusCode);
      }
      hashes.sha256.update(chunk);
      hashes.extra?.update(chunk);
      for (let off = 0; off < chunk.byteLength;) off += fs.writeSync(fd, chunk, off);
    }
  } catch (e) {
    res.body.destroy();
    if (options.signal?.aborted) throw options.signal.reason;
    if (e instanceof DownloadError || (e as NodeJS.ErrnoException)?.syscall !== undefined) throw e; // the disk's, not the network's
    throw new DownloadError(url, `the download of ${url} broke off: ${(e as Error)?.message ?? e}`, res.statusCode, {
      cause: e,
    });
  } finally {
    fs.closeSync(fd);
  }
  return size;
}

function tooLarge(url: string, max: number): string {
  return `cannot download ${url}: it is larger than the limit of ${max} bytes`;
}
