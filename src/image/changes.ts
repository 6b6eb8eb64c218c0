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
import { posix } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import {
  expandWord,
  expandWords,
  parseInstructions,
  type CommandForm,
  type Instruction,
} from './build/parser/index.js';
import { parseGoDuration } from './build/parser/words.js';
import type { OciContainerConfig, OciHealthcheck } from './image-config.js';

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

/** The config's argv for a command: exec form as is, shell form under `/bin/sh -c`. */
export function commandArgs(command: CommandForm): string[] {
  return command.form === 'exec' ? command.args : ['/bin/sh', '-c', command.text];
}

/** The image config's healthcheck for a parsed `HEALTHCHECK`. */
export function healthcheckConfig(ins: Instruction & { kind: 'HEALTHCHECK' }): OciHealthcheck {
  if (ins.test === 'NONE') return { Test: ['NONE'] };
  const hc: OciHealthcheck = {
    Test: ins.test.form === 'exec' ? ['CMD', ...ins.test.args] : ['CMD-SHELL', ins.test.text],
  };
  if (ins.interval !== undefined) hc.Interval = ins.interval;
  if (ins.timeout !== undefined) hc.Timeout = ins.timeout;
  if (ins.startPeriod !== undefined) hc.StartPeriod = ins.startPeriod;
  if (ins.startInterval !== undefined) hc.StartInterval = ins.startInterval;
  if (ins.retries !== undefined) hc.Retries = ins.retries;
  return hc;
}

/**
 * The `ExposedPorts` keys of one expanded `EXPOSE` word (`80`, `53/udp`, `8000-8002/tcp`).
 *
 * @throws InvalidArgumentError naming `field` for anything else or a port out of range.
 */
export function exposedPortKeys(word: string, field = 'changes'): string[] {
  const m = /^([0-9]+)(?:-([0-9]+))?(?:\/(tcp|udp|sctp))?$/i.exec(word);
  if (!m)
    throw new InvalidArgumentError(field, `EXPOSE: '${word}' is not a port (use 80, 80/tcp, 53/udp or 8000-8010)`);
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (from < 1 || to > 65535 || to < from) throw new InvalidArgumentError(field, `EXPOSE: '${word}' is out of range`);
  const keys: string[] = [];
  for (let p = from; p <= to; p++) keys.push(`${p}/${proto}`);
  return keys;
}

/** Applies one parsed instruction to `c`; `cmdSet` says whether these changes set `CMD` already. */
function apply(c: OciContainerConfig, ins: Instruction, cmdSet: boolean): void {
  const lookup = envLookup(c.Env ?? []);
  const word = (raw: string): string => expandWord(raw, lookup).value;
  switch (ins.kind) {
    case 'CMD':
      c.Cmd = commandArgs(ins.command);
      break;
    case 'ENTRYPOINT':
      c.Entrypoint = commandArgs(ins.command);
      if (!cmdSet) c.Cmd = null;
      break;
    case 'ENV':
      for (const [k, v] of ins.pairs.map((p) => [word(p.key), word(p.value)] as const)) {
        c.Env = [...(c.Env ?? []).filter((e) => !e.startsWith(`${k}=`)), `${k}=${v}`];
      }
      break;
    case 'LABEL':
      for (const p of ins.pairs) c.Labels = { ...c.Labels, [word(p.key)]: word(p.value) };
      break;
    case 'EXPOSE':
      for (const raw of ins.ports) {
        for (const w of expandWords(raw, lookup).values) {
          for (const k of exposedPortKeys(w)) c.ExposedPorts = { ...c.ExposedPorts, [k]: {} };
        }
      }
      break;
    case 'VOLUME':
      for (const raw of ins.paths) {
        const v = word(raw);
        if (v === '') throw bad('VOLUME: empty path');
        c.Volumes = { ...c.Volumes, [v]: {} };
      }
      break;
    case 'WORKDIR': {
      const dir = word(ins.path);
      c.WorkingDir = posix.isAbsolute(dir) ? posix.normalize(dir) : posix.join(c.WorkingDir || '/', dir);
      break;
    }
    case 'USER':
      c.User = word(ins.user);
      break;
    case 'STOPSIGNAL': {
      const sig = word(ins.signal);
      if (!/^(SIG)?[A-Z][A-Z0-9]*([+-][0-9]+)?$|^[0-9]+$/.test(sig)) throw bad(`STOPSIGNAL: '${sig}' is not a signal`);
      c.StopSignal = sig;
      break;
    }
    case 'HEALTHCHECK':
      c.Healthcheck = healthcheckConfig(ins);
      break;
    case 'ONBUILD':
      c.OnBuild = [...(c.OnBuild ?? []), ins.trigger];
      break;
    default:
      throw bad(
        `'${ins.original.split(/\s/)[0] ?? ''}' cannot be used as a change; use one of ${CHANGE_INSTRUCTIONS.join(', ')}`,
      );
  }
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
