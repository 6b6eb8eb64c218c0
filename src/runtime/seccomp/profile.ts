/**
 * Docker's seccomp profile format (the JSON of `docker run --security-opt seccomp=<file>`, and
 * of moby's `profiles/seccomp/default.json`), as a zod schema and its types. Fields Docker
 * ignores (comments, `listenerPath`, `flags`) are accepted and ignored.
 *
 * @module
 */
import { z } from 'zod';
import { CAPABILITIES } from '../capabilities.js';
import { BerthError } from '../../errors.js';

/** Seccomp actions of the format, as libseccomp names them. */
export const SECCOMP_ACTIONS = [
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_LOG',
] as const;

/** One seccomp action. */
export type SeccompAction = (typeof SECCOMP_ACTIONS)[number];

/** Argument comparisons of the format. */
export const SECCOMP_OPS = [
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
] as const;

/** One argument comparison. */
export type SeccompOp = (typeof SECCOMP_OPS)[number];

const u64 = z
  .number()
  .int()
  .min(0)
  .max(Number.MAX_SAFE_INTEGER, 'values above 2^53 - 1 cannot be read exactly from JSON');
const errno = z.number().int().min(0).max(4095);
const capability = z.string().refine((c) => c in CAPABILITIES, 'unknown capability');
const filter = z.object({
  caps: z.array(capability).nullish(),
  arches: z.array(z.string()).nullish(),
  minKernel: z
    .string()
    .regex(/^\d+\.\d+(\.\d+)?$/, 'expected a kernel version like 4.8')
    .nullish(),
});

/** Schema of one rule of a profile (an entry of `syscalls`). */
export const seccompSyscallSchema = z
  .object({
    names: z.array(z.string().min(1)).nullish(),
    name: z.string().min(1).nullish(),
    action: z.enum(SECCOMP_ACTIONS),
    errnoRet: errno.nullish(),
    args: z
      .array(
        z.object({
          index: z.number().int().min(0).max(5),
          value: u64,
          valueTwo: u64.nullish(),
          op: z.enum(SECCOMP_OPS),
        }),
      )
      .nullish(),
    includes: filter.nullish(),
    excludes: filter.nullish(),
  })
  .refine((s) => (s.names?.length ?? 0) > 0 || !!s.name, 'a rule needs names (or name)');

/** Schema of a whole profile. */
export const seccompProfileSchema = z
  .object({
    defaultAction: z.enum(SECCOMP_ACTIONS),
    defaultErrnoRet: errno.nullish(),
    architectures: z.array(z.string()).nullish(),
    archMap: z.array(z.object({ architecture: z.string(), subArchitectures: z.array(z.string()).nullish() })).nullish(),
    syscalls: z.array(seccompSyscallSchema).nullish(),
  })
  .refine((p) => !(p.architectures?.length && p.archMap?.length), "'architectures' and 'archMap' cannot both be set");

/** A seccomp profile in Docker's format. */
export type SeccompProfile = z.infer<typeof seccompProfileSchema>;

/** One rule of a {@link SeccompProfile}. */
export type SeccompRule = z.infer<typeof seccompSyscallSchema>;

/**
 * Reads a profile from its JSON text (or an already parsed value). Throws an `INVALID_ARGUMENT`
 * error whose message names the first bad field (`syscalls.3.action: …`).
 */
export function parseSeccompProfile(input: string | unknown): SeccompProfile {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (e) {
      throw new BerthError('INVALID_ARGUMENT', `not valid JSON: ${(e as Error).message}`, { cause: e });
    }
  }
  const r = seccompProfileSchema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = issue.path.map(String).join('.');
  throw new BerthError('INVALID_ARGUMENT', `${path ? `${path}: ` : ''}${issue.message}`, { cause: r.error });
}
