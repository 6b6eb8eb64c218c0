/**
 * Variable expansion of Dockerfile words, as BuildKit's shell lexer does it (`ProcessWord`,
 * `ProcessWords`): `$V`, `${V}`, `${V:-x}`, `${V-x}`, `${V:+y}`, `${V+y}`, `${V:?msg}`,
 * `${V?msg}`, `${V#pat}`, `${V##pat}`, `${V%pat}`, `${V%%pat}`, `${V/pat/repl}`, `${V//pat/repl}`;
 * the escape char escapes the next char; `'…'` is literal; `"…"` expands and lets the escape char
 * escape only `"`, `$` and itself; quotes are removed. No command substitution, no globbing.
 *
 * @module
 */
import { InvalidArgumentError } from '../../../errors.js';

/** The result of expanding one word. */
export interface Expansion {
  /** The expanded word, quotes removed. */
  value: string;
  /** Every variable name the word referenced (set or not). */
  used: Set<string>;
  /** The referenced names the lookup did not know (BuildKit's "undefined variable" check). */
  unset: Set<string>;
}

/** How the lexer treats quotes and escapes (BuildKit's `Lex` switches). */
export interface LexOptions {
  /** The escape char: backslash, or backtick under an escape directive. */
  escape: '\\' | '`';
  /** Keep quote characters in the result. */
  rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  rawEscapes?: boolean;
  /** Leave `$V` of an unknown V as written. */
  skipUnsetEnv?: boolean;
  /** Treat quotes as plain characters (expansion still happens inside them). */
  skipQuotes?: boolean;
}

/** The lexer's output: the word as one string, and split into words. */
export interface LexResult {
  /** The input as one word. */
  result: string;
  /** The input split on unquoted white space. */
  words: string[];
  /** Every variable name referenced. */
  used: Set<string>;
  /** The referenced names the lookup did not know. */
  unset: Set<string>;
}

const SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/;
const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{Nd}$/u;
const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

/** Unicode white space, as Go's `unicode.IsSpace`. */
export function isSpace(ch: string): boolean {
  return SPACE.test(ch);
}

function lexError(message: string): InvalidArgumentError {
  return new InvalidArgumentError('dockerfile', message);
}

/** Words being collected: characters from expansions split on white space, quoted ones not. */
class Words {
  private buf = '';
  private inWord = false;
  readonly words: string[] = [];

  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.buf !== '') {
        this.words.push(this.buf);
        this.buf = '';
        this.inWord = false;
      }
    } else this.addRaw(ch);
  }

  addRaw(s: string): void {
    this.buf += s;
    this.inWord = true;
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  finish(): string[] {
    if (this.buf !== '') this.words.push(this.buf);
    this.buf = '';
    return this.words;
  }
}

class Lexer {
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  readonly used = new Set<string>();
  readonly unset = new Set<string>();

  constructor(
    input: string,
    private readonly opts: LexOptions,
    private readonly lookup: (name: string) => string | undefined,
  ) {
    this.chars = Array.from(input);
    this.rawEscapes = opts.rawEscapes === true;
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    return this.chars[this.pos++];
  }

