/**
 * Unique names for records (container names, …), reserved without a global lock.
 *
 * A name is a symbolic link `<dir>/<encoded name>` whose target is the holder's id. `symlink(2)`
 * fails with EEXIST when the name exists, so of several processes reserving one name at once
 * exactly one wins, and the holder is read back with one `readlink(2)`. Only releasing and
 * reclaiming take a lock (`<dir>/.lock`), held for two system calls: releasing reads the holder
 * and unlinks the link, and nothing may change the link in between.
 *
 * Names are encoded to be safe file names: bytes outside `[A-Za-z0-9_.-]`, and a leading `.`,
 * become `%XX`, so every Docker container name is stored as itself.
 *
 * A name whose holder no longer exists (the process crashed between reserving the name and
 * creating the record, or between deleting the record and releasing the name) is reclaimed by
 * the next reservation once it is older than `danglingGraceMs`. Callers should create the record
 * first and then reserve its name (and release the name before deleting the record), so that a
 * live name always points at an existing record.
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConflictError, InvalidArgumentError } from '../errors.js';
import { fsyncDir } from './atomic.js';
import { fsError, isErrno } from './fs-error.js';
import { withLock } from './lock.js';

/** Options of {@link NameRegistry}. */
export interface NameRegistryOptions {
  /** The directory holding the names (created when needed). */
  dir: string;
  /** What the names name, for messages, e.g. `container`. Default `record`. */
  noun?: string;
  /** Make reservations durable across power loss. Default true. */
  fsync?: boolean;
  /** Whether a holder id still exists; names held by ids that do not may be reclaimed. */
  isLive?: (id: string) => boolean;
  /** How old (ms) a reservation by a missing holder must be before it is reclaimed. Default 60 000. */
  danglingGraceMs?: number;
}

const SAFE = /[A-Za-z0-9_.-]/;
const MAX_ENCODED = 250;

function mkdirp(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw fsError(e, 'mkdir', dir);
  }
}

function unlink(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw fsError(e, 'unlink', file);
  }
}

/** Encodes `name` into a file name; see the module notes. */
export function encodeName(name: string): string {
  if (typeof name !== 'string' || name.length === 0)
    throw new InvalidArgumentError('name', 'expected a non-empty string');
  let out = '';
  for (const ch of name) {
    if (SAFE.test(ch) && !(out === '' && ch === '.')) out += ch;
    else for (const b of Buffer.from(ch)) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (out.length > MAX_ENCODED) throw new InvalidArgumentError('name', `'${name.slice(0, 40)}…' is too long`);
  return out;
}

/** Decodes a file name made by {@link encodeName}. */
export function decodeName(file: string): string {
  return decodeURIComponent(file);
}

/**
 * A set of unique names, each held by one id.
 *
 * @example
 * ```ts
 * const names = new NameRegistry({ dir: '/var/lib/berth/containers/names', noun: 'container' });
 * await names.reserve('web', id);        // ConflictError NAME_CONFLICT if another id holds it
 * await names.resolve('web');            // → id
 * await names.release('web', id);        // → true
 * ```
 */
export class NameRegistry {
  /** The directory holding the names. */
  readonly dir: string;
  readonly #noun: string;
  readonly #fsync: boolean;
  readonly #isLive: ((id: string) => boolean) | undefined;
  readonly #grace: number;

  /** Creates a registry over `options.dir`; touches nothing until used. */
  constructor(options: NameRegistryOptions) {
    this.dir = path.resolve(options.dir);
    this.#noun = options.noun ?? 'record';
    this.#fsync = options.fsync ?? true;
    this.#isLive = options.isLive;
    this.#grace = options.danglingGraceMs ?? 60_000;
  }

  get #lockPath(): string {
    return path.join(this.dir, '.lock');
  }

  #readHolder(link: string): string | undefined {
    try {
      return fs.readlinkSync(link);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw fsError(e, 'readlink', link);
    }
  }

  #isDangling(link: string, holder: string): boolean {
    if (this.#isLive === undefined || this.#isLive(holder)) return false;
    const st = fs.lstatSync(link, { throwIfNoEntry: false });
    return st !== undefined && Date.now() - st.mtimeMs >= this.#grace;
  }

  /**
   * Reserves `name` for `id`. Reserving a name `id` already holds succeeds.
   *
   * @throws ConflictError (`NAME_CONFLICT`) naming the holder when another id holds it.
   */
  async reserve(name: string, id: string): Promise<void> {
    const link = path.join(this.dir, encodeName(name));
    for (let attempt = 0; ; attempt++) {
      try {
        fs.symlinkSync(id, link);
        if (this.#fsync) fsyncDir(this.dir);
        return;
      } catch (e) {
        if (isErrno(e, 'ENOENT') && attempt === 0) {
          mkdirp(this.dir);
          continue;
        }
        if (!isErrno(e, 'EEXIST')) throw fsError(e, 'symlink', link);
      }
      const holder = this.#readHolder(link);
      if (holder === id) return;
      if (holder === undefined && attempt < 8) continue; // released meanwhile: try again
      if (holder !== undefined && attempt < 8 && this.#isDangling(link, holder)) {
        await withLock(this.#lockPath, () => {
          if (this.#readHolder(link) === holder) unlink(link);
        });
        continue;
      }
      throw new ConflictError(
        'NAME_CONFLICT',
        `the ${this.#noun} name '${name}' is already in use by ${this.#noun} ${holder?.slice(0, 12) ?? '(unknown)'}; ` +
          `remove or rename that ${this.#noun}, or choose another name`,
      );
    }
  }

  /**
   * Releases `name` if `id` holds it.
   *
   * @returns true when released, false when the name was free or held by another id.
   */
  async release(name: string, id: string): Promise<boolean> {
    const link = path.join(this.dir, encodeName(name));
    if (this.#readHolder(link) !== id) return false;
    return withLock(this.#lockPath, () => {
      if (this.#readHolder(link) !== id) return false;
      unlink(link);
      if (this.#fsync) fsyncDir(this.dir);
      return true;
    });
  }

  /** Synchronous {@link resolve}. */
  resolveSync(name: string): string | undefined {
    return this.#readHolder(path.join(this.dir, encodeName(name)));
  }

  /** The id holding `name`, or undefined when it is free. */
  async resolve(name: string): Promise<string | undefined> {
    return this.resolveSync(name);
  }

  /** Every reserved name with its holder's id. */
  async entries(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let files: string[];
    try {
      files = fs.readdirSync(this.dir);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return out;
      throw fsError(e, 'readdir', this.dir);
    }
    for (const f of files) {
      if (f.startsWith('.')) continue;
      const holder = this.#readHolder(path.join(this.dir, f));
      if (holder !== undefined) out.set(decodeName(f), holder);
    }
    return out;
  }
}
