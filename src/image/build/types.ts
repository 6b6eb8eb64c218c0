/**
 * The documented shapes of `Image.build`: its options, its progress events and what a build
 * context may be.
 *
 * @module
 */
import type { Readable } from 'node:stream';

/**
 * What a build reads its files from:
 *
 * - a directory path: read in place (no copy, no tar);
 * - a tar stream (plain or gzip), as `docker build - < context.tar`;
 * - a map of in-memory files, relative path → content, for images made from code (tests).
 */
export type BuildContextSource = string | Readable | Record<string, string | Buffer>;

/** Options of `Image.build`. */
export interface BuildOptions {
  /** The build context. */
  context: BuildContextSource;
  /**
   * The Dockerfile: a path relative to the context, or an absolute path outside it (`docker build
   * -f`). Default `Dockerfile`.
   */
  dockerfile?: string;
  /** References to tag the result with (`docker build -t`, repeatable). */
  tag?: string | string[];
  /** Values for the Dockerfile's `ARG`s (`--build-arg`). */
  buildArgs?: Record<string, string>;
  /** The stage to build (`--target`): its name or index. Default: the last stage. */
  target?: string;
  /** Runs every step again, ignoring the build cache, and empties the `RUN --mount=type=cache` directories it uses. */
  noCache?: boolean;
  /** Labels added to the image's config (`--label`), over the Dockerfile's. */
  labels?: Record<string, string>;
  /** The platform to build for (`linux/amd64`); only the engine's own platform can run `RUN` steps. */
  platform?: string;
  /**
   * The network `RUN` steps use: `none` (default: a build reaches nothing), `host`, or a network
   * name. A `RUN --network=…` flag overrides it for its step.
   */
  network?: string;
  /**
   * Secrets for `RUN --mount=type=secret,id=…`: a string is a host file to read, a Buffer the value
   * itself (`docker build --secret id=…,src=…`). Never stored in a layer, the history or the cache key.
   */
  secrets?: Record<string, string | Buffer>;
  /**
   * Cancels the build with `ABORTED` (the signal's reason as `cause`); what it made so far is
   * removed (its containers, mounts, scratch directories), and nothing is tagged.
   */
  signal?: AbortSignal;
  /** Cancels the build after this many milliseconds, as `signal` does, with `TIMEOUT`. */
  timeout?: number;
}

/**
 * A progress event of a build. Each step of each stage the target needs reports `running`, then
 * `done` or `cached` (or `failed`); a `RUN` step's output arrives as `output` events while it runs.
 */
export type BuildProgress =
  | {
      /** A step changed state. */
      type: 'step';
      /** The stage's name, or its index as a string. */
      stage: string;
      /** The step's number within its stage, from 1 (the `FROM` is step 0). */
      step: number;
      /** The number of steps of the stage. */
      steps: number;
      /** The instruction's 1-based line in the Dockerfile. */
      line: number;
      /** The instruction as written. */
      instruction: string;
      /** `running`, then `done`, `cached` (its result came from the build cache) or `failed`. */
      status: 'running' | 'done' | 'cached' | 'failed';
    }
  | {
      /** Output of a `RUN` step. */
      type: 'output';
      /** The stage's name, or its index as a string. */
      stage: string;
      /** The step's number within its stage. */
      step: number;
      /** `stdout` or `stderr`. */
      stream: 'stdout' | 'stderr';
      /** The text (whole lines where possible). */
      text: string;
    }
  | {
      /** Something the build noticed but went on: an unused build argument, a deprecated form. */
      type: 'warning';
      /** The 1-based line it concerns, when it concerns one. */
      line?: number;
      /** What was noticed. */
      message: string;
    };
