/**
 * A directory of JSON records, one file per record, safe to share between processes.
 *
 * Layout of `dir`:
 *
 * - `<id>.json` — a record, always complete: written to a temp file and renamed into place
 *   ({@link writeFileAtomic}); created with `link(2)` so that creation fails when it exists.
 * - `<id>.lock` — the record's lock, taken by {@link RecordStore.update} and
 *   {@link RecordStore.delete}; deleted with the record, while held (see `lock.ts`).
 * - `.<id>.json.tmp-…` — a write in progress, or left by a crash; never read as a record.
 * - `names/` — the records' unique names ({@link NameRegistry}).
 * - `subsets/` — the index of named subsets, when the store has some ({@link SubsetIndex}).
 *
 * Reads take no lock: a rename is atomic, so a reader sees the old record or the new one.
 * Read-modify-write goes through {@link RecordStore.update}, under the record's exclusive lock.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { channel } from 'node:diagnostics_channel';
import type { z } from 'zod';
import { BerthError, ConflictError, InvalidArgumentError, NotFoundError, TimeoutError } from '../errors.js';
import { createFileExclusiveSync, fsyncDir, readJsonFileSync, writeFileAtomicSync } from './atomic.js';
import { fsError, isErrno, readdirIfExists } from './fs-error.js';
import { withLock } from './lock.js';
import { NameRegistry } from './names.js';
import { SubsetIndex } from './subsets.js';

/** Ids allowed as record ids: safe file names, no leading dot, at most 200 characters. */
export const RECORD_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$/;

/** Published with `{ file, error }` when {@link RecordStore.list} skips an unreadable record. */
export const corruptRecordChannel = channel('berth:state:corrupt');

/** Options of {@link RecordStore}. */
export interface RecordStoreOptions<T> {
  /** The directory holding the records (created on first write). */
  dir: string;
  /** The kind reported by {@link NotFoundError}. Default `other`. */
  kind?: NotFoundError['kind'];
  /** The word for one record in messages, e.g. `container`. Default: `kind`, or `record`. */
  noun?: string;
  /**
   * Validates records on read and on write; on write, its output is what gets stored. It must
   * accept its own output unchanged (no transforms that change a value twice): a text this
   * store wrote or validated is not validated again when read back unchanged.
   */
  schema?: z.ZodType<T>;
  /** `fsync` every change (survives power loss, ~0.4 ms more per write). Default true. */
  fsync?: boolean;
  /** How long to wait (ms) for a record's lock before a TimeoutError. Default: no limit. */
  lockTimeout?: number;
  /** How old a name held by a missing record must be before it is reclaimed. Default 60 000 ms. */
  danglingNameGraceMs?: number;
  /**
   * Named subsets of the records (name → whether a record belongs), indexed so that
   * `list({ subset })` reads only the records in it (see {@link SubsetIndex}). A predicate sees
   * the record as stored and must depend on nothing else. Changing what a predicate means needs a
   * new name (an index built by the old one would be used as it is).
   */
  subsets?: Record<string, (record: T) => boolean>;
}

/** Options of {@link RecordStore.list}. */
export interface RecordListOptions {
  /** Only the records of this subset (one of the store's `subsets`), reading no other record. */
  subset?: string;
}

/** How many validated texts a store remembers (a fingerprint each, ~100 bytes). */
const VALIDATED_CACHE = 100_000;

/**
 * A store of JSON records of type `T`, keyed by id, with unique names.
 *
 * @example
 * ```ts
 * const store = new RecordStore({ dir: '/var/lib/berth/containers', kind: 'container', schema: ContainerRecord });
 * await store.create(id, { id, status: 'created', restarts: 0 });
 * await store.reserveName('web', id);
 * await store.update(id, (r) => ({ ...r, status: 'running' }));
 * const same = await store.get(await store.resolve('web'));
 * ```
 */
export class RecordStore<T extends object> {
  /** The directory holding the records. */
  readonly dir: string;
  /** The records' names (`<dir>/names`). */
  readonly names: NameRegistry;
  readonly #kind: NotFoundError['kind'];
  readonly #noun: string;
  readonly #schema: z.ZodType<T> | undefined;
  readonly #fsync: boolean;
  readonly #lockTimeout: number | undefined;
  /**
   * Per id, a fingerprint (SHA-1) of the text last written or validated here, and the validated
   * record's JSON when it differs from the text: a read that finds the same text skips the schema
   * (measured at 30–150 µs a record), which matters on a container's start path where its record
   * is read back several times, and for a listing of thousands of records. Bounded (at
   * {@link VALIDATED_CACHE}, more than a listing holds); dropped with the record.
   */
  readonly #validated = new Map<string, { hash: string; json: string | undefined }>();
  readonly #subsets: SubsetIndex<T> | undefined;
  readonly #danglingGraceMs: number;

