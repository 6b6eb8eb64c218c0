/**
 * The files of one container pool, shared by every process on the root, under
 * `<root>/pools/<key>/`:
 *
 * ```
 * idle/<id>                        a started member nobody took: its init's pid and start time
 *                                  (JSON); taking it = renaming this file
 * taken/<pid>-<start time>-<id>    a member taken by that process (its pid and start time)
 * holders/<pid>-<start time>-<n>   one per open pool handle of that process
 * lock                             the flock around a refill, a sweep and the last close
 * ```
 *
 * A take is one `readdir` and one `rename(2)` of `idle/<id>` to `taken/<tag>-<id>`: the kernel
 * lets exactly one of several processes renaming the same file succeed (the others get `ENOENT`
 * and try the next member), and the taker is recorded by the same atomic step. The owner tags
 * (`<pid>-<start time>`, see `ownerTag`) tell a process that died from one that runs, also after
 * its pid was reused. Only this file knows the layout.
 *
 * @module
 */
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { isSameProcess, ownerTag } from '../runtime/proc.js';
import { readdirIfExists } from '../state/fs-error.js';
import { writeFileAtomicSync } from '../state/atomic.js';

const CONTAINER_ID = /^[0-9a-f]{64}$/;
const TAKEN_NAME = /^([0-9]+)-([0-9]+)-([0-9a-f]{64})$/;
const HOLDER_NAME = /^([0-9]+)-([0-9]+)-[0-9a-f]+$/;
const OWNER_TAG = /^([0-9]+)-([0-9]+)$/;

/** What an idle member's file holds: its init process, to tell at a take whether it still runs. */
const idleMemberSchema = z.strictObject({
  pid: z.number().int().positive(),
  startTime: z.number().int().nonnegative(),
});

/** A member taken by a process, as its file in `taken/` names it. */
export interface TakenMember {
  /** The file's name. */
  readonly name: string;
  /** The container's id. */
  readonly id: string;
  /** The taker's tag, `<pid>-<start time>`. */
  readonly taker: string;
}

/** The file name recording that the process tagged `taker` took container `id`. */
export function takenName(taker: string, id: string): string {
  return `${taker}-${id}`;
}

/** The member a `taken/` file name records, or undefined for a name of another form. */
export function parseTaken(name: string): TakenMember | undefined {
  const m = TAKEN_NAME.exec(name);
  return m ? { name, id: m[3]!, taker: `${m[1]}-${m[2]}` } : undefined;
}

/** The owner tag (`<pid>-<start time>`) that starts a holder file's name, or undefined for another form. */
export function holderTag(name: string): string | undefined {
  const m = HOLDER_NAME.exec(name);
  return m ? `${m[1]}-${m[2]}` : undefined;
}

/** True while the process of owner tag `tag` runs; false when it ended (or the tag is malformed). */
export function ownerAlive(tag: string): boolean {
  const m = OWNER_TAG.exec(tag);
  return m !== null && isSameProcess(Number(m[1]), Number(m[2]));
}

/** Unlinks `path`; one gone already is fine. */
function unlinkIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** The files of one pool (see the module's comment). Synchronous: each call is one or two small syscalls. */
export class PoolStore {
  /** The pool's directory. */
  readonly dir: string;

  /** The store of the pool directory `dir`; touches nothing. */
  constructor(dir: string) {
    this.dir = dir;
  }

  /** The lock file of refills, sweeps and the last close. */
  get lockPath(): string {
    return join(this.dir, 'lock');
  }

  /** Makes the pool's directories. */
  ensure(): void {
    for (const d of ['idle', 'taken', 'holders']) mkdirSync(join(this.dir, d), { recursive: true, mode: 0o700 });
  }

  /** The ids of the idle members. */
  idle(): string[] {
    return readdirIfExists(join(this.dir, 'idle')).filter((n) => CONTAINER_ID.test(n));
  }

  /**
   * Records the started container `id`, whose init is process `pid` started at `startTime`, as an
   * idle member (written atomically: a taker never reads half of it; a failed write leaves no
   * temp file).
   */
  addIdle(id: string, pid: number, startTime: number): void {
    writeFileAtomicSync(join(this.dir, 'idle', id), JSON.stringify({ pid, startTime }), { fsync: false, mode: 0o600 });
  }

  /**
   * Takes the idle member `id` for this process: undefined when another process (or call) took it
   * first, else whether its init still runs (the same process as when it became idle: a check of
   * /proc, no record read).
   */
  claim(id: string): { running: boolean } | undefined {
    const taken = join(this.dir, 'taken', takenName(ownerTag(), id));
    try {
      renameSync(join(this.dir, 'idle', id), taken);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    let text: unknown;
    try {
      text = JSON.parse(readFileSync(taken, 'utf8'));
    } catch {
      return { running: false }; // not a member's file: treated as a member that stopped
    }
    const member = idleMemberSchema.safeParse(text);
    return { running: member.success && isSameProcess(member.data.pid, member.data.startTime) };
  }

  /** Records container `id` (made by this process, never idle) as taken by this process. */
  addTaken(id: string): void {
    writeFileSync(join(this.dir, 'taken', takenName(ownerTag(), id)), '', { flag: 'wx', mode: 0o600 });
  }

  /** The taken members (every process's). */
  taken(): TakenMember[] {
    return readdirIfExists(join(this.dir, 'taken'))
      .map(parseTaken)
      .filter((t): t is TakenMember => t !== undefined);
  }

  /** Forgets a taken member (its container was removed). */
  forgetTaken(name: string): void {
    unlinkIfThere(join(this.dir, 'taken', name));
  }

  /** Registers an open handle of this process; returns its file's name. */
  addHolder(): string {
    const name = `${ownerTag()}-${randomBytes(6).toString('hex')}`;
    writeFileSync(join(this.dir, 'holders', name), '', { flag: 'wx', mode: 0o600 });
    return name;
  }

  /** Unregisters a handle. */
  removeHolder(name: string): void {
    unlinkIfThere(join(this.dir, 'holders', name));
  }

  /** Unregisters the handles of processes that ended; returns how many handles remain (live processes'). */
  liveHolders(): number {
    let live = 0;
    for (const n of readdirIfExists(join(this.dir, 'holders'))) {
      const tag = holderTag(n);
      if (tag !== undefined && ownerAlive(tag)) live++;
      else this.removeHolder(n);
    }
    return live;
  }
}
