/**
 * Debian's `docker-registry` (the reference distribution server) on 127.0.0.1 for benchmarks,
 * with filesystem storage in a temp directory, and a minimal client that pushes blobs and a
 * manifest with monolithic uploads (so the benchmark depends on nothing in berth's own push).
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';

/** A running registry. */
export interface LocalRegistry {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** Stops the server and removes its storage. */
  stop(): Promise<void>;
}

const REGISTRY_BIN = '/usr/bin/docker-registry';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts `docker-registry` on a free loopback port with storage under `dir`. */
export async function startRegistry(dir: string): Promise<LocalRegistry> {
  if (!fs.existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} is missing; run \`npm run setup\``);
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  fs.mkdirSync(join(dir, 'data'), { recursive: true });
  const config = join(dir, 'config.yml');
  fs.writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${host}`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const r = await request(`http://${host}/v2/`);
      await r.body.dump();
      if (r.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Uploads one blob (monolithic: POST, then PUT with the digest). */
export async function pushBlob(
  host: string,
  repo: string,
  digest: string,
  body: Buffer | string,
  size: number,
): Promise<void> {
  const head = await request(`http://${host}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  await head.body.dump();
  if (head.statusCode === 200) return;
  const start = await request(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.body.dump();
  const location = start.headers.location;
  if (start.statusCode !== 202 || typeof location !== 'string')
    throw new Error(`upload start: HTTP ${start.statusCode}`);
  const url = new URL(location, `http://${host}`);
  url.searchParams.set('digest', digest);
  const data = typeof body === 'string' ? fs.createReadStream(body) : body;
  const put = await request(url, {
    method: 'PUT',
    body: data,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
  });
  const text = await put.body.text();
  if (put.statusCode !== 201) throw new Error(`upload of ${digest}: HTTP ${put.statusCode} ${text}`);
}

/** Puts a manifest under `tag`. */
export async function pushManifest(
  host: string,
  repo: string,
  tag: string,
  mediaType: string,
  manifest: string,
): Promise<void> {
  const r = await request(`http://${host}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    body: manifest,
    headers: { 'content-type': mediaType },
  });
  const text = await r.body.text();
  if (r.statusCode !== 201) throw new Error(`manifest put: HTTP ${r.statusCode} ${text}`);
}
