import { resourcesSchema } from '../../src/container/options.js';
import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/runtime/plan.js';
import { parseResources } from '../../src/runtime/cgroups/index.js';
import { buildConfig } from '../../src/container/spec.js';
import {
  CONTAINER_PLAN_DEFAULTS,
  DEFAULT_DEVICES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  withDefaultSwap,
} from '../../src/container/defaults.js';
import { runtimeSpecFixture } from '../helpers/runtime-spec.js';

const MiB = 1024 * 1024;

const spec = runtimeSpecFixture({ lowerDirs: ['/l'] });

describe('Docker policy lives in the container service, not in the runtime', () => {
  it('buildPlan masks, makes read-only and creates exactly the paths and device nodes it is given, and none of its own', () => {
    const bare = buildPlan(spec, { maskedPaths: [], readonlyPaths: [], devices: [] });
    expect(bare.maskedPaths).toEqual([]);
    expect(bare.readonlyPaths).toEqual([]);
    expect(bare.devices).toEqual([]);
    const own = buildPlan(spec, {
      maskedPaths: ['/proc/x'],
      readonlyPaths: ['/proc/y'],
      devices: [{ path: '/dev/z', major: 1, minor: 3, mode: 0o600 }],
    });
    expect(own.maskedPaths).toEqual(['/proc/x']);
    expect(own.readonlyPaths).toEqual(['/proc/y']);
    expect(own.devices).toEqual([{ path: '/dev/z', major: 1, minor: 3, mode: 0o600 }]);
  });

  it("a container's plan gets Docker's masked and read-only paths and standard device nodes", () => {
    const p = buildPlan(spec, CONTAINER_PLAN_DEFAULTS);
    expect(p.maskedPaths).toEqual(DEFAULT_MASKED_PATHS);
    expect(p.readonlyPaths).toEqual(DEFAULT_READONLY_PATHS);
    expect(p.devices).toEqual(DEFAULT_DEVICES);
    expect(p.maskedPaths).toContain('/proc/kcore');
    expect(p.readonlyPaths).toContain('/proc/sys');
    // A null device, not the host's console (5,1).
    expect(p.devices.find((d) => d.path === '/dev/console')).toMatchObject({ major: 1, minor: 3 });
  });

  it('parseResources leaves an absent memorySwap absent; the service gives a memory limit as much swap as memory (2 × memory)', () => {
    expect(parseResources({ memory: '256m' })).toEqual({ memory: 256 * MiB });
    expect(withDefaultSwap(parseResources({ memory: '256m' }))).toEqual({ memory: 256 * MiB, memorySwap: 512 * MiB });
    expect(withDefaultSwap(parseResources({ memory: '64m', memorySwap: '96m' }))).toEqual({
      memory: 64 * MiB,
      memorySwap: 96 * MiB,
    });
    expect(withDefaultSwap(parseResources({ memory: '64m', memorySwap: -1 }))).toEqual({
      memory: 64 * MiB,
      memorySwap: -1,
    });
    expect(withDefaultSwap(parseResources({ pids: 10 }))).toEqual({ pids: 10 });
    // The create options' schema parses the limits once and gives the default swap.
    const { config } = buildConfig(
      'a'.repeat(64),
      { cmd: ['sh'] },
      { image: 'x', resources: resourcesSchema.parse({ memory: '32m' }) },
    );
    expect(config.resources).toEqual({ memory: 32 * MiB, memorySwap: 64 * MiB });
  });
});
