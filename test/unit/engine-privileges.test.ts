/**
 * The check an engine makes when it opens: berth needs root, or the capabilities the README's
 * Requirements list, in this process's effective set. Pure: the sets are given.
 */
import { describe, expect, it } from 'vitest';
import {
  CAPABILITIES,
  ENGINE_CAPABILITIES,
  capabilityMask,
  checkEnginePrivileges,
} from '../../src/runtime/capabilities.js';

const ALL = capabilityMask(Object.keys(CAPABILITIES));
const without = (...names: string[]) => ALL & ~capabilityMask(names);

describe('engine privileges', () => {
  it('accepts every capability, and every one but CAP_SYS_RESOURCE (which only a lowered oomScoreAdj needs)', () => {
    expect(() => checkEnginePrivileges({ effective: ALL, uid: 0 })).not.toThrow();
    expect(() => checkEnginePrivileges({ effective: without('CAP_SYS_RESOURCE'), uid: 0 })).not.toThrow();
    // A non-root user holding them (ambient capabilities) is accepted too.
    expect(() => checkEnginePrivileges({ effective: capabilityMask(ENGINE_CAPABILITIES), uid: 1000 })).not.toThrow();
  });

  it('refuses an unprivileged user with PERMISSION_DENIED saying berth needs root and naming the capabilities', () => {
    const err = (() => {
      try {
        checkEnginePrivileges({ effective: 0n, uid: 65534 });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({ code: 'PERMISSION_DENIED' });
    const msg = (err as Error).message;
    expect(msg).toMatch(/root/);
    expect(msg).toContain('uid 65534');
    for (const c of ENGINE_CAPABILITIES) expect(msg).toContain(c);
  });

  it('refuses root without CAP_SYS_ADMIN (as in an unprivileged container), naming only what is missing', () => {
    const err = (() => {
      try {
        checkEnginePrivileges({ effective: without('CAP_SYS_ADMIN', 'CAP_NET_ADMIN'), uid: 0 });
      } catch (e) {
        return e;
      }
    })() as Error;
    expect(err).toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(err.message).toContain('lacks CAP_SYS_ADMIN, CAP_NET_ADMIN');
    expect(err.message).not.toContain('CAP_CHOWN,');
  });
});
