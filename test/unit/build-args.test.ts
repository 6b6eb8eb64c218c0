/** Build-argument scoping (`image/build/args.ts`), as BuildKit scopes ARG. */
import { describe, expect, it } from 'vitest';
import { ArgScope, ArgUsage, platformArgs } from '../../src/image/build/args.js';

describe('ArgScope', () => {
  const outer = new Map<string, string | undefined>([['GLOBAL', 'g']]);

  it.each([
    ['a buildArg wins over the default', { V: 'given' }, 'V', 'default', 'given'],
    ['the default applies without a buildArg', {}, 'V', 'default', 'default'],
    ['a re-declared global takes the global value', {}, 'GLOBAL', undefined, 'g'],
    ['a buildArg wins over the global value', { GLOBAL: 'b' }, 'GLOBAL', undefined, 'b'],
    ['an argument with no value stays unset', {}, 'NONE', undefined, undefined],
  ] as const)('%s', (_title, buildArgs, name, def, want) => {
    const scope = new ArgScope(buildArgs, outer, new ArgUsage(buildArgs));
    expect(scope.declare(name, def)).toBe(want);
    expect(scope.get(name)).toBe(want);
    expect(scope.has(name)).toBe(true);
  });

  it('sees nothing it did not declare, and lists the declared arguments with values in order', () => {
    const scope = new ArgScope({ B: '2' }, outer, new ArgUsage({ B: '2' }));
    expect(scope.get('GLOBAL')).toBeUndefined();
    scope.declare('B', undefined);
    scope.declare('UNSET', undefined);
    scope.declare('A', '1');
    expect(scope.set()).toEqual([
      ['B', '2'],
      ['A', '1'],
    ]);
  });

  it('hands proxy build arguments to RUN without a declaration', () => {
    const args = { http_proxy: 'http://p:3128', OTHER: 'x' };
    const scope = new ArgScope(args, outer, new ArgUsage(args));
    expect(scope.proxies()).toEqual([['http_proxy', 'http://p:3128']]);
  });
});

describe('ArgUsage', () => {
  it('reports the build arguments no ARG declared, proxies excepted', () => {
    const usage = new ArgUsage({ USED: '1', UNUSED: '2', HTTPS_PROXY: 'x' });
    usage.declared('USED');
    expect(usage.unused()).toEqual(['UNUSED']);
  });
});

describe('platformArgs', () => {
  it('names the target and build platforms and their parts', () => {
    const args = platformArgs(
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'linux', architecture: 'amd64' },
    );
    expect(Object.fromEntries(args)).toEqual({
      TARGETPLATFORM: 'linux/arm64/v8',
      TARGETOS: 'linux',
      TARGETARCH: 'arm64',
      TARGETVARIANT: 'v8',
      BUILDPLATFORM: 'linux/amd64',
      BUILDOS: 'linux',
      BUILDARCH: 'amd64',
      BUILDVARIANT: '',
    });
  });
});
