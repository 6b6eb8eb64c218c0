/**
 * Named subsets of a {@link RecordStore}'s records, kept as an index beside them so that listing
 * a small subset (the running containers among thousands) reads only its records.
 *
 * Layout: `<dir>/subsets/<name>/<id>`, an empty file per record in the subset, and
 * `<dir>/subsets/<name>/.built` once the subset has been built from every record (a store written
 * before the subset existed, or whose subset directory was deleted, is scanned once).
 *
 * The one invariant: **a record in a subset has its entry** (the index is a superset). Writers
 * keep it without a lock of their own, under the record's lock they already hold: an entry is
 * made before a record that belongs is written, and deleted only after a record that does not
 * belong is written (or deleted). A crash between the two steps leaves an extra entry, never a
 * missing one. Readers never trust an entry: each record listed is read and checked against the
 * subset's predicate; an extra entry is skipped and deleted (under the record's lock, when it is
 * free; an entry whose record does not exist, once it is older than a grace period, as a create
 * makes the entry before the record).
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { fsError, isErrno } from './fs-error.js';

const BUILT = '.built';

/** The entry files of a store's subsets; see the module notes. */
export class SubsetIndex<T> {
  readonly #root: string;
  readonly #subsets: ReadonlyMap<string, (record: T) => boolean>;

  /** Index of the subsets `subsets` (name → predicate) of the store in `dir`. */
  constructor(dir: string, subsets: Record<string, (record: T) => boolean>) {
    this.#root = path.join(dir, 'subsets');
    this.#subsets = new Map(Object.entries(subsets));
  }

  /** The names of the subsets. */
  names(): string[] {
    return [...this.#subsets.keys()];
  }

  /** The predicate of subset `name`, or undefined when there is no such subset. */
  predicate(name: string): ((record: T) => boolean) | undefined {
    return this.#subsets.get(name);
  }

  #entry(name: string, id: string): string {
    return path.join(this.#root, name, id);
  }

  /**
   * Before `record` is written as record `id`: makes its entry in every subset it belongs to
   * (and refreshes the entry's time, which the grace period of a missing record counts from).
   *
   * @throws KernelError when an entry cannot be made (the record must not be written then).
   */
  enter(id: string, record: T): void {
    for (const [name, belongs] of this.#subsets) {
      if (!belongs(record)) continue;
      const file = this.#entry(name, id);
      const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC;
      let fd: number;
      try {
        fd = fs.openSync(file, flags, 0o644);
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw fsError(e, 'open', file);
        try {
          fs.mkdirSync(path.dirname(file), { recursive: true });
          fd = fs.openSync(file, flags, 0o644);
        } catch (e2) {
          throw fsError(e2, 'open', file);
        }
      }
      fs.closeSync(fd);
    }
  }

  /**
   * After record `id` was written as `record` (undefined: deleted): deletes its entries in the
   * subsets it is not in. Best effort: an entry that cannot be deleted stays as an extra one,
   * which readers skip and delete later.
   */
  leave(id: string, record: T | undefined): void {
    for (const [name, belongs] of this.#subsets) {
      if (record !== undefined && belongs(record)) continue;
      try {
        this.drop(name, id);
      } catch {
        // an extra entry: allowed by the invariant
      }
    }
  }

  /** Deletes the entry of record `id` in subset `name`, if any. */
  drop(name: string, id: string): void {
    const file = this.#entry(name, id);
    try {
      fs.unlinkSync(file);
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw fsError(e, 'unlink', file);
    }
  }

  /** The ids with an entry in subset `name`, or undefined when the subset has not been built. */
  entries(name: string): string[] | undefined {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(this.#root, name));
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw fsError(e, 'readdir', path.join(this.#root, name));
    }
    if (!names.includes(BUILT)) return undefined;
    return names.filter((n) => !n.startsWith('.'));
  }

  /** Milliseconds since the entry of `id` in `name` was made, or undefined when there is none. */
  entryAge(name: string, id: string): number | undefined {
    const st = fs.statSync(this.#entry(name, id), { throwIfNoEntry: false });
    return st === undefined ? undefined : Date.now() - st.mtimeMs;
  }

  /**
   * Builds subset `name` from `records` (every record of the store, read after this index's
   * writers started keeping it): makes the missing entries, then marks the subset built.
   *
   * @throws KernelError when an entry or the mark cannot be written (e.g. a full disk).
   */
  build(name: string, records: Iterable<[string, T]>): void {
    const belongs = this.#subsets.get(name)!;
    const only = new SubsetIndex<T>(path.dirname(this.#root), { [name]: belongs });
    for (const [id, rec] of records) only.enter(id, rec);
    const mark = path.join(this.#root, name, BUILT);
    try {
      fs.mkdirSync(path.dirname(mark), { recursive: true });
      fs.writeFileSync(mark, '1\n');
    } catch (e) {
      throw fsError(e, 'write', mark);
    }
  }
}
