/**
 * What the parts of one build share: the run (options, context, Dockerfile, argument scopes,
 * the stages' results) and a step's view of its stage.
 *
 * @module
 */
import type { ContainerService } from '../../container/service.js';
import { BuildError } from '../../errors.js';
import type { ImageService } from '../service.js';
import type { OciImageConfig } from '../image-config.js';
import type { StagedLayer } from '../layer-store.js';
import type { ArgScope, ArgUsage, BuildPlatform } from './args.js';
import type { BuildContext } from './context/index.js';
import type { Substitution } from './metadata.js';
import type { Dockerfile, Stage } from './parser/index.js';
import type { CacheMounts } from './sources/index.js';
import type { BuildOptions, BuildProgress } from './types.js';

/** What the builder uses of its engine. */
export interface BuildServices {
  /** The engine's root (scratch directories, cache mounts). */
  root: string;
  /** The engine's volatile root (secrets). */
  runRoot: string;
  /** The image store (base images, layers, the build cache, the result). */
  images: ImageService;
  /** The container core (`RUN` steps). */
  containers: ContainerService;
  /** Pulls a missing base image, as `docker build` does; absent: a missing image is an error. */
  pull?(ref: string, signal: AbortSignal): Promise<void>;
}

/** The build options after validation. */
export type CheckedBuildOptions = Omit<BuildOptions, 'tag' | 'signal'> & { tags: string[] };

/** What every stage of one build shares. */
export interface BuildRun {
  /** The engine's services. */
  readonly services: BuildServices;
  /** The options. */
  readonly options: CheckedBuildOptions;
  /** The context, read in place. */
  readonly context: BuildContext;
  /** The parsed Dockerfile. */
  readonly dockerfile: Dockerfile;
  /** The platform built for. */
  readonly platform: BuildPlatform;
  /** Values of the global `ARG`s and the platform arguments: what `FROM` lines see. */
  readonly globals: ReadonlyMap<string, string | undefined>;
  /** Which build arguments some `ARG` declared. */
  readonly usage: ArgUsage;
  /** A private directory for the build's downloads, removed when it ends. */
  readonly scratch: string;
  /** Where secrets are written for their step: under the run root (a tmpfs by default). */
  readonly secretsDir: string;
  /** `RUN --mount=type=cache` directories. */
  readonly cacheMounts: CacheMounts;
  /** Fires when the build is cancelled or another stage failed. */
  readonly signal: AbortSignal;
  /** Reports progress. */
  emit(p: BuildProgress): void;
  /** The result of a stage, by name or index, building it (once) when needed. */
  stage(index: number): Promise<StageResult>;
  /** The config of an image by reference, pulled when missing (`FROM image`, `COPY --from=image`). */
  image(ref: string): Promise<{ id: string; config: OciImageConfig }>;
}

/** Finds a stage by name (case-insensitive, as BuildKit) or index; undefined when none. */
export function findStage(df: Dockerfile, ref: string | number, before = df.stages.length): Stage | undefined {
  if (typeof ref === 'number' || /^\d+$/.test(ref)) {
    const i = Number(ref);
    return i < before ? df.stages[i] : undefined;
  }
  const name = ref.toLowerCase();
  return df.stages.slice(0, before).find((s) => s.name === name);
}

/** What a stage produced: the image config after its last step, and that step's cache key. */
export interface StageResult {
  /** The full image config (layers, history, run settings). */
  config: OciImageConfig;
  /** The cache key of its last step: what a stage built on it, or copying from it, keys on. */
  key: string;
}

/** What a step that runs something produces. */
export interface StepOutput {
  /** The layer it made; undefined when it changed no file. */
  layer: StagedLayer | undefined;
  /** The config after it (run settings; layers and history are added by the stage). */
  config: OciImageConfig;
}

/** What a step needs to know of its stage. */
export interface StepScope {
  /** The build. */
  readonly run: BuildRun;
  /** The stage's label in progress events and errors (its name, or its index). */
  readonly label: string;
  /** The stage's index. */
  readonly index: number;
  /** The config before the step. */
  readonly config: OciImageConfig;
  /** The cache key before the step. */
  readonly key: string;
  /** The build arguments the stage declared, with their values. */
  readonly args: ArgScope;
  /** Substitution in the step's scope (ENV over ARG). */
  readonly sub: Substitution;
  /** The step's number in the stage (from 1). */
  readonly step: number;
}

/** The layers of a config as overlay lower directories, topmost first. */
export function lowerDirs(run: BuildRun, config: OciImageConfig): string[] {
  return config.rootfs.diff_ids.map((d) => run.services.images.layers.fsDir(d)).reverse();
}

/** The error of a step that failed for a reason of its own (not a `RUN` exit code). */
export function stepError(i: { line: number; original: string }, e: unknown): BuildError {
  const message = e instanceof Error ? e.message : String(e);
  return new BuildError({ line: i.line, instruction: i.original }, `Dockerfile:${i.line}: ${i.original}: ${message}`, {
    cause: e,
  });
}
