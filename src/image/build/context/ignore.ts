/**
 * `.dockerignore` as Docker reads it (moby/patternmatcher, BuildKit's `dockerignore.ReadAll`):
 *
 * - One pattern a line; a line starting with `#` is a comment; surrounding blanks are trimmed;
 *   `!` makes an exception. Patterns are cleaned like Go's `filepath.Clean` (`./a/` → `a`), and a
 *   leading `/` is dropped: patterns are relative to the context's root.
 * - A pattern is Go's `filepath.Match` per path segment, plus `**` matching any number of
 *   segments (`**\/x` also matches `x`, a trailing `**` matches everything below).
 * - A path is ignored when the last pattern matching it, or matching one of its parent
 *   directories, is not an exception. So an ignored directory ignores its contents, and a later
 *   `!` exception can re-include a child (a walk must then descend into ignored directories: see
 *   {@link IgnoreMatcher.hasExceptions}).
 *
 * Pure functions.
 *
 * @module
 */
import { InvalidArgumentError } from '../../../errors.js';
import { isValidGlob } from './match.js';

/** Decides which paths of a tree a list of patterns leaves out. */
export interface IgnoreMatcher {
  /** Whether the path `relPath` (relative, `/`-separated, no leading `./`) is left out. `isDir` says it names a directory. */
  matches(relPath: string, isDir: boolean): boolean;
  /** Whether any pattern is a `!` exception: then a left-out directory may still hold included paths. */
  readonly hasExceptions: boolean;
  /** The cleaned patterns, exceptions with their `!`, in order (for cache keys and messages). */
  readonly patterns: readonly string[];
}

/** Go's `path.Clean` for a `/`-separated path. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
    } else out.push(part);
  }
  const joined = out.join('/');
  return rooted ? `/${joined}` : joined === '' ? '.' : joined;
}

/** Characters patternmatcher escapes (regular-expression syntax with no meaning in a glob). */
const QUOTED = /[.+()|{}$]/;
/** Characters that must be escaped to stand for themselves after a `\\` in the pattern. */
const REGEX_SPECIAL = /[.+()|{}$^\\[\]*?/]/;

interface Compiled {
  exception: boolean;
  test: (path: string) => boolean;
}

/** Compiles a cleaned pattern as patternmatcher does: exact, prefix (`a/**`), suffix (`**\/a`) or a regular expression. */
function compile(pattern: string, field: string): (path: string) => boolean {
  let re = '^';
  let kind: 'exact' | 'prefix' | 'suffix' | 'regexp' = 'exact';
  const ch = Array.from(pattern);
  for (let i = 0; i < ch.length; i++) {
    const c = ch[i] as string;
    if (c === '*' && ch[i + 1] === '*') {
      const first = i === 0;
      i++;
      if (ch[i + 1] === '/') i++;
      if (i + 1 >= ch.length) {
        if (kind === 'exact') kind = 'prefix';
        else {
          re += '.*';
          kind = 'regexp';
        }
      } else {
        re += '(.*/)?';
        kind = 'regexp';
      }
      if (first) kind = 'suffix';
    } else if (c === '*') {
      re += '[^/]*';
      kind = 'regexp';
    } else if (c === '?') {
      re += '[^/]';
      kind = 'regexp';
    } else if (c === '\\') {
      const next = ch[i + 1];
      if (next === undefined) re += '\\\\';
      else {
        i++;
        re += REGEX_SPECIAL.test(next) ? `\\${next}` : next;
        kind = 'regexp';
      }
    } else if (c === '[' || c === ']') {
      re += c;
      kind = 'regexp';
    } else re += QUOTED.test(c) ? `\\${c}` : c;
  }
  switch (kind) {
    case 'exact':
      return (p) => p === pattern;
    case 'prefix': {
      const prefix = pattern.slice(0, -2);
      return (p) => p.startsWith(prefix);
    }
    case 'suffix': {
      const suffix = pattern.slice(2);
      return (p) => p.endsWith(suffix) || (suffix.startsWith('/') && p === suffix.slice(1));
    }
    default: {
      let rx: RegExp;
      try {
        rx = new RegExp(`${re}$`, 'su');
      } catch (e) {
        throw new InvalidArgumentError(field, `syntax error in pattern '${pattern}'`, { cause: e });
      }
      return (p) => rx.test(p);
    }
  }
}

/**
 * A matcher for `patterns` (already read: one pattern each, `!` for exceptions), with
 * patternmatcher's cleaning (blanks trimmed, `filepath.Clean`, a leading `/` dropped).
 *
 * @throws InvalidArgumentError (field `field`) for a lone `!` or a malformed pattern.
 */
export function createIgnoreMatcher(patterns: readonly string[], field = 'dockerignore'): IgnoreMatcher {
  const compiled: Compiled[] = [];
  const cleaned: string[] = [];
  for (const raw of patterns) {
    let p = raw.trim();
    if (p === '') continue;
    const exception = p.startsWith('!');
    if (exception) {
      p = p.slice(1).trim();
      if (p === '') throw new InvalidArgumentError(field, 'illegal exclusion pattern: "!"');
    }
    p = cleanPath(p);
    if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    if (!isValidGlob(p)) throw new InvalidArgumentError(field, `syntax error in pattern '${p}'`);
    compiled.push({ exception, test: compile(p, field) });
    cleaned.push(exception ? `!${p}` : p);
  }
  const hasExceptions = compiled.some((c) => c.exception);
  return {
    hasExceptions,
    patterns: cleaned,
    matches(relPath: string): boolean {
      if (compiled.length === 0) return false;
      const file = cleanPath(relPath);
      if (file === '.') return false;
      const parents = file.split('/').slice(0, -1);
      let matched = false;
      for (const c of compiled) {
        if (c.exception !== matched) continue;
        let hit = c.test(file);
        for (let i = 1; !hit && i <= parents.length; i++) hit = c.test(parents.slice(0, i).join('/'));
        if (hit) matched = !c.exception;
      }
      return matched;
    },
  };
}

/** The patterns of a `.dockerignore` file's text (a leading UTF-8 BOM dropped; comments and blank lines skipped). */
export function readIgnorePatterns(text: string): string[] {
  const out: string[] = [];
  for (const line of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    if (line.startsWith('#')) continue;
    const p = line.trim();
    if (p !== '') out.push(p);
  }
  return out;
}

/** A matcher that leaves nothing out. */
export const NO_IGNORE: IgnoreMatcher = createIgnoreMatcher([]);
