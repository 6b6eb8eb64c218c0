/**
 * The instructions that change only the image config (`ENV`, `LABEL`, `EXPOSE`, `VOLUME`,
 * `USER`, `CMD`, `ENTRYPOINT`, `SHELL`, `STOPSIGNAL`, `HEALTHCHECK`, `ONBUILD`, `MAINTAINER`, and
 * the config part of `WORKDIR`), as pure functions over the config, with the history text
 * BuildKit writes for each (`created_by`).
 *
 * @module
 */
import { InvalidArgumentError } from '../../errors.js';
import type { OciContainerConfig, OciHealthcheck, OciImageConfig } from '../image-config.js';
import type { CommandForm, Instruction } from './parser/index.js';

/** The default `SHELL`, as Docker's on Linux. */
export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];

/** Variable substitution in the step's scope (ENV over ARG), as the stage offers it. */
export interface Substitution {
  /** One word, quotes removed. */
  word(raw: string): string;
  /** Several words, split as the shell splits them, quotes removed. */
  words(raw: string): string[];
  /** A heredoc body of COPY/ADD: variables substituted, quotes kept. */
  heredoc(raw: string): string;
}

/** Go's `%q` of a string list, as BuildKit prints argv in history: `["sh" "-c" "x"]`. */
export function quoteList(args: readonly string[]): string {
  return `[${args.map((a) => JSON.stringify(a)).join(' ')}]`;
}

/** The argv of a command form: exec form as is, shell form through `shell`. */
export function commandArgv(command: CommandForm, shell: readonly string[]): string[] {
  return command.form === 'exec' ? [...command.args] : [...shell, command.text];
}

/** The stage's shell: the config's `Shell`, else Docker's default. */
export function shellOf(config: OciContainerConfig): string[] {
  return config.Shell && config.Shell.length > 0 ? [...config.Shell] : [...DEFAULT_SHELL];
}

/** Sets `K=V` in an `Env` list, replacing an existing `K`. */
export function setEnv(env: readonly string[], key: string, value: string): string[] {
  const out = env.filter((e) => e.slice(0, e.indexOf('=') === -1 ? e.length : e.indexOf('=')) !== key);
  out.push(`${key}=${value}`);
  return out;
}

/** The value of `key` in an `Env` list. */
export function getEnv(env: readonly string[] | null | undefined, key: string): string | undefined {
  for (let i = (env?.length ?? 0) - 1; i >= 0; i--) {
    const e = env![i]!;
    const eq = e.indexOf('=');
    if ((eq === -1 ? e : e.slice(0, eq)) === key) return eq === -1 ? '' : e.slice(eq + 1);
  }
  return undefined;
}

