/**
 * The Dockerfile parser: a pure module (no file system, no engine). See README.md for what it
 * holds and what the planner expands where.
 *
 * @module
 */
export { dockerfileError, parseDockerfile, parseInstruction, parseInstructions } from './dockerfile.js';
export { INSTRUCTIONS } from './instructions.js';
export { expandHeredoc, expandWord, expandWords, type Expansion } from './lex.js';
export { chompHeredoc } from './types.js';
export type {
  CommandForm,
  Dockerfile,
  Heredoc,
  Instruction,
  InstructionBase,
  InstructionKind,
  Stage,
} from './types.js';
