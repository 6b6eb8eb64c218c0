/**
 * The zygote's environment (`zygoteEnvironment`): what node may need to start, nothing else of
 * the engine's (every JavaScript init and forked exec carries a copy of it).
 */
import { describe, expect, it } from 'vitest';
import { ZYGOTE_ENV_KEYS, zygoteEnvironment } from '../../src/runtime/zygote-client.js';

describe('zygoteEnvironment', () => {
  it('keeps only the listed variables the engine sets', () => {
    const env = {
      PATH: '/bin',
      HOME: '/root',
      AWS_SECRET_ACCESS_KEY: 'x',
      NODE_OPTIONS: '--require hook',
      BERTH_ROOT: '/r',
      LD_LIBRARY_PATH: '/opt/lib',
    };
    expect(zygoteEnvironment(env)).toEqual({ LD_LIBRARY_PATH: '/opt/lib' });
  });

  it('is empty when none of them is set', () => {
    expect(zygoteEnvironment({ PATH: '/bin', SECRET: 's' })).toEqual({});
    expect(ZYGOTE_ENV_KEYS).toEqual(['LD_LIBRARY_PATH', 'NODE_ICU_DATA']);
  });
});
