/** The config-only instructions (`image/build/metadata.ts`) and the path rules of the build steps. */
import { describe, expect, it } from 'vitest';
import type { OciImageConfig } from '../../src/image/image-config.js';
import {
  applyMetadata,
  exposedPortKeys,
  getEnv,
  resolveWorkdir,
  setEnv,
  type MetadataInstruction,
  type Substitution,
} from '../../src/image/build/metadata.js';
import { copyDest } from '../../src/image/build/steps.js';
import type { Instruction } from '../../src/image/build/parser/index.js';

/** Substitution of `$NAME` from a fixed map, for these tests (the parser's expander is tested on its own). */
function sub(vars: Record<string, string>): Substitution {
  const word = (raw: string): string => raw.replace(/\$(\w+)/g, (_m, n: string) => vars[n] ?? '');
  return { word, words: (raw) => word(raw).split(/\s+/).filter(Boolean), heredoc: word };
}

function image(config: OciImageConfig['config'] = {}): OciImageConfig {
  return { architecture: 'amd64', os: 'linux', config, rootfs: { type: 'layers', diff_ids: [] }, history: [] };
}

const at = { line: 1, endLine: 1, original: '' };

describe('applyMetadata', () => {
  it('substitutes every ENV pair against the environment before the instruction', () => {
    const img = image({ Env: ['A=one'] });
    const r = applyMetadata(
      img,
      {
        ...at,
        kind: 'ENV',
        pairs: [
          { key: 'A', value: 'two' },
          { key: 'B', value: '$A' },
        ],
      },
      sub({ A: 'one' }),
      false,
    );
    expect(img.config?.Env).toEqual(['A=two', 'B=one']);
    expect(r.createdBy).toBe('ENV A=two B=one');
  });

  it.each([
    ['resets an inherited CMD', false, null],
    ['keeps a CMD of the same stage', true, ['x']],
  ] as const)('ENTRYPOINT %s', (_t, cmdSet, want) => {
    const img = image({ Cmd: ['x'] });
    applyMetadata(img, { ...at, kind: 'ENTRYPOINT', command: { form: 'shell', text: 'run' } }, sub({}), cmdSet);
    expect(img.config?.Entrypoint).toEqual(['/bin/sh', '-c', 'run']);
    expect(img.config?.Cmd).toEqual(want);
  });

  it('runs shell-form CMD through the SHELL set before', () => {
    const img = image({ Shell: ['/bin/bash', '-o', 'pipefail', '-c'] });
    applyMetadata(img, { ...at, kind: 'CMD', command: { form: 'shell', text: 'a | b' } }, sub({}), false);
    expect(img.config?.Cmd).toEqual(['/bin/bash', '-o', 'pipefail', '-c', 'a | b']);
  });

  it('replaces the inherited HEALTHCHECK whole and disables it with NONE', () => {
    const img = image({ Healthcheck: { Test: ['CMD', 'old'], Interval: 1e9, Retries: 9 } });
    const hc: MetadataInstruction = {
      ...at,
      kind: 'HEALTHCHECK',
      test: { form: 'shell', text: 'curl x' },
      timeout: 2e9,
    };
    applyMetadata(img, hc, sub({}), false);
    expect(img.config?.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'curl x'], Timeout: 2e9 });
    applyMetadata(img, { ...at, kind: 'HEALTHCHECK', test: 'NONE' }, sub({}), false);
    expect(img.config?.Healthcheck).toEqual({ Test: ['NONE'] });
  });

  it('adds LABELs, VOLUMEs, EXPOSEd ports and ONBUILD triggers to the inherited ones', () => {
    const img = image({
      Labels: { a: '1' },
      Volumes: { '/v1': {} },
      ExposedPorts: { '1/tcp': {} },
      OnBuild: ['RUN a'],
    });
    const s = sub({ P: '80' });
    applyMetadata(img, { ...at, kind: 'LABEL', pairs: [{ key: 'b', value: '$P' }] }, s, false);
    applyMetadata(img, { ...at, kind: 'VOLUME', paths: ['/v2'] }, s, false);
    applyMetadata(img, { ...at, kind: 'EXPOSE', ports: ['$P/udp'] }, s, false);
    const trigger: Instruction = {
      ...at,
      kind: 'RUN',
      command: { form: 'shell', text: 'b' },
      mounts: [],
      heredocs: [],
    };
    applyMetadata(img, { ...at, kind: 'ONBUILD', trigger: 'RUN b', instruction: trigger }, s, false);
    expect(img.config).toMatchObject({
      Labels: { a: '1', b: '80' },
      Volumes: { '/v1': {}, '/v2': {} },
      ExposedPorts: { '1/tcp': {}, '80/udp': {} },
      OnBuild: ['RUN a', 'RUN b'],
    });
  });

  it('refuses an invalid STOPSIGNAL and an empty VOLUME with the line', () => {
    expect(() => applyMetadata(image(), { ...at, kind: 'STOPSIGNAL', signal: 'no signal' }, sub({}), false)).toThrow(
      /Dockerfile:1: invalid signal/,
    );
    expect(() => applyMetadata(image(), { ...at, kind: 'VOLUME', paths: ['$NONE'] }, sub({}), false)).toThrow(
      /Dockerfile:1: VOLUME/,
    );
  });
});

describe('paths and ports', () => {
  it.each([
    [undefined, 'app', '/app'],
    ['/app', 'sub', '/app/sub'],
    ['/app', '/abs', '/abs'],
    ['/app/x', '../y/./z/', '/app/y/z'],
  ] as const)('WORKDIR %s + %s is %s', (current, path, want) => {
    expect(resolveWorkdir(current, path)).toBe(want);
  });

  it.each([
    ['/app', 'file.txt', '/app/file.txt'],
    ['/app', '.', '/app/'],
    ['/app', 'dir/', '/app/dir/'],
    [undefined, 'x', '/x'],
    ['/', '/', '/'],
  ] as const)('COPY destination %s + %s is %s', (workdir, dest, want) => {
    expect(copyDest(workdir, dest)).toBe(want);
  });

  it('expands port ranges and refuses bad ports with the line', () => {
    expect(['80', '53/UDP', '8000-8002/tcp'].flatMap((w) => exposedPortKeys(w))).toEqual([
      '80/tcp',
      '53/udp',
      '8000/tcp',
      '8001/tcp',
      '8002/tcp',
    ]);
    const expose = (port: string) => () =>
      applyMetadata(image(), { ...at, line: 3, kind: 'EXPOSE', ports: [port] }, sub({}), false);
    expect(expose('70000')).toThrow(/Dockerfile:3: EXPOSE: '70000' is out of range/);
    expect(expose('http')).toThrow(/Dockerfile:3: EXPOSE: 'http' is not a port/);
  });

  it('sets and reads environment entries by key', () => {
    expect(setEnv(['A=1', 'AB=2'], 'A', '3')).toEqual(['AB=2', 'A=3']);
    expect(getEnv(['A=1', 'A=2'], 'A')).toBe('2');
    expect(getEnv(['AB=1'], 'A')).toBeUndefined();
  });
});
