/**
 * `ADD <url>` against a real HTTP server on 127.0.0.1: the file's name, mode and time, redirects,
 * `--checksum`, error statuses and the size limit, and that nothing is left behind on failure.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DownloadError, InvalidArgumentError } from '../../src/errors.js';
import { fetchSource } from '../../src/image/build/sources/fetch.js';
import { tempDir } from '../helpers/tmp.js';

const BODY = Buffer.from('#!/bin/sh\necho tool\n'.repeat(1000));
const SHA256 = `sha256:${createHash('sha256').update(BODY).digest('hex')}`;
const SHA512 = `sha512:${createHash('sha512').update(BODY).digest('hex')}`;
const LAST_MODIFIED = 'Wed, 21 Oct 2015 07:28:00 GMT';

let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/tool.tar.gz' || path === '/dl/') {
      res.writeHead(200, { 'last-modified': LAST_MODIFIED, 'content-disposition': 'attachment; filename="other"' });
      res.end(BODY);
    } else if (path === '/plain') {
      res.end('no last-modified');
    } else if (path.startsWith('/hop/')) {
      const n = Number(path.slice(5));
      res.writeHead(302, { location: n === 0 ? '/tool.tar.gz' : `/hop/${n - 1}` }).end();
    } else if (path === '/chunked-big') {
      res.writeHead(200); // no content-length: the limit is enforced while reading
      res.write(Buffer.alloc(64 * 1024));
      res.end(Buffer.alloc(64 * 1024));
    } else if (path === '/forbidden') {
      res.writeHead(403).end('no');
    } else if (path === '/broken') {
      res.writeHead(200, { 'content-length': '100000' });
      res.write('partial');
      setImmediate(() => res.destroy());
    } else {
      res.writeHead(404).end('not here');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
});

describe('fetchSource', () => {
  it('downloads a file named after the URL (not Content-Disposition), mode 0600, timed by Last-Modified', async () => {
    const tmpDir = tempDir('build-fetch');
    const f = await fetchSource(`${base}/tool.tar.gz?v=1`, { tmpDir });
    expect(f.name).toBe('tool.tar.gz');
    expect(f.path.startsWith(`${tmpDir}/`)).toBe(true);
    expect(fs.readFileSync(f.path)).toEqual(BODY);
    expect(f.digest).toBe(SHA256);
    expect(f.size).toBe(BODY.length);
    const st = fs.statSync(f.path);
    expect(st.mode & 0o777).toBe(0o600);
    expect(f.mtime.toISOString()).toBe('2015-10-21T07:28:00.000Z');
    expect(st.mtimeMs).toBe(f.mtime.getTime());
  });

  it('names a URL whose path ends in a slash after its last segment, and times a file without Last-Modified at the epoch', async () => {
    const tmpDir = tempDir('build-fetch');
    expect((await fetchSource(`${base}/dl/`, { tmpDir })).name).toBe('dl');
    const plain = await fetchSource(`${base}/plain`, { tmpDir });
    expect(plain.mtime.getTime()).toBe(0);
    expect(fs.statSync(plain.path).mtimeMs).toBe(0);
  });

  it('follows redirects, up to maxRedirects', async () => {
    const tmpDir = tempDir('build-fetch');
    const f = await fetchSource(`${base}/hop/3`, { tmpDir, checksum: SHA256 });
    expect(f.name).toBe('3'); // the name comes from the URL as written, as BuildKit's frontend has it
    expect(f.digest).toBe(SHA256);
    const err = await fetchSource(`${base}/hop/3`, { tmpDir, maxRedirects: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err).toMatchObject({ code: 'DOWNLOAD_FAILED', url: `${base}/hop/3` });
  });

  it('accepts a matching sha512 checksum, and rejects a mismatch naming the URL, leaving nothing behind', async () => {
    const tmpDir = tempDir('build-fetch');
    await expect(fetchSource(`${base}/tool.tar.gz`, { tmpDir, checksum: SHA512 })).resolves.toMatchObject({
      digest: SHA256,
    });
    const before = fs.readdirSync(tmpDir).length;
    const wrong = `sha256:${'0'.repeat(64)}`;
    const err = await fetchSource(`${base}/tool.tar.gz`, { tmpDir, checksum: wrong }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toMatchObject({ field: 'checksum' });
    expect((err as Error).message).toContain(`${base}/tool.tar.gz`);
    expect((err as Error).message).toContain(SHA256);
    expect(fs.readdirSync(tmpDir).length).toBe(before);
  });

  it.each([
    ['/missing', 404, 'NOT_FOUND'],
    ['/forbidden', 403, 'PERMISSION_DENIED'],
  ])('an answer %s is a DownloadError with status %i (%s)', async (path, status, code) => {
    const tmpDir = tempDir('build-fetch');
    const err = await fetchSource(`${base}${path}`, { tmpDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err).toMatchObject({ status, code, url: `${base}${path}` });
    expect(fs.readdirSync(tmpDir)).toEqual([]);
  });

  it('refuses a file larger than maxBytes, by its Content-Length or while reading', async () => {
    const tmpDir = tempDir('build-fetch');
    for (const path of ['/tool.tar.gz', '/chunked-big']) {
      const err = await fetchSource(`${base}${path}`, { tmpDir, maxBytes: 1000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DownloadError);
      expect((err as Error).message).toContain('larger than the limit of 1000 bytes');
    }
    expect(fs.readdirSync(tmpDir)).toEqual([]);
  });

  it('a connection that breaks off, or no server at all, is a DownloadError', async () => {
    const tmpDir = tempDir('build-fetch');
    await expect(fetchSource(`${base}/broken`, { tmpDir })).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED' });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(fetchSource(`http://127.0.0.1:${port}/x`, { tmpDir })).rejects.toBeInstanceOf(DownloadError);
    expect(fs.readdirSync(tmpDir)).toEqual([]);
  });

  it('rejects a URL that is not http(s) and a malformed checksum before any request', async () => {
    const tmpDir = tempDir('build-fetch');
    await expect(fetchSource('ftp://127.0.0.1/x', { tmpDir })).rejects.toMatchObject({ field: 'url' });
    await expect(fetchSource('not a url', { tmpDir })).rejects.toMatchObject({ field: 'url' });
    await expect(fetchSource(`${base}/tool.tar.gz`, { tmpDir, checksum: 'sha256:xyz' })).rejects.toMatchObject({
      field: 'checksum',
    });
    expect(fs.readdirSync(tmpDir)).toEqual([]);
  });

  it('an aborted download rejects with the reason and leaves nothing', async () => {
    const tmpDir = tempDir('build-fetch');
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(fetchSource(`${base}/tool.tar.gz`, { tmpDir, signal: ac.signal })).rejects.toThrow('stop');
    expect(fs.readdirSync(tmpDir)).toEqual([]);
  });
});
