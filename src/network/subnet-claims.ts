/**
 * Host-wide subnet claims, so that two engine roots never pick one subnet: one file per claimed
 * subnet in a directory shared by every root on the machine (`/run/berth-subnets/<cidr>`), made
 * with `O_EXCL`, holding its owner `{ root, id, time }`. A claim whose network record is gone is
 * reclaimed (after 10 s, so a network being created keeps its claim).
 *
 * @module
 */
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { readdirIfExists } from '../state/fs-error.js';
import { join } from 'node:path';
import { formatCidr, parseCidr, type Cidr } from './ipam.js';

/** The subnet claims of one engine root, in the host-wide directory `dir`. */
export class SubnetClaims {
  readonly #dir: string;
  readonly #root: string;
  /** Networks of this process being created (`<root>:<id>`): their claims stay though their record is not written yet. */
  readonly pending = new Set<string>();

  /** Claims of root `root`, in `dir`; touches nothing until used. */
  constructor(dir: string, root: string) {
    this.#dir = dir;
    this.#root = root;
  }

  #file(c: Cidr): string {
    return join(this.#dir, formatCidr(c).replace('/', '_'));
  }

  /** Live claims of every root; a claim whose network record is gone is removed. */
  list(): Cidr[] {
    const dir = this.#dir;
    const names = readdirIfExists(dir);
    const out: Cidr[] = [];
    for (const n of names) {
      const c = parseCidr(n.replace('_', '/'));
      if (!c) continue;
      try {
        const owner = JSON.parse(readFileSync(join(dir, n), 'utf8')) as { root?: string; id?: string };
        if (
          owner.root &&
          owner.id &&
          !existsSync(join(owner.root, 'networks', `${owner.id}.json`)) &&
          !this.pending.has(`${owner.root}:${owner.id}`)
        ) {
          const age = Date.now() - ((owner as { time?: number }).time ?? 0);
          if (age > 10_000) {
            rmSync(join(dir, n), { force: true });
            continue;
          }
        }
      } catch {
        // Unreadable claim (being written): count it.
      }
      out.push(c);
    }
    return out;
  }

  /** Claims `c` for network `id`; false when another network (of any root) holds it. */
  claim(c: Cidr, id: string): boolean {
    mkdirSync(this.#dir, { recursive: true, mode: 0o755 });
    try {
      const fd = openSync(this.#file(c), 'wx');
      try {
        writeFileSync(fd, JSON.stringify({ root: this.#root, id, time: Date.now() }));
      } finally {
        closeSync(fd);
      }
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
  }

  /** Drops the claim of network `id` (of this root) on `subnet`, if it holds one. */
  unclaim(subnet: string, id: string): void {
    const c = parseCidr(subnet);
    if (!c) return;
    const f = this.#file(c);
    try {
      const owner = JSON.parse(readFileSync(f, 'utf8')) as { root?: string; id?: string };
      if (owner.root === this.#root && owner.id === id) rmSync(f, { force: true });
    } catch {
      // Already gone.
    }
  }
}
