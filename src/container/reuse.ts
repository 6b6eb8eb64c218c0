/**
 * `Container.getOrCreate`: reuse of a container by name, atomic across the processes sharing a
 * root (the workers of a test runner), where testcontainers' reuse races (testcontainers-node
 * #1172: two workers both find nothing and both create).
 *
 * The lookup, the create and the start run under an exclusive `flock` on a lock file per name
 * (`<root>/containers/reuse/<name>.lock`), so one process creates and the others find its
 * container. Whether a container found by name is the one asked for is decided by the hash of the
 * normalized create options (the options as the create schema checks them, the name left out,
 * keys sorted), recorded as the label {@link SPEC_HASH_LABEL}:
 *
 * - same hash, running (or paused, restarting): returned as it is;
 * - same hash, created or exited: started again;
 * - another hash, or none (made by `create`/`run`): a `NAME_CONFLICT` naming both hashes, as
 *   `docker run --name` refuses a taken name. Nothing is replaced behind the caller's back:
 *   remove the container to have it made anew.
 *
 * A reused container must outlive the process that made it, so `detach` defaults to true here.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { join } from 'node:path';
import { attachCleanupErrors, ConflictError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { withLock } from '../state/lock.js';
import { createOptionsSchema, parseOptions, type ContainerCreateOptions } from './options.js';
import { labelOf, type ContainerRecord } from './record.js';
import { isActive } from './status.js';

/** The label that records the spec hash of a container made by `Container.getOrCreate`. */
export const SPEC_HASH_LABEL = 'berth.spec-hash';

/** Create options with the name a reused container is found by. */
export type ReuseSpec = ContainerCreateOptions & { name: string };

/** Options of `Container.getOrCreate`. */
export interface ReuseOptions {
  /** Gives up waiting for another process's getOrCreate of the same name after this many ms (`TIMEOUT`). */
  timeout?: number;
}

/** Schema of {@link ReuseOptions}. */
export const reuseOptionsSchema = z.strictObject({ timeout: z.number().int().min(0).optional() });

/** What {@link getOrCreate} needs from the container manager (`ContainerService` has it all). */
export interface ReuseSteps {
  /** The directory of the per-name lock files. */
  readonly reuseLockDir: string;
  /** The records, to find a container by its exact name. */
  readonly records: { resolveName(name: string): Promise<string | undefined> };
  /** The record of a container id (status refreshed). */
  get(ref: string): Promise<ContainerRecord>;
  /** Creates a container (not started). */
  create(input: ContainerCreateOptions): Promise<ContainerRecord>;
  /** Starts a container; resolves once its program runs. */
  start(ref: string): Promise<ContainerRecord>;
  /** Removes a container (forced, after a failed first start). */
  remove(ref: string, options: { force?: boolean; volumes?: boolean }): Promise<void>;
}

/** The container named exactly `name`, or undefined (also when it was removed meanwhile). */
async function byName(steps: ReuseSteps, name: string): Promise<ContainerRecord | undefined> {
  const id = await steps.records.resolveName(name);
  if (id === undefined) return undefined;
  return steps.get(id).catch((e: unknown) => {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  });
}

/** `value` as JSON with every object's keys sorted (undefined members left out, as JSON does). */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : stableJson(v))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * The create options `spec` as {@link getOrCreate} makes them (`detach` true unless given), and
 * their hash (see {@link specHash}).
 *
 * @throws InvalidArgumentError when `spec` has no name or is not valid create options.
 */
export function reuseSpec(spec: ReuseSpec): { options: ContainerCreateOptions; hash: string } {
  if (typeof spec?.name !== 'string' || spec.name === '')
    throw new InvalidArgumentError('name', 'a name is required to find the container again');
  return specHash(spec);
}

/**
 * The create options `spec` with `detach` true unless given and the label {@link SPEC_HASH_LABEL}
 * set, and their hash: sha256 of the stable JSON of the options as the create schema checks them,
 * without the name and the hash label. The one spec hash of the folder: `getOrCreate` and the
 * pools (`pool.ts`) key containers by it.
 *
 * @throws InvalidArgumentError when `spec` is not valid create options.
 */
export function specHash(spec: ContainerCreateOptions): { options: ContainerCreateOptions; hash: string } {
  const withDetach: ContainerCreateOptions = { ...spec, detach: spec?.detach ?? true };
  const checked = parseOptions(createOptionsSchema, withDetach) as Record<string, unknown>;
  const { name: _name, labels, ...rest } = checked as { name?: string; labels?: Record<string, string> };
  const { [SPEC_HASH_LABEL]: _hash, ...userLabels } = labels ?? {};
  const hashed = Object.keys(userLabels).length > 0 ? { ...rest, labels: userLabels } : rest;
  const hash = createHash('sha256').update(stableJson(hashed)).digest('hex');
  return { options: { ...withDetach, labels: { ...userLabels, [SPEC_HASH_LABEL]: hash } }, hash };
}

/**
 * The container named `spec.name` if it was made from the same spec (started again when it is
 * stopped), else a new one, created and started; atomic across processes sharing the root.
 * `created` says whether this call made it.
 *
 * @throws ConflictError (`NAME_CONFLICT`) when a container of that name was made from another
 * spec (or not by getOrCreate); InvalidArgumentError for invalid options (before any lock).
 */
export async function getOrCreate(
  steps: ReuseSteps,
  spec: ReuseSpec,
  options: ReuseOptions = {},
): Promise<{ record: ContainerRecord; created: boolean }> {
  const { options: createOptions, hash } = reuseSpec(spec);
  const name = spec.name.replace(/^\//, '');
  return withLock(
    join(steps.reuseLockDir, `${name}.lock`),
    async () => {
      const found = await byName(steps, name);
      if (found !== undefined) {
        const has = found.config.labels[SPEC_HASH_LABEL];
        if (has !== hash) {
          throw new ConflictError(
            'NAME_CONFLICT',
            `container ${labelOf(found)} exists with ${has === undefined ? 'no spec hash (not made by getOrCreate)' : `spec hash ${has.slice(0, 12)}`}, ` +
              `not the asked spec hash ${hash.slice(0, 12)}; remove it (or use another name) to have it made from this spec`,
          );
        }
        if (isActive(found.state.status)) return { record: found, created: false };
        return { record: await steps.start(found.id), created: false };
      }
      const rec = await steps.create(createOptions);
      try {
        return { record: await steps.start(rec.id), created: true };
      } catch (e) {
        await steps.remove(rec.id, { force: true, volumes: true }).catch((removal: unknown) => {
          if (!(removal instanceof NotFoundError)) attachCleanupErrors(e, [removal]);
        });
        throw e;
      }
    },
    options.timeout === undefined ? {} : { timeout: options.timeout },
  );
}