/** `WORKDIR` resolved against the current one, as Docker: relative paths join it. */
export function resolveWorkdir(current: string | undefined, path: string): string {
  const base = current && current.length > 0 ? current : '/';
  const joined = path.startsWith('/') ? path : `${base.replace(/\/+$/, '')}/${path}`;
  const parts: string[] = [];
  for (const p of joined.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return `/${parts.join('/')}`;
}

/**
 * The `ExposedPorts` keys of one expanded `EXPOSE` word (`80`, `53/udp`, `8000-8002/tcp`).
 *
 * @throws InvalidArgumentError naming `field` for anything else or a port out of range.
 */
export function exposedPortKeys(word: string, field = 'dockerfile'): string[] {
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

/** The image config's healthcheck for a parsed `HEALTHCHECK`: it replaces the inherited one whole. */
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

/** An error of instruction `i`, naming its line. */
function lineError(i: { line: number }, message: string): InvalidArgumentError {
  return new InvalidArgumentError('dockerfile', `Dockerfile:${i.line}: ${message}`);
}

const SIGNAL_RE = /^(SIG)?[A-Z][A-Z0-9]*([+-][0-9]+)?$|^[0-9]+$/;

/** What a config-only instruction did: the history text. The config is changed in place. */
export interface MetadataResult {
  /** `created_by` of the history entry. */
  createdBy: string;
}

/** The config-only instructions {@link applyMetadata} handles. */
export type MetadataInstruction = Extract<
  Instruction,
  {
    kind:
      | 'ENV'
      | 'LABEL'
      | 'EXPOSE'
      | 'VOLUME'
      | 'USER'
      | 'CMD'
      | 'ENTRYPOINT'
      | 'SHELL'
      | 'STOPSIGNAL'
      | 'HEALTHCHECK'
      | 'ONBUILD'
      | 'MAINTAINER';
  }
>;

/** Whether `i` only changes the image config. */
export function isMetadata(i: Instruction): i is MetadataInstruction {
  return [
    'ENV',
    'LABEL',
    'EXPOSE',
    'VOLUME',
    'USER',
    'CMD',
    'ENTRYPOINT',
    'SHELL',
    'STOPSIGNAL',
    'HEALTHCHECK',
    'ONBUILD',
    'MAINTAINER',
  ].includes(i.kind);
}

/**
 * Applies a config-only instruction to `image` (in place). `cmdSet` says whether this stage set
 * `CMD` already: an `ENTRYPOINT` resets an inherited `CMD`, not one of the same stage.
 */
export function applyMetadata(
  image: OciImageConfig,
  i: MetadataInstruction,
  sub: Substitution,
  cmdSet: boolean,
): MetadataResult {
  const c: OciContainerConfig = (image.config ??= {});
  switch (i.kind) {
    case 'ENV': {
      // Every pair is substituted against the environment before the instruction (`ENV A=2 B=$A`
      // gives B the old A), as Docker does.
      const pairs = i.pairs.map((p) => [sub.word(p.key), sub.word(p.value)] as const);
      let env = c.Env ?? [];
      for (const [k, v] of pairs) env = setEnv(env, k, v);
      c.Env = env;
      return { createdBy: `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}` };
    }
    case 'LABEL': {
      const pairs = i.pairs.map((p) => [sub.word(p.key), sub.word(p.value)] as const);
      c.Labels = { ...c.Labels };
      for (const [k, v] of pairs) c.Labels[k] = v;
      return { createdBy: `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}` };
    }
    case 'EXPOSE': {
      let ports: string[];
      try {
        ports = i.ports.flatMap((p) => sub.words(p)).flatMap((w) => exposedPortKeys(w));
      } catch (e) {
        throw lineError(i, (e as Error).message.replace(/^invalid dockerfile: /, ''));
      }
      c.ExposedPorts = { ...c.ExposedPorts };
      for (const p of ports) c.ExposedPorts[p] = {};
      return { createdBy: `EXPOSE map[${ports.map((p) => `${p}:{}`).join(' ')}]` };
    }
    case 'VOLUME': {
      const paths = i.paths.map((p) => sub.word(p)).filter((p) => p.length > 0);
      if (paths.length === 0) throw lineError(i, 'VOLUME specified can not be an empty string');
      c.Volumes = { ...c.Volumes };
      for (const p of paths) c.Volumes[p] = {};
      return { createdBy: `VOLUME [${paths.join(' ')}]` };
    }
    case 'USER': {
      c.User = sub.word(i.user);
      return { createdBy: `USER ${c.User}` };
    }
    case 'CMD': {
      c.Cmd = commandArgv(i.command, shellOf(c));
      return { createdBy: `CMD ${quoteList(c.Cmd)}` };
    }
    case 'ENTRYPOINT': {
      c.Entrypoint = commandArgv(i.command, shellOf(c));
      if (!cmdSet) c.Cmd = null;
      return { createdBy: `ENTRYPOINT ${quoteList(c.Entrypoint)}` };
    }
    case 'SHELL': {
      c.Shell = [...i.shell];
      return { createdBy: `SHELL [${i.shell.join(' ')}]` };
    }
    case 'STOPSIGNAL': {
      const signal = sub.word(i.signal);
      if (!SIGNAL_RE.test(signal)) throw lineError(i, `invalid signal ${JSON.stringify(signal)}`);
      c.StopSignal = signal;
      return { createdBy: `STOPSIGNAL ${signal}` };
    }
    case 'HEALTHCHECK': {
      c.Healthcheck = healthcheckConfig(i);
      return { createdBy: `HEALTHCHECK ${quoteList(c.Healthcheck.Test ?? [])}` };
    }
    case 'ONBUILD': {
      c.OnBuild = [...(c.OnBuild ?? []), i.trigger];
      return { createdBy: `ONBUILD ${i.trigger}` };
    }
    case 'MAINTAINER': {
      image.author = i.name;
      return { createdBy: `MAINTAINER ${i.name}` };
    }
  }
}
