/**
 * The small grammars inside an instruction line, as BuildKit's parser reads them: builder flags
 * (`--name=value` before the arguments), quote-keeping words (ENV, LABEL, ARG), JSON arrays,
 * white-space splitting, heredoc words, and Go durations.
 *
 * @module
 */
import { isSpace, lex } from './lex.js';
import type { Heredoc } from './types.js';

/** A syntax error inside one instruction; the caller adds the line. */
export class LineError extends Error {
  /** Creates the error with BuildKit's message. */
  constructor(message: string) {
    super(message);
    this.name = 'LineError';
  }
}

/** Go's `%q` of a string, close enough for messages. */
export function goQuote(s: string): string {
  return JSON.stringify(s);
}

const WHITESPACE = /[\t\v\f\r ]+/;

/** Splits on runs of `[\t\v\f\r ]` (BuildKit's `reWhitespace`); `limit` 2 splits once. */
export function splitWhitespace(s: string, limit?: number): string[] {
  if (s === '') return [];
  if (limit !== 2) return s.split(WHITESPACE);
  const m = WHITESPACE.exec(s);
  return m ? [s.slice(0, m.index), s.slice(m.index + m[0].length)] : [s];
}

/** Trims Unicode white space at both ends (Go's `strings.TrimSpace`). */
export function trimSpace(s: string): string {
  const chars = Array.from(s);
  let a = 0;
  let b = chars.length;
  while (a < b && isSpace(chars[a] as string)) a++;
  while (b > a && isSpace(chars[b - 1] as string)) b--;
  return chars.slice(a, b).join('');
}

/**
 * Splits the builder flags (`--mount=…`, quotes and escapes removed) off the front of an
 * instruction's arguments; a lone `--` ends them.
 */
export function extractFlags(line: string, escape: string): { flags: string[]; rest: string } {
  const chars = Array.from(line);
  const flags: string[] = [];
  let i = 0;
  for (;;) {
    while (i < chars.length && isSpace(chars[i] as string)) i++;
    if (i === chars.length) return { flags, rest: '' };
    if (chars[i] !== '-' || chars[i + 1] !== '-') return { flags, rest: chars.slice(i).join('') };
    let word = '';
    let quote = '';
    let blankOk = false;
    for (; i < chars.length; i++) {
      const ch = chars[i] as string;
      if (quote === '' && isSpace(ch)) break;
      if (quote === '' && (ch === '"' || ch === "'")) {
        quote = ch;
        blankOk = true;
      } else if (quote !== '' && ch === quote) quote = '';
      else if (ch === escape) {
        if (i + 1 < chars.length) word += chars[++i];
      } else word += ch;
    }
    if (word === '--') return { flags, rest: chars.slice(i).join('') };
    if (blankOk || word !== '') flags.push(word);
  }
}

/**
 * Words split on white space with quotes and escapes KEPT (BuildKit's `parseWords`), for ENV,
 * LABEL and ARG; the expander removes them later.
 */
export function parseWords(rest: string, escape: string): string[] {
  const chars = Array.from(rest);
  const words: string[] = [];
  let word = '';
  let quote = '';
  let inWord = false;
  let blankOk = false;
  const flush = (): void => {
    if (blankOk || word !== '') words.push(word);
    word = '';
    blankOk = false;
    inWord = false;
  };
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (!inWord) {
      if (isSpace(ch)) continue;
      inWord = true;
    }
    if (quote === '') {
      if (isSpace(ch)) {
        flush();
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
      }
      if (ch === escape) {
        if (i + 1 === chars.length) continue;
        word += ch + (chars[++i] as string);
        continue;
      }
      word += ch;
      continue;
    }
    if (ch === quote) quote = '';
    else if (ch === escape && quote !== "'") {
      if (i + 1 === chars.length) {
        quote = '';
        continue;
      }
      word += ch + (chars[++i] as string);
      continue;
    }
    word += ch;
  }
  if (inWord) flush();
  return words;
}

/**
 * The JSON (exec) form, exactly as BuildKit detects it: the text must start with `[` and be a
 * whole JSON array; otherwise it is shell form (undefined). A JSON array holding a non-string is
 * an error, not shell form.
 */
