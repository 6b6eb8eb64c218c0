/**
 * A real registry for tests: Debian's `docker-registry` (distribution 2.x) started on a free port
 * of 127.0.0.1, with no auth, htpasswd (bcrypt) auth, or token auth trusting a token service that
 * the test runs itself ({@link startTokenService}). Everything lives in a temp directory removed
 * with the registry.
 *
 * @example
 * ```ts
 * await using reg = await startRegistry({ htpasswd: { username: 'u', password: 'p' } });
 * await new Image(`${reg.host}/test/busybox:1`, { engine }).push({ auth: { username: 'u', password: 'p' } });
 * ```
 *
 * @module
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';

/** The registry binary from Debian's `docker-registry` package. */
export const REGISTRY_BIN = '/usr/bin/docker-registry';

/** True when the registry binary is installed. */
export function hasRegistry(): boolean {
  return existsSync(REGISTRY_BIN);
}

/** A port nobody listens on right now, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Token auth settings for {@link startRegistry}. */
export interface RegistryTokenAuth {
  /** The token endpoint, e.g. `http://127.0.0.1:5001/token`. */
  realm: string;
  /** The service name the registry expects in tokens' `aud`. */
  service: string;
  /** The issuer the registry expects in tokens' `iss`. */
  issuer: string;
  /** PEM of the certificate(s) whose keys sign tokens. */
  rootCertBundle: string;
}

/** Options of {@link startRegistry}. */
export interface StartRegistryOptions {
  /** Require Basic auth with this user (stored bcrypt-hashed in an htpasswd file). */
  htpasswd?: { username: string; password: string };
  /** Require bearer tokens from a token service. */
  token?: RegistryTokenAuth;
}

/** A running registry. */
export interface RegistryServer extends AsyncDisposable {
  /** `127.0.0.1:<port>`: use it as the domain of references. */
  host: string;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** The registry's storage root. */
  dataDir: string;
  /** Stops the registry and removes its files. */
  stop(): Promise<void>;
}

async function waitReady(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${log()}`);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not start: ${log()}`);
}

/** Starts a registry on 127.0.0.1; stop it with `stop()` or `await using`. */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<RegistryServer> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-registry-'));
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
  ];
  if (options.htpasswd) {
    const hash = bcrypt.hashSync(options.htpasswd.password, 5);
    writeFileSync(join(dir, 'htpasswd'), `${options.htpasswd.username}:${hash}\n`);
    lines.push('auth:', '  htpasswd:', '    realm: berth-test', `    path: ${join(dir, 'htpasswd')}`);
  }
  if (options.token) {
    writeFileSync(join(dir, 'root.pem'), options.token.rootCertBundle);
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${options.token.realm}`,
      `    service: ${options.token.service}`,
      `    issuer: ${options.token.issuer}`,
      `    rootcertbundle: ${join(dir, 'root.pem')}`,
    );
  }
  writeFileSync(join(dir, 'config.yml'), `${lines.join('\n')}\n`);
  const child = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(url, child, () => output);
  } catch (e) {
    await stop();
    throw e;
  }
  return { host: `127.0.0.1:${port}`, url, dataDir: join(dir, 'data'), stop, [Symbol.asyncDispose]: stop };
}

/** A token service for registry token auth. */
export interface TokenService extends AsyncDisposable {
  /** The token endpoint URL (the registry's `realm`). */
  realm: string;
  /** The service name tokens are issued for. */
  service: string;
  /** The issuer name. */
  issuer: string;
  /** PEM of the self-signed certificate whose key signs tokens. */
  certPem: string;
  /** Every token request received: the scopes asked and the user (absent: anonymous). */
  requests: Array<{ scopes: string[]; user: string | undefined }>;
  /** Stops the service. */
  stop(): Promise<void>;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** An RSA key and a self-signed certificate for it, made with the `openssl` command. */
export function makeSigningCert(): { key: KeyObject; certPem: string; certDer: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'berth-token-cert-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '2',
        '-subj',
        '/CN=berth-test-token',
      ],
      { stdio: 'ignore' },
    );
    const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    return {
      key: createPrivateKey(readFileSync(join(dir, 'key.pem'))),
      certPem,
      certDer: Buffer.from(new X509Certificate(certPem).raw),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Starts a token service on 127.0.0.1 that signs RS256 JWTs (with the certificate in `x5c`) as
 * the distribution token spec describes. Authenticated users (`users`) get every action they ask
 * for; anonymous requests get `anonymous` actions (default: none).
 */
export async function startTokenService(
  options: { users?: Record<string, string>; anonymous?: string[]; expiresIn?: number } = {},
): Promise<TokenService> {
  const { key, certPem, certDer } = makeSigningCert();
  const service = 'berth-test-registry';
  const issuer = 'berth-test-issuer';
  const requests: TokenService['requests'] = [];
  const handle = (req: IncomingMessage): { status: number; body: unknown } => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter(Boolean);
    let user: string | undefined;
    const authz = req.headers.authorization;
    if (authz?.startsWith('Basic ')) {
      const [u, ...rest] = Buffer.from(authz.slice(6), 'base64').toString().split(':');
      if (options.users?.[u ?? ''] !== rest.join(':'))
        return { status: 401, body: { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] } };
      user = u;
    }
    requests.push({ scopes, user });
    const access = scopes.map((s) => {
      const [type, ...mid] = s.split(':');
      const actions = (mid.pop() ?? '').split(',');
      const allowed = user !== undefined ? actions : actions.filter((a) => (options.anonymous ?? []).includes(a));
      return { type, name: mid.join(':'), actions: allowed };
    });
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = options.expiresIn ?? 300;
    const header = { alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] };
    const claims = {
      iss: issuer,
      sub: user ?? '',
      aud: service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
    return {
      status: 200,
      body: { token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() },
    };
  };
  const server: Server = createServer((req, res) => {
    const { status, body } = handle(req);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const stop = (): Promise<void> => new Promise((r) => server.close(() => r()));
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPem,
    requests,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** sha256 of `data` as `sha256:<hex>`. */
export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
