/**
 * `docker build`: reads the context and the Dockerfile, builds the stages the target needs (each
 * once, independent ones at the same time, the others never), records the target's final config
 * as an image and tags it. See `README.md` in this folder for the flow.
 *
 * @module
 */
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { ImageInfo } from '../types.js';
import { ociPlatform, type OciImageConfig } from '../image-config.js';
import { ArgScope, ArgUsage, platformArgs, type BuildPlatform } from './args.js';
import { openBuildContext, type BuildContext } from './context/index.js';
import { CacheMounts } from './sources/index.js';
import { expandWord, parseDockerfile, type Dockerfile, type Stage } from './parser/index.js';
import { StageBuilder } from './stage.js';
import { findStage, type BuildRun, type BuildServices, type CheckedBuildOptions, type StageResult } from './run.js';
import { sweepScratch, withScratchDir } from './scratch.js';
import type { BuildProgress } from './types.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Builds an image from a Dockerfile; see {@link BuildOptions}. */
export async function buildImage(
  services: BuildServices,
  options: CheckedBuildOptions,
  emit: (p: BuildProgress) => void,
  signal: AbortSignal,
): Promise<ImageInfo> {
  await sweepScratch(services.root);
  const context = await openBuildContext(options.context, {
    ...(options.dockerfile === undefined ? {} : { dockerfile: options.dockerfile }),
    signal,
  });
  try {
    const dockerfile = parseDockerfile(context.dockerfile.text);
    for (const w of dockerfile.warnings) emit({ type: 'warning', line: w.line, message: w.message });
    if (dockerfile.stages.length === 0)
      throw new InvalidArgumentError('dockerfile', 'the Dockerfile has no FROM instruction');
    const target = options.target === undefined ? dockerfile.stages.at(-1)! : findStage(dockerfile, options.target);
    if (target === undefined)
      throw new InvalidArgumentError('target', `target stage ${JSON.stringify(options.target)} could not be found`);
    const result = await withScratchDir(services.root, (scratch) =>
      buildTarget(services, options, context, dockerfile, target, scratch, emit, signal),
    );
    const config: OciImageConfig = structuredClone(result.config);
    if (options.labels !== undefined)
      config.config = { ...config.config, Labels: { ...config.config?.Labels, ...options.labels } };
    return await services.images.storeBuilt(config, options.tags);
  } finally {
    await context.close();
  }
}

async function buildTarget(
  services: BuildServices,
  options: CheckedBuildOptions,
  context: BuildContext,
  dockerfile: Dockerfile,
  target: Stage,
  scratch: string,
  emit: (p: BuildProgress) => void,
  outer: AbortSignal,
): Promise<StageResult> {
  const abort = new AbortController();
  const signal = AbortSignal.any([outer, abort.signal]);
  const platform: BuildPlatform = { os: 'linux', ...ociPlatform() };
  const usage = new ArgUsage(options.buildArgs ?? {});
  const platformValues = platformArgs(platform, platform);
  const globalScope = new ArgScope(options.buildArgs ?? {}, platformValues, usage);
  const lookupGlobal = (name: string): string | undefined => globalScope.get(name) ?? platformValues.get(name);
  for (const arg of dockerfile.globalArgs) {
    for (const a of arg.args) {
      globalScope.declare(
        a.name,
        a.value === undefined ? undefined : expandWord(a.value, lookupGlobal, dockerfile.escape).value,
      );
    }
  }
  const secretsDir = join(services.runRoot, 'build', 'secrets');
  if (options.secrets !== undefined) mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  const globals = new Map([...platformValues, ...globalScope.values()]);
  const results = new Map<number, Promise<StageResult>>();
  const running: Array<Promise<unknown>> = [];
  const run: BuildRun = {
    services,
    options,
    context,
    dockerfile,
    platform,
    globals,
    usage,
    scratch,
    secretsDir,
    cacheMounts: new CacheMounts(join(services.root, 'build', 'cache-mounts')),
    signal,
    emit,
    stage(index) {
      const s = dockerfile.stages[index]!;
      let p = results.get(s.index);
      if (p === undefined) {
        p = new StageBuilder(run, s).build();
        // The first failure cancels the stages still running; the build fails with it.
        p.catch(() => abort.abort(new Error('another stage failed')));
        results.set(s.index, p);
        running.push(p);
      }
      return p;
    },
    async image(ref) {
      try {
        return await services.images.configOf(ref);
      } catch (e) {
        if (!(e instanceof NotFoundError) || services.pull === undefined) throw e;
        await services.pull(ref, signal);
        return services.images.configOf(ref);
      }
    },
  };
  // The stages the target needs start together; each waits for what it uses.
  for (const i of neededStages(dockerfile, target, lookupGlobal)) void run.stage(i).catch(() => undefined);
  try {
    const result = await run.stage(target.index);
    for (const name of usage.unused())
      emit({ type: 'warning', message: `build argument ${name} was not consumed by any ARG of the Dockerfile` });
    return result;
  } finally {
    // Nothing of a failed build keeps running: every stage has ended (and cleaned up) first.
    await Promise.allSettled(running);
  }
}

/**
 * The stages `target` needs, by index: its base stage and the stages its `COPY --from` and
 * `RUN --mount=from=` name, and theirs in turn. Other stages are never built (they may even be
 * broken), as BuildKit does.
 */
export function neededStages(
  df: Dockerfile,
  target: Stage,
  lookupGlobal: (name: string) => string | undefined,
): number[] {
  const seen = new Set<number>();
  const visit = (s: Stage): void => {
    if (seen.has(s.index)) return;
    seen.add(s.index);
    const refs: string[] = [expandWord(s.from.image, lookupGlobal, df.escape).value];
    for (const i of s.instructions) {
      if ((i.kind === 'COPY' || i.kind === 'ADD') && i.from !== undefined) refs.push(i.from);
      if (i.kind === 'RUN')
        for (const m of i.mounts) for (const f of /(?:^|,)from=([^,]+)/.exec(m)?.slice(1) ?? []) refs.push(f);
    }
    for (const r of refs) {
      const dep = findStage(df, r, s.index);
      if (dep !== undefined) visit(dep);
    }
  };
  visit(target);
  return [...seen].sort((a, b) => a - b);
}
