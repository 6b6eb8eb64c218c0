/**
 * The layer store: each layer unpacked once, by diffID, and shared by every image that lists it.
 *
 * ```text
 * <root>/layers/
 *   sha256/<diffID hex>/fs/            the unpacked tree (an overlayfs lowerdir; never modified)
 *   sha256/<diffID hex>/layer.json     { diffId, size, tarSize, created }
 *   sha256/<diffID hex>/tar-split.gz   what rebuilds the original archive (see tar-split.ts)
 *   staging/<pid>-<start>-<random>/    unpacks in progress (and archives being spooled, layers
 *                                      being deleted: trash-<pid>-<start>-<random>), named by
 *                                      their owner process (pid and start time, see ownerTag)
 *   lock                               the store lock (shared with the image records)
 * ```
 *
 * Adding a layer is two steps, like containerd's snapshotter prepare/commit: {@link LayerStore.stage}
 * unpacks into a private staging directory (slow, no lock), then {@link LayerStore.commit} renames
 * it into place under the lock — or discards it when another process committed the same diffID
 * first, so two concurrent unpacks both succeed and leave one directory. Removal happens under the
 * same lock, after the caller checked that no image record references the layer; that is why an
 * image record must be written under the lock in the same critical section as the commit of its
 * layers.
 *
 * A process killed while it unpacks, spools or deletes leaves its staging entry behind. The next
 * store opened on the root ({@link LayerStore.sweep}, run when an engine opens its image store)
 * removes every entry whose owner no longer runs, at once: the owner's pid and start time are
 * in the entry's name, so a reused pid is not taken for the owner.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { BerthError, cleanupAfterAsync, NotFoundError } from '../errors.js';
import { readJsonFileSync, writeFileAtomicSync } from '../state/atomic.js';
import { withLock } from '../state/lock.js';
import { fsError, isNoSpace, readdirIfExists } from '../state/fs-error.js';
import { ownerIsDead, ownerTag } from '../runtime/proc.js';
import { digestHex } from './digest.js';
import { unpackLayer, type LayerSource, type UnpackOptions } from './layer-unpack.js';
import { TarSplitRecorder, assembleLayerTar } from './tar-split.js';

/** What the store knows about a layer. */
export interface LayerInfo {
  /** sha256 of the uncompressed archive. */
  diffId: string;
  /** Sum of the entries' content sizes in bytes. */
  size: number;
  /** Length of the uncompressed archive in bytes. */
  tarSize: number;
  /** When it was unpacked (RFC 3339). */
  created: string;
}

/** A layer unpacked into staging, not yet visible. Commit it (under the lock) or discard it. */
export interface StagedLayer extends LayerInfo {
  /** The staging directory. */
  readonly dir: string;
  /** Removes the staging directory (idempotent). */
  discard(): Promise<void>;
}

/** How old an entry named by pid only (before owner tags) must be to be taken as abandoned. */
const STALE_STAGING_MS = 60 * 60 * 1000;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // A probe: EPERM means alive but another user's; ESRCH, gone.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Unpacked layers under `<root>/layers`. */
export class LayerStore {
  /** `<root>/layers`. */
  readonly dir: string;
  /** The lock file that guards commits and removals. */
  readonly lockFile: string;
  readonly #sha: string;
  readonly #staging: string;
  #sweeping: Promise<void> | undefined;

  /**
   * A store under the engine root; touches nothing until used.
   *
   * @param lockFile - The lock shared with whoever records references to layers.
   */
  constructor(root: string, lockFile = join(root, 'layers', 'lock')) {
    this.dir = join(root, 'layers');
    this.lockFile = lockFile;
    this.#sha = join(this.dir, 'sha256');
    this.#staging = join(this.dir, 'staging');
  }

  #layerDir(diffId: string): string {
    return join(this.#sha, digestHex(diffId, 'diffId'));
  }

