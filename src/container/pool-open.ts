/**
 * `Container.pool`'s public side: its options checked (the engine, `waitFor`; the pool checks the
 * rest), then the pool of `pool.ts` opened on the engine, with `waitFor` as its readiness step.
 * Kept out of `container.ts`, which only passes the handle of a taken container.
 *
 * @module
 */
import { Engine, engineOption } from '../engine.js';
import { startSchema, type CreateOptions, type EngineOption } from './handle-options.js';
import { parseOptions } from './options.js';
import { ContainerPool, type PoolOptions } from './pool.js';
import { waitForReady } from './wait-for.js';

/** Options of `Container.pool`: the pool's (`size`, `name`, `waitFor`) and the `engine`. */
export interface ContainerPoolOptions extends PoolOptions, EngineOption {}

/**
 * Opens the pool of `spec` on `options.engine`, else `spec.engine`, else the default engine;
 * `handle` makes the handle of a taken container. Invalid options are refused before anything is
 * made (`INVALID_ARGUMENT` naming the field).
 */
export async function openPool<C>(
  spec: CreateOptions,
  options: ContainerPoolOptions,
  handle: (id: string, engine: Engine) => C,
): Promise<ContainerPool<C>> {
  const on = engineOption(options) ?? engineOption(spec) ?? Engine.default();
  const { engine: _engine, ...rest } = spec ?? ({} as CreateOptions);
  const { waitFor } = parseOptions(startSchema, options?.waitFor === undefined ? {} : { waitFor: options.waitFor });
  const ready = waitFor && ((id: string, since: number) => waitForReady(on.containers, id, waitFor, since));
  return new ContainerPool(on, rest, options, (id) => handle(id, on), ready).open();
}