export function parseJsonArray(rest: string): string[] | undefined {
  const t = rest.replace(/^\s+/u, '');
  if (!t.startsWith('[')) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v)) return undefined;
  if (!v.every((x) => typeof x === 'string')) {
    throw new LineError('when using JSON array syntax, arrays must be comprised of strings only');
  }
  return v as string[];
}

const HEREDOC_WORD = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;
const noVars = (): undefined => undefined;

/**
 * The heredoc a word opens (`<<EOF`, `<<-"EOF"`, `3<<EOF`), or undefined. Quoting any part of the
 * delimiter turns expansion off, as in the shell.
 *
 * @throws LineError for a delimiter with an unterminated quote.
 */
export function heredocWord(word: string): Omit<Heredoc, 'content'> | undefined {
  const m = HEREDOC_WORD.exec(word);
  if (!m || m[3] === '') return undefined;
  const rest = m[3] as string;
  let words: string[];
  let raw: string[];
  try {
    words = lex(rest, noVars, { escape: '\\', skipUnsetEnv: true }).words;
    raw = lex(rest, noVars, { escape: '\\', skipUnsetEnv: true, rawQuotes: true }).words;
  } catch (e) {
    throw new LineError((e as Error).message.replace(/^invalid dockerfile: /, ''));
  }
  if (words.length !== 1) return undefined;
  const name = words[0] as string;
  const quotes = (s: string): number => s.split(/['"]/).length - 1;
  const doc: Omit<Heredoc, 'content'> = {
    name,
    expand: quotes(name) === quotes(raw[0] ?? ''),
    chomp: m[2] === '-',
  };
  if (m[1] !== '') doc.fd = Number(m[1]);
  return doc;
}

/** The heredoc word of `word`, or undefined also when it is malformed (BuildKit's `MustParseHeredoc`). */
export function heredocWordLenient(word: string): Omit<Heredoc, 'content'> | undefined {
  try {
    return heredocWord(word);
  } catch {
    return undefined;
  }
}

/**
 * The heredocs a whole instruction line opens, in order (words lexed with quotes and escapes kept;
 * a line the lexer cannot read opens none).
 */
export function heredocsOfLine(line: string): Array<Omit<Heredoc, 'content'>> {
  let words: string[];
  try {
    words = lex(line, noVars, { escape: '\\', rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).words;
  } catch {
    return [];
  }
  const docs: Array<Omit<Heredoc, 'content'>> = [];
  for (const w of words) {
    const d = heredocWord(w);
    if (d) docs.push(d);
  }
  return docs;
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] as number;
      prev[j] = Math.min(up + 1, (prev[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length] as number;
}

/** ` (did you mean X?)` when one option is within edit distance 2 of `value`, as BuildKit suggests. */
export function suggestion(value: string, options: readonly string[], caseSensitive: boolean): string {
  const v = caseSensitive ? value : value.toLowerCase();
  let best = '';
  let min = 3;
  for (const o of options) {
    const opt = caseSensitive ? o : o.toLowerCase();
    if (opt === v) return '';
    const d = levenshtein(v, opt);
    if (d < min) {
      min = d;
      best = opt;
    }
  }
  if (best === '') return '';
  if (!caseSensitive)
    best = value === value.toLowerCase() ? best : value === value.toUpperCase() ? best.toUpperCase() : best;
  return ` (did you mean ${best}?)`;
}

const UNITS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/**
 * Parses a Go duration (`30s`, `1m30s`, `1.5h`, `-2s`, `0`) into nanoseconds.
 *
 * @throws LineError `time: invalid duration "x"` as Go's `time.ParseDuration`.
 */
export function parseGoDuration(s: string): number {
  const bad = (): LineError => new LineError(`time: invalid duration ${goQuote(s)}`);
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw bad();
  let total = 0;
  const re = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]*)/;
  while (rest !== '') {
    const m = re.exec(rest);
    const [all, int = '', frac, unit = ''] = m ?? [];
    if (!m || (int === '' && (frac ?? '') === '') || !(unit in UNITS)) throw bad();
    total += Number(`${int || '0'}.${frac ?? '0'}`) * (UNITS[unit] as number);
    rest = rest.slice((all as string).length);
  }
  return sign * Math.round(total);
}
