/**
 * The first pass over a Dockerfile, as BuildKit's `parser.Parse`: parser directives at the top,
 * comments and empty lines dropped, continuation lines joined, heredoc bodies read. It yields one
 * {@link RawNode} per instruction, not yet interpreted.
 *
 * @module
 */
import { isSpace } from './lex.js';
import type { Heredoc } from './types.js';
import { LineError, extractFlags, heredocsOfLine, parseJsonArray, splitWhitespace, trimSpace } from './words.js';

/** One instruction as written: its keyword, builder flags, arguments and heredoc bodies. */
export interface RawNode {
  /** The keyword as written (case kept). */
  keyword: string;
  /** The builder flags (`--mount=…`), quotes removed. */
  flags: string[];
  /** The arguments after the flags, trimmed. */
  args: string;
  /** The joined instruction line, trimmed. */
  original: string;
  /** The 1-based first line. */
  line: number;
  /** The 1-based last line, heredoc bodies included. */
  endLine: number;
  /** The heredoc bodies read after the line, in order. */
  heredocs: Heredoc[];
}

/** A syntax error at a 1-based line. */
export class ScanError extends Error {
  /** Creates the error. */
  constructor(
    /** The 1-based line. */
    readonly line: number,
    message: string,
  ) {
    super(message);
    this.name = 'ScanError';
  }
}

/** What the first pass found. */
export interface Scanned {
  /** The escape char in force. */
  escape: '\\' | '`';
  /** The `# syntax=` directive's value. */
  syntax?: string;
  /** The instructions, in order. */
  nodes: RawNode[];
  /** Empty continuation lines found. */
  warnings: Array<{ line: number; message: string }>;
}

const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;

/** Splits the keyword, flags and arguments of a joined instruction line (BuildKit's `splitCommand`). */
export function splitCommand(line: string, escape: string): { keyword: string; flags: string[]; args: string } {
  const [keyword = '', rest] = splitWhitespace(trimSpace(line), 2);
  if (rest === undefined) return { keyword, flags: [], args: '' };
  const { flags, rest: args } = extractFlags(rest, escape);
  return { keyword, flags, args: trimSpace(args) };
}

/** Whether BuildKit reads heredoc bodies after this instruction: RUN, COPY, ADD (also under ONBUILD), not in JSON form. */
function takesHeredocs(keyword: string, args: string, escape: string): boolean {
  let kw = keyword.toLowerCase();
  let rest = args;
  if (kw === 'onbuild') {
    const inner = splitCommand(args, escape);
    kw = inner.keyword.toLowerCase();
    rest = inner.args;
  }
  if (kw !== 'run' && kw !== 'copy' && kw !== 'add') return false;
  try {
    return parseJsonArray(rest) === undefined;
  } catch {
    return false;
  }
}

function leftTrim(s: string): string {
  const chars = Array.from(s);
  let i = 0;
  while (i < chars.length && isSpace(chars[i] as string)) i++;
  return chars.slice(i).join('');
}

const isComment = (s: string): boolean => leftTrim(s).startsWith('#');
const trimNewline = (s: string): string => s.replace(/[\r\n]+$/, '');

/** The line-continuation pattern of each escape char: the char last on the line, itself not escaped. */
const CONTINUATION: Readonly<Record<'\\' | '`', RegExp>> = {
  '\\': /([^\\])\\[ \t]*$|^\\[ \t]*$/,
  '`': /([^`])`[ \t]*$|^`[ \t]*$/,
};

/** Reads parser directives while they last (BuildKit's `DirectiveParser`). */
class Directives {
  private done = false;
  private readonly seen = new Set<string>();
  syntax?: string;

  constructor(public escape: '\\' | '`') {}

  get continuation(): RegExp {
    return CONTINUATION[this.escape];
  }

  /** Looks at a line (left-trimmed for first lines); true when it was a directive. */
  check(line: string, lineNo: number): boolean {
    if (this.done) return false;
    const m = line.startsWith('#') ? DIRECTIVE.exec(leftTrim(line.slice(1))) : null;
    const key = m?.[1]?.toLowerCase() ?? '';
    if (!m || (key !== 'syntax' && key !== 'escape' && key !== 'check')) {
      this.done = true;
      return false;
    }
    if (this.seen.has(key)) throw new ScanError(lineNo, `only one ${key} parser directive can be used`);
    this.seen.add(key);
    const value = m[2] as string;
    if (key === 'syntax') this.syntax = value;
    if (key === 'escape') {
      if (value !== '`' && value !== '\\') {
        throw new ScanError(lineNo, `invalid escape token '${value}' does not match \` or \\`);
      }
      this.escape = value;
    }
    return true;
  }
}

/**
 * Reads a Dockerfile into raw instructions.
 *
 * @throws ScanError for a bad directive, an unterminated heredoc or a malformed heredoc word,
 *   and (`file with no instructions`) for a file without any.
 */
export function scanDockerfile(text: string, escape: '\\' | '`' = '\\'): Scanned {
  const lines = text.replace(/^\uFEFF/, '').match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const d = new Directives(escape);
  const nodes: RawNode[] = [];
  const warnings: Scanned['warnings'] = [];
  let n = 0;
  const trimContinuation = (s: string): { text: string; end: boolean } =>
    d.continuation.test(s) ? { text: s.replace(d.continuation, '$1'), end: false } : { text: s, end: true };

  while (n < lines.length) {
    let first = leftTrim(trimNewline(lines[n] as string));
    n++;
    d.check(first, n);
    if (isComment(first)) first = '';
    const startLine = n;
    let { text: buf, end } = trimContinuation(first);
    if (end && buf === '') continue;
    let emptyContinuation = false;
    while (!end && n < lines.length) {
      const raw = trimNewline(lines[n] as string);
      n++;
      d.check(raw, n);
      if (isComment(raw)) continue;
      if (leftTrim(raw) === '') {
        emptyContinuation = true;
        continue;
      }
      const t = trimContinuation(raw);
      buf += t.text;
      end = t.end;
    }
    if (emptyContinuation) warnings.push({ line: n, message: `Empty continuation line found in: ${buf}` });
    const { keyword, flags, args } = splitCommand(buf, d.escape);
    const heredocs: Heredoc[] = [];
    if (buf.includes('<<') && takesHeredocs(keyword, args, d.escape)) {
      let docs;
      try {
        docs = heredocsOfLine(buf);
      } catch (e) {
        throw new ScanError(startLine, (e as LineError).message);
      }
      for (const doc of docs) {
        let content = '';
        let terminated = false;
        while (n < lines.length) {
          const raw = lines[n] as string;
          n++;
          let candidate = trimNewline(raw);
          if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
          content += raw;
        }
        if (!terminated) throw new ScanError(startLine, 'unterminated heredoc');
        heredocs.push({ ...doc, content });
      }
    }
    nodes.push({ keyword, flags, args, original: trimSpace(buf), line: startLine, endLine: n, heredocs });
  }
  if (nodes.length === 0) throw new ScanError(Math.max(n, 1), 'file with no instructions');
  const scanned: Scanned = { escape: d.escape, nodes, warnings };
  if (d.syntax !== undefined) scanned.syntax = d.syntax;
  return scanned;
}