  /** Creates a store over `options.dir`; touches nothing until used. */
  constructor(options: RecordStoreOptions<T>) {
    this.dir = path.resolve(options.dir);
    this.#kind = options.kind ?? 'other';
    this.#noun = options.noun ?? (this.#kind === 'other' ? 'record' : this.#kind);
    this.#schema = options.schema;
    this.#fsync = options.fsync ?? true;
    this.#lockTimeout = options.lockTimeout;
    this.#subsets = options.subsets === undefined ? undefined : new SubsetIndex(this.dir, options.subsets);
    this.#danglingGraceMs = options.danglingNameGraceMs ?? 60_000;
    this.names = new NameRegistry({
      dir: path.join(this.dir, 'names'),
      noun: this.#noun,
      fsync: this.#fsync,
      isLive: (id) => RECORD_ID_PATTERN.test(id) && fs.existsSync(this.#file(id)),
      ...(options.danglingNameGraceMs === undefined ? {} : { danglingGraceMs: options.danglingNameGraceMs }),
    });
  }

  #file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  #checkId(id: string): void {
    if (typeof id !== 'string' || !RECORD_ID_PATTERN.test(id)) {
      throw new InvalidArgumentError('id', `'${String(id).slice(0, 40)}' is not a valid ${this.#noun} id`);
    }
  }

  #notFound(ref: string): NotFoundError {
    return new NotFoundError(this.#kind, ref, `${this.#noun} '${ref}' not found`);
  }

  /** Validates a record read from `file`; throws INTERNAL naming the file when it is invalid. */
  #checkRead(value: unknown, file: string): T {
    if (this.#schema === undefined) return value as T;
    const r = this.#schema.safeParse(value);
    if (r.success) return r.data;
    const issue = r.error.issues[0];
    throw new BerthError(
      'INTERNAL',
      `${this.#noun} record ${file} is invalid (${issue?.path.join('.') || 'record'}: ${issue?.message}); remove it or restore it from a backup`,
      { cause: r.error },
    );
  }

