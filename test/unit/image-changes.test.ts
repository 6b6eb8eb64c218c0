/**
 * `--change` instructions: what each one does to the image config, and what is rejected.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { applyChanges, parseDuration, shellWords } from '../../src/image/changes.js';
import { DEFAULT_PATH_ENV, runSettings } from '../../src/image/image-config.js';

const base = { Env: [DEFAULT_PATH_ENV] };

describe('applyChanges', () => {
  it.each([
    ['CMD ["sh", "-c", "echo hi"]', { Cmd: ['sh', '-c', 'echo hi'] }],
    ['CMD echo "hi there"', { Cmd: ['/bin/sh', '-c', 'echo "hi there"'] }],
    ['cmd ["top"]', { Cmd: ['top'] }],
    ['ENTRYPOINT ["/init"]', { Entrypoint: ['/init'], Cmd: null }],
    ['ENTRYPOINT exec app', { Entrypoint: ['/bin/sh', '-c', 'exec app'], Cmd: null }],
    ['CMD [not json', { Cmd: ['/bin/sh', '-c', '[not json'] }],
    ['WORKDIR /srv/app', { WorkingDir: '/srv/app' }],
    ['USER 1000:1000', { User: '1000:1000' }],
    ['STOPSIGNAL SIGQUIT', { StopSignal: 'SIGQUIT' }],
    ['STOPSIGNAL 9', { StopSignal: '9' }],
    [
      'EXPOSE 80 53/udp 8000-8002/tcp',
      { ExposedPorts: { '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {}, '8002/tcp': {} } },
    ],
    ['VOLUME ["/data", "/logs"]', { Volumes: { '/data': {}, '/logs': {} } }],
    ['VOLUME /a /b', { Volumes: { '/a': {}, '/b': {} } }],
    ['LABEL a=1 "b c"="d e" f=\'$NOPE\'', { Labels: { a: '1', 'b c': 'd e', f: '$NOPE' } }],
    ['ONBUILD RUN make', { OnBuild: ['RUN make'] }],
    ['HEALTHCHECK NONE', { Healthcheck: { Test: ['NONE'] } }],
    [
      'HEALTHCHECK --interval=5s --timeout=1m30s --retries=4 CMD curl -f http://localhost/',
      { Healthcheck: { Test: ['CMD-SHELL', 'curl -f http://localhost/'], Interval: 5e9, Timeout: 90e9, Retries: 4 } },
    ],
    ['HEALTHCHECK CMD ["/check", "x"]', { Healthcheck: { Test: ['CMD', '/check', 'x'] } }],
  ])('%s', (change, expected) => {
    expect(applyChanges(base, [change])).toEqual({ ...base, ...expected });
  });

  it('sets ENV in both forms, replacing and expanding', () => {
    const c = applyChanges(base, [
      'ENV A=1 B="two words" C=\\$lit',
      'ENV D the rest of the line',
      'ENV A=2',
      'ENV PATH=$PATH:/opt/bin E=${A}x F=${NOPE:-dflt} G=${A:+set}',
    ]);
    expect(c.Env).toEqual([
      'B=two words',
      'C=$lit',
      'D=the rest of the line',
      'A=2',
      `${DEFAULT_PATH_ENV}:/opt/bin`,
      'E=2x',
      'F=dflt',
      'G=set',
    ]);
  });

  it('keeps CMD when ENTRYPOINT follows it, clears it otherwise', () => {
    expect(applyChanges(base, ['CMD ["a"]', 'ENTRYPOINT ["e"]']).Cmd).toEqual(['a']);
    expect(applyChanges({ ...base, Cmd: ['old'] }, ['ENTRYPOINT ["e"]']).Cmd).toBeNull();
  });

  it('joins relative WORKDIRs', () => {
    expect(applyChanges(base, ['WORKDIR /a', 'WORKDIR b', 'WORKDIR ../c']).WorkingDir).toBe('/a/c');
    expect(applyChanges(base, ['ENV D=/x', 'WORKDIR $D/y']).WorkingDir).toBe('/x/y');
  });

  it('reads the changes as one Dockerfile (continuations, comments)', () => {
    const c = applyChanges(base, ['# a comment\nENV A=1 \\\n  B=2', '', 'CMD ["x"]']);
    expect(c.Env).toContain('A=1');
    expect(c.Env).toContain('B=2');
    expect(c.Cmd).toEqual(['x']);
  });

  it('expands every substitution form BuildKit knows (${V-x}, ${V+y}, ${V#p}, ${V%p}, ${V/p/r})', () => {
    const c = applyChanges(base, [
      'ENV A=prefix-value',
      'ENV B=${A-x} C=${NOPE-dflt} D=${A+set} E=${A#prefix-} F=${A%-value} G=${A/value/v}',
    ]);
    expect(c.Env?.slice(1)).toEqual([
      'A=prefix-value',
      'B=prefix-value',
      'C=dflt',
      'D=set',
      'E=value',
      'F=prefix',
      'G=prefix-v',
    ]);
  });

  it('expands the paths of a JSON-form VOLUME, as Docker does', () => {
    expect(applyChanges(base, ['ENV D=/data', 'VOLUME ["$D/x"]']).Volumes).toEqual({ '/data/x': {} });
  });

  it('expands all pairs of one ENV against the environment before it', () => {
    expect(applyChanges(base, ['ENV A=1', 'ENV A=2 B=$A']).Env?.slice(1)).toEqual(['A=2', 'B=1']);
  });

  it('does not modify its input', () => {
    const input = { Env: ['A=1'] };
    applyChanges(input, ['ENV B=2']);
    expect(input).toEqual({ Env: ['A=1'] });
  });

  it.each([
    'RUN echo hi',
    'FROM scratch',
    'COPY a b',
    'SHELL ["bash"]',
    'NOPE x',
    'CMD',
    'ENV',
    'ENV =x',
    'LABEL onlykey',
    'EXPOSE http',
    'EXPOSE 70000',
    'STOPSIGNAL not-a-signal',
    'HEALTHCHECK --bogus=1 CMD x',
    'HEALTHCHECK --interval=5 CMD x',
    'HEALTHCHECK true',
    'ONBUILD ONBUILD RUN x',
    'ENV A="unterminated',
    'ENV A=${NOPE:?must be set}',
    'CMD ["a", 1]',
  ])('rejects %s', (change) => {
    let err: unknown;
    try {
      applyChanges(base, [change]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).toBe('changes');
  });
});

describe('helpers', () => {
  it('splits shell words', () => {
    expect(shellWords(`a "b c" 'd $X' e\\ f $X`, ['X=1'], true)).toEqual(['a', 'b c', 'd $X', 'e f', '1']);
    expect(shellWords('keep   spaces $X', ['X=1'], false)).toEqual(['keep   spaces 1']);
  });

  it('parses Go durations', () => {
    expect(parseDuration('1h2m3s')).toBe(3723e9);
    expect(parseDuration('1.5s')).toBe(1.5e9);
    expect(parseDuration('250ms')).toBe(250e6);
    expect(parseDuration('0')).toBe(0);
    expect(() => parseDuration('5')).toThrow(InvalidArgumentError);
  });

  it('maps a config to camelCase run settings', () => {
    const c = applyChanges(base, ['CMD ["sh"]', 'EXPOSE 80', 'HEALTHCHECK --interval=2s CMD true', 'LABEL a=b']);
    expect(runSettings(c)).toEqual({
      cmd: ['sh'],
      entrypoint: null,
      env: [DEFAULT_PATH_ENV],
      workdir: null,
      user: null,
      exposedPorts: ['80/tcp'],
      volumes: [],
      labels: { a: 'b' },
      healthcheck: { test: ['CMD-SHELL', 'true'], interval: 2000 },
      stopSignal: null,
    });
  });
});
