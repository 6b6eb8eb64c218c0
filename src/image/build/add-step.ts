/**
 * What `ADD` does beyond `COPY`: URLs are downloaded (never unpacked; mode 0600 unless
 * `--chmod`; the file's time from `Last-Modified`), and local archives (tar, plain or gzip,
 * bzip2, xz, zstd compressed) are unpacked into the destination, as Docker does. The rest is
 * copied as `COPY` copies it.
 *
 * @module
 */
import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InvalidArgumentError } from '../../errors.js';
import { copyInto, hasGlobMeta, type Owner } from './context/index.js';
import { closeFd, openInRoot, openRootDir } from './context/root.js';
import type { Instruction } from './parser/index.js';
import type { StepScope } from './run.js';
import { detectArchive, extractArchiveInto, fetchSource } from './sources/index.js';

/** Where an `ADD` step writes: the destination root and path, with the step's owner and mode. */
export interface AddTarget {
  /** The scratch root. */
  destRoot: string;
  /** The destination (absolute; a trailing `/` means "into"). */
  dest: string;
  /** `--chown`, resolved. */
  owner?: Owner;
  /** `--chmod`. */
  chmod?: number;
}

/** The `ADD`-specific part of a step. */
export interface AddPlan {
  /** The sources `COPY` rules copy. */
  local: string[];
  /** Every source read from the context (copied or unpacked): what the step's digest covers. */
  fromContext: string[];
  /** What the cache key adds: the downloaded files' digests, the unpacked archives. */
  keyParts: unknown[];
  /** Writes the downloads and unpacks the archives. */
  apply(target: AddTarget): Promise<void>;
}

const URL_RE = /^https?:\/\//i;

/** Reads `rel` of the context through an fd opened inside it (symlinks cannot leave it); undefined when missing. */
async function contextArchive(root: string, rel: string): Promise<string | undefined> {
  const rootFd = openRootDir(root, 'ADD');
  try {
    const fd = openInRoot(rootFd, rel);
    if (fd === undefined) return undefined;
    try {
      const real = fs.readlinkSync(`/proc/self/fd/${fd}`);
      return fs.statSync(real).isFile() && (await detectArchive(real)) !== null ? real : undefined;
    } finally {
      closeFd(fd);
    }
  } finally {
    closeFd(rootFd);
  }
}

/** Plans an `ADD`: downloads its URLs (their digests key the step) and finds its local archives. */
export async function addSources(
  s: StepScope,
  i: Instruction & { kind: 'ADD' },
  sources: readonly string[],
): Promise<AddPlan> {
  const checksum = i.checksum === undefined ? undefined : s.sub.word(i.checksum);
  const urls = sources.filter((x) => URL_RE.test(x));
  if (checksum !== undefined && (urls.length !== 1 || sources.length !== 1))
    throw new InvalidArgumentError('dockerfile', `Dockerfile:${i.line}: ADD --checksum needs exactly one URL source`);
  if (urls.length > 0 && i.heredocs.length === 0 && urls.length < sources.length && !i.dest.endsWith('/'))
    throw new InvalidArgumentError(
      'dockerfile',
      `Dockerfile:${i.line}: ADD with several sources needs a destination ending in /`,
    );
  const downloads: Array<{ path: string; name: string; digest: string }> = [];
  for (const url of urls) {
    const dir = fs.mkdtempSync(join(s.run.scratch, 'add-'));
    const got = await fetchSource(url, { tmpDir: dir, signal: s.run.signal, ...(checksum ? { checksum } : {}) });
    fs.chmodSync(got.path, 0o600);
    if (got.mtime !== undefined) fs.utimesSync(got.path, got.mtime, got.mtime);
    downloads.push({ path: got.path, name: got.name, digest: got.digest });
  }
  const archives: string[] = [];
  const local: string[] = [];
  for (const src of sources) {
    if (URL_RE.test(src)) continue;
    const archive = i.unpack === false || hasGlobMeta(src) ? undefined : await contextArchive(s.run.context.root, src);
    if (archive !== undefined) archives.push(archive);
    else local.push(src);
  }
  return {
    local,
    fromContext: sources.filter((x) => !URL_RE.test(x)),
    keyParts: [downloads.map((d) => [d.name, d.digest]), archives.length],
    async apply(t) {
      for (const d of downloads) {
        const dest = t.dest.endsWith('/') ? `${t.dest}${d.name}` : t.dest;
        await copyInto({
          sourceRoot: dirname(d.path),
          sources: [basename(d.path)],
          destRoot: t.destRoot,
          dest,
          ...(t.owner ? { chown: t.owner } : {}),
          ...(t.chmod === undefined ? {} : { chmod: t.chmod }),
        });
      }
      for (const a of archives) {
        await extractArchiveInto({
          archive: a,
          destRoot: t.destRoot,
          dest: t.dest,
          ...(t.owner ? { chown: t.owner } : {}),
          signal: s.run.signal,
        });
      }
    },
  };
}
