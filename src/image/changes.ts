/**
 * Dockerfile instructions applied to an image config, as `docker import --change` and
 * `docker commit --change` apply them: `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `HEALTHCHECK`,
 * `LABEL`, `ONBUILD` (recorded, never run), `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`. The
 * changes are read as one Dockerfile by the build parser (`build/parser`): the escape char
 * continues a line, `#` starts a comment line.
 *
 * Like Docker: `ENV`, `LABEL`, `EXPOSE`, `USER`, `VOLUME`, `WORKDIR` and `STOPSIGNAL` expand
 * variables (`$VAR`, `${VAR:-default}`, …) from the environment built so far (all pairs of one
 * `ENV` against the environment before it); a shell-form `CMD`/`ENTRYPOINT` becomes
 * `["/bin/sh", "-c", …]`; setting `ENTRYPOINT` clears a `CMD` not set by these changes; a
 * relative `WORKDIR` is joined to the previous one.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { expandWord, expandWords, parseInstructions, type Instruction } from './build/parser/index.js';
import { applyMetadata, isMetadata, resolveWorkdir, type Substitution } from './build/metadata.js';
import { parseGoDuration } from './build/parser/words.js';
import type { OciContainerConfig, OciImageConfig } from './image-config.js';

/** The instructions `--change` accepts. */
export const CHANGE_INSTRUCTIONS = [
  'CMD',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'HEALTHCHECK',
  'LABEL',
  'ONBUILD',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
] as const;

function bad(message: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError('changes', message, cause === undefined ? {} : { cause });
}

/** Runs `fn`, turning the parser's `dockerfile` errors into `changes` errors. */
function asChange<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof InvalidArgumentError && e.field === 'dockerfile') {
      throw bad(e.message.replace(/^invalid dockerfile: /, ''), e);
    }
    throw e;
  }
}

function envLookup(env: readonly string[]): (name: string) => string | undefined {
  return (name) => {
    for (let i = env.length - 1; i >= 0; i--) {
      const kv = env[i] as string;
      if (kv.startsWith(`${name}=`)) return kv.slice(name.length + 1);
    }
    return undefined;
  };
}

/**
 * Docker's word processing against `env` (`KEY=value` entries): quotes removed, escapes and
 * variables processed. With `split`, the words separated by unquoted white space; without, one
 * word with white space kept.
 *
 * @throws InvalidArgumentError (field `changes`) for an unterminated quote or a bad `${…}`.
 */
export function shellWords(input: string, env: readonly string[], split: boolean): string[] {
  return asChange(() =>
    split ? expandWords(input, envLookup(env)).values : [expandWord(input, envLookup(env)).value],
  );
}

/**
 * Parses a Go duration (`30s`, `1m30s`, `500ms`) into nanoseconds.
 *
 * @throws InvalidArgumentError naming `field` for anything else.
 */
export function parseDuration(s: string, field = 'changes'): number {
  try {
    return parseGoDuration(s);
  } catch (e) {
    throw new InvalidArgumentError(field, `'${s}' is not a duration (use e.g. 30s, 1m30s, 500ms)`, { cause: e });
  }
}

/** Applies one parsed instruction to `c`; `cmdSet` says whether these changes set `CMD` already. */
function apply(c: OciContainerConfig, ins: Instruction, cmdSet: boolean): void {
  const lookup = envLookup(c.Env ?? []);
  const sub: Substitution = {
    word: (raw) => expandWord(raw, lookup).value,
    words: (raw) => expandWords(raw, lookup).values,
    heredoc: (raw) => raw,
  };
  if (ins.kind === 'WORKDIR') {
    c.WorkingDir = resolveWorkdir(c.WorkingDir, sub.word(ins.path));
    return;
  }
  if (!isMetadata(ins) || ins.kind === 'SHELL' || ins.kind === 'MAINTAINER')
    throw bad(
      `'${ins.original.split(/\s/)[0] ?? ''}' cannot be used as a change; use one of ${CHANGE_INSTRUCTIONS.join(', ')}`,
    );
  // The build's own rules, on an image holding just this config.
  const image: OciImageConfig = { architecture: '', os: '', config: c, rootfs: { type: 'layers', diff_ids: [] } };
  applyMetadata(image, ins, sub, cmdSet);
}

/**
 * Applies Dockerfile `changes` to `base` and returns the new container config (`base` is not
 * modified).
 *
 * @throws InvalidArgumentError (field `changes`) for an unknown instruction or a malformed one.
 *
 * @example
 * ```ts
 * applyChanges({}, ['ENV A=1 B="two words"', 'CMD ["sh"]', 'EXPOSE 80 53/udp']);
 * ```
 */
export function applyChanges(base: OciContainerConfig, changes: readonly string[]): OciContainerConfig {
  const c: OciContainerConfig = structuredClone(base);
  const text = changes.join('\n');
  if (text.split('\n').every((l) => /^\s*(#.*)?$/.test(l))) return c;
  const instructions = asChange(() => parseInstructions(text));
  let cmdSet = false;
  for (const ins of instructions) {
    if (!/^\S+\s+\S/.test(ins.original)) throw bad(`${ins.kind} needs an argument`);
    asChange(() => apply(c, ins, cmdSet));
    if (ins.kind === 'CMD') cmdSet = true;
  }
  return c;
}
