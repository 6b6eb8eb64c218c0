/**
 * Docker's seccomp options: `securityOpt: ['seccomp=unconfined' | 'seccomp=<profile file>' |
 * 'seccomp=<profile JSON>']`, Docker's default profile otherwise, none for a privileged
 * container. The choice is made (and a profile read and checked) at create and kept in the
 * container's record; each start and exec compiles it for the container's capabilities
 * (cached, see `seccompFilterHex`).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { BerthError, InvalidArgumentError } from '../errors.js';
import { CAPABILITIES } from '../runtime/capabilities.js';
import {
  nativeSeccompArch,
  parseSeccompProfile,
  seccompFilterHex,
  seccompProfileSchema,
  type SeccompProfile,
} from '../runtime/seccomp/index.js';
import { DEFAULT_SECCOMP_PROFILE } from './seccomp-profile.js';

/** A container's seccomp: Docker's default profile, none, or a profile of its own. */
export type SeccompChoice = 'default' | 'unconfined' | { profile: SeccompProfile };

/** Schema of {@link SeccompChoice} in the record; records made before it existed get the default. */
export const seccompChoiceSchema = z.union([
  z.enum(['default', 'unconfined']),
  z.object({ profile: seccompProfileSchema }),
]);

/** A `securityOpt` entry that sets seccomp (`seccomp=…`, or Docker's older `seccomp:…`). */
export const SECCOMP_OPTION_RE = /^seccomp[=:]/;

/**
 * The seccomp choice of `securityOpt` (the last `seccomp=` entry wins): `unconfined`, a profile
 * given as JSON text (starting with `{`) or as the path of a JSON file, else Docker's default;
 * `privileged` means unconfined, as Docker does. Reads the file; throws INVALID_ARGUMENT naming
 * `securityOpt` for a file that cannot be read or a profile that is not one.
 */
export function resolveSeccomp(securityOpt: readonly string[], privileged: boolean): SeccompChoice {
  const opt = securityOpt.filter((o) => SECCOMP_OPTION_RE.test(o)).pop();
  const value = opt?.slice('seccomp='.length);
  if (value === undefined || value === '') return privileged ? 'unconfined' : 'default';
  if (value === 'unconfined') return 'unconfined';
  let text = value;
  if (!value.trimStart().startsWith('{')) {
    try {
      text = readFileSync(value, 'utf8');
    } catch (e) {
      throw new InvalidArgumentError(
        'securityOpt',
        `cannot read the seccomp profile ${value}: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }
  let profile: SeccompProfile;
  try {
    profile = parseSeccompProfile(text);
  } catch (e) {
    throw new InvalidArgumentError('securityOpt', `not a seccomp profile: ${(e as Error).message}`, { cause: e });
  }
  // Compiled once here, with no capability and with all: a profile the kernel could not take
  // (over BPF_MAXINSNS) fails the create, not each start.
  for (const caps of [[], Object.keys(CAPABILITIES)]) filterOf({ profile }, caps);
  return privileged ? 'unconfined' : { profile };
}

function filterOf(choice: Exclude<SeccompChoice, 'unconfined'>, capabilities: readonly string[]): string {
  const arch = nativeSeccompArch();
  if (!arch)
    throw new BerthError(
      'INVALID_ARGUMENT',
      `seccomp filters are made for x86_64 and aarch64, not ${process.arch}: run the container with securityOpt seccomp=unconfined`,
    );
  try {
    return seccompFilterHex(choice === 'default' ? DEFAULT_SECCOMP_PROFILE : choice.profile, { arch, capabilities });
  } catch (e) {
    throw new InvalidArgumentError('securityOpt', (e as Error).message, { cause: e });
  }
}

/**
 * The compiled filter (hex) a container's processes run under, for its capabilities; undefined
 * when unconfined (or privileged).
 */
export function seccompFilter(
  choice: SeccompChoice | undefined,
  privileged: boolean,
  capabilities: readonly string[],
): string | undefined {
  if (privileged || choice === 'unconfined') return undefined;
  return filterOf(choice ?? 'default', capabilities);
}
