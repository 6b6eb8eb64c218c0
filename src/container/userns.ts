/**
 * The `userns` option: a container's ids mapped to an unprivileged host range (Docker's
 * userns-remap, Podman's `--userns=auto`), validated here and allocated under a lock so that
 * several processes sharing a root never hand out one range twice.
 *
 * @module
 */
import { z } from 'zod';
import { BerthError } from '../errors.js';
import type { IdMapping } from '../runtime/plan.js';

/** The largest id the kernel maps (`(uid_t)-1` is never valid). */
const MAX_ID = 0xfffffffe;

/** How many ids an `'auto'` container gets: 0–65535 inside, as Podman's `auto` does. */
export const AUTO_USERNS_SIZE = 65536;

/**
 * Where `'auto'` ranges come from: host ids 2^30 up to 2^31 − 1, in blocks of
 * {@link AUTO_USERNS_SIZE} (16384 blocks). Above any account a distribution makes and the
 * 100000… ranges `/etc/subuid` usually hands to users, and below 2^31 (tools that read ids as
 * signed ints).
 */
export const AUTO_USERNS_BASE = 2 ** 30;

/** How many `'auto'` blocks there are. */
export const AUTO_USERNS_BLOCKS = 2 ** 30 / AUTO_USERNS_SIZE;

/** The kernel's limit on the lines of one uid_map or gid_map (since Linux 4.15). */
const MAX_EXTENTS = 340;

const mapping = z.strictObject({
  containerId: z.number().int().min(0).max(MAX_ID),
  hostId: z.number().int().min(0).max(MAX_ID),
  size: z.number().int().min(1, 'size must be at least 1'),
});

/** Overlaps between `[start, start + size)` ranges of `key`, as a message; undefined when none. */
function overlap(map: IdMapping[], key: 'containerId' | 'hostId'): string | undefined {
  const sorted = [...map].sort((a, b) => a[key] - b[key]);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    if (prev[key] + prev.size > sorted[i]![key])
      return `ranges overlap in ${key} (${prev[key]}+${prev.size} and ${sorted[i]![key]})`;
  }
  return undefined;
}

const idMap = z
  .array(mapping)
  .min(1, 'at least one mapping is needed')
  .max(MAX_EXTENTS, `at most ${MAX_EXTENTS} mappings (the kernel's limit)`)
  .superRefine((map, ctx) => {
    map.forEach((m, i) => {
      if (m.containerId + m.size - 1 > MAX_ID)
        ctx.addIssue({ code: 'custom', path: [i, 'size'], message: `containerId + size goes past ${MAX_ID}` });
      if (m.hostId + m.size - 1 > MAX_ID)
        ctx.addIssue({ code: 'custom', path: [i, 'size'], message: `hostId + size goes past ${MAX_ID}` });
      if (m.hostId === 0)
        ctx.addIssue({
          code: 'custom',
          path: [i, 'hostId'],
          message: 'host id 0 (root) may not be mapped: a process that escapes would be root on the host',
        });
    });
    for (const key of ['containerId', 'hostId'] as const) {
      const why = overlap(map, key);
      if (why) ctx.addIssue({ code: 'custom', message: why });
    }
    if (!map.some((m) => m.containerId === 0))
      ctx.addIssue({ code: 'custom', message: 'container id 0 (root) must be mapped' });
    if (map.map((m) => `${m.containerId} ${m.hostId} ${m.size}\n`).join('').length >= 4096) {
      ctx.addIssue({ code: 'custom', message: 'the map is longer than the kernel takes (4095 bytes as text)' });
    }
  });

const maps = z.strictObject({ uidMap: idMap, gidMap: idMap });
const auto = z.literal('auto', { error: "expected 'auto' or { uidMap, gidMap }" });

/**
 * Schema of {@link UsernsOption}: the branch is chosen by the input's type, so that an error
 * names the field inside the maps (a union would report only "Invalid input").
 */
export const usernsOptionSchema = z.unknown().transform((v, ctx): UsernsOption => {
  const r = (typeof v === 'object' && v !== null ? maps : auto).safeParse(v);
  if (r.success) return r.data;
  for (const issue of r.error.issues)
    ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path, input: v });
  return z.NEVER;
});

/**
 * A container's user namespace: `'auto'` (a free range of 65536 ids, the
 * container's 0–65535), or explicit maps. See `ContainerCreateOptions.userns`.
 */
export type UsernsOption = 'auto' | { uidMap: IdMapping[]; gidMap: IdMapping[] };

/** Schema of the record's `config.userns`. */
export const usernsRecordSchema = z
  .object({ auto: z.boolean(), uidMap: z.array(mapping), gidMap: z.array(mapping) })
  .nullable();

/** A container's user namespace as recorded: the maps, and whether they are an `'auto'` allocation. */
export type UsernsRecord = z.infer<typeof usernsRecordSchema>;

/** The first host id of every `'auto'` range in `records` (those in use). */
function autoRangesInUse(records: ReadonlyArray<{ config: { userns?: UsernsRecord } }>): Set<number> {
  const used = new Set<number>();
  for (const r of records) if (r.config.userns?.auto) used.add(r.config.userns.uidMap[0]!.hostId);
  return used;
}

/**
 * The maps of a new container: explicit ones as given, or for `'auto'` the lowest block not used
 * by any container in `records` (the caller holds the allocation lock until the new record is
 * written). Throws when every block is taken.
 */
export function allocateUserns(
  option: UsernsOption,
  records: ReadonlyArray<{ config: { userns?: UsernsRecord } }>,
): NonNullable<UsernsRecord> {
  if (option !== 'auto') return { auto: false, uidMap: option.uidMap, gidMap: option.gidMap };
  const used = autoRangesInUse(records);
  for (let b = 0; b < AUTO_USERNS_BLOCKS; b++) {
    const hostId = AUTO_USERNS_BASE + b * AUTO_USERNS_SIZE;
    if (!used.has(hostId)) {
      const map = [{ containerId: 0, hostId, size: AUTO_USERNS_SIZE }];
      return { auto: true, uidMap: map, gidMap: map.map((m) => ({ ...m })) };
    }
  }
  throw new BerthError(
    'IN_USE',
    `every one of the ${AUTO_USERNS_BLOCKS} user namespace ranges of userns: 'auto' is in use; remove containers, or give explicit maps`,
  );
}