  #serialize(value: T): string {
    if (this.#schema === undefined) return JSON.stringify(value);
    const r = this.#schema.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new InvalidArgumentError(issue?.path.join('.') ?? '', issue?.message ?? 'invalid record', {
        cause: r.error,
      });
    }
    return JSON.stringify(r.data);
  }

  #read(id: string): T | undefined {
    const file = this.#file(id);
    if (this.#schema === undefined) return readJsonFileSync<T>(file);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw fsError(e, 'read', file);
      this.#validated.delete(id);
      return undefined;
    }
    const known = this.#validated.get(id);
    if (known !== undefined && known.hash === fingerprint(text)) return JSON.parse(known.json ?? text) as T;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new BerthError(
        'INTERNAL',
        `state file ${file} is corrupt (${(e as Error).message}); remove it or restore it from a backup`,
        { cause: e },
      );
    }
    const value = this.#checkRead(raw, file);
    this.#remember(id, text, JSON.stringify(value));
    return value;
  }

  #remember(id: string, text: string, json = text): void {
    this.#validated.delete(id);
    this.#validated.set(id, { hash: fingerprint(text), json: json === text ? undefined : json });
    if (this.#validated.size > VALIDATED_CACHE) this.#validated.delete(this.#validated.keys().next().value!);
  }

  /**
   * The record `id`, or undefined when there is none.
   *
   * @throws BerthError (`INTERNAL`) when the file exists but is not a valid record.
   */
  async get(id: string): Promise<T | undefined> {
    this.#checkId(id);
    return this.#read(id);
  }

  /** Whether the record `id` exists. */
  async has(id: string): Promise<boolean> {
    this.#checkId(id);
    return fs.existsSync(this.#file(id));
  }

  /** The ids of every record, in no particular order. Temp files and lock files are skipped. */
  async ids(): Promise<string[]> {
    return this.#ids();
  }

  #ids(): string[] {
    const files = readdirIfExists(this.dir);
    const ids: string[] = [];
    for (const f of files) {
      if (!f.endsWith('.json') || f.startsWith('.')) continue;
      const id = f.slice(0, -5);
      if (RECORD_ID_PATTERN.test(id)) ids.push(id);
    }
    return ids;
  }

  /**
   * Every record, or those of `options.subset`. A record deleted during the listing is left out;
   * a corrupt or invalid one is left out and reported on {@link corruptRecordChannel}.
   *
   * With a subset, only the records with an entry in its index are read, and each is checked
   * against the subset's predicate; an entry that is wrong (a crash between writing a record
   * and its entry) is skipped and deleted. The first listing of a subset that was never built
   * reads every record and builds it; if it cannot (a full disk), it still answers.
   *
   * @throws InvalidArgumentError (`subset`) naming an unknown subset.
   */
  async list(options: RecordListOptions = {}): Promise<T[]> {
    if (options.subset === undefined) return this.#listAll().map(([, rec]) => rec);
    const name = options.subset;
    const belongs = this.#subsets?.predicate(name);
    if (this.#subsets === undefined || belongs === undefined) {
      throw new InvalidArgumentError(
        'subset',
        `'${String(name).slice(0, 40)}' is not a subset of the ${this.#noun} store`,
      );
    }
    const ids = this.#subsets.entries(name);
    if (ids === undefined) {
      const all = this.#listAll();
      try {
        this.#subsets.build(name, all);
      } catch {
        // not built: the next listing scans again
      }
      return all.filter(([, rec]) => belongs(rec)).map(([, rec]) => rec);
    }
    const out: T[] = [];
    for (const id of ids) {
      if (!RECORD_ID_PATTERN.test(id)) continue;
      const rec = this.#readListed(id);
      if (rec !== undefined && belongs(rec)) out.push(rec);
      else await this.#dropExtra(name, id, rec === undefined);
    }
    return out;
  }

  /** Every readable record with its id; see {@link list}. */
  #listAll(): [string, T][] {
    const out: [string, T][] = [];
    for (const id of this.#ids()) {
      const rec = this.#readListed(id);
      if (rec !== undefined) out.push([id, rec]);
    }
    return out;
  }

  /** Record `id` for a listing: undefined when it is gone, or corrupt (then reported). */
  #readListed(id: string): T | undefined {
    try {
      return this.#read(id);
    } catch (error) {
      if (!(error instanceof BerthError) || error.code !== 'INTERNAL') throw error;
      if (corruptRecordChannel.hasSubscribers) corruptRecordChannel.publish({ file: this.#file(id), error });
      return undefined;
    }
  }

  /**
   * Deletes the extra entry of `id` in subset `name`: under the record's lock, if it is free now
   * (no update can be adding the record to the subset meanwhile), when the record still does not
   * belong; when there is no record, once the entry is older than the grace period (a create
   * makes the entry, without a lock, before the record). Best effort.
   */
  async #dropExtra(name: string, id: string, missing: boolean): Promise<void> {
    const subsets = this.#subsets!;
    const belongs = subsets.predicate(name)!;
    try {
      if (missing) {
        const age = subsets.entryAge(name, id);
        if (age !== undefined && age > this.#danglingGraceMs && !fs.existsSync(this.#file(id))) subsets.drop(name, id);
        return;
      }
      await withLock(
        path.join(this.dir, `${id}.lock`),
        () => {
          const rec = this.#read(id);
          if (rec !== undefined && !belongs(rec)) subsets.drop(name, id);
        },
        { timeout: 0 },
      );
    } catch (e) {
      // Busy (an update is under way, and fixes the entry itself), unreadable, or a full disk:
      // the entry stays extra, and the next listing skips it again.
      if (!(e instanceof TimeoutError) && !(e instanceof BerthError)) throw e;
    }
  }

  /**
   * Creates the record `id`.
   *
   * @returns the record as stored (after the schema, if any).
   * @throws ConflictError (`CONFLICT`) when a record `id` exists; InvalidArgumentError when the
   * record does not match the schema.
   */
  async create(id: string, record: T): Promise<T> {
    this.#checkId(id);
    const text = this.#serialize(record);
    this.#subsets?.enter(id, JSON.parse(text) as T);
    if (!createFileExclusiveSync(this.#file(id), text, { fsync: this.#fsync })) {
      throw new ConflictError('CONFLICT', `${this.#noun} '${id}' already exists; choose another id`);
    }
    if (this.#schema !== undefined) this.#remember(id, text);
    return JSON.parse(text) as T;
  }

  /**
   * Read-modify-write of the record `id` under its lock: other updates and deletes, in this
   * process or another, wait. `fn` gets the current record and returns the new one; if it
   * throws, nothing changes. When it returns the record it got (the same object), nothing is
   * written: a no-op update costs no disk write.
   *
   * @returns the record as stored.
   * @throws NotFoundError when there is no record `id`.
   */
  async update(id: string, fn: (record: T) => T | Promise<T>): Promise<T> {
    this.#checkId(id);
    const options = this.#lockTimeout === undefined ? {} : { timeout: this.#lockTimeout };
    return withLock(
      path.join(this.dir, `${id}.lock`),
      async (lock) => {
        const current = this.#read(id);
        if (current === undefined) {
          lock.removeFile();
          throw this.#notFound(id);
        }
        const next = await fn(current);
        if (next === current) return current;
        const text = this.#serialize(next);
        const stored = this.#subsets === undefined ? undefined : (JSON.parse(text) as T);
        if (stored !== undefined) this.#subsets!.enter(id, stored);
        writeFileAtomicSync(this.#file(id), text, { fsync: this.#fsync });
        if (stored !== undefined) this.#subsets!.leave(id, stored);
        if (this.#schema !== undefined) this.#remember(id, text);
        return JSON.parse(text) as T;
      },
      options,
    );
  }

  /**
   * Deletes the record `id` (under its lock, so it waits for a running update). Its names are
   * not touched: release them first with {@link releaseName}.
   *
   * @returns true when deleted, false when there was no such record.
   */
  async delete(id: string): Promise<boolean> {
    this.#checkId(id);
    const options = this.#lockTimeout === undefined ? {} : { timeout: this.#lockTimeout };
    return withLock(
      path.join(this.dir, `${id}.lock`),
      (lock) => {
        const file = this.#file(id);
        this.#validated.delete(id);
        let existed = true;
        try {
          fs.unlinkSync(file);
        } catch (e) {
          if (!isErrno(e, 'ENOENT')) throw fsError(e, 'unlink', file);
          existed = false;
        }
        this.#subsets?.leave(id, undefined);
        lock.removeFile();
        if (existed && this.#fsync) fsyncDir(this.dir);
        return existed;
      },
      options,
    );
  }

  /**
   * Reserves the unique `name` for record `id`; see {@link NameRegistry.reserve}.
   *
   * @throws ConflictError (`NAME_CONFLICT`) naming the holder when another record holds it.
   */
  async reserveName(name: string, id: string): Promise<void> {
    this.#checkId(id);
    return this.names.reserve(name, id);
  }

  /** Releases `name` if record `id` holds it; returns whether it did. */
  async releaseName(name: string, id: string): Promise<boolean> {
    return this.names.release(name, id);
  }

  /** The id of the record holding `name`, or undefined when the name is free. */
  async resolveName(name: string): Promise<string | undefined> {
    return this.names.resolve(name);
  }

  /**
   * Finds a record the way Docker does: by exact name, then exact id, then unique id prefix.
   *
   * @returns the record's id.
   * @throws NotFoundError when nothing matches; InvalidArgumentError when a prefix matches several ids.
   */
  async resolve(ref: string): Promise<string> {
    if (typeof ref !== 'string' || ref.length === 0) {
      throw new InvalidArgumentError('ref', `expected a ${this.#noun} name or id`);
    }
    let byName: string | undefined;
    try {
      byName = this.names.resolveSync(ref);
    } catch (e) {
      if (!(e instanceof InvalidArgumentError)) throw e;
    }
    if (byName !== undefined && RECORD_ID_PATTERN.test(byName) && fs.existsSync(this.#file(byName))) return byName;
    if (RECORD_ID_PATTERN.test(ref) && fs.existsSync(this.#file(ref))) return ref;
    const matches = this.#ids().filter((id) => id.startsWith(ref));
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      const some = matches
        .slice(0, 3)
        .map((id) => id.slice(0, 12))
        .join(', ');
      throw new InvalidArgumentError(
        'id',
        `'${ref}' matches ${matches.length} ${this.#noun}s (${some}…); give more characters of the id`,
      );
    }
    throw this.#notFound(ref);
  }
}

/** The fingerprint of a record's text in the validated-record cache. */
function fingerprint(text: string): string {
  return createHash('sha1').update(text).digest('base64');
}