  /** Reads up to `stop` (consumed) or the end; `stop` missing at the end is an error. */
  processStopOn(stop: string | undefined, rawEscapes: boolean): { result: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      return this.stopOn(stop);
    } finally {
      this.rawEscapes = saved;
    }
  }

  private stopOn(stop: string | undefined): { result: string; words: string[] } {
    let result = '';
    const words = new Words();
    const quotes = this.opts.skipQuotes !== true;
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (stop !== undefined && ch === stop) {
        this.next();
        return { result, words: words.finish() };
      }
      if (ch === '$') {
        const v = this.processDollar();
        result += v;
        words.addString(v);
      } else if (ch === '<' || (quotes && (ch === "'" || ch === '"'))) {
        const v = ch === '<' ? this.processPossibleHeredoc() : ch === "'" ? this.singleQuote() : this.doubleQuote();
        result += v;
        words.addRaw(v);
      } else {
        let c = this.next() as string;
        if (c === this.opts.escape) {
          if (this.rawEscapes) {
            words.addRaw(c);
            result += c;
          }
          const escaped = this.next();
          if (escaped === undefined) break;
          c = escaped;
          words.addRaw(c);
        } else words.addChar(c);
        result += c;
      }
    }
    if (stop !== undefined) throw lexError(`unexpected end of statement while looking for matching ${stop}`);
    return { result, words: words.finish() };
  }

  private singleQuote(): string {
    const raw = this.opts.rawQuotes === true;
    let result = raw ? (this.next() as string) : (this.next(), '');
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw lexError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return raw ? result + ch : result;
      result += ch;
    }
  }

  private doubleQuote(): string {
    const raw = this.opts.rawQuotes === true;
    let result = raw ? (this.next() as string) : (this.next(), '');
    for (;;) {
      const p = this.peek();
      if (p === undefined) throw lexError('unexpected end of statement while looking for matching double-quote');
      if (p === '"') {
        this.next();
        return raw ? result + p : result;
      }
      if (p === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next() as string;
      if (ch === this.opts.escape) {
        if (this.rawEscapes) result += ch;
        const after = this.peek();
        if (after === undefined) continue;
        if (after === '"' || after === '$' || after === this.opts.escape) ch = this.next() as string;
      }
      result += ch;
    }
  }

  private processPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== '<') return '<';
    this.next();
    let space = '';
    for (let p = this.peek(); p === '\t' || p === '\r' || p === ' '; p = this.peek()) space += this.next() as string;
    return `<<${space}`;
  }

  private getEnv(name: string): string | undefined {
    this.used.add(name);
    const v = this.lookup(name);
    if (v === undefined) this.unset.add(name);
    return v;
  }

  private processName(): string {
    let name = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === '' && DIGIT.test(ch)) {
        for (let d = this.peek(); d !== undefined && DIGIT.test(d); d = this.peek()) name += this.next() as string;
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.has(ch)) return this.next() as string;
      if (!LETTER.test(ch) && !DIGIT.test(ch) && ch !== '_') break;
      name += this.next() as string;
    }
    return name;
  }

  private processDollar(): string {
    this.next();
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const v = this.getEnv(name);
      if (v === undefined && this.opts.skipUnsetEnv === true) return `$${name}`;
      return v ?? '';
    }
    this.next();
    const first = this.peek();
    if (first === undefined) throw lexError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw lexError('syntax error: bad substitution');
    const name = this.processName();
    let op = this.next();
    if (op === undefined) throw lexError("syntax error: missing '}'");
    if (op === '}') {
      const v = this.getEnv(name);
      if (v === undefined && this.opts.skipUnsetEnv === true) return `\${${name}}`;
      return v ?? '';
    }
    if (op === '/') return this.substitute(name);
    let mod = op;
    const nullIsUnset = op === ':';
    if (nullIsUnset) {
      op = this.next();
      if (op === undefined) throw lexError("syntax error: missing '}'");
      mod += op;
    } else if (!'+-?#%'.includes(op)) throw lexError(`unsupported modifier (${mod}) in substitution`);
    const trims = op === '#' || op === '%';
    if (nullIsUnset && trims) throw lexError(`unsupported modifier (${mod}) in substitution`);
    let word = this.untilClose('}', trims, "syntax error: missing '}'");
    const v = this.getEnv(name);
    if (v === undefined && this.opts.skipUnsetEnv === true) return `\${${name}${mod}${word}}`;
    const empty = v === undefined || (nullIsUnset && v === '');
    switch (op) {
      case '-':
        return empty ? word : (v as string);
      case '+':
        return empty ? '' : word;
      case '?':
        if (v === undefined) throw lexError(`${name}: ${word || 'is not allowed to be unset'}`);
        if (empty) throw lexError(`${name}: ${word || 'is not allowed to be empty'}`);
        return v;
      case '#':
      case '%': {
        const greedy = word.startsWith(op);
        if (greedy) word = word.slice(1);
        return op === '%' ? trimSuffix(word, v ?? '', greedy) : trimPrefix(word, v ?? '', greedy);
      }
      default:
        throw lexError(`unsupported modifier (${mod}) in substitution`);
    }
  }

  private untilClose(stop: string, rawEscapes: boolean, missing: string): string {
    try {
      return this.processStopOn(stop, rawEscapes).result;
    } catch (e) {
      if (this.peek() === undefined) throw lexError(missing);
      throw e;
    }
  }

  /** `${V/pat/repl}` and `${V//pat/repl}`. */
  private substitute(name: string): string {
    const all = this.peek() === '/';
    if (all) this.next();
    const pattern = this.untilClose('/', true, "syntax error: missing '/' in ${}");
    const replacement = this.untilClose('}', true, "syntax error: missing '}'");
    const v = this.getEnv(name);
    if (v === undefined && this.opts.skipUnsetEnv === true) return `\${${name}/${pattern}/${replacement}}`;
    const re = patternRegex(pattern, true, false, all);
    return (v ?? '').replace(re, () => replacement);
  }
}

