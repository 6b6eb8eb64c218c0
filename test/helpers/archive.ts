/**
 * Archives for the builder's `ADD` tests, made with encoders independent of berth's: tar-stream
 * for the tar, zlib for gzip, and the `zstd`, `bzip2` and `xz` programs (tests that need one skip
 * when it is not installed: {@link HAVE}).
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';

/** One archive member: a tar-stream header and its content. */
export type Member = Partial<tar.Header> & { name: string; content?: string | Buffer };

/** A tar of `members` (mtime 2020-09-13 unless given). */
export async function makeTar(members: Member[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const { content, ...header } of members) {
    pack.entry({ mtime: new Date(1_600_000_000_000), ...header }, content ?? '');
  }
  pack.finalize();
  const parts: Buffer[] = [];
  for await (const c of pack) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** The compressions an `ADD` archive may have. */
export type Compression = 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

const PROGRAMS = { bzip2: '/usr/bin/bzip2', xz: '/usr/bin/xz', zstd: '/usr/bin/zstd' } as const;

/** Whether `kind` can be made here (gzip and plain tar always). */
export const HAVE: Record<Compression, boolean> = {
  tar: true,
  gzip: true,
  bzip2: existsSync(PROGRAMS.bzip2),
  xz: existsSync(PROGRAMS.xz),
  zstd: existsSync(PROGRAMS.zstd),
};

/** `data` compressed as `kind`. */
export function compress(kind: Compression, data: Buffer): Buffer {
  if (kind === 'tar') return data;
  if (kind === 'gzip') return gzipSync(data);
  return execFileSync(PROGRAMS[kind], ['-q', '-c'], { input: data, maxBuffer: 1 << 30 });
}
