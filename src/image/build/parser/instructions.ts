/**
 * The second pass, as BuildKit's `instructions.ParseInstruction`: one raw instruction becomes a
 * typed {@link Instruction}, its flags and argument count checked with BuildKit's messages. Words
 * stay raw; see {@link Instruction} for what the planner expands.
 *
 * @module
 */
import { splitCommand, type RawNode } from './scan.js';
import { chompHeredoc, type CommandForm, type Heredoc, type Instruction, type InstructionBase } from './types.js';
import {
  LineError,
  goQuote,
  heredocWordLenient,
  parseGoDuration,
  parseJsonArray,
  parseWords,
  splitWhitespace,
  suggestion,
} from './words.js';

/** The Dockerfile instructions, uppercase. */
export const INSTRUCTIONS = [
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
] as const;

type FlagKind = 'bool' | 'string' | 'strings';
type FlagValues = Map<string, string | string[] | boolean>;

/** Reads builder flags against the ones an instruction takes (BuildKit's `BFlags.Parse`). */
function parseFlags(flags: readonly string[], spec: Readonly<Record<string, FlagKind>>): FlagValues {
  const out: FlagValues = new Map();
  for (const a of flags) {
    if (a === '--') break;
    if (!a.startsWith('--')) throw new LineError(`arg should start with -- : ${a}`);
    const eq = a.indexOf('=');
    const flagName = eq === -1 ? a : a.slice(0, eq);
    const value = eq === -1 ? undefined : a.slice(eq + 1);
    const name = flagName.slice(2);
    const kind = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (kind === undefined) {
      throw new LineError(`unknown flag: ${flagName}${suggestion(name, Object.keys(spec), true)}`);
    }
    if (out.has(name) && kind !== 'strings') throw new LineError(`duplicate flag specified: ${flagName}`);
    if (kind === 'bool') {
      if (value === '') throw new LineError(`missing a value on flag: ${flagName}`);
      const v = (value ?? 'true').toLowerCase();
      if (v !== 'true' && v !== 'false') {
        throw new LineError(`expecting boolean value for flag ${flagName}, not: ${value ?? ''}`);
      }
      out.set(name, v === 'true');
    } else {
      if (value === undefined) throw new LineError(`missing a value on flag: ${flagName}`);
      if (kind === 'string') out.set(name, value);
      else out.set(name, [...((out.get(name) as string[] | undefined) ?? []), value]);
    }
  }
  return out;
}

const str = (f: FlagValues, name: string): string | undefined => f.get(name) as string | undefined;

/** The exec form when the arguments are a JSON array of strings, else the shell form. */
function commandForm(args: string): CommandForm {
  const json = parseJsonArray(args);
  return json ? { form: 'exec', args: json } : { form: 'shell', text: args };
}

/** JSON array, or the arguments split on white space (BuildKit's `parseMaybeJSONToList`). */
function jsonOrWords(args: string): { list: string[]; json: boolean } {
  const json = parseJsonArray(args);
  return json ? { list: json, json: true } : { list: splitWhitespace(args), json: false };
}

function atLeastOne(kw: string): LineError {
  return new LineError(`${kw} requires at least one argument`);
}

function exactlyOne(kw: string, args: string): string {
  if (args === '') throw new LineError(`${kw} requires exactly one argument`);
  return args;
}

