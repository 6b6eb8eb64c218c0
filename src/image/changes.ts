/**
 * Dockerfile instructions applied to an image config, as `docker import --change` and
 * `docker commit --change` apply them: `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `HEALTHCHECK`,
 * `LABEL`, `ONBUILD` (recorded, never run), `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`. The
 * changes are read as one Dockerfile: `\` continues a line, `#` starts a comment line.
 *
 * Like Docker: `ENV`, `LABEL`, `EXPOSE`, `USER`, `VOLUME`, `WORKDIR`, `STOPSIGNAL` and
 * `ONBUILD` expand `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alt}` from the environment
 * built so far; a shell-form `CMD`/`ENTRYPOINT` becomes `["/bin/sh", "-c", …]`; setting
 * `ENTRYPOINT` clears a `CMD` not set by these changes; a relative `WORKDIR` is joined to the
 * previous one.
 *
 * @module
 */
import { posix } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
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

function bad(message: string): InvalidArgumentError {
  return new InvalidArgumentError('changes', message);
}

/** Joins continuation lines and drops blank and comment lines. */
function logicalLines(changes: readonly string[]): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of changes.join('\n').split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (cur === '' && /^\s*(#|$)/.test(line)) continue;
    if (/\\\s*$/.test(line)) {
      cur += line.replace(/\\\s*$/, '');
      continue;
    }
    out.push((cur + line).trim());
    cur = '';
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

function lookup(env: readonly string[], name: string): string | undefined {
  for (let i = env.length - 1; i >= 0; i--) {
    const kv = env[i] as string;
    if (kv.startsWith(`${name}=`)) return kv.slice(name.length + 1);
  }
  return undefined;
}

/**
 * Docker's word processing: quotes removed (`'…'` literal, `"…"` with `\` escapes and
 * expansion), `\` escapes outside quotes, variables expanded unless single-quoted. With `split`,
 * returns the words separated by unquoted whitespace; without, one word with whitespace kept.
 */
export function shellWords(input: string, env: readonly string[], split: boolean): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const expand = (): string => {
    // at '$'
    const rest = input.slice(i + 1);
    let m = /^\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])([^}]*))?\}/.exec(rest);
    if (m) {
      i += 1 + m[0].length;
      const v = lookup(env, m[1] as string);
      if (m[2] === ':-') return v === undefined || v === '' ? shellWords(m[3] ?? '', env, false).join('') : v;
      if (m[2] === ':+') return v === undefined || v === '' ? '' : shellWords(m[3] ?? '', env, false).join('');
      return v ?? '';
    }
    m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest);
    if (m) {
      i += 1 + m[0].length;
      return lookup(env, m[0]) ?? '';
    }
    i += 1;
    return '$';
  };
  while (i < input.length) {
    const c = input[i] as string;
    if (split && /\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
      continue;
    }
    inWord = true;
    if (c === '\\') {
      word += input[i + 1] ?? '';
      i += 2;
    } else if (c === "'") {
      const end = input.indexOf("'", i + 1);
      if (end === -1) throw bad(`unterminated single quote in '${input}'`);
      word += input.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= input.length) throw bad(`unterminated double quote in '${input}'`);
        const d = input[i] as string;
        if (d === '"') break;
        if (d === '\\' && /["\\$]/.test(input[i + 1] ?? '')) {
          word += input[i + 1];
          i += 2;
        } else if (d === '$') word += expand();
        else {
          word += d;
          i++;
        }
      }
      i++;
    } else if (c === '$') word += expand();
    else {
      word += c;
      i++;
    }
  }
  if (inWord || !split) words.push(word);
  return words;
}

/** Parses an exec-form JSON array of strings, or returns undefined for shell form. */
function jsonArgs(rest: string): string[] | undefined {
  if (!rest.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(rest);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // shell form
  }
  return undefined;
}

function commandArgs(rest: string): string[] {
  return jsonArgs(rest) ?? ['/bin/sh', '-c', rest];
}