  /** The absolute path of a layer's unpacked tree (whether or not it exists). */
  fsDir(diffId: string): string {
    return join(this.#layerDir(diffId), 'fs');
  }

  /** The layer's metadata, or undefined when the layer is not stored. */
  get(diffId: string): LayerInfo | undefined {
    return readJsonFileSync<LayerInfo>(join(this.#layerDir(diffId), 'layer.json'));
  }

  /** Whether the layer is stored. */
  has(diffId: string): boolean {
    return this.get(diffId) !== undefined;
  }

  /** The diffIDs of every stored layer. */
  list(): string[] {
    const names = readdirIfExists(this.#sha);
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  /**
   * Unpacks `source` into staging (no lock held) and records its tar-split.
   *
   * @throws UnsafeLayerError, InvalidArgumentError as {@link unpackLayer} does; nothing is left.
   */
  async stage(source: LayerSource, options: Omit<UnpackOptions, 'observer'> = {}): Promise<StagedLayer> {
    fs.mkdirSync(this.#staging, { recursive: true, mode: 0o700 });
    void this.sweep();
    const dir = join(this.#staging, `${ownerTag()}-${randomBytes(8).toString('hex')}`);
    fs.mkdirSync(dir, 0o700);
    const discard = async (): Promise<void> => {
      await fs.promises.rm(dir, { recursive: true, force: true });
    };
    const recorder = new TarSplitRecorder(join(dir, 'tar-split.gz'));
    try {
      const r = await unpackLayer(source, join(dir, 'fs'), { ...options, observer: recorder });
      await recorder.finish();
      const info: LayerInfo = { diffId: r.diffId, size: r.size, tarSize: r.tarSize, created: new Date().toISOString() };
      writeFileAtomicSync(join(dir, 'layer.json'), JSON.stringify(info), { fsync: false });
      return { ...info, dir, discard };
    } catch (e) {
      throw await cleanupAfterAsync(isNoSpace(e) ? fsError(e, 'write', dir) : e, () => recorder.abort(), discard);
    }
  }

  /**
   * Makes a staged layer visible. **Call it while holding {@link LayerStore.lockFile}**. When the
   * layer is already stored (committed by another process meanwhile), the staged copy is
   * discarded and the stored one kept.
   */
  async commit(staged: StagedLayer): Promise<LayerInfo> {
    const target = this.#layerDir(staged.diffId);
    const existing = this.get(staged.diffId);
    if (existing !== undefined) {
      await staged.discard();
      return existing;
    }
    fs.mkdirSync(this.#sha, { recursive: true, mode: 0o700 });
    // A directory without layer.json is the leftover of an interrupted removal: replace it.
    if (fs.existsSync(target)) await this.#trash(target);
    fs.renameSync(staged.dir, target);
    return { diffId: staged.diffId, size: staged.size, tarSize: staged.tarSize, created: staged.created };
  }

  /**
   * Stages and commits in one call, taking the lock for the commit. Concurrent calls with the
   * same content (from any process) all succeed and leave one directory.
   */
  async unpack(source: LayerSource, options: Omit<UnpackOptions, 'observer'> = {}): Promise<LayerInfo> {
    const staged = await this.stage(source, options);
    try {
      return await withLock(this.lockFile, () => this.commit(staged));
    } finally {
      await staged.discard();
    }
  }

  /**
   * Deletes a layer. **Call it while holding {@link LayerStore.lockFile}**, after checking that
   * nothing references it. Returns whether it existed.
   */
  async remove(diffId: string): Promise<boolean> {
    const dir = this.#layerDir(diffId);
    if (!fs.existsSync(dir)) return false;
    await this.#trash(dir);
    return true;
  }

  /**
   * The layer's original uncompressed archive, rebuilt from its tree and tar-split; the digest is
   * checked as it streams, and a mismatch fails the stream at its end.
   *
   * @throws NotFoundError when the layer is not stored.
   */
  async *openTar(diffId: string): AsyncGenerator<Buffer> {
    if (!this.has(diffId)) throw new NotFoundError('other', diffId, `layer ${diffId} is not in the layer store`);
    const hash = createHash('sha256');
    for await (const chunk of assembleLayerTar(this.fsDir(diffId), join(this.#layerDir(diffId), 'tar-split.gz'))) {
      hash.update(chunk);
      yield chunk;
    }
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== diffId)
      throw new BerthError(
        'INTERNAL',
        `layer ${diffId} rebuilt as ${got}: its files were modified; remove and re-import the image`,
      );
  }

  /** Renames a layer directory out of sight (atomic), then deletes it. */
  async #trash(dir: string): Promise<void> {
    fs.mkdirSync(this.#staging, { recursive: true, mode: 0o700 });
    const trash = join(this.#staging, `trash-${ownerTag()}-${randomBytes(8).toString('hex')}`);
    fs.renameSync(dir, trash);
    await fs.promises.rm(trash, { recursive: true, force: true });
  }

  /**
   * Removes the staging entries of processes that no longer run (a call while one runs shares
   * its promise): each is renamed out of sight at once (so it is gone when this returns), then
   * deleted in the background; the promise resolves when they are deleted.
   * Entries named by pid only (made before owner tags) go once their pid is gone and they are an
   * hour old. Never rejects: an entry that cannot be removed now is left to the next sweep.
   */
  sweep(): Promise<void> {
    if (this.#sweeping) return this.#sweeping;
    let names: string[];
    try {
      names = fs.readdirSync(this.#staging);
    } catch {
      // No staging directory: nothing to sweep (a sweep is best effort).
      names = [];
    }
    const now = Date.now();
    const doomed: string[] = [];
    for (const name of names) {
      const dead = ownerIsDead(name) ?? ownerIsDead(name, 'trash-');
      const p = join(this.#staging, name);
      try {
        if (dead === undefined) {
          const m = /^(?:trash-)?([0-9]+)-[0-9a-f]+$/.exec(name);
          if (!m || pidAlive(Number(m[1])) || now - fs.lstatSync(p).mtimeMs < STALE_STAGING_MS) continue;
        } else if (!dead) continue;
        // Taken over: another store sweeping at the same time finds it gone, not half deleted.
        const mine = join(this.#staging, `trash-${ownerTag()}-${randomBytes(8).toString('hex')}`);
        fs.renameSync(p, mine);
        doomed.push(mine);
      } catch {
        // Taken over by another process's sweep.
      }
    }
    const sweeping = Promise.all(
      // Best effort: what cannot be deleted now stays in the trash for the next sweep.
      doomed.map((d) => fs.promises.rm(d, { recursive: true, force: true }).catch(() => undefined)),
    ).then(() => {
      this.#sweeping = undefined;
    });
    this.#sweeping = sweeping;
    return sweeping;
  }
}
