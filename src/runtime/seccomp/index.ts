/**
 * seccomp for containers: Docker's profile format and a compiler to the classic BPF program the
 * init loads with `seccomp(SECCOMP_SET_MODE_FILTER)`. Which profile a container runs under (Docker's
 * default is `src/container/seccomp-profile.ts`) is the container service's choice.
 *
 * @module
 */
export { parseSeccompProfile, seccompProfileSchema, SECCOMP_ACTIONS, SECCOMP_OPS } from './profile.js';
export type { SeccompAction, SeccompOp, SeccompProfile, SeccompRule } from './profile.js';
export { compileSeccomp, seccompFilterHex, nativeSeccompArch, BPF_MAXINSNS, SECCOMP_RET } from './compile.js';
export type { SeccompArch, SeccompTarget } from './compile.js';
