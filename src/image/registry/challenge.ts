/**
 * `WWW-Authenticate` challenges (RFC 7235) as registries send them:
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`
 * or `Basic realm="Registry Realm"`.
 *
 * @module
 */

/** One parsed challenge. */
export interface Challenge {
  /** `bearer` or `basic` (lowercase); other schemes are kept as given, lowercased. */
  scheme: string;
  /** The parameters, names lowercased. */
  params: Record<string, string>;
}

/** Parses a `WWW-Authenticate` header value (one or several challenges). */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    let s = value.trim();
    let current: Challenge | undefined;
    while (s.length > 0) {
      const scheme = /^([A-Za-z][\w!#$%&'*+.^`|~-]*)(?:\s+|$)(?![=])/.exec(s);
      const param = /^([\w!#$%&'*+.^`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/.exec(s);
      if (param && current) {
        current.params[(param[1] as string).toLowerCase()] =
          param[2] !== undefined ? param[2].replace(/\\(.)/g, '$1') : (param[3] ?? '');
        s = s.slice(param[0].length);
      } else if (scheme) {
        current = { scheme: (scheme[1] as string).toLowerCase(), params: {} };
        out.push(current);
        s = s.slice(scheme[0].length);
      } else {
        s = s.replace(/^[^,]*,?\s*/, '');
      }
    }
  }
  return out;
}
