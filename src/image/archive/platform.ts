/**
 * Platforms (`os/architecture[/variant]`) as OCI indexes describe them, and the choice of one
 * for this machine, as containerd's default platform matcher makes it.
 *
 * @module
 */
import { InvalidArgumentError } from '../../errors.js';
import { ociPlatform } from '../image-config.js';

/** An OCI platform. */
export interface Platform {
  /** `linux`, `windows`, … */
  os: string;
  /** OCI architecture name (`amd64`, `arm64`). */
  architecture: string;
  /** Variant (`v7`, `v8`); absent when none. */
  variant?: string;
}

/** Kernel and toolchain names of architectures, to OCI names. */
const ALIASES: Readonly<Record<string, string>> = {
  x86_64: 'amd64',
  aarch64: 'arm64',
  i386: '386',
  i686: '386',
  armhf: 'arm',
};

/** This machine's platform, from `process.arch` mapped to OCI names. */
export function hostPlatform(): Platform {
  const p = ociPlatform();
  return { os: 'linux', architecture: p.architecture, ...(p.variant === undefined ? {} : { variant: p.variant }) };
}

/** `linux/arm64/v8`. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/**
 * Parses `os/arch[/variant]` (or a bare `arch`, meaning linux).
 *
 * @throws InvalidArgumentError naming `field`.
 */
export function parsePlatform(s: string, field = 'platform'): Platform {
  const parts = s.split('/');
  if (parts.some((p) => !/^[a-z0-9][a-z0-9._-]*$/i.test(p)) || parts.length > 3) {
    throw new InvalidArgumentError(
      field,
      `'${s}' is not a platform; expected os/architecture[/variant], like linux/arm64`,
    );
  }
  const [a, b, c] = parts as [string, string?, string?];
  const p: Platform = b === undefined ? { os: 'linux', architecture: a } : { os: a, architecture: b };
  p.architecture = ALIASES[p.architecture] ?? p.architecture;
  if (c !== undefined) p.variant = c;
  return p;
}

/** Whether `candidate` runs where `want` is asked for; a variant missing on either side matches the default. */
export function platformMatches(candidate: Partial<Platform> | undefined, want: Platform): boolean {
  if (candidate?.os !== want.os || candidate.architecture !== want.architecture) return false;
  const defaultVariant = want.architecture === 'arm64' ? 'v8' : undefined;
  const have = candidate.variant ?? defaultVariant;
  const need = want.variant ?? defaultVariant;
  return have === undefined || need === undefined || have === need;
}
