/**
 * Variable expansion of Dockerfile words (BuildKit's ProcessWord / ProcessWords): substitution
 * forms, quotes, escapes, word splitting, the names referenced, and errors.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { expandWord, expandWords } from '../../src/image/build/parser/index.js';

const ENV: Record<string, string> = {
  A: 'a',
  EMPTY: '',
  SPACED: ' x  y ',
  PATHV: '/usr/local/bin/app.tar.gz',
  K: '한국어',
};
const lookup = (name: string): string | undefined => ENV[name];

describe('expandWord', () => {
  it.each([
    ['$A', 'a'],
    ['${A}', 'a'],
    ['x${A}y$A.z', 'xaya.z'],
    ['$NOPE', ''],
    ['${NOPE:-dflt}', 'dflt'],
    ['${EMPTY:-dflt}', 'dflt'],
    ['${EMPTY-dflt}', ''],
    ['${NOPE-dflt}', 'dflt'],
    ['${A:-dflt}', 'a'],
    ['${A:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['${NOPE+alt}', ''],
    ['${NOPE:-${A}b}', 'ab'],
    ['${NOPE:-"q u"}', 'q u'],
    ['${A:?must be set}', 'a'],
    ['${EMPTY?}', ''],
    ['${PATHV#*/}', 'usr/local/bin/app.tar.gz'],
    ['${PATHV##*/}', 'app.tar.gz'],
    ['${PATHV%.*}', '/usr/local/bin/app.tar'],
    ['${PATHV%%.*}', '/usr/local/bin/app'],
    ['${PATHV/local/opt}', '/usr/opt/bin/app.tar.gz'],
    ['${PATHV//\\//:}', ':usr:local:bin:app.tar.gz'],
    ['$K!', '한국어!'],
    ['he$1x', 'hex'],
    ['$', '$'],
    ['$.', '$.'],
    ['\\$A', '$A'],
    ['\\\\$A', '\\a'],
    ["'$A \\n'", '$A \\n'],
    ['"$A \\"q\\" \\n"', 'a "q" \\n'],
    ['"\\$A"', '$A'],
    ["he'll'o", 'hello'],
    ['"it\'s"', "it's"],
    ['keep   spaces $SPACED', 'keep   spaces  x  y '],
    ['a\\', 'a'],
    ['<<EOF', '<<EOF'],
  ])('%s → %j', (raw, value) => {
    expect(expandWord(raw, lookup).value).toBe(value);
  });

  it('uses the escape char of the Dockerfile (backtick: backslash is literal)', () => {
    expect(expandWord('C:\\dir\\$A `$A "`"x"', lookup, '`').value).toBe('C:\\dir\\a $A "x');
  });

  it('reports every referenced name, and the unset ones apart', () => {
    const r = expandWord("$A ${NOPE:-$EMPTY} ${X+y} '$QUOTED'", lookup);
    expect([...r.used].sort()).toEqual(['A', 'EMPTY', 'NOPE', 'X']);
    expect([...r.unset].sort()).toEqual(['NOPE', 'X']);
  });

  it.each([
    ['"abc', 'unexpected end of statement while looking for matching double-quote'],
    ["'abc", 'unexpected end of statement while looking for matching single-quote'],
    ['${A', "syntax error: missing '}'"],
    ['${A:-x', "syntax error: missing '}'"],
    ['${}', 'syntax error: bad substitution'],
    ['${:-x}', 'syntax error: bad substitution'],
    ['${A:x}', 'unsupported modifier (:x) in substitution'],
    ['${A!x}', 'unsupported modifier (!) in substitution'],
    ['${A:#x}', 'unsupported modifier (:#) in substitution'],
    ['${NOPE:?}', 'NOPE: is not allowed to be unset'],
    ['${EMPTY:?}', 'EMPTY: is not allowed to be empty'],
    ['${NOPE:?set NOPE please}', 'NOPE: set NOPE please'],
  ])('%s fails: %s', (raw, message) => {
    let err: unknown;
    try {
      expandWord(raw, lookup);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).message).toBe(
      `invalid dockerfile: failed to process ${JSON.stringify(raw)}: ${message}`,
    );
  });
});

describe('expandWords', () => {
  it.each([
    ['80 443/tcp', ['80', '443/tcp']],
    ['a "b c" \'d $A\' e\\ f $A', ['a', 'b c', 'd $A', 'e f', 'a']],
    ['x$SPACED', ['x', 'x', 'y']],
    ['x"$SPACED"', ['x x  y ']],
    ['$NOPE', []],
    ['""', []],
    ['  lead  trail  ', ['lead', 'trail']],
  ])('%s → %j', (raw, values) => {
    expect(expandWords(raw, lookup).values).toEqual(values);
  });
});
