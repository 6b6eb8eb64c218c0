/**
 * Helpers for build tests: build from in-memory files and collect the progress, run an image's
 * default command and read its output.
 *
 * @module
 */
import type { BuildProgress, Engine, ImageBuildOptions } from '../../src/index.js';
import { Container, Image } from '../../src/index.js';

/** What a build returned and reported. */
export interface Built {
  /** The image. */
  image: Image;
  /** Its id. */
  id: string;
  /** Every progress event. */
  events: BuildProgress[];
  /** The `step` events' final statuses, as `line:status`. */
  steps: string[];
}

/** Builds `options` on `engine`, collecting the progress. */
export async function build(engine: Engine, options: Omit<ImageBuildOptions, 'engine'>): Promise<Built> {
  const op = Image.build({ ...options, engine });
  const events: BuildProgress[] = [];
  for await (const p of op) events.push(p);
  const image = await op;
  const id = (await image.inspect()).id;
  const steps = events
    .filter((e): e is Extract<BuildProgress, { type: 'step' }> => e.type === 'step' && e.status !== 'running')
    .map((e) => `${e.instruction.split(' ')[0]}:${e.status}`);
  return { image, id, events, steps };
}

/** Runs `ref` (its default command, or `command`) to its end; returns its exit code and output. */
export async function runImage(
  engine: Engine,
  ref: string,
  command?: string[],
): Promise<{ exitCode: number; output: string }> {
  const c = await Container.run(ref, command, { engine, network: 'none' });
  try {
    const { exitCode } = await c.wait();
    return { exitCode, output: await c.logs() };
  } finally {
    await c.remove({ force: true });
  }
}
