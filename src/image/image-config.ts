/**
 * The image configuration, as the OCI image spec (and Docker) store it: the JSON whose sha256 is
 * the image id. Field names are the spec's (`Cmd`, `rootfs.diff_ids`, …); the public
 * {@link ImageRunSettings} view maps them to camelCase.
 *
 * @module
 */
import { z } from 'zod';

/** Docker's default `PATH`, set on imported images (as Podman does). */
export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A health check as stored in an image config (durations in nanoseconds, as Docker's). */
export interface OciHealthcheck {
  /** `["NONE"]`, `["CMD", arg…]` or `["CMD-SHELL", command]`. */
  Test?: string[];
  /** Time between checks, ns. */
  Interval?: number;
  /** Time a check may take, ns. */
  Timeout?: number;
  /** Grace period after start, ns. */
  StartPeriod?: number;
  /** Time between checks during the start period, ns. */
  StartInterval?: number;
  /** Consecutive failures before unhealthy. */
  Retries?: number;
}

/** The `config` section of an image config: defaults for containers run from the image. */
export interface OciContainerConfig {
  /** Default user (`name`, `uid`, `uid:gid`). */
  User?: string;
  /** Exposed ports, keys like `80/tcp`. */
  ExposedPorts?: Record<string, object>;
  /** Environment, `K=V`. */
  Env?: string[];
  /** Entrypoint argv. */
  Entrypoint?: string[] | null;
  /** Default command argv. */
  Cmd?: string[] | null;
  /** Anonymous volumes, keys are container paths. */
  Volumes?: Record<string, object>;
  /** Working directory. */
  WorkingDir?: string;
  /** Labels. */
  Labels?: Record<string, string>;
  /** Signal that stops the container. */
  StopSignal?: string;
  /** Health check. */
  Healthcheck?: OciHealthcheck;
  /** Build triggers: instructions a build that starts `FROM` this image runs first. */
  OnBuild?: string[] | null;
  /** The shell of shell-form commands (`SHELL`); absent: `["/bin/sh", "-c"]`. */
  Shell?: string[];
}

/** One history entry. */
export interface OciHistory {
  /** When the step ran (RFC 3339). */
  created?: string;
  /** The command of the step. */
  created_by?: string;
  /** The author. */
  author?: string;
  /** A free comment. */
  comment?: string;
  /** True when the step made no layer. */
  empty_layer?: boolean;
}

/** The image config document. */
export interface OciImageConfig {
  /** Creation time (RFC 3339). */
  created?: string;
  /** The author. */
  author?: string;
  /** CPU architecture in OCI/Go names (`amd64`, `arm64`). */
  architecture: string;
  /** Architecture variant (`v8` for arm64, `v7` for arm). */
  variant?: string;
  /** Operating system (`linux`). */
  os: string;
  /** Container defaults. */
  config?: OciContainerConfig;
  /** The layers' diffIDs, bottom first. */
  rootfs: { type: 'layers'; diff_ids: string[] };
  /** Build history, one entry per step. */
  history?: OciHistory[];
  /** Docker's legacy top-level comment. */
  comment?: string;
}

/** A lenient validator for configs read back from the store (or, later, from registries). */
export const ociImageConfigSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  created: z.string().optional(),
  config: z.looseObject({}).optional().nullable(),
  rootfs: z.looseObject({ type: z.literal('layers'), diff_ids: z.array(z.string().regex(/^sha256:[a-f0-9]{64}$/)) }),
  history: z.array(z.looseObject({})).optional().nullable(),
});

const ARCHITECTURES: Readonly<Record<string, { architecture: string; variant?: string }>> = {
  x64: { architecture: 'amd64' },
  arm64: { architecture: 'arm64', variant: 'v8' },
  arm: { architecture: 'arm', variant: 'v7' },
  ia32: { architecture: '386' },
  ppc64: { architecture: 'ppc64le' },
  s390x: { architecture: 's390x' },
  riscv64: { architecture: 'riscv64' },
  loong64: { architecture: 'loong64' },
  mips: { architecture: 'mips' },
  mipsel: { architecture: 'mipsle' },
};

/** The OCI architecture (and variant) of a Node.js `process.arch`. */
export function ociPlatform(arch: string = process.arch): { architecture: string; variant?: string } {
  return ARCHITECTURES[arch] ?? { architecture: arch };
}

/** The health check of an image as berth reports it (durations in milliseconds). */
export interface HealthcheckInfo {
  /** `["NONE"]` (disabled), `["CMD", arg…]` or `["CMD-SHELL", command]`. */
  test: string[];
  /** Time between checks in ms; absent: Docker's default (30 s). */
  interval?: number;
  /** Time a check may take in ms; absent: Docker's default (30 s). */
  timeout?: number;
  /** Grace period after start in ms; absent: none. */
  startPeriod?: number;
  /** Time between checks during the start period in ms; absent: Docker's default (5 s). */
  startInterval?: number;
  /** Consecutive failures before the container is unhealthy; absent: Docker's default (3). */
  retries?: number;
}

/** The container defaults an image carries, in camelCase; `null` where the image sets nothing. */
export interface ImageRunSettings {
  /** Default command; null when the image has none. */
  cmd: string[] | null;
  /** Entrypoint; null when the image has none. */
  entrypoint: string[] | null;
  /** Environment, `K=V`. Empty when none. */
  env: string[];
  /** Working directory; null when unset (the container starts in `/`). */
  workdir: string | null;
  /** Default user; null when unset (root). */
  user: string | null;
  /** Exposed ports, like `['80/tcp']`. Empty when none. */
  exposedPorts: string[];
  /** Anonymous volume paths. Empty when none. */
  volumes: string[];
  /** Labels. Empty when none. */
  labels: Record<string, string>;
  /** Health check; null when the image defines none. */
  healthcheck: HealthcheckInfo | null;
  /** Stop signal; null when unset (SIGTERM). */
  stopSignal: string | null;
}

const nsToMs = (ns: number | undefined): number | undefined => (ns === undefined || ns === 0 ? undefined : ns / 1e6);

/** Maps an image config's `config` section to {@link ImageRunSettings}. */
export function runSettings(c: OciContainerConfig | null | undefined): ImageRunSettings {
  const h = c?.Healthcheck;
  let healthcheck: HealthcheckInfo | null = null;
  if (h?.Test && h.Test.length > 0) {
    healthcheck = { test: [...h.Test] };
    const set = <K extends keyof HealthcheckInfo>(k: K, v: HealthcheckInfo[K] | undefined): void => {
      if (v !== undefined) healthcheck![k] = v;
    };
    set('interval', nsToMs(h.Interval));
    set('timeout', nsToMs(h.Timeout));
    set('startPeriod', nsToMs(h.StartPeriod));
    set('startInterval', nsToMs(h.StartInterval));
    if (h.Retries) set('retries', h.Retries);
  }
  return {
    cmd: c?.Cmd ? [...c.Cmd] : null,
    entrypoint: c?.Entrypoint ? [...c.Entrypoint] : null,
    env: c?.Env ? [...c.Env] : [],
    workdir: c?.WorkingDir || null,
    user: c?.User || null,
    exposedPorts: Object.keys(c?.ExposedPorts ?? {}).sort(),
    volumes: Object.keys(c?.Volumes ?? {}).sort(),
    labels: { ...(c?.Labels ?? {}) },
    healthcheck,
    stopSignal: c?.StopSignal || null,
  };
}
