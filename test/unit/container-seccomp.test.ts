import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveSeccomp, seccompFilter } from '../../src/container/seccomp.js';
import { buildConfig } from '../../src/container/spec.js';
import { createOptionsSchema, parseOptions } from '../../src/container/options.js';
import { DEFAULT_CAPABILITIES } from '../../src/container/defaults.js';
import { nativeSeccompArch, seccompFilterHex } from '../../src/runtime/seccomp/index.js';
import { DEFAULT_SECCOMP_PROFILE } from '../../src/container/seccomp-profile.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';

const PROFILE = {
  defaultAction: 'SCMP_ACT_ALLOW',
  syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
};

describe('securityOpt seccomp (Docker semantics)', () => {
  it("defaults to Docker's profile; unconfined, privileged and the last seccomp= entry decide", () => {
    expect(resolveSeccomp([], false)).toBe('default');
    expect(resolveSeccomp(['no-new-privileges'], false)).toBe('default');
    expect(resolveSeccomp([], true)).toBe('unconfined');
    expect(resolveSeccomp(['seccomp=unconfined'], false)).toBe('unconfined');
    expect(resolveSeccomp(['seccomp:unconfined'], false)).toBe('unconfined');
    expect(resolveSeccomp([`seccomp=${JSON.stringify(PROFILE)}`], false)).toEqual({ profile: PROFILE });
    expect(resolveSeccomp([`seccomp=${JSON.stringify(PROFILE)}`, 'seccomp=unconfined'], false)).toBe('unconfined');
    // Privileged is unconfined whatever profile is given, as Docker does.
    expect(resolveSeccomp([`seccomp=${JSON.stringify(PROFILE)}`], true)).toBe('unconfined');
  });

  it('reads a profile file at create; a missing or bad one is INVALID_ARGUMENT naming securityOpt', () => {
    const file = join(tempDir('seccomp-unit'), 'p.json');
    writeFileSync(file, JSON.stringify(PROFILE));
    expect(resolveSeccomp([`seccomp=${file}`], false)).toEqual({ profile: PROFILE });
    writeFileSync(file, '{"defaultAction": 1}');
    for (const opt of [
      `seccomp=${file}`,
      'seccomp=/nonexistent.json',
      'seccomp={',
      'seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_NOTIFY"}]}',
    ]) {
      expect(() => resolveSeccomp([opt], false), opt).toThrow(InvalidArgumentError);
      expect(() => resolveSeccomp([opt], false), opt).toThrow(/securityOpt/);
    }
    expect(() => parseOptions(createOptionsSchema, { image: 'x', securityOpt: ['seccomp'] })).toThrow(/securityOpt\.0/);
    expect(() => parseOptions(createOptionsSchema, { image: 'x', securityOpt: ['label=disable'] })).toThrow(
      /securityOpt\.0/,
    );
  });

  it("the record keeps the choice; the filter follows the container's capabilities", () => {
    const arch = nativeSeccompArch()!;
    const { config } = buildConfig('a'.repeat(64), { cmd: ['sh'] }, { image: 'x', capAdd: ['SYS_ADMIN'] });
    expect(config.seccomp).toBe('default');
    expect(seccompFilter(config.seccomp, config.privileged, config.capabilities)).toBe(
      seccompFilterHex(DEFAULT_SECCOMP_PROFILE, { arch, capabilities: config.capabilities }),
    );
    expect(seccompFilter('default', false, DEFAULT_CAPABILITIES)).not.toBe(
      seccompFilter('default', false, config.capabilities),
    );
    expect(seccompFilter('unconfined', false, DEFAULT_CAPABILITIES)).toBeUndefined();
    // A privileged record made before the choice was kept (it reads as 'default') stays unconfined.
    expect(seccompFilter('default', true, DEFAULT_CAPABILITIES)).toBeUndefined();
    expect(buildConfig('a'.repeat(64), { cmd: ['sh'] }, { image: 'x', privileged: true }).config.seccomp).toBe(
      'unconfined',
    );
  });
});
