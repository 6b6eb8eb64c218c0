/**
 * One build stage: its base (`FROM`: an image, another stage, or `scratch`), the base's `ONBUILD`
 * triggers, then each instruction in order. Every step's result is looked up in the build cache
 * first; a missing one runs under the step's lock (one process runs it, others wait and reuse
 * it), and its layer and cache entry are committed together under the image store's lock.
 *
 * @module
 */
import type { OciImageConfig } from '../image-config.js';
import { ArgScope } from './args.js';
import { stepKey } from './cache.js';
import { findStage, stepError, type BuildRun, type StageResult, type StepOutput, type StepScope } from './run.js';
import { applyMetadata, getEnv, isMetadata, resolveWorkdir, type Substitution } from './metadata.js';
import { expandHeredoc, expandWord, expandWords, parseInstruction, type Instruction } from './parser/index.js';
import { copyStep, runStep as runInstruction, workdirStep } from './steps.js';
import { BerthError, BuildError, InvalidArgumentError } from '../../errors.js';

/** Builds one stage. */
export class StageBuilder {
  readonly #run: BuildRun;
  readonly #stage: BuildRun['dockerfile']['stages'][number];
  readonly #label: string;
  readonly #args: ArgScope;
  #config!: OciImageConfig;
  #key = '';
  #cmdSet = false;

  /** A builder for `stage` of `run`. */
  constructor(run: BuildRun, stage: BuildRun['dockerfile']['stages'][number]) {
    this.#run = run;
    this.#stage = stage;
    this.#label = stage.name ?? String(stage.index);
    this.#args = new ArgScope(run.options.buildArgs ?? {}, run.globals, run.usage);
  }