/** A shell pattern (`*`, `?`, `\` escapes) as a regular expression, as BuildKit converts it. */
function patternRegex(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? '^' : '';
  for (let i = 0; i < chars.length; i++) {
    let tok = chars[i] as string;
    if (tok === '*') {
      out += greedy ? '.*' : '.*?';
      continue;
    }
    if (tok === '?') {
      out += '.';
      continue;
    }
    if (tok === '\\') {
      const nxt = chars[i + 1];
      if (nxt === '}' || nxt === '/') continue;
      i++;
      tok = chars[i] ?? '';
      if (tok !== '*' && tok !== '?' && tok !== '\\') {
        throw lexError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${tok}'`);
      }
      out += `\\${tok}`;
      continue;
    }
    out += '[]{}.+()|^$'.includes(tok) ? `\\${tok}` : tok;
  }
  return new RegExp(out, global ? 'g' : '');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = patternRegex(pattern, greedy, true).exec(value);
  return m ? value.slice(m[0].length) : value;
}

function reversePattern(pattern: string): string {
  const p = Array.from(pattern);
  const out: string[] = new Array<string>(p.length);
  const last = p.length - 1;
  for (let i = 0; i <= last;) {
    const tok = p[i] as string;
    if (tok === '\\' && i !== last) {
      out[last - i - 1] = tok;
      out[last - i] = p[i + 1] as string;
      i += 2;
    } else {
      out[last - i] = tok;
      i++;
    }
  }
  return out.join('');
}

function reverse(s: string): string {
  return Array.from(s).reverse().join('');
}

function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverse(trimPrefix(reversePattern(pattern), reverse(value), greedy));
}

/**
 * Runs BuildKit's shell lexer over `input` with the given switches.
 *
 * @throws InvalidArgumentError (field `dockerfile`) for an unterminated quote, a bad `${…}`, or
 *   `${V:?msg}` of an unset or empty V; the message names the word, as BuildKit's does.
 */
export function lex(input: string, lookup: (name: string) => string | undefined, opts: LexOptions): LexResult {
  const lexer = new Lexer(input, opts, lookup);
  try {
    const { result, words } = lexer.processStopOn(undefined, opts.rawEscapes === true);
    return { result, words, used: lexer.used, unset: lexer.unset };
  } catch (e) {
    throw lexError(
      `failed to process ${JSON.stringify(input)}: ${(e as InvalidArgumentError).message.replace(/^invalid dockerfile: /, '')}`,
    );
  }
}

/**
 * Expands one word (BuildKit's `ProcessWord`): variables substituted, escapes and quotes removed,
 * white space kept.
 *
 * @param raw - the word as the parser kept it
 * @param lookup - the value of a variable in scope, or undefined when unset
 * @param escape - the Dockerfile's escape char
 * @throws InvalidArgumentError (field `dockerfile`) for a malformed word or a failed `${V:?msg}`.
 * @example
 * ```ts
 * expandWord('"${HOME:-/root}"/bin', (n) => env[n]); // { value: '/root/bin', used: Set{'HOME'}, … }
 * ```
 */
export function expandWord(
  raw: string,
  lookup: (name: string) => string | undefined,
  escape: '\\' | '`' = '\\',
): Expansion {
  const r = lex(raw, lookup, { escape });
  return { value: r.result, used: r.used, unset: r.unset };
}

/**
 * Expands and splits a word list (BuildKit's `ProcessWords`): like {@link expandWord}, then split
 * on unquoted white space, including white space that came from a variable's value.
 *
 * @throws InvalidArgumentError (field `dockerfile`) as {@link expandWord}.
 */
export function expandWords(
  raw: string,
  lookup: (name: string) => string | undefined,
  escape: '\\' | '`' = '\\',
): { values: string[]; used: Set<string>; unset: Set<string> } {
  const r = lex(raw, lookup, { escape });
  return { values: r.words, used: r.used, unset: r.unset };
}

/**
 * Expands a heredoc body as BuildKit does for COPY/ADD (`SkipProcessQuotes`, escape `\`): variables
 * substituted, quotes kept as written.
 *
 * @throws InvalidArgumentError (field `dockerfile`) as {@link expandWord}.
 */
export function expandHeredoc(content: string, lookup: (name: string) => string | undefined): Expansion {
  const r = lex(content, lookup, { escape: '\\', skipQuotes: true });
  return { value: r.result, used: r.used, unset: r.unset };
}
