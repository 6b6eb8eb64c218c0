/**
 * The Dockerfile parser: each instruction's shape, flags, JSON detection, directives, line
 * continuations, stages, and errors with their line numbers (BuildKit's meaning).
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { parseDockerfile, parseInstruction, parseInstructions } from '../../src/image/build/parser/index.js';

function errorOf(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as InvalidArgumentError).field).toBe('dockerfile');
    return e as InvalidArgumentError;
  }
  throw new Error('no error was thrown');
}

describe('parseInstruction: each instruction and its fields', () => {
  it.each([
    ['FROM busybox', { kind: 'FROM', image: 'busybox' }],
    ['FROM scratch', { kind: 'FROM', image: 'scratch' }],
    [
      'FROM --platform=$BUILDPLATFORM golang:1.22 AS Build',
      { image: 'golang:1.22', name: 'build', platform: '$BUILDPLATFORM' },
    ],
    ['from ${BASE}:${TAG} as base', { kind: 'FROM', image: '${BASE}:${TAG}', name: 'base' }],
    ['RUN echo "a  b" && true', { kind: 'RUN', command: { form: 'shell', text: 'echo "a  b" && true' }, mounts: [] }],
    ['RUN ["sh", "-c", "echo hi"]', { command: { form: 'exec', args: ['sh', '-c', 'echo hi'] }, heredocs: [] }],
    [
      'RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id="my key" --network=none --security=insecure make',
      {
        mounts: ['type=cache,target=/root/.cache', 'type=secret,id=my key'],
        network: 'none',
        security: 'insecure',
        command: { form: 'shell', text: 'make' },
      },
    ],
    ['RUN -- --not-a-flag', { command: { form: 'shell', text: '--not-a-flag' } }],
    ['run ls', { kind: 'RUN', command: { form: 'shell', text: 'ls' } }],
    [
      'CMD ["nginx", "-g", "daemon off;"]',
      { kind: 'CMD', command: { form: 'exec', args: ['nginx', '-g', 'daemon off;'] } },
    ],
    ['CMD echo $HOME', { kind: 'CMD', command: { form: 'shell', text: 'echo $HOME' } }],
    ['CMD []', { kind: 'CMD', command: { form: 'exec', args: [] } }],
    ['ENTRYPOINT ["/init"]', { kind: 'ENTRYPOINT', command: { form: 'exec', args: ['/init'] } }],
    ['ENTRYPOINT exec app "$@"', { kind: 'ENTRYPOINT', command: { form: 'shell', text: 'exec app "$@"' } }],
    [
      'COPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md --exclude=.git a b/ /dst/',
      {
        kind: 'COPY',
        sources: ['a', 'b/'],
        dest: '/dst/',
        from: 'build',
        chown: 'app:app',
        chmod: '0755',
        link: true,
        parents: true,
        exclude: ['*.md', '.git'],
        heredocs: [],
      },
    ],
    ['COPY --link=false a /b', { link: false, parents: false, exclude: [] }],
    ['COPY ["a b", "$DEST"]', { sources: ['a b'], dest: '$DEST' }],
    ['COPY "a b" /x', { sources: ['"a', 'b"'], dest: '/x' }],
    [
      'ADD --checksum=sha256:abc --keep-git-dir --unpack=false https://x/y.tar /opt/',
      {
        kind: 'ADD',
        sources: ['https://x/y.tar'],
        dest: '/opt/',
        checksum: 'sha256:abc',
        keepGitDir: true,
        unpack: false,
      },
    ],
    [
      'ENV A=1 B="x y" C=\\$lit D=',
      {
        kind: 'ENV',
        pairs: [
          { key: 'A', value: '1' },
          { key: 'B', value: '"x y"' },
          { key: 'C', value: '\\$lit' },
          { key: 'D', value: '' },
        ],
      },
    ],
    [
      'ENV PATH /usr/local/bin:$PATH  with spaces',
      { pairs: [{ key: 'PATH', value: '/usr/local/bin:$PATH  with spaces' }] },
    ],
    ["ENV name='a\\'b''", { pairs: [{ key: 'name', value: "'a\\'b''" }] }],
    [
      'LABEL a=1 "b c"="d e"',
      {
        kind: 'LABEL',
        pairs: [
          { key: 'a', value: '1' },
          { key: '"b c"', value: '"d e"' },
        ],
      },
    ],
    ['LABEL maintainer foo@bar.com', { kind: 'LABEL', pairs: [{ key: 'maintainer', value: 'foo@bar.com' }] }],
    [
      'ARG A B=2 C="x y" D=',
      {
        kind: 'ARG',
        args: [{ name: 'A' }, { name: 'B', value: '2' }, { name: 'C', value: '"x y"' }, { name: 'D', value: '' }],
      },
    ],
    ['EXPOSE 80 53/udp ${PORTS}', { kind: 'EXPOSE', ports: ['80', '53/udp', '${PORTS}'] }],
    ['VOLUME ["/data", "/logs"]', { kind: 'VOLUME', paths: ['/data', '/logs'] }],
    ['VOLUME /a   /b', { kind: 'VOLUME', paths: ['/a', '/b'] }],
    ['WORKDIR /srv/my app', { kind: 'WORKDIR', path: '/srv/my app' }],
    ['USER 1000:1000', { kind: 'USER', user: '1000:1000' }],
    ['SHELL ["/bin/bash", "-o", "pipefail", "-c"]', { kind: 'SHELL', shell: ['/bin/bash', '-o', 'pipefail', '-c'] }],
    ['STOPSIGNAL SIGQUIT', { kind: 'STOPSIGNAL', signal: 'SIGQUIT' }],
    ['MAINTAINER Jane Doe <jane@example.com>', { kind: 'MAINTAINER', name: 'Jane Doe <jane@example.com>' }],
    ['HEALTHCHECK NONE', { kind: 'HEALTHCHECK', test: 'NONE' }],
    ['healthcheck none', { kind: 'HEALTHCHECK', test: 'NONE' }],
    [
      'HEALTHCHECK --interval=30s --timeout=1m30s --start-period=1.5s --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1',
      {
        test: { form: 'shell', text: 'curl -f http://localhost/ || exit 1' },
        interval: 30e9,
        timeout: 90e9,
        startPeriod: 1.5e9,
        startInterval: 500e6,
        retries: 3,
      },
    ],
    ['HEALTHCHECK CMD ["/check", "x"]', { test: { form: 'exec', args: ['/check', 'x'] } }],
    ['HEALTHCHECK --interval=0s --retries=0 CMD true', { test: { form: 'shell', text: 'true' } }],
    ['HEALTHCHECK --interval=1ms --timeout=-0s CMD true', { interval: 1e6 }],
    ['HEALTHCHECK   CMD   a b', { test: { form: 'shell', text: 'a b' } }],
    [
      'ONBUILD RUN make /app',
      {
        kind: 'ONBUILD',
        trigger: 'RUN make /app',
        instruction: { kind: 'RUN', command: { form: 'shell', text: 'make /app' } },
      },
    ],
    [
      'onbuild copy --chown=1 . /src',
      { trigger: 'copy --chown=1 . /src', instruction: { kind: 'COPY', chown: '1', sources: ['.'], dest: '/src' } },
    ],
  ])('%s', (line, expected) => {
    expect(parseInstruction(line)).toMatchObject(expected);
  });

  it('leaves optional fields out when their flags are absent', () => {
    const run = parseInstruction('RUN true');
    expect(run).not.toHaveProperty('network');
    expect(run).not.toHaveProperty('security');
    const copy = parseInstruction('COPY a b');
    for (const k of ['from', 'chown', 'chmod', 'checksum', 'keepGitDir', 'unpack']) expect(copy).not.toHaveProperty(k);
    const hc = parseInstruction('HEALTHCHECK --interval=0s CMD true');
    for (const k of ['interval', 'timeout', 'startPeriod', 'startInterval', 'retries'])
      expect(hc).not.toHaveProperty(k);
  });
});

describe('JSON form detection (as BuildKit: invalid JSON falls back to shell form)', () => {
  it.each([
    ['CMD ["a", "b"]', { form: 'exec', args: ['a', 'b'] }],
    ['CMD   [ "a" ]  ', { form: 'exec', args: ['a'] }],
    ["CMD ['a', 'b']", { form: 'shell', text: "['a', 'b']" }],
    ['CMD ["a", "b"', { form: 'shell', text: '["a", "b"' }],
    ['CMD ["a", "b]', { form: 'shell', text: '["a", "b]' }],
    ['CMD [ "a" ] x', { form: 'shell', text: '[ "a" ] x' }],
    ['CMD {"a": 1}', { form: 'shell', text: '{"a": 1}' }],
    ['CMD ["echo \\"[]\\""]', { form: 'exec', args: ['echo "[]"'] }],
    ['CMD', { form: 'shell', text: '' }],
  ])('%s', (line, command) => {
    expect(parseInstruction(line)).toMatchObject({ command });
  });

  it.each(['CMD ["a", 1]', 'RUN [ "echo", [ "nested" ] ]', 'VOLUME [null]'])(
    '%s: a JSON array of non-strings is an error',
    (line) => {
      expect(errorOf(() => parseInstruction(line)).message).toContain(
        'Dockerfile:1: when using JSON array syntax, arrays must be comprised of strings only',
      );
    },
  );
});

describe('parseDockerfile: directives, continuations, comments, stages', () => {
  it('reads syntax and escape directives at the top, case-insensitive, with spaces', () => {
    const df = parseDockerfile('# syntax=docker/dockerfile:1.7\n#  ESCAPE = `\nFROM a\nRUN echo `\n  hi\n');
    expect(df.syntax).toBe('docker/dockerfile:1.7');
    expect(df.escape).toBe('`');
    expect(df.stages[0]?.instructions[0]).toMatchObject({ original: 'RUN echo   hi', line: 4, endLine: 5 });
  });

  it.each([
    ['after an empty line', '\n# escape=`\nFROM a\nRUN a `\nb\n', 5],
    ['after a comment', '# hello\n# escape=`\nFROM a\nRUN a `\nb\n', 5],
    ['after an unknown directive', '# foo=bar\n# escape=`\nFROM a\nRUN a `\nb\n', 5],
    ['after an instruction', 'FROM a\n# escape=`\nRUN a `\nb\n', 4],
  ])('ignores a directive %s (it is a comment)', (_, text, line) => {
    expect(errorOf(() => parseDockerfile(text)).message).toContain(`Dockerfile:${line}: unknown instruction: b`);
  });

  it('ignores the check directive, keeps the default escape', () => {
    const df = parseDockerfile('# check=skip=all\nFROM a\nRUN a \\\n b\n');
    expect(df.escape).toBe('\\');
    expect(df.stages[0]?.instructions[0]?.original).toBe('RUN a  b');
  });

  it.each([
    ['# escape=x\nFROM a\n', "Dockerfile:1: invalid escape token 'x' does not match ` or \\"],
    ['# escape=`\n# escape=\\\nFROM a\n', 'Dockerfile:2: only one escape parser directive can be used'],
  ])('rejects a bad directive: %j', (text, message) => {
    expect(errorOf(() => parseDockerfile(text)).message).toContain(message);
  });

  it('joins continuation lines as BuildKit (indentation kept, comment and empty lines dropped) and warns about empty ones', () => {
    const df = parseDockerfile(
      [
        'FROM a',
        'RUN apt-get update && \\',
        '    # install things',
        '    apt-get install -y \\',
        '',
        '      curl',
        '  # a comment before an instruction',
        '  ENV X=1',
      ].join('\n'),
    );
    const [run, env] = df.stages[0]?.instructions ?? [];
    expect(run).toMatchObject({
      line: 2,
      endLine: 6,
      original: 'RUN apt-get update &&     apt-get install -y       curl',
      command: { form: 'shell', text: 'apt-get update &&     apt-get install -y       curl' },
    });
    expect(env).toMatchObject({ line: 8, kind: 'ENV' });
    expect(df.warnings).toContainEqual({
      line: 6,
      message: 'Empty continuation line found in: RUN apt-get update &&     apt-get install -y       curl',
    });
  });

  it('gives each instruction its first and last line across blank lines, comments and continuations', () => {
    const text = [
      '# ESCAPE=\\',
      '',
      '',
      '',
      'FROM brimstone/ubuntu:14.04',
      '',
      '',
      '# TORUN -v /var/run/docker.sock:/var/run/docker.sock',
      '',
      '',
      'ENV GOPATH \\',
      '/go',
      '',
      '',
      '',
      '# Install the packages we need',
      'RUN apt-get update \\',
      '\t&& dpkg -l > /tmp/dpkg.clean \\',
      '',
      '',
      '    && apt-get install -y git \\',
      '    && apt-get clean \\',
      '    && rm -rf /var/lib/apt/lists \\',
      '',
      '\t&& go get -v github.com/brimstone/consuldock \\',
      '    && mv $GOPATH/bin/consuldock /usr/local/bin/consuldock \\',
      '',
      '\t&& dpkg -l > /tmp/dpkg.dirty \\',
      '\t&& apt-get remove --purge -y $(diff /tmp/dpkg.clean /tmp/dpkg.dirty) \\',
      '\t&& rm /tmp/dpkg.* \\',
      '\t&& rm -rf $GOPATH',
      '',
      '',
    ].join('\n');
    const df = parseDockerfile(text);
    expect([df.stages[0]?.from, ...(df.stages[0]?.instructions ?? [])].map((i) => [i?.line, i?.endLine])).toEqual([
      [5, 5],
      [11, 12],
      [17, 31],
    ]);
  });

  it.each([
    ['an escaped escape is no continuation', 'FROM a\nRUN echo \\\\\nRUN b\n', ['RUN echo \\\\', 'RUN b']],
    ['trailing blanks after the escape still continue', 'FROM a\nRUN a \\  \t\nb\n', ['RUN a b']],
    ['a continuation at the end of the file ends the instruction', 'FROM a\nRUN a \\', ['RUN a']],
    ['CRLF line endings', 'FROM a\r\nRUN a \\\r\n b\r\n', ['RUN a  b']],
    ['a byte order mark is dropped', '\uFEFFFROM a\nRUN b\n', ['RUN b']],
  ])('%s', (_, text, originals) => {
    expect(parseDockerfile(text).stages[0]?.instructions.map((i) => i.original)).toEqual(originals);
  });

  it('splits stages, keeps global ARGs before the first FROM, lowercases stage names and warns', () => {
    const df = parseDockerfile(
      'ARG BASE=alpine\nARG TAG\nFROM ${BASE}:${TAG} AS Builder\nARG X\nRUN make\nfrom scratch\nCOPY --from=builder /a /a\nMAINTAINER me\n',
    );
    expect(df.globalArgs.map((a) => a.args)).toEqual([[{ name: 'BASE', value: 'alpine' }], [{ name: 'TAG' }]]);
    expect(df.stages.map((s) => [s.index, s.name, s.from.image, s.instructions.map((i) => i.kind)])).toEqual([
      [0, 'builder', '${BASE}:${TAG}', ['ARG', 'RUN']],
      [1, undefined, 'scratch', ['COPY', 'MAINTAINER']],
    ]);
    expect(df.warnings).toEqual([
      { line: 3, message: "Stage name 'Builder' should be lowercase" },
      { line: 8, message: 'Maintainer instruction is deprecated in favor of using label' },
    ]);
  });

  it("warns when FROM and AS casings differ ('as' with FROM)", () => {
    expect(parseDockerfile('FROM a as b\n').warnings).toEqual([
      { line: 1, message: "'as' and 'FROM' keywords' casing do not match" },
    ]);
  });

  it('parses a list of instructions without stage rules (parseInstructions)', () => {
    expect(parseInstructions('ENV A=1\n# c\nCMD ["x"]').map((i) => [i.kind, i.line])).toEqual([
      ['ENV', 1],
      ['CMD', 3],
    ]);
    expect(parseInstruction('RUN a `\n b', '`').original).toBe('RUN a  b');
  });
});

describe('errors carry the 1-based line and BuildKit meaning', () => {
  it.each([
    ['FROM a\nRUN x\nFORM b\n', 'Dockerfile:3: unknown instruction: FORM (did you mean FROM?)'],
    ['FROM a\n\n\ncopy-files x y\n', 'Dockerfile:4: unknown instruction: copy-files'],
    ['FROM a\nrunn x\n', 'Dockerfile:2: unknown instruction: runn (did you mean run?)'],
    ['FROM a\nWorkDir2 x\n', 'Dockerfile:2: unknown instruction: WorkDir2 (did you mean workdir?)'],
    ['', 'Dockerfile:1: file with no instructions'],
    ['# only\n# comments\n', 'Dockerfile:2: file with no instructions'],
    ['ARG A\n', 'Dockerfile:1: dockerfile contains no stages to build'],
    ['RUN x\nFROM a\n', 'Dockerfile:1: no build stage in current context'],
    ['FROM\n', 'Dockerfile:1: FROM requires either one or three arguments'],
    ['FROM a b\n', 'Dockerfile:1: FROM requires either one or three arguments'],
    [
      'FROM a AS 1x\n',
      'Dockerfile:1: invalid name for build stage: "1x", name can\'t start with a number or contain symbols',
    ],
    ['FROM --plaform=x a\n', 'Dockerfile:1: unknown flag: --plaform (did you mean platform?)'],
    ['FROM a\nRUN --network=bridge x\n', 'Dockerfile:2: invalid network mode "bridge"'],
    ['FROM a\nRUN --security=root x\n', 'Dockerfile:2: security "root" is not valid'],
    ['FROM a\nRUN --mount x\n', 'Dockerfile:2: missing a value on flag: --mount'],
    ['FROM a\nRUN --network=host --network=none x\n', 'Dockerfile:2: duplicate flag specified: --network'],
    ['FROM a\nCOPY --link=maybe a b\n', 'Dockerfile:2: expecting boolean value for flag --link, not: maybe'],
    ['FROM a\nCOPY --link= a b\n', 'Dockerfile:2: missing a value on flag: --link'],
    ['FROM a\nCOPY --checksum=x a b\n', 'Dockerfile:2: unknown flag: --checksum'],
    ['FROM a\nADD --from=x a b\n', 'Dockerfile:2: unknown flag: --from'],
    [
      'FROM a\nCOPY \\\n  onlyone\n',
      'Dockerfile:2: COPY requires at least two arguments, but only one was provided. Destination could not be determined',
    ],
    ['FROM a\nCOPY a <<EOF\nx\nEOF\n', 'Dockerfile:2: COPY cannot accept a heredoc as a destination'],
    ['FROM a\nENV\n', 'Dockerfile:2: ENV requires at least one argument'],
    ['FROM a\nENV PATH\n', 'Dockerfile:2: ENV must have two arguments'],
    ['FROM a\nENV A=1 B\n', 'Dockerfile:2: Syntax error - can\'t find = in "B". Must be of the form: name=value'],
    ['FROM a\nLABEL =x\n', 'Dockerfile:2: LABEL names can not be blank'],
    ['FROM a\nARG =x\n', 'Dockerfile:2: ARG names can not be blank'],
    ['FROM a\nARG\n', 'Dockerfile:2: ARG requires at least one argument'],
    ['FROM a\nEXPOSE\n', 'Dockerfile:2: EXPOSE requires at least one argument'],
    ['FROM a\nLABEL\n', 'Dockerfile:2: LABEL requires at least one argument'],
    ['FROM a\nVOLUME\n', 'Dockerfile:2: VOLUME requires at least one argument'],
    ['FROM a\nMAINTAINER\n', 'Dockerfile:2: MAINTAINER requires exactly one argument'],
    [
      'FROM a\nADD onlyone\n',
      'Dockerfile:2: ADD requires at least two arguments, but only one was provided. Destination could not be determined',
    ],
    ['FROM a\nHEALTHCHECK --interval=50ns CMD x\n', 'Dockerfile:2: Interval "interval" cannot be less than 1ms'],
    ['FROM a\nVOLUME ["/a", " "]\n', 'Dockerfile:2: VOLUME specified can not be an empty string'],
    ['FROM a\nWORKDIR\n', 'Dockerfile:2: WORKDIR requires exactly one argument'],
    ['FROM a\nUSER\n', 'Dockerfile:2: USER requires exactly one argument'],
    ['FROM a\nSTOPSIGNAL\n', 'Dockerfile:2: STOPSIGNAL requires exactly one argument'],
    ['FROM a\nMAINTAINER --boo joe@example.com\n', 'Dockerfile:2: unknown flag: --boo'],
    ['FROM a\nSHELL /bin/bash -c\n', 'Dockerfile:2: SHELL requires the arguments to be in JSON form'],
    ['FROM a\nSHELL []\n', 'Dockerfile:2: SHELL requires at least one argument'],
    ['FROM a\nENV --x=1 A=1\n', 'Dockerfile:2: unknown flag: --x'],
    ['FROM a\nHEALTHCHECK\n', 'Dockerfile:2: HEALTHCHECK requires at least one argument'],
    ['FROM a\nHEALTHCHECK NONE x\n', 'Dockerfile:2: HEALTHCHECK NONE takes no arguments'],
    ['FROM a\nHEALTHCHECK CMD\n', 'Dockerfile:2: Missing command after HEALTHCHECK CMD'],
    ['FROM a\nHEALTHCHECK CONNECT TCP 7000\n', 'Dockerfile:2: Unknown type "CONNECT" in HEALTHCHECK (try CMD)'],
    ['FROM a\nHEALTHCHECK --interval=5 CMD x\n', 'Dockerfile:2: time: invalid duration "5"'],
    ['FROM a\nHEALTHCHECK --timeout=10us CMD x\n', 'Dockerfile:2: Interval "timeout" cannot be less than 1ms'],
    ['FROM a\nHEALTHCHECK --retries=-1 CMD x\n', 'Dockerfile:2: --retries cannot be negative (-1)'],
    ['FROM a\nHEALTHCHECK --retries=x CMD x\n', 'Dockerfile:2: strconv.ParseInt: parsing "x": invalid syntax'],
    ['FROM a\nHEALTHCHECK --bogus=1 CMD x\n', 'Dockerfile:2: unknown flag: --bogus'],
    ['FROM a\nONBUILD\n', 'Dockerfile:2: ONBUILD requires at least one argument'],
    ['FROM a\nONBUILD ONBUILD RUN x\n', "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"],
    ['FROM a\nONBUILD FROM scratch\n', "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"],
    ['FROM a\nonbuild maintainer me\n', "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger"],
    ['FROM a\nONBUILD RUN --network=x y\n', 'Dockerfile:2: invalid network mode "x"'],
  ])('%j', (text, message) => {
    expect(errorOf(() => parseDockerfile(text)).message).toBe(`invalid dockerfile: ${message}`);
  });

  it('rejects text with several instructions in parseInstruction', () => {
    expect(errorOf(() => parseInstruction('ENV A=1\nENV B=2')).message).toContain(
      'Dockerfile:2: expected one instruction, found 2',
    );
  });
});