  /** Runs the stage to its end. */
  async build(): Promise<StageResult> {
    await this.#base();
    const triggers = (this.#config.config?.OnBuild ?? []).map((t) => ({
      ...parseInstruction(t, this.#run.dockerfile.escape),
      line: this.#stage.from.line,
    }));
    if (this.#config.config) this.#config.config.OnBuild = null;
    const steps = [...triggers, ...this.#stage.instructions];
    for (const [n, i] of steps.entries()) {
      this.#run.signal.throwIfAborted();
      this.#emit(n + 1, steps.length, i, 'running');
      try {
        const cached = await this.#step(n + 1, i);
        this.#emit(n + 1, steps.length, i, cached ? 'cached' : 'done');
      } catch (e) {
        this.#emit(n + 1, steps.length, i, 'failed');
        throw e instanceof BuildError || this.#run.signal.aborted ? e : stepError(i, e);
      }
    }
    return { config: this.#config, key: this.#key };
  }

  #emit(step: number, steps: number, i: Instruction, status: 'running' | 'done' | 'cached' | 'failed'): void {
    this.#run.emit({
      type: 'step',
      stage: this.#label,
      step,
      steps,
      line: i.line,
      instruction: i.original,
      status,
    });
  }

  /** `FROM`: the base's config and key. */
  async #base(): Promise<void> {
    const from = this.#stage.from;
    const lookup = (n: string): string | undefined => this.#run.globals.get(n);
    const name = expandWord(from.image, lookup, this.#run.dockerfile.escape).value;
    if (from.platform !== undefined) {
      // RUN steps run on this machine: a base of another platform could not run them.
      const wanted = expandWord(from.platform, lookup, this.#run.dockerfile.escape).value;
      const own = this.#run.globals.get('TARGETPLATFORM') ?? '';
      if (wanted !== own && !own.startsWith(`${wanted}/`))
        throw stepError(
          from,
          new InvalidArgumentError('dockerfile', `--platform=${wanted}: only ${own} can be built here`),
        );
    }
    try {
      const dep = findStage(this.#run.dockerfile, name, this.#stage.index);
      if (dep !== undefined) {
        const base = await this.#run.stage(dep.index);
        this.#config = structuredClone(base.config);
        this.#key = base.key;
      } else if (name === 'scratch') {
        this.#config = {
          architecture: this.#run.platform.architecture,
          ...(this.#run.platform.variant ? { variant: this.#run.platform.variant } : {}),
          os: this.#run.platform.os,
          config: {},
          rootfs: { type: 'layers', diff_ids: [] },
          history: [],
        };
        this.#key = stepKey('', ['FROM scratch', this.#run.platform]);
      } else {
        const img = await this.#run.image(name);
        this.#config = structuredClone(img.config);
        this.#key = stepKey('', ['FROM', img.id]);
      }
    } catch (e) {
      throw this.#run.signal.aborted ? e : stepError(from, e);
    }
    this.#config.history ??= [];
    this.#config.config ??= {};
  }

  #sub(): Substitution {
    const lookup = (n: string): string | undefined => getEnv(this.#config.config?.Env, n) ?? this.#args.get(n);
    const escape = this.#run.dockerfile.escape;
    return {
      word: (raw) => expandWord(raw, lookup, escape).value,
      words: (raw) => expandWords(raw, lookup, escape).values,
      heredoc: (raw) => expandHeredoc(raw, lookup).value,
    };
  }

  /** Runs one instruction; true when its result came from the cache. */
  async #step(n: number, i: Instruction): Promise<boolean> {
    const sub = this.#sub();
    if (i.kind === 'ARG') {
      const set = i.args.map((a) => {
        const v = this.#args.declare(a.name, a.value === undefined ? undefined : sub.word(a.value));
        return v === undefined ? a.name : `${a.name}=${v}`;
      });
      return this.#commitConfig(structuredClone(this.#config), `ARG ${set.join(' ')}`, ['ARG', set]);
    }
    if (isMetadata(i)) {
      const next = structuredClone(this.#config);
      const { createdBy } = applyMetadata(next, i, sub, this.#cmdSet);
      if (i.kind === 'CMD') this.#cmdSet = true;
      return this.#commitConfig(next, createdBy, [i.kind, next.config, next.author ?? '']);
    }
    const scope: StepScope = {
      run: this.#run,
      label: this.#label,
      index: this.#stage.index,
      config: this.#config,
      key: this.#key,
      args: this.#args,
      sub,
      step: n,
    };
    switch (i.kind) {
      case 'WORKDIR': {
        const path = resolveWorkdir(this.#config.config?.WorkingDir, sub.word(i.path));
        return this.#commitLayer(`WORKDIR ${path}`, ['WORKDIR', path, this.#config.config?.User ?? ''], () =>
          workdirStep(scope, path),
        );
      }
      case 'RUN': {
        const plan = await runInstruction(scope, i);
        return this.#commitLayer(plan.createdBy, plan.keyParts, plan.execute);
      }
      case 'COPY':
      case 'ADD': {
        const plan = await copyStep(scope, i);
        return this.#commitLayer(plan.createdBy, plan.keyParts, plan.execute);
      }
      default:
        // The parser places FROM at the head of a stage, never inside one.
        throw new BerthError('INTERNAL', `unexpected ${(i as Instruction).kind} inside a stage`);
    }
  }

  /** A config-only step: cached only so that its history time (hence the image id) stays the same. */
  async #commitConfig(next: OciImageConfig, createdBy: string, parts: readonly unknown[]): Promise<boolean> {
    const key = stepKey(this.#key, parts);
    const cache = this.#run.services.images.buildCache;
    const hit = this.#run.options.noCache === true ? undefined : await cache.get(key);
    if (hit !== undefined && this.#usable(hit.config)) {
      this.#advance(hit.config, key);
      return true;
    }
    const created = new Date().toISOString();
    next.history = [
      ...(next.history ?? []),
      { created, created_by: createdBy, comment: BUILDKIT_COMMENT, empty_layer: true },
    ];
    next.created = created;
    await cache.put({ key, config: next, created });
    this.#advance(next, key);
    return false;
  }

  /** A step that may make a layer: cache, else run under its lock and commit layer and entry together. */
  async #commitLayer(
    createdBy: string,
    parts: readonly unknown[],
    execute: () => Promise<StepOutput>,
  ): Promise<boolean> {
    const key = stepKey(this.#key, parts);
    const cache = this.#run.services.images.buildCache;
    const noCache = this.#run.options.noCache === true;
    const lookup = async (): Promise<OciImageConfig | undefined> => {
      if (noCache) return undefined;
      const hit = await cache.get(key);
      return hit !== undefined && this.#usable(hit.config) ? hit.config : undefined;
    };
    const first = await lookup();
    if (first !== undefined) {
      this.#advance(first, key);
      return true;
    }
    const lock = await cache.lock(key, this.#run.signal);
    try {
      // Another process may have run it while this one waited for the lock.
      const again = noCache ? undefined : await lookup();
      if (again !== undefined) {
        this.#advance(again, key);
        return true;
      }
      const out = await execute();
      try {
        const created = new Date().toISOString();
        const next = structuredClone(out.config);
        next.created = created;
        next.rootfs = {
          type: 'layers',
          diff_ids: [...this.#config.rootfs.diff_ids, ...(out.layer ? [out.layer.diffId] : [])],
        };
        next.history = [
          ...(this.#config.history ?? []),
          {
            created,
            created_by: createdBy,
            comment: BUILDKIT_COMMENT,
            ...(out.layer ? {} : { empty_layer: true }),
          },
        ];
        await this.#run.services.images.commitBuildLayer(out.layer, () => cache.put({ key, config: next, created }));
        this.#advance(next, key);
        return false;
      } finally {
        await out.layer?.discard();
      }
    } finally {
      lock.release();
    }
  }

  /** Whether a cached config's layers are all still stored. */
  #usable(config: OciImageConfig): boolean {
    return config.rootfs.diff_ids.every((d) => this.#run.services.images.layers.has(d));
  }

  #advance(config: OciImageConfig, key: string): void {
    this.#config = structuredClone(config);
    this.#config.config ??= {};
    this.#key = key;
  }
}

/** The comment BuildKit's Dockerfile frontend puts on every history entry it writes. */
export const BUILDKIT_COMMENT = 'buildkit.dockerfile.v0';
