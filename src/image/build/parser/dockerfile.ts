/**
 * A Dockerfile into stages: the two passes ({@link scanDockerfile}, {@link parseNode}) and
 * BuildKit's stage rules (only `ARG` before the first `FROM`).
 *
 * @module
 */
import { InvalidArgumentError } from '../../../errors.js';
import { parseNode } from './instructions.js';
import { ScanError, scanDockerfile, type Scanned } from './scan.js';
import type { Dockerfile, Instruction, Stage } from './types.js';
import { LineError } from './words.js';

/**
 * The error for a fault at a Dockerfile line: InvalidArgumentError with field `dockerfile` and a
 * message starting `Dockerfile:<line>: ` (the planner uses it too, for expansion errors).
 */
export function dockerfileError(line: number, message: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError('dockerfile', `Dockerfile:${line}: ${message}`, cause === undefined ? {} : { cause });
}

function scan(text: string, escape: '\\' | '`' = '\\'): Scanned {
  try {
    return scanDockerfile(text, escape);
  } catch (e) {
    if (e instanceof ScanError) throw dockerfileError(e.line, e.message);
    throw e;
  }
}

function interpret(scanned: Scanned): Instruction[] {
  return scanned.nodes.map((node) => {
    try {
      return parseNode(node, scanned.escape);
    } catch (e) {
      if (e instanceof LineError) throw dockerfileError(node.line, e.message);
      throw e;
    }
  });
}

/**
 * Parses the instructions of a Dockerfile fragment with no stage rules: `docker commit --change`
 * lines, or an `ONBUILD` trigger (directives, continuations, comments and heredocs as in a file).
 *
 * @throws InvalidArgumentError (field `dockerfile`) for any syntax error, or for text without
 *   an instruction.
 */
export function parseInstructions(text: string, escape: '\\' | '`' = '\\'): Instruction[] {
  return interpret(scan(text, escape));
}

/**
 * Parses exactly one instruction (continuation lines and heredoc bodies included).
 *
 * @throws InvalidArgumentError (field `dockerfile`) for a syntax error, or when `text` holds no
 *   instruction or several.
 * @example
 * ```ts
 * parseInstruction('CMD ["nginx", "-g", "daemon off;"]'); // { kind: 'CMD', command: { form: 'exec', … }, … }
 * ```
 */
export function parseInstruction(text: string, escape: '\\' | '`' = '\\'): Instruction {
  const all = parseInstructions(text, escape);
  if (all.length !== 1) {
    throw dockerfileError((all[1] as Instruction).line, `expected one instruction, found ${all.length}`);
  }
  return all[0] as Instruction;
}

function lintWarnings(ins: Instruction, keyword: string): Array<{ line: number; message: string }> {
  if (ins.kind === 'MAINTAINER') {
    return [{ line: ins.line, message: 'Maintainer instruction is deprecated in favor of using label' }];
  }
  if (ins.kind !== 'FROM') return [];
  const words = ins.original.split(/\s+/).filter((w) => !w.startsWith('--'));
  if (words.length !== 4) return [];
  const [, , as = '', name = ''] = words;
  const out: Array<{ line: number; message: string }> = [];
  if (name !== name.toLowerCase()) out.push({ line: ins.line, message: `Stage name '${name}' should be lowercase` });
  const upper = keyword === keyword.toUpperCase();
  const lower = keyword === keyword.toLowerCase();
  if ((upper && as !== as.toUpperCase()) || (lower && as !== as.toLowerCase())) {
    out.push({ line: ins.line, message: `'${as}' and '${keyword}' keywords' casing do not match` });
  }
  return out;
}

/**
 * Parses a Dockerfile into its directives, global `ARG`s and stages, as BuildKit's frontend does
 * before building. Nothing is expanded: see {@link Instruction} for which fields the planner
 * expands, and {@link expandWord}.
 *
 * @throws InvalidArgumentError (field `dockerfile`, message `Dockerfile:<line>: <BuildKit's
 *   meaning>`) for a bad directive, an unknown instruction, an unknown or malformed flag, wrong
 *   arguments, an unterminated heredoc, an instruction other than ARG before the first FROM, or
 *   a file without a stage.
 * @example
 * ```ts
 * const df = parseDockerfile('FROM busybox AS base\nRUN echo hi\n');
 * df.stages[0].name; // 'base'
 * ```
 */
export function parseDockerfile(text: string): Dockerfile {
  const scanned = scan(text);
  const instructions = interpret(scanned);
  const df: Dockerfile = { escape: scanned.escape, globalArgs: [], stages: [], warnings: [...scanned.warnings] };
  if (scanned.syntax !== undefined) df.syntax = scanned.syntax;
  let stage: Stage | undefined;
  instructions.forEach((ins, i) => {
    df.warnings.push(...lintWarnings(ins, (scanned.nodes[i] as { keyword: string }).keyword));
    if (ins.kind === 'FROM') {
      stage = { index: df.stages.length, from: ins, instructions: [] };
      if (ins.name !== undefined) stage.name = ins.name;
      df.stages.push(stage);
    } else if (stage) stage.instructions.push(ins);
    else if (ins.kind === 'ARG') df.globalArgs.push(ins);
    else throw dockerfileError(ins.line, 'no build stage in current context');
  });
  if (df.stages.length === 0) {
    throw dockerfileError(instructions[instructions.length - 1]?.line ?? 1, 'dockerfile contains no stages to build');
  }
  df.warnings.sort((a, b) => a.line - b.line);
  return df;
}