/** ENV and LABEL pairs: `K=V …`, or the legacy `K the rest of the line`. */
function keyValues(kw: 'ENV' | 'LABEL', args: string, escape: string): Array<{ key: string; value: string }> {
  const words = parseWords(args, escape);
  if (words.length === 0) throw atLeastOne(kw);
  let pairs: Array<{ key: string; value: string }>;
  if (!(words[0] as string).includes('=')) {
    const [key = '', value] = splitWhitespace(args, 2);
    if (value === undefined) throw new LineError(`${kw} must have two arguments`);
    pairs = [{ key, value }];
  } else {
    pairs = words.map((w) => {
      const eq = w.indexOf('=');
      if (eq === -1) {
        throw new LineError(`Syntax error - can't find = in ${goQuote(w)}. Must be of the form: name=value`);
      }
      return { key: w.slice(0, eq), value: w.slice(eq + 1) };
    });
  }
  if (pairs.some((p) => p.key === '')) throw new LineError(`${kw} names can not be blank`);
  return pairs;
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

function from(node: RawNode): Instruction {
  const f = parseFlags(node.flags, { platform: 'string' });
  const args = splitWhitespace(node.args);
  let name: string | undefined;
  if (args.length === 3 && (args[1] as string).toLowerCase() === 'as') {
    name = (args[2] as string).toLowerCase();
    if (!STAGE_NAME.test(name)) {
      throw new LineError(
        `invalid name for build stage: ${goQuote(args[2] as string)}, name can't start with a number or contain symbols`,
      );
    }
  } else if (args.length !== 1) throw new LineError('FROM requires either one or three arguments');
  const out: Instruction = { ...base(node), kind: 'FROM', image: args[0] as string };
  if (name !== undefined) out.name = name;
  const platform = str(f, 'platform');
  if (platform !== undefined) out.platform = platform;
  return out;
}

function run(node: RawNode): Instruction {
  const f = parseFlags(node.flags, { mount: 'strings', network: 'string', security: 'string' });
  const network = str(f, 'network');
  if (network !== undefined && !['default', 'none', 'host'].includes(network)) {
    throw new LineError(`invalid network mode ${goQuote(network)}`);
  }
  const security = str(f, 'security');
  if (security !== undefined && security !== 'sandbox' && security !== 'insecure') {
    throw new LineError(`security ${goQuote(security)} is not valid`);
  }
  const out: Instruction = {
    ...base(node),
    kind: 'RUN',
    command: commandForm(node.args),
    mounts: (f.get('mount') as string[] | undefined) ?? [],
    heredocs: node.heredocs,
  };
  if (network !== undefined) out.network = network;
  if (security !== undefined) out.security = security;
  return out;
}

function copyOrAdd(node: RawNode, kw: 'COPY' | 'ADD'): Instruction {
  const spec: Record<string, FlagKind> =
    kw === 'COPY'
      ? { chown: 'string', from: 'string', chmod: 'string', link: 'bool', exclude: 'strings', parents: 'bool' }
      : {
          chown: 'string',
          chmod: 'string',
          link: 'bool',
          'keep-git-dir': 'bool',
          checksum: 'string',
          unpack: 'bool',
          exclude: 'strings',
        };
  const { list } = jsonOrWords(node.args);
  if (list.length < 2) {
    throw new LineError(
      `${kw} requires at least two arguments, but only one was provided. Destination could not be determined`,
    );
  }
  const f = parseFlags(node.flags, spec);
  const dest = list[list.length - 1] as string;
  if (heredocWordLenient(dest)) throw new LineError(`${kw} cannot accept a heredoc as a destination`);
  const sources: string[] = [];
  const heredocs: Heredoc[] = [];
  for (const src of list.slice(0, -1)) {
    const doc = heredocWordLenient(src);
    if (!doc) sources.push(src);
    else {
      const body = node.heredocs.find((h) => h.name === doc.name)?.content ?? '';
      heredocs.push({ ...doc, content: doc.chomp ? chompHeredoc(body) : body });
    }
  }
  const out: Instruction = {
    ...base(node),
    kind: kw,
    sources,
    dest,
    link: f.get('link') === true,
    parents: f.get('parents') === true,
    exclude: (f.get('exclude') as string[] | undefined) ?? [],
    heredocs,
  };
  for (const [flag, key] of [
    ['from', 'from'],
    ['chown', 'chown'],
    ['chmod', 'chmod'],
    ['checksum', 'checksum'],
  ] as const) {
    const v = str(f, flag);
    if (v !== undefined) out[key] = v;
  }
  if (f.has('keep-git-dir')) out.keepGitDir = f.get('keep-git-dir') === true;
  if (f.has('unpack')) out.unpack = f.get('unpack') === true;
  return out;
}

function durationFlag(f: FlagValues, name: string): number | undefined {
  const s = str(f, name);
  if (s === undefined || s === '') return undefined;
  const ns = parseGoDuration(s);
  if (ns === 0) return undefined;
  if (ns < 1e6) throw new LineError(`Interval ${goQuote(name)} cannot be less than 1ms`);
  return ns;
}

function healthcheck(node: RawNode): Instruction {
  const [typeWord = '', rest = ''] = splitWhitespace(node.args, 2);
  if (typeWord === '') throw atLeastOne('HEALTHCHECK');
  const type = typeWord.toUpperCase();
  if (type === 'NONE') {
    if (rest !== '') throw new LineError('HEALTHCHECK NONE takes no arguments');
    return { ...base(node), kind: 'HEALTHCHECK', test: 'NONE' };
  }
  const f = parseFlags(node.flags, {
    interval: 'string',
    timeout: 'string',
    'start-period': 'string',
    'start-interval': 'string',
    retries: 'string',
  });
  if (type !== 'CMD') throw new LineError(`Unknown type ${goQuote(type)} in HEALTHCHECK (try CMD)`);
  const test = commandForm(rest);
  if ((test.form === 'exec' ? test.args.length : test.text.length) === 0) {
    throw new LineError('Missing command after HEALTHCHECK CMD');
  }
  const out: Instruction = { ...base(node), kind: 'HEALTHCHECK', test };
  for (const [flag, key] of [
    ['interval', 'interval'],
    ['timeout', 'timeout'],
    ['start-period', 'startPeriod'],
    ['start-interval', 'startInterval'],
  ] as const) {
    const ns = durationFlag(f, flag);
    if (ns !== undefined) out[key] = ns;
  }
  const retries = str(f, 'retries');
  if (retries !== undefined && retries !== '') {
    if (!/^[+-]?[0-9]+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31 - 1) {
      throw new LineError(`strconv.ParseInt: parsing ${goQuote(retries)}: invalid syntax`);
    }
    const n = Number(retries);
    if (n < 0) throw new LineError(`--retries cannot be negative (${n})`);
    if (n > 0) out.retries = n;
  }
  return out;
}

function onbuild(node: RawNode, escape: string): Instruction {
  if (node.args === '') throw atLeastOne('ONBUILD');
  parseFlags(node.flags, {});
  const inner = splitCommand(node.args, escape);
  const trigger = inner.keyword.toUpperCase();
  if (trigger === 'ONBUILD') throw new LineError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (trigger === 'MAINTAINER' || trigger === 'FROM') {
    throw new LineError(`${trigger} isn't allowed as an ONBUILD trigger`);
  }
  let expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
  for (const h of node.heredocs) expression += `\n${h.content}${h.name}`;
  const instruction = parseNode({ ...node, ...inner, original: node.args }, escape);
  return { ...base(node), kind: 'ONBUILD', trigger: expression, instruction };
}

function base(node: RawNode): InstructionBase {
  return { line: node.line, endLine: node.endLine, original: node.original };
}

/**
 * Interprets one raw instruction.
 *
 * @throws LineError with BuildKit's message (unknown instruction, unknown or bad flag, wrong
 *   arguments).
 */
export function parseNode(node: RawNode, escape: string): Instruction {
  const kw = node.keyword.toUpperCase();
  const b = base(node);
  const noFlags = (): void => void parseFlags(node.flags, {});
  switch (kw) {
    case 'FROM':
      return from(node);
    case 'RUN':
      return run(node);
    case 'CMD':
    case 'ENTRYPOINT':
      noFlags();
      return { ...b, kind: kw, command: commandForm(node.args) };
    case 'COPY':
    case 'ADD':
      return copyOrAdd(node, kw);
    case 'ENV':
    case 'LABEL':
      noFlags();
      return { ...b, kind: kw, pairs: keyValues(kw, node.args, escape) };
    case 'ARG': {
      const words = parseWords(node.args, escape);
      if (words.length === 0) throw atLeastOne('ARG');
      const args = words.map((w) => {
        const eq = w.indexOf('=');
        if (eq === -1) return { name: w };
        if (eq === 0) throw new LineError('ARG names can not be blank');
        return { name: w.slice(0, eq), value: w.slice(eq + 1) };
      });
      return { ...b, kind: 'ARG', args };
    }
    case 'EXPOSE': {
      const ports = splitWhitespace(node.args);
      if (ports.length === 0) throw atLeastOne('EXPOSE');
      noFlags();
      return { ...b, kind: 'EXPOSE', ports };
    }
    case 'VOLUME': {
      const paths = jsonOrWords(node.args).list.map((p) => p.trim());
      if (paths.length === 0) throw atLeastOne('VOLUME');
      noFlags();
      if (paths.includes('')) throw new LineError('VOLUME specified can not be an empty string');
      return { ...b, kind: 'VOLUME', paths };
    }
    case 'WORKDIR':
    case 'USER':
    case 'MAINTAINER': {
      const value = exactlyOne(kw, node.args);
      noFlags();
      if (kw === 'WORKDIR') return { ...b, kind: kw, path: value };
      return kw === 'USER' ? { ...b, kind: kw, user: value } : { ...b, kind: kw, name: value };
    }
    case 'STOPSIGNAL':
      return { ...b, kind: kw, signal: exactlyOne(kw, node.args) };
    case 'SHELL': {
      noFlags();
      const json = parseJsonArray(node.args);
      if (json === undefined && node.args !== '')
        throw new LineError('SHELL requires the arguments to be in JSON form');
      if (!json || json.length === 0) throw atLeastOne('SHELL');
      return { ...b, kind: 'SHELL', shell: json };
    }
    case 'HEALTHCHECK':
      return healthcheck(node);
    case 'ONBUILD':
      return onbuild(node, escape);
    default:
      throw new LineError(`unknown instruction: ${node.keyword}${suggestion(node.keyword, INSTRUCTIONS, false)}`);
  }
}
