/**
 * A container's file system as Docker's verbs see it: `docker diff`, `docker export`, `docker cp`
 * in both directions, and the layer of `docker commit`.
 *
 * The pieces: `union.ts` reads the union of a container's upper dir over its image layers
 * without mounting anything (diff, export, the commit layer); `copy.ts` copies in and out of its
 * root through a directory fd, with the one tar extractor and packer of `image/`. The container
 * manager (`service.ts`) owns the records and delegates these verbs here.
 *
 * @module
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError } from '../../errors.js';
import { closeFd, openProcessRoot } from '../../runtime/host.js';
import { packItems } from '../../image/tar-writer.js';
import { isSameProcess } from '../../runtime/proc.js';
import { acquireLock } from '../../state/lock.js';
import { SNAPSHOT_LAYER, type ContainerRecord } from '../record.js';
import { lowerDirs, type ContainerPaths } from '../spec.js';
import { extractPath, mountDetachedOverlay, packPath, type TarSource } from './copy.js';
import { upperChanges, walkUnion, walkUpper, type ContainerChange } from './union.js';

/** What the file operations need from the container manager. */
export interface ContainerFsHost {
  /** The record of container `ref` (an id, a prefix of one, or a name), as the manager reads it. */
  get(ref: string): Promise<ContainerRecord>;
  /** The file layout of container `id`. */
  paths(id: string): ContainerPaths;
  /** The directory of layer `diffId`'s unpacked tree. */
  layerDir(diffId: string): string;
  /** Whether a record says the container's process runs (running, paused or restarting). */
  isActive(rec: ContainerRecord): boolean;
  /** How messages name a container. */
  label(rec: ContainerRecord): string;
}

/** The targets the runtime mounts over (it makes empty stubs for them in the upper dir). */
export function mountPoints(rec: ContainerRecord): Set<string> {
  return new Set([
    '/etc/hosts',
    '/etc/hostname',
    '/etc/resolv.conf',
    ...rec.config.mounts.map((m) => m.target.replace(/\/+$/, '')),
  ]);
}

/** The file operations on the containers of one manager. */
export class ContainerFs {
  readonly #host: ContainerFsHost;

  /** File operations over the records and layout `host` gives. */
  constructor(host: ContainerFsHost) {
    this.#host = host;
  }

  /** The container's lower dirs (its layers' trees), topmost first. */
  #lower(rec: ContainerRecord): string[] {
    return lowerDirs(rec, (d) => this.#host.layerDir(d));
  }

  /** The changes of the container's file system against its image, as `docker diff`. */
  async diff(ref: string): Promise<ContainerChange[]> {
    const rec = await this.#host.get(ref);
    return upperChanges(this.#host.paths(rec.id).upper, this.#lower(rec), mountPoints(rec));
  }

  /**
   * The container's whole file system as a tar stream, as `docker export`: the union of its
   * upper dir over its image layers, read without mounting anything. Looked up when first read.
   */
  export(ref: string): Readable {
    const gen = async function* (this: ContainerFs): AsyncGenerator<Buffer> {
      const rec = await this.#host.get(ref);
      yield* packItems(walkUnion([this.#host.paths(rec.id).upper, ...this.#lower(rec)]));
    };
    return Readable.from(gen.call(this), { objectMode: false, highWaterMark: 1 << 20 });
  }

  /**
   * The container's upper dir as an image layer tar (whiteouts as `.wh.` entries), for commit. A
   * container forked from a snapshot: its upper dir merged with the snapshot layers it sits on
   * (the layer is then its changes over its image).
   */
  async layerTar(ref: string): Promise<{ record: ContainerRecord; tar: AsyncGenerator<Buffer> }> {
    const rec = await this.#host.get(ref);
    const lower = this.#lower(rec);
    const first = rec.layers.findIndex((d) => !SNAPSHOT_LAYER.test(d));
    const snapshots = first < 0 ? lower.length : first;
    const uppers = [this.#host.paths(rec.id).upper, ...lower.slice(0, snapshots)];
    return { record: rec, tar: packItems(walkUpper(uppers, lower.slice(snapshots), mountPoints(rec))) };
  }

  /**
   * A tar of `path` inside the container, as `docker cp CONTAINER:path -`. The path is resolved
   * inside the container's root (symlinks never lead out of it). Looked up when first read.
   */
  copyFrom(ref: string, path: string): Readable {
    const gen = async function* (this: ContainerFs): AsyncGenerator<Buffer> {
      const root = await this.#openRoot(ref);
      try {
        yield* packPath(root.fd, path);
      } finally {
        root.release();
      }
    };
    return Readable.from(gen.call(this), { objectMode: false, highWaterMark: 1 << 20 });
  }

  /**
   * Extracts the tar `source` into the directory `path` inside the container, as
   * `docker cp - CONTAINER:path`; works on running and stopped containers.
   */
  async copyTo(ref: string, path: string, source: TarSource): Promise<void> {
    const root = await this.#openRoot(ref);
    try {
      await extractPath(root.fd, path, source);
    } finally {
      root.release();
    }
  }

  /**
   * An fd on the container's root: `/proc/<pid>/root` while it runs; otherwise a detached overlay
   * mount of its upper dir over its layers, while the container's lock is held (so it cannot
   * start meanwhile).
   */
  async #openRoot(ref: string): Promise<{ fd: number; release: () => void }> {
    const first = await this.#host.get(ref);
    const p = this.#host.paths(first.id);
    for (let attempt = 0; ; attempt++) {
      const rec = await this.#host.get(first.id);
      if (this.#host.isActive(rec)) {
        const fd = openProcessRoot(rec.state.pid);
        if (fd !== undefined && isSameProcess(rec.state.pid, rec.state.startTime))
          return { fd, release: () => closeFd(fd) };
        if (fd !== undefined) closeFd(fd);
        if (attempt < 3) {
          await sleep(20);
          continue;
        }
      }
      const lock = await acquireLock(p.lock);
      try {
        const now = await this.#host.get(first.id);
        if (this.#host.isActive(now)) {
          // Started meanwhile: its root is reachable through its process (never mount it twice).
          if (attempt < 3) {
            lock.release();
            continue;
          }
          throw new BerthError(
            'KERNEL',
            `cannot reach the root of container ${this.#host.label(now)}: its process root cannot be opened; retry`,
          );
        }
        const fd = mountDetachedOverlay(p.upper, p.work, this.#lower(now));
        return {
          fd,
          release: () => {
            closeFd(fd);
            lock.release();
          },
        };
      } catch (e) {
        lock.release();
        throw e;
      }
    }
  }
}
