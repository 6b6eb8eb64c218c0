/**
 * Go's `path/filepath.Match` for `/`-separated names, the glob syntax of Dockerfile COPY sources
 * and of `.dockerignore` pattern checks: `*` (any run of non-`/` characters), `?` (one non-`/`
 * character), `[…]` classes (`^` negates; ranges `a-z`; `\` escapes) and `\` escaping the next
 * character. A malformed pattern is an error (Go's `ErrBadPattern`) even when the name would not
 * match, as Go reports it. Pure functions; characters are Unicode code points, as Go's runes.
 *
 * @module
 */
import { InvalidArgumentError } from '../../../errors.js';

/** A malformed pattern (Go's `filepath.ErrBadPattern`). */
class BadPattern extends Error {}

/** The pattern's first chunk: whether stars lead it, the chunk up to the next unbracketed `*`, and the rest. */
function scanChunk(p: string[]): [star: boolean, chunk: string[], rest: string[]] {
  let star = false;
  let s = 0;
  while (s < p.length && p[s] === '*') {
    s++;
    star = true;
  }
  let inRange = false;
  let i = s;
  for (; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      if (i + 1 < p.length) i++;
    } else if (c === '[') inRange = true;
    else if (c === ']') inRange = false;
    else if (c === '*' && !inRange) break;
  }
  return [star, p.slice(s, i), p.slice(i)];
}

/** One (possibly escaped) character of a class at `chunk[i]`; returns it and the next index. */
function classChar(chunk: string[], i: number): [ch: string, next: number] {
  if (i >= chunk.length || chunk[i] === '-' || chunk[i] === ']') throw new BadPattern();
  if (chunk[i] === '\\') {
    i++;
    if (i >= chunk.length) throw new BadPattern();
  }
  const ch = chunk[i] as string;
  if (i + 1 >= chunk.length) throw new BadPattern();
  return [ch, i + 1];
}

/** Matches `chunk` (no `*`) against the start of `s`; the rest of `s` when it matches, undefined otherwise. */
function matchChunk(chunk: string[], s: string[]): string[] | undefined {
  let failed = false;
  let si = 0;
  let i = 0;
  while (i < chunk.length) {
    if (!failed && si >= s.length) failed = true;
    const c = chunk[i];
    if (c === '[') {
      const r = failed ? '' : (s[si++] as string);
      i++;
      let negated = false;
      if (i < chunk.length && chunk[i] === '^') {
        negated = true;
        i++;
      }
      let match = false;
      for (let n = 0; ; n++) {
        if (i < chunk.length && chunk[i] === ']' && n > 0) {
          i++;
          break;
        }
        let lo: string;
        let hi: string;
        [lo, i] = classChar(chunk, i);
        hi = lo;
        if (chunk[i] === '-') [hi, i] = classChar(chunk, i + 1);
        const cp = r.codePointAt(0) ?? -1;
        if ((lo.codePointAt(0) as number) <= cp && cp <= (hi.codePointAt(0) as number)) match = true;
      }
      if (match === negated) failed = true;
    } else if (c === '?') {
      if (!failed) {
        if (s[si] === '/') failed = true;
        si++;
      }
      i++;
    } else {
      if (c === '\\') {
        i++;
        if (i >= chunk.length) throw new BadPattern();
      }
      if (!failed) {
        if (chunk[i] !== s[si]) failed = true;
        si++;
      }
      i++;
    }
  }
  return failed ? undefined : s.slice(si);
}

function matchChars(pattern: string[], name: string[]): boolean {
  outer: while (pattern.length > 0) {
    const [star, chunk, rest] = scanChunk(pattern);
    pattern = rest;
    if (star && chunk.length === 0) return !name.includes('/');
    const t = matchChunk(chunk, name);
    if (t !== undefined && (t.length === 0 || pattern.length > 0)) {
      name = t;
      continue;
    }
    if (star) {
      for (let i = 0; i < name.length && name[i] !== '/'; i++) {
        const t2 = matchChunk(chunk, name.slice(i + 1));
        if (t2 !== undefined) {
          if (pattern.length === 0 && t2.length > 0) continue;
          name = t2;
          continue outer;
        }
      }
    }
    // No match: Go still reports a malformed rest of the pattern.
    while (pattern.length > 0) {
      const [, c, r] = scanChunk(pattern);
      pattern = r;
      matchChunk(c, []);
    }
    return false;
  }
  return name.length === 0;
}

/**
 * Whether `name` matches the shell pattern `pattern` as Go's `filepath.Match` decides (on Unix).
 *
 * @throws InvalidArgumentError (field `field`) when the pattern is malformed.
 */
export function globMatch(pattern: string, name: string, field = 'pattern'): boolean {
  try {
    return matchChars(Array.from(pattern), Array.from(name));
  } catch (e) {
    if (e instanceof BadPattern) throw new InvalidArgumentError(field, `syntax error in pattern '${pattern}'`);
    throw e;
  }
}

/** Whether `pattern` is well formed for {@link globMatch} (Go: `filepath.Match(pattern, ".")` returns no error). */
export function isValidGlob(pattern: string): boolean {
  try {
    matchChars(Array.from(pattern), ['.']);
    return true;
  } catch (e) {
    if (e instanceof BadPattern) return false;
    throw e;
  }
}

/** Whether `path` holds glob syntax (`*`, `?`, `[`, or `\` on Unix), as Go's `hasMeta`. */
export function hasGlobMeta(path: string): boolean {
  return /[*?[\\]/.test(path);
}
