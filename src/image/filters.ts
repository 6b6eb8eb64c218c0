/**
 * The filters of `docker images`: reference globs and labels.
 *
 * @module
 */
import type { ImageReference } from './reference.js';

/**
 * Compiles a glob with Go's `path.Match` syntax: `*` (any run of non-`/`), `?` (one non-`/`),
 * `[abc]`, `[a-z]`, `[^…]`, and `\` escapes.
 */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += escape(pattern[++i] as string);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('^') || body.startsWith('!');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^/' : ''}${body.replace(/[\]\\]/g, '\\$&')}]`;
      i = end;
    } else re += escape(c);
  }
  return new RegExp(`^${re}$`);
}

function escape(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Docker's `reference` filter: the glob matches the familiar string or the familiar name. */
export function referenceMatches(pattern: RegExp, ref: ImageReference): boolean {
  return pattern.test(ref.familiar) || pattern.test(ref.familiarName);
}

/** Docker's `label` filter: every `key` must be present and every `key=value` must match. */
export function labelsMatch(filters: readonly string[], labels: Readonly<Record<string, string>>): boolean {
  return filters.every((f) => {
    const eq = f.indexOf('=');
    if (eq === -1) return Object.hasOwn(labels, f);
    const key = f.slice(0, eq);
    return Object.hasOwn(labels, key) && labels[key] === f.slice(eq + 1);
  });
}

/** A filter option's value as a list: none, one, or the values given. */
export function toList<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}
