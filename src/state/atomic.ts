/**
 * Atomic file replacement, the way crun's status.c and containerd's local writer do it: write a
 * uniquely named temp file in the same directory, optionally `fsync` it, `rename(2)` it over the
 * target, optionally `fsync` the directory. Readers see the old file or the new one, never a
 * mix; a crash (even `kill -9`) at any point leaves the old or the new content; a full disk fails
 * with a `KernelError` (ENOSPC) and leaves the old content. The temp file is removed on every
 * failure that the process survives; one left by a crash is named so that {@link isTempFileName}
 * recognises it and directory listings skip it.
 *
 * The work is done with synchronous `fs` calls even in the promise-returning variants. This is
 * deliberate, and measured on the project's VM (ext4, 2 KiB JSON):
 *
 * | operation | sync calls | `fs/promises` |
 * |---|---|---|
 * | replace, no fsync | ~0.2 ms | ~0.35 ms |
 * | replace, fsync file + dir | ~0.6 ms | ~0.85 ms |
 * | read + parse | ~0.01 ms | ~0.24 ms |
 *
 * Each `fs/promises` step is a round trip through libuv's thread pool, which costs more than the
 * call itself for files this small; the container start path (≤ 15 ms for create + start +
 * wait + remove) cannot afford it. The price is that the event loop is blocked for the duration,
 * which is bounded by the fsync when one is asked for.
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { BerthError, cleanupAfter } from '../errors.js';
import { fsError, isErrno } from './fs-error.js';

/** Options of {@link writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /**
   * `fsync` the new file before the rename and the directory after it, so the change survives a
   * power loss, not only a process crash. Default `true`. Without it the change still survives
   * `kill -9` of the writer.
   */
  fsync?: boolean;
  /** Permission bits of the new file. Default `0o644`. */
  mode?: number;
}

const TEMP_MARK = '.tmp-';
const TEMP_NAME = /^\..*\.tmp-[0-9a-z]+-[0-9a-z]+$/;
let tempCounter = 0;

/**
 * True for the name (not path) of a temp file made by this module: `.<target>.tmp-<pid>-<n>`.
 * Directory listings must skip these: they may be half-written.
 */
export function isTempFileName(name: string): boolean {
  return TEMP_NAME.test(name);
}

function tempPathFor(target: string): string {
  const unique = `${process.pid.toString(36)}-${(tempCounter++).toString(36)}${Math.floor(Math.random() * 0x10000).toString(36)}`;
  return path.join(path.dirname(target), `.${path.basename(target)}${TEMP_MARK}${unique}`);
}

/** `fsync(2)` a directory, making renames and unlinks in it durable. */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (e) {
    throw fsError(e, 'open', dir);
  }
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    throw fsError(e, 'fsync', dir);
  } finally {
    fs.closeSync(fd);
  }
}

/** Creates a temp file next to `target` holding `data`; creates the directory when missing. */
function writeTemp(target: string, data: string | Uint8Array, options: WriteFileAtomicOptions): string {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  for (let attempt = 0; ; attempt++) {
    const tmp = tempPathFor(target);
    let fd: number;
    try {
      fd = fs.openSync(tmp, 'wx', options.mode ?? 0o644);
    } catch (e) {
      if (isErrno(e, 'EEXIST') && attempt < 8) continue;
      if (isErrno(e, 'ENOENT') && attempt === 0) {
        try {
          fs.mkdirSync(path.dirname(target), { recursive: true });
        } catch (e2) {
          throw fsError(e2, 'mkdir', path.dirname(target));
        }
        continue;
      }
      throw fsError(e, 'open', tmp);
    }
    try {
      let off = 0;
      while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
      if (options.fsync ?? true) fs.fsyncSync(fd);
      fs.closeSync(fd);
      return tmp;
    } catch (e) {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed by the failing step
      }
      throw cleanupAfter(fsError(e, 'write', tmp), () => unlinkIfExists(tmp));
    }
  }
}

/** Removes `p`; one already gone is no error. */
function unlinkIfExists(p: string): void {
  try {
    fs.unlinkSync(p);
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw fsError(e, 'unlink', p);
  }
}

/** Synchronous {@link writeFileAtomic}. */
export function writeFileAtomicSync(
  target: string,
  data: string | Uint8Array,
  options: WriteFileAtomicOptions = {},
): void {
  const tmp = writeTemp(target, data, options);
  try {
    fs.renameSync(tmp, target);
  } catch (e) {
    throw cleanupAfter(fsError(e, 'rename', target), () => unlinkIfExists(tmp));
  }
  if (options.fsync ?? true) fsyncDir(path.dirname(target));
}

/**
 * Replaces `target` with `data` atomically (temp file + rename); see the module notes.
 *
 * @example
 * ```ts
 * await writeFileAtomic('/var/lib/berth/containers/abc.json', JSON.stringify(record), { fsync: true });
 * ```
 * @throws KernelError when a step fails (e.g. ENOSPC); `target` is then unchanged.
 */
export async function writeFileAtomic(
  target: string,
  data: string | Uint8Array,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  writeFileAtomicSync(target, data, options);
}

/**
 * Synchronous {@link createFileExclusive}: writes a temp file, then `link(2)`s it to `target`,
 * which fails if `target` exists. Returns false (and writes nothing) in that case.
 */
export function createFileExclusiveSync(
  target: string,
  data: string | Uint8Array,
  options: WriteFileAtomicOptions = {},
): boolean {
  const tmp = writeTemp(target, data, options);
  try {
    fs.linkSync(tmp, target);
  } catch (e) {
    if (!isErrno(e, 'EEXIST')) throw cleanupAfter(fsError(e, 'link', target), () => unlinkIfExists(tmp));
    unlinkIfExists(tmp);
    return false;
  }
  try {
    unlinkIfExists(tmp);
  } catch {
    // `target` is made, which is what was asked: a temp name left beside it is no failure.
  }
  if (options.fsync ?? true) fsyncDir(path.dirname(target));
  return true;
}

/**
 * Creates `target` with `data` atomically, only if it does not exist yet: readers never see a
 * partial file, and of several concurrent creators exactly one wins.
 *
 * @returns true when created, false when `target` already existed (it is left untouched).
 */
export async function createFileExclusive(
  target: string,
  data: string | Uint8Array,
  options: WriteFileAtomicOptions = {},
): Promise<boolean> {
  return createFileExclusiveSync(target, data, options);
}

/** Synchronous {@link readJsonFile}. */
export function readJsonFileSync<T = unknown>(file: string): T | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw fsError(e, 'read', file);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new BerthError(
      'INTERNAL',
      `state file ${file} is corrupt (${(e as Error).message}); remove it or restore it from a backup`,
      {
        cause: e,
      },
    );
  }
}

/**
 * Reads and parses a JSON file.
 *
 * @returns the parsed value, or undefined when the file does not exist.
 * @throws BerthError (`INTERNAL`) naming the file when it is not valid JSON; KernelError when it
 * cannot be read.
 */
export async function readJsonFile<T = unknown>(file: string): Promise<T | undefined> {
  return readJsonFileSync<T>(file);
}
