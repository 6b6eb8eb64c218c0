/**
 * The pure pattern rules of the build context: Go's `filepath.Match` (COPY globs) and
 * moby/patternmatcher's `.dockerignore` matching, against the behaviour of the Go originals.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { createIgnoreMatcher, readIgnorePatterns } from '../../src/image/build/context/ignore.js';
import { globMatch, hasGlobMeta, isValidGlob } from '../../src/image/build/context/match.js';

// Go's path/filepath matchTests: [pattern, name, match | 'bad'].
const GLOB: [string, string, boolean | 'bad'][] = [
  ['abc', 'abc', true],
  ['*', 'abc', true],
  ['*c', 'abc', true],
  ['a*', 'a', true],
  ['a*', 'abc', true],
  ['a*', 'ab/c', false],
  ['a*/b', 'abc/b', true],
  ['a*/b', 'a/c/b', false],
  ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
  ['a*b?c*x', 'abxbbxdbxebxczzx', true],
  ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['ab[c]', 'abc', true],
  ['ab[b-d]', 'abc', true],
  ['ab[e-g]', 'abc', false],
  ['ab[^c]', 'abc', false],
  ['ab[^b-d]', 'abc', false],
  ['ab[^e-g]', 'abc', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'ab', false],
  ['a?b', 'a☺b', true],
  ['a[^a]b', 'a☺b', true],
  ['a???b', 'a☺b', false],
  ['a[^a][^a][^a]b', 'a☺b', false],
  ['[a-ζ]*', 'α', true],
  ['*[a-ζ]', 'A', false],
  ['a?b', 'a/b', false],
  ['a*b', 'a/b', false],
  ['[\\]a]', ']', true],
  ['[\\-]', '-', true],
  ['[x\\-]', 'x', true],
  ['[x\\-]', '-', true],
  ['[x\\-]', 'z', false],
  ['[\\-x]', 'x', true],
  ['[\\-x]', 'a', false],
  ['[]a]', ']', 'bad'],
  ['[-]', '-', 'bad'],
  ['[x-]', 'x', 'bad'],
  ['[-x]', 'x', 'bad'],
  ['\\', 'a', 'bad'],
  ['[a-b-c]', 'a', 'bad'],
  ['[', 'a', 'bad'],
  ['[^', 'a', 'bad'],
  ['[^bc', 'a', 'bad'],
  ['a[', 'a', 'bad'],
  ['a[', 'ab', 'bad'],
  ['a[', 'x', 'bad'],
  ['a/b[', 'x', 'bad'],
  ['*x', 'xxx', true],
];

describe("globMatch (Go's filepath.Match)", () => {
  it.each(GLOB)('%s against %s gives %s', (pattern, name, want) => {
    if (want === 'bad') {
      expect(() => globMatch(pattern, name, 'sources')).toThrow(InvalidArgumentError);
      expect(isValidGlob(pattern)).toBe(false);
    } else {
      expect(globMatch(pattern, name)).toBe(want);
      expect(isValidGlob(pattern)).toBe(true);
    }
  });

  it.each([
    ['a.txt', false],
    ['*.txt', true],
    ['a?', true],
    ['[ab]', true],
    ['a\\b', true],
    ['dir/file', false],
  ])('hasGlobMeta(%s) is %s', (p, want) => expect(hasGlobMeta(p)).toBe(want));
});

// [patterns, path, ignored]: moby/patternmatcher MatchesOrParentMatches after dockerignore's cleaning.
const IGNORE: [string[], string, boolean][] = [
  [['*'], 'fileutils.go', true],
  [['*.go'], 'fileutils.go', true],
  [['*.go'], 'dir/fileutils.go', false],
  [['**/*.go'], 'dir/fileutils.go', true],
  [['**/*.go'], 'fileutils.go', true],
  [['**'], 'a/b/c', true],
  [['dir/**'], 'dir/a/b', true],
  [['dir/**'], 'dir', false],
  [['docs'], 'docs/README.md', true],
  [['docs'], 'docsfoo', false],
  [['/docs'], 'docs/a', true],
  [['./docs/'], 'docs/a', true],
  [['a?c'], 'abc', true],
  [['a?c'], 'a/c', false],
  [['[a-c]x'], 'bx', true],
  [['[^a-c]x'], 'dx', true],
  [['[^a-c]x'], 'ax', false],
  [['a\\*b'], 'a*b', true],
  [['a\\*b'], 'axb', false],
  [['**/foo'], 'foo', true],
  [['**/foo'], 'a/b/foo', true],
  [['**/foo'], 'a/foo/bar', true],
  [['**/foo'], 'afoo', false],
  [['a/**/b'], 'a/b', true],
  [['a/**/b'], 'a/x/y/b', true],
  [['a/**/b'], 'a/x/c', false],
  [['abc.def'], 'abcxdef', false],
  [['a+b(c)'], 'a+b(c)', true],
  [['*'], 'a/b', true],
  [['*/b'], 'a/b/c', true],
  [['*', '!README.md'], 'README.md', false],
  [['*', '!README.md'], 'main.go', true],
  [['*', '!README.md'], 'docs/README.md', true],
  [['docs', '!docs/keep.md'], 'docs/keep.md', false],
  [['docs', '!docs/keep.md'], 'docs/other.md', true],
  [['!a', 'a'], 'a', true],
  [['a', '!a'], 'a', false],
  [['a', '!a', 'a'], 'a', true],
  [['**/*.log', '!important/*.log'], 'important/x.log', false],
  [['**/*.log', '!important/*.log'], 'other/x.log', true],
  [['*'], '.', false],
];

describe('.dockerignore matching (moby/patternmatcher)', () => {
  it.each(IGNORE)('%j leaves out %s: %s', (patterns, path, want) => {
    expect(createIgnoreMatcher(patterns).matches(path, false)).toBe(want);
  });

  it('says it has exceptions only when a pattern starts with !', () => {
    expect(createIgnoreMatcher(['a', 'b']).hasExceptions).toBe(false);
    expect(createIgnoreMatcher(['a', '!a/b']).hasExceptions).toBe(true);
  });

  it('cleans patterns as dockerignore.ReadAll does (leading / and ./ dropped, ! kept)', () => {
    expect(createIgnoreMatcher(['/a/', './b//c', '! /d', ' e ']).patterns).toEqual(['a', 'b/c', '!d', 'e']);
  });

  it.each([['!'], ['['], ['a['], ['x/[^']])('rejects the malformed pattern %s with InvalidArgumentError', (p) => {
    expect(() => createIgnoreMatcher([p])).toThrow(InvalidArgumentError);
  });

  it('reads a file: # starts a comment only at the line start, blanks trimmed, BOM and CRLF handled', () => {
    expect(readIgnorePatterns('\uFEFF# comment\r\n a \n\n!b\n  #not-a-comment\n')).toEqual([
      'a',
      '!b',
      '#not-a-comment',
    ]);
  });
});
