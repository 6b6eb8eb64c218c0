/**
 * Heredocs in the Dockerfile parser: which instructions read bodies, delimiter quoting, `<<-`,
 * file descriptors, several heredocs per instruction, COPY heredoc sources, ONBUILD triggers.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { chompHeredoc, expandHeredoc, parseDockerfile, type Instruction } from '../../src/image/build/parser/index.js';

function stage0(text: string): Instruction[] {
  return parseDockerfile(`FROM a\n${text}`).stages[0]?.instructions ?? [];
}

describe('heredoc delimiters (name, expand, chomp, fd)', () => {
  it.each([
    ['RUN <<EOF\necho hi\nEOF\n', { name: 'EOF', content: 'echo hi\n', expand: true, chomp: false }],
    ['RUN <<"EOF"\necho $HOME\nEOF\n', { name: 'EOF', content: 'echo $HOME\n', expand: false }],
    ["RUN <<'EOF'\necho $HOME\nEOF\n", { name: 'EOF', content: 'echo $HOME\n', expand: false }],
    ["RUN <<eo'f'\necho foo\neof\n", { name: 'eof', expand: false }],
    ["RUN <<eo\\'f\necho foo\neo'f\n", { name: "eo'f", expand: true }],
    ["RUN <<'one two'\necho bar\none two\n", { name: 'one two', content: 'echo bar\n', expand: false }],
    ['RUN <<$EOF\n$EOF\n', { name: '$EOF', content: '', expand: true }],
    ['RUN <<  EOF  > /out\nx\nEOF\n', { name: 'EOF', content: 'x\n' }],
    ['RUN 3<<EOF\nx\nEOF\n', { name: 'EOF', fd: 3 }],
    ['RUN <<-EOF\n\tx\n\t\ty\n\tEOF\n', { name: 'EOF', content: '\tx\n\t\ty\n', chomp: true }],
    ['RUN <<EOF\n\tEOF\nEOF\n', { name: 'EOF', content: '\tEOF\n', chomp: false }],
    ['RUN <<EOF\n# not a comment\n\nEOF\n', { content: '# not a comment\n\n' }],
    ['RUN <<EOF\r\ncrlf\r\nEOF\r\n', { name: 'EOF', content: 'crlf\r\n' }],
    ['RUN <<EOF\n#!/usr/bin/env python3\nprint("hi")\nEOF\n', { content: '#!/usr/bin/env python3\nprint("hi")\n' }],
  ])('%j', (text, heredoc) => {
    const [run] = stage0(text);
    expect(run).toMatchObject({ kind: 'RUN', heredocs: [heredoc] });
  });

  it('leaves fd out when no descriptor is written', () => {
    const [run] = stage0('RUN <<EOF\nEOF\n');
    expect((run as Instruction & { kind: 'RUN' }).heredocs[0]).not.toHaveProperty('fd');
  });

  it('strips the leading tabs of a <<- body with chompHeredoc', () => {
    expect(chompHeredoc('\tx\n\t\ty\n  z\n')).toBe('x\ny\n  z\n');
  });
});

describe('which instructions read heredoc bodies', () => {
  it('reads several heredocs of one RUN in order, and lines after the last delimiter are instructions', () => {
    const ins = stage0('RUN <<A cat /dev/stdin - <<B\na1\nA\nb1\nB\nUSER x\n');
    expect(ins.map((i) => [i.kind, i.line, i.endLine])).toEqual([
      ['RUN', 2, 6],
      ['USER', 7, 7],
    ]);
    expect(ins[0]).toMatchObject({
      command: { form: 'shell', text: '<<A cat /dev/stdin - <<B' },
      heredocs: [
        { name: 'A', content: 'a1\n' },
        { name: 'B', content: 'b1\n' },
      ],
    });
  });

  it.each([
    ['a JSON-form RUN', 'RUN ["<<EOF"]\nUSER x\n', ['RUN', 'USER']],
    ['a quoted <<', 'RUN "<<EOF"\nUSER x\n', ['RUN', 'USER']],
    ['CMD', 'CMD <<EOF\nUSER x\n', ['CMD', 'USER']],
    ['USER', 'USER <<EOF\nWORKDIR /x\n', ['USER', 'WORKDIR']],
  ])('does not read bodies after %s', (_, text, kinds) => {
    expect(stage0(text).map((i) => i.kind)).toEqual(kinds);
  });

  it('reads the bodies of a RUN after its continuation lines and flags', () => {
    const [run] = stage0('RUN --mount=type=cache,target=/c \\\n  <<EOF\necho hello\nEOF\n');
    expect(run).toMatchObject({
      mounts: ['type=cache,target=/c'],
      heredocs: [{ name: 'EOF', content: 'echo hello\n' }],
    });
  });

  it('makes COPY heredoc sources files (<<- tabs stripped), path sources stay sources', () => {
    const [copy] = stage0(
      'COPY --chmod=644 <<one.txt a.txt <<-"two.txt" /dest/\nhello $X\none.txt\n\tworld\n\ttwo.txt\n',
    );
    expect(copy).toMatchObject({
      kind: 'COPY',
      sources: ['a.txt'],
      dest: '/dest/',
      chmod: '644',
      heredocs: [
        { name: 'one.txt', content: 'hello $X\n', expand: true, chomp: false },
        { name: 'two.txt', content: 'world\n', expand: false, chomp: true },
      ],
    });
  });

  it('reads bodies for ONBUILD RUN and appends them to the trigger', () => {
    const [onbuild] = stage0('ONBUILD RUN <<EOF\necho hi\nEOF\n');
    expect(onbuild).toMatchObject({
      kind: 'ONBUILD',
      trigger: 'RUN <<EOF\necho hi\nEOF',
      instruction: { kind: 'RUN', heredocs: [{ name: 'EOF', content: 'echo hi\n' }] },
    });
  });
});

describe('heredoc errors', () => {
  it.each([
    ['RUN <<EOF\necho hi\n', 'Dockerfile:2: unterminated heredoc'],
    ['RUN <<A <<B\na\nA\nb\n', 'Dockerfile:2: unterminated heredoc'],
    ['COPY <<EOF <<EOF2\nx\nEOF\n', 'Dockerfile:2: unterminated heredoc'],
  ])('%j', (text, message) => {
    let err: unknown;
    try {
      stage0(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toBe(`invalid dockerfile: ${message}`);
  });
});

describe('expandHeredoc (COPY bodies: variables expanded, quotes kept)', () => {
  it.each([
    ['"$A" \'$A\' ${B:-x}\n', '"1" \'1\' x\n'],
    ['\\$A $A\n', '$A 1\n'],
  ])('%j', (body, expected) => {
    expect(expandHeredoc(body, (n) => (n === 'A' ? '1' : undefined)).value).toBe(expected);
  });
});
