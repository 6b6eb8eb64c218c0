/**
 * Build arguments (`ARG`) as BuildKit scopes them.
 *
 * - `ARG`s before the first `FROM` are global: only `FROM` lines see them, and a stage sees one
 *   only after it declares it again (`ARG NAME`, without a value, takes the global value).
 * - A declared argument's value is the build's `buildArgs[NAME]`, else its default (substituted
 *   when declared), else the global value; with none of those it is declared but unset.
 * - The platform arguments (`TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT` and the
 *   `BUILD…` family) are global without a declaration, and a stage sees them once it declares them.
 * - The proxy arguments (`HTTP_PROXY`, `no_proxy`, …) reach `RUN` steps from `buildArgs` without
 *   a declaration, and, as in Docker, stay out of the history and of the cache key.
 * - A build argument no stage declares is reported as a warning when the build ends.
 * - `ENV` wins over `ARG` of the same name.
 *
 * @module
 */

/** The proxy arguments Docker predefines. */
export const PROXY_ARGS: ReadonlySet<string> = new Set(
  ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY'].flatMap((n) => [n, n.toLowerCase()]),
);

/** A platform as `os/arch[/variant]`. */
export interface BuildPlatform {
  /** `linux`. */
  os: string;
  /** `amd64`, `arm64`, … */
  architecture: string;
  /** `v8`, `v7`, … when the architecture has variants. */
  variant?: string;
}

/** `TARGETPLATFORM`, `BUILDPLATFORM` and their parts, for `target` and `build` platforms. */
export function platformArgs(target: BuildPlatform, build: BuildPlatform): Map<string, string> {
  const out = new Map<string, string>();
  for (const [prefix, p] of [
    ['TARGET', target],
    ['BUILD', build],
  ] as const) {
    out.set(`${prefix}PLATFORM`, [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('/'));
    out.set(`${prefix}OS`, p.os);
    out.set(`${prefix}ARCH`, p.architecture);
    out.set(`${prefix}VARIANT`, p.variant ?? '');
  }
  return out;
}

/** The arguments one build consumed, to report the unused ones at the end. */
export class ArgUsage {
  readonly #given: ReadonlySet<string>;
  readonly #declared = new Set<string>();

  /** Tracks the names of `buildArgs`. */
  constructor(buildArgs: Readonly<Record<string, string>>) {
    this.#given = new Set(Object.keys(buildArgs));
  }

  /** Records that some `ARG` declared `name`. */
  declared(name: string): void {
    this.#declared.add(name);
  }

  /** The given build arguments nothing declared (proxy arguments excepted), sorted. */
  unused(): string[] {
    return [...this.#given].filter((n) => !this.#declared.has(n) && !PROXY_ARGS.has(n)).sort();
  }
}

/** The arguments one stage (or the global scope) has declared, with their values. */
export class ArgScope {
  readonly #values = new Map<string, string | undefined>();
  readonly #buildArgs: Readonly<Record<string, string>>;
  readonly #outer: ReadonlyMap<string, string | undefined>;
  readonly #usage: ArgUsage;

  /**
   * A scope fed by `buildArgs`, where an `ARG NAME` without a default takes its value from
   * `outer` (the global scope's values and the platform arguments).
   */
  constructor(
    buildArgs: Readonly<Record<string, string>>,
    outer: ReadonlyMap<string, string | undefined>,
    usage: ArgUsage,
  ) {
    this.#buildArgs = buildArgs;
    this.#outer = outer;
    this.#usage = usage;
  }

  /** Declares `name` with its default (already substituted), as `ARG name[=default]`. */
  declare(name: string, defaultValue: string | undefined): string | undefined {
    this.#usage.declared(name);
    const value = Object.hasOwn(this.#buildArgs, name)
      ? this.#buildArgs[name]
      : (defaultValue ?? this.#outer.get(name));
    this.#values.set(name, value);
    return value;
  }

  /** The value of a declared argument; undefined when undeclared or unset. */
  get(name: string): string | undefined {
    return this.#values.get(name);
  }

  /** Whether `name` was declared here. */
  has(name: string): boolean {
    return this.#values.has(name);
  }

  /** The declared arguments that have a value, in declaration order. */
  set(): Array<[string, string]> {
    return [...this.#values].filter((e): e is [string, string] => e[1] !== undefined);
  }

  /** The values of this scope, for a scope nested in it (the global scope's, for stages). */
  values(): Map<string, string | undefined> {
    return new Map(this.#values);
  }

  /** The proxy arguments given in `buildArgs`: `RUN` steps see them without a declaration. */
  proxies(): Array<[string, string]> {
    return Object.entries(this.#buildArgs).filter(([k]) => PROXY_ARGS.has(k) && !this.#values.has(k));
  }
}
