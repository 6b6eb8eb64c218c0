/**
 * Credentials from the Docker config, as the Docker CLI finds them: `$DOCKER_CONFIG/config.json`
 * (default `~/.docker/config.json`), per-registry `credHelpers`, then the default `credsStore`,
 * then `auths` (base64 `user:password` in `auth`, or `identitytoken` / `registrytoken`).
 * Credential helpers are the `docker-credential-<name>` programs, run with `get` and the server
 * URL on stdin; a helper that is not installed is skipped.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../errors.js';
import { credentialKeys, helperServerUrl } from './hosts.js';
import type { RegistryAuth } from './types.js';

interface DockerConfigAuth {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

interface DockerConfigFile {
  auths?: Record<string, DockerConfigAuth>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/** The Docker config file that applies: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker'), 'config.json');
}

function readConfig(file: string): DockerConfigFile | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined; // no Docker config: no stored credentials
    throw new BerthError('INVALID_ARGUMENT', `cannot read the Docker config ${file}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  try {
    return JSON.parse(text) as DockerConfigFile;
  } catch (e) {
    throw new BerthError('INVALID_ARGUMENT', `the Docker config ${file} is not valid JSON; fix or remove it`, {
      cause: e,
    });
  }
}

/** Runs `docker-credential-<helper> get`; undefined when the helper is missing or knows nothing. */
export function runCredentialHelper(
  helper: string,
  serverUrl: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RegistryAuth | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.resume();
    child.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? resolve(undefined) : reject(e)));
    child.on('close', (code) => {
      const text = Buffer.concat(out).toString('utf8');
      if (code !== 0) return resolve(undefined); // "credentials not found" and the like
      try {
        const r = JSON.parse(text) as { Username?: string; Secret?: string };
        if (!r.Secret) return resolve(undefined);
        resolve(
          r.Username === '<token>' ? { identitytoken: r.Secret } : { username: r.Username ?? '', password: r.Secret },
        );
      } catch (e) {
        reject(
          new BerthError('REGISTRY_AUTH', `the credential helper docker-credential-${helper} gave no valid answer`, {
            cause: e,
          }),
        );
      }
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(serverUrl);
  });
}

function fromAuthEntry(entry: DockerConfigAuth | undefined): RegistryAuth | undefined {
  if (entry === undefined) return undefined;
  if (entry.identitytoken) return { identitytoken: entry.identitytoken };
  if (entry.registrytoken) return { registrytoken: entry.registrytoken };
  if (entry.auth) {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    const i = text.indexOf(':');
    if (i > 0) return { username: text.slice(0, i), password: text.slice(i + 1) };
  }
  if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  return undefined;
}

/**
 * The credentials the Docker config holds for the registry `domain`, or undefined.
 *
 * @throws BerthError (`INVALID_ARGUMENT`) when the config file is not valid JSON.
 */
export async function dockerCredentials(
  domain: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RegistryAuth | undefined> {
  const config = readConfig(dockerConfigPath(env));
  if (config === undefined) return undefined;
  const keys = credentialKeys(domain);
  const helper = keys.map((k) => config.credHelpers?.[k]).find((h) => h) ?? config.credsStore;
  if (helper) {
    const found = await runCredentialHelper(helper, helperServerUrl(domain), env);
    if (found !== undefined) return found;
  }
  const auths = config.auths ?? {};
  for (const k of keys) {
    const found = fromAuthEntry(auths[k]);
    if (found !== undefined) return found;
  }
  return undefined;
}