/** `KEY=value …` pairs, or the legacy `KEY value with spaces` form. */
function pairs(instruction: string, rest: string, env: readonly string[], legacy: boolean): [string, string][] {
  const first = /^\S+/.exec(rest)?.[0] ?? '';
  if (!first.includes('=')) {
    if (!legacy) throw bad(`${instruction} needs KEY=VALUE pairs, got '${rest}'`);
    const value = rest.slice(first.length).trim();
    if (first === '' || value === '') throw bad(`${instruction} needs a name and a value, got '${rest}'`);
    return [[first, shellWords(value, env, false).join('')]];
  }
  return shellWords(rest, env, true).map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw bad(`${instruction}: '${w}' is not KEY=VALUE`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Parses a Go duration (`30s`, `1m30s`, `500ms`) into nanoseconds. */
export function parseDuration(s: string, field = 'changes'): number {
  const re = /([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    consumed = re.lastIndex;
  }
  if (s === '' || consumed !== s.length) {
    if (s === '0') return 0;
    throw new InvalidArgumentError(field, `'${s}' is not a duration (use e.g. 30s, 1m30s, 500ms)`);
  }
  return Math.round(total);
}

function healthcheck(rest: string): OciHealthcheck {
  if (/^none$/i.test(rest)) return { Test: ['NONE'] };
  const hc: OciHealthcheck = {};
  let r = rest;
  for (;;) {
    const m = /^--([a-z-]+)=(\S+)\s+/.exec(r);
    if (!m) break;
    r = r.slice(m[0].length);
    const [, flag, value = ''] = m;
    if (flag === 'interval') hc.Interval = parseDuration(value);
    else if (flag === 'timeout') hc.Timeout = parseDuration(value);
    else if (flag === 'start-period') hc.StartPeriod = parseDuration(value);
    else if (flag === 'start-interval') hc.StartInterval = parseDuration(value);
    else if (flag === 'retries' && /^[0-9]+$/.test(value)) hc.Retries = Number(value);
    else throw bad(`HEALTHCHECK: unknown or invalid flag --${flag}=${value}`);
  }
  const m = /^CMD\s+(.*)$/is.exec(r);
  if (!m) throw bad(`HEALTHCHECK must be NONE or [options] CMD command, got '${rest}'`);
  const cmd = (m[1] as string).trim();
  const json = jsonArgs(cmd);
  return { Test: json ? ['CMD', ...json] : ['CMD-SHELL', cmd], ...hc };
}

function portKeys(word: string): string[] {
  const m = /^([0-9]+)(?:-([0-9]+))?(?:\/(tcp|udp|sctp))?$/i.exec(word);
  if (!m) throw bad(`EXPOSE: '${word}' is not a port (use 80, 80/tcp, 53/udp or 8000-8010)`);
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (from < 1 || to > 65535 || to < from) throw bad(`EXPOSE: '${word}' is out of range`);
  const keys: string[] = [];
  for (let p = from; p <= to; p++) keys.push(`${p}/${proto}`);
  return keys;
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
  let cmdSet = false;
  for (const line of logicalLines(changes)) {
    const m = /^(\S+)(?:\s+(.*))?$/s.exec(line);
    const keyword = (m?.[1] ?? '').toUpperCase();
    const rest = (m?.[2] ?? '').trim();
    const env = c.Env ?? [];
    if (!(CHANGE_INSTRUCTIONS as readonly string[]).includes(keyword)) {
      throw bad(`'${m?.[1] ?? line}' cannot be used as a change; use one of ${CHANGE_INSTRUCTIONS.join(', ')}`);
    }
    if (rest === '') throw bad(`${keyword} needs an argument`);
    switch (keyword) {
      case 'CMD':
        c.Cmd = commandArgs(rest);
        cmdSet = true;
        break;
      case 'ENTRYPOINT':
        c.Entrypoint = commandArgs(rest);
        if (!cmdSet) c.Cmd = null;
        break;
      case 'ENV':
        for (const [k, v] of pairs('ENV', rest, env, true)) {
          c.Env = [...(c.Env ?? []).filter((e) => !e.startsWith(`${k}=`)), `${k}=${v}`];
        }
        break;
      case 'LABEL':
        for (const [k, v] of pairs('LABEL', rest, env, true)) c.Labels = { ...c.Labels, [k]: v };
        break;
      case 'EXPOSE':
        for (const w of shellWords(rest, env, true))
          for (const k of portKeys(w)) c.ExposedPorts = { ...c.ExposedPorts, [k]: {} };
        break;
      case 'VOLUME':
        for (const v of jsonArgs(rest) ?? shellWords(rest, env, true)) {
          if (v === '') throw bad('VOLUME: empty path');
          c.Volumes = { ...c.Volumes, [v]: {} };
        }
        break;
      case 'WORKDIR': {
        const dir = shellWords(rest, env, false).join('');
        c.WorkingDir = posix.isAbsolute(dir) ? posix.normalize(dir) : posix.join(c.WorkingDir || '/', dir);
        break;
      }
      case 'USER':
        c.User = shellWords(rest, env, false).join('');
        break;
      case 'STOPSIGNAL': {
        const sig = shellWords(rest, env, false).join('');
        if (!/^(SIG)?[A-Z][A-Z0-9]*([+-][0-9]+)?$|^[0-9]+$/.test(sig))
          throw bad(`STOPSIGNAL: '${sig}' is not a signal`);
        c.StopSignal = sig;
        break;
      }
      case 'HEALTHCHECK':
        c.Healthcheck = healthcheck(rest);
        break;
      case 'ONBUILD': {
        const inner = /^\S+/.exec(rest)?.[0]?.toUpperCase() ?? '';
        if (inner === 'ONBUILD' || inner === 'FROM' || inner === 'MAINTAINER')
          throw bad(`ONBUILD ${inner} is not allowed`);
        c.OnBuild = [...(c.OnBuild ?? []), rest];
        break;
      }
    }
  }
  return c;
}
