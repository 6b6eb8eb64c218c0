/**
 * The steps that change files: `WORKDIR` (makes the directory), `RUN` (through the container
 * core) and `COPY`/`ADD` (into a scratch overlay of the step's image). Each is planned first —
 * its history text and the parts of its cache key — and executed only on a cache miss.
 *
 * @module
 */
import * as fs from 'node:fs';
import { join, posix } from 'node:path';
import { BuildError, InvalidArgumentError } from '../../errors.js';
import { DEFAULT_PATH_ENV } from '../image-config.js';
import { copyInto, digestSources, resolveChown, type Owner } from './context/index.js';
import { closeFd, ensureDirInRoot, openRootDir } from './context/root.js';
import { commandArgv, getEnv, shellOf } from './metadata.js';
import { chompHeredoc, type Instruction } from './parser/index.js';
import { runStep as runContainer } from './run-step.js';
import { runMounts } from './run-mounts.js';
import { findStage, lowerDirs, type StepOutput, type StepScope } from './run.js';
import { withReadOnlyRoot, withScratchDir, writeLayer } from './scratch.js';
import { addSources } from './add-step.js';

/** A planned step: what it writes in the history, what its cache key holds, and how it runs. */
export interface StepPlan {
  /** `created_by` of its history entry. */
  createdBy: string;
  /** The parts of its cache key after the parent's key. */
  keyParts: unknown[];
  /** Runs it (on a cache miss). */
  execute(): Promise<StepOutput>;
}

/** The owner `spec` (`user`, `uid`, `user:group`, …) names in the root at `rootPath`. */
async function ownerIn(rootPath: string, spec: string): Promise<Owner> {
  return resolveChown(rootPath, spec);
}

/** `WORKDIR`: makes the directory (owned by the stage's `USER`) when missing. */
export async function workdirStep(s: StepScope, path: string): Promise<StepOutput> {
  const config = structuredClone(s.config);
  config.config = { ...config.config, WorkingDir: path };
  const user = s.config.config?.User ?? '';
  const layer = await writeLayer(
    s.run.services.root,
    s.run.services.images.layers,
    lowerDirs(s.run, s.config),
    async (root) => {
      const owner = user === '' ? undefined : await ownerIn(root, user);
      const rootFd = openRootDir(root, 'WORKDIR');
      try {
        closeFd(ensureDirInRoot(rootFd, path, owner, 'WORKDIR'));
      } finally {
        closeFd(rootFd);
      }
    },
  );
  return { layer, config };
}

/** The environment of a `RUN` step: the image's, then the declared build arguments ENV does not set. */
function runEnv(s: StepScope): { env: string[]; args: Array<[string, string]> } {
  const env = [...(s.config.config?.Env ?? [])];
  if (getEnv(env, 'PATH') === undefined) env.unshift(DEFAULT_PATH_ENV);
  const args = [...s.args.set(), ...s.args.proxies()].filter(([k]) => getEnv(env, k) === undefined);
  return {
    env: [...env, ...args.map(([k, v]) => `${k}=${v}`)],
    args: s.args.set().filter(([k]) => getEnv(env, k) === undefined),
  };
}

/** The argv of a `RUN`, heredocs included (BuildKit's rules). */
function runArgv(i: Instruction & { kind: 'RUN' }, shell: string[]): { argv: string[]; script?: string } {
  if (i.command.form === 'exec' || i.heredocs.length === 0) return { argv: commandArgv(i.command, shell) };
  const only = i.heredocs.length === 1 && /^\s*\d*<<-?\s*["']?[^\s"']+["']?\s*$/.test(i.command.text);
  if (only) {
    const body = i.heredocs[0]!.chomp ? chompHeredoc(i.heredocs[0]!.content) : i.heredocs[0]!.content;
    // A heredoc with a shebang is a script run by its interpreter; else the shell runs the body.
    if (body.startsWith('#!')) return { argv: [], script: body };
    return { argv: [...shell, body] };
  }
  const text = [i.command.text, ...i.heredocs.map((h) => `${h.content}${h.name}`)].join('\n');
  return { argv: [...shell, text] };
}

/** `RUN`: planned from the command, its environment and mounts; runs in a build container. */
export async function runStep(s: StepScope, i: Instruction & { kind: 'RUN' }): Promise<StepPlan> {
  if (i.security === 'insecure')
    throw new InvalidArgumentError(
      'dockerfile',
      `Dockerfile:${i.line}: RUN --security=insecure: berth runs every step in the default sandbox`,
    );
  const c = s.config.config ?? {};
  const { argv, script } = runArgv(i, shellOf(c));
  const { env, args } = runEnv(s);
  const workdir = c.WorkingDir && c.WorkingDir !== '' ? c.WorkingDir : '/';
  const network = i.network === undefined || i.network === 'default' ? (s.run.options.network ?? 'none') : i.network;
  const mounts = i.mounts.map((m) => s.sub.word(m));
  const shown = script === undefined ? argv.join(' ') : script;
  const createdBy = `RUN ${args.length > 0 ? `|${args.length} ${args.map(([k, v]) => `${k}=${v}`).join(' ')} ` : ''}${shown} # buildkit`;
  return {
    createdBy,
    keyParts: ['RUN', { argv, script, env, user: c.User ?? '', workdir, network, mounts }],
    execute: () =>
      runMounts(s, mounts, workdir, script, async (extra, scriptPath, secretEnv) => {
        const result = await runContainer(s.run.services.containers, s.run.services.images.layers, {
          imageId: s.key,
          layers: s.config.rootfs.diff_ids,
          argv: scriptPath === undefined ? argv : [scriptPath],
          env: [...env, ...secretEnv],
          user: c.User ?? '',
          workdir,
          network,
          mounts: extra,
          signal: s.run.signal,
          onOutput: (stream, text) => s.run.emit({ type: 'output', stage: s.label, step: s.step, stream, text }),
        });
        if (result.exitCode !== 0) {
          await result.layer?.discard();
          throw new BuildError(
            { line: i.line, instruction: i.original, exitCode: result.exitCode, output: result.tail },
            `Dockerfile:${i.line}: ${i.original}: the command exited with code ${result.exitCode}` +
              (result.tail === '' ? '' : `; its last output:\n${result.tail}`),
          );
        }
        return { layer: result.layer, config: s.config };
      }),
  };
}

/** The mode `--chmod` gives (octal, as Docker takes it). */
function parseChmod(raw: string | undefined, line: number): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[0-7]{3,4}$/.test(raw))
    throw new InvalidArgumentError(
      'dockerfile',
      `Dockerfile:${line}: invalid --chmod ${JSON.stringify(raw)}: expected an octal mode`,
    );
  return parseInt(raw, 8);
}

/** A `COPY`/`ADD` destination made absolute against the working directory; a trailing `/` kept. */
export function copyDest(workdir: string | undefined, dest: string): string {
  const into = dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
  const abs = posix.resolve(workdir && workdir !== '' ? workdir : '/', dest);
  return into && abs !== '/' ? `${abs}/` : abs;
}

/** Where a `COPY --from` reads: a stage's or an image's layers, and the key of that source. */
async function fromSource(s: StepScope, from: string): Promise<{ lowers: string[]; key: string }> {
  const name = s.sub.word(from);
  const dep = findStage(s.run.dockerfile, name, s.index);
  if (dep !== undefined) {
    const r = await s.run.stage(dep.index);
    return { lowers: lowerDirs(s.run, r.config), key: r.key };
  }
  const img = await s.run.image(name);
  return { lowers: lowerDirs(s.run, img.config), key: img.id };
}

/** `COPY` and `ADD`: planned from the sources' content digest; run into a scratch overlay. */
export async function copyStep(s: StepScope, i: Instruction & { kind: 'COPY' | 'ADD' }): Promise<StepPlan> {
  const sources = i.sources.map((x) => s.sub.word(x));
  const dest = copyDest(s.config.config?.WorkingDir, s.sub.word(i.dest));
  const chown = i.chown === undefined ? undefined : s.sub.word(i.chown);
  const chmod = parseChmod(i.chmod === undefined ? undefined : s.sub.word(i.chmod), i.line);
  const options = { exclude: i.exclude, parents: i.parents };
  const from = i.from === undefined ? undefined : await fromSource(s, i.from);
  const heredocs = i.heredocs.map((h) => {
    const body = h.chomp ? chompHeredoc(h.content) : h.content;
    return { name: h.name, content: h.expand ? s.sub.heredoc(body) : body };
  });
  const add = i.kind === 'ADD' ? await addSources(s, i as Instruction & { kind: 'ADD' }, sources) : undefined;
  const local = add === undefined ? sources : add.local;
  const hashed = add === undefined ? sources : add.fromContext;
  const digest =
    from !== undefined
      ? from.key
      : hashed.length === 0
        ? ''
        : await digestSources({
            sourceRoot: s.run.context.root,
            ignore: s.run.context.ignore,
            sources: hashed,
            ...options,
            cacheDir: join(s.run.services.root, 'build', 'hashes'),
          });
  const shownSources = [...sources, ...heredocs.map((h) => `<<${h.name}`)].join(' ');
  const createdBy = `${i.kind} ${chown === undefined ? '' : `--chown=${chown} `}${shownSources} ${dest} # buildkit`;
  return {
    createdBy,
    keyParts: [
      i.kind,
      { sources, dest, chown, chmod, link: i.link, ...options, heredocs, remote: add?.keyParts ?? [] },
      digest,
    ],
    execute: async () => {
      const layer = await writeLayer(
        s.run.services.root,
        s.run.services.images.layers,
        lowerDirs(s.run, s.config),
        async (destRoot) => {
          const owner =
            chown === undefined
              ? undefined
              : i.link
                ? await withReadOnlyRoot(s.run.services.root, lowerDirs(s.run, s.config), (r) => ownerIn(r, chown))
                : await ownerIn(destRoot, chown);
          const target = {
            destRoot,
            dest,
            ...(owner ? { chown: owner } : {}),
            ...(chmod === undefined ? {} : { chmod }),
          };
          if (from !== undefined) {
            await withReadOnlyRoot(s.run.services.root, from.lowers, (sourceRoot) =>
              copyInto({ sourceRoot, sources, ...options, keepOwners: true, ...target, signal: s.run.signal }),
            );
          } else if (local.length > 0) {
            await copyInto({
              sourceRoot: s.run.context.root,
              ignore: s.run.context.ignore,
              sources: local,
              ...options,
              ...target,
              signal: s.run.signal,
            });
          }
          if (heredocs.length > 0) {
            await withScratchDir(s.run.services.root, async (dir) => {
              for (const h of heredocs) fs.writeFileSync(join(dir, h.name), h.content, { mode: 0o644 });
              await copyInto({
                sourceRoot: dir,
                sources: heredocs.map((h) => h.name),
                ...target,
                signal: s.run.signal,
              });
            });
          }
          if (add !== undefined) await add.apply({ ...target, ...(owner ? { owner } : {}) });
        },
        { link: i.link, signal: s.run.signal },
      );
      return { layer, config: s.config };
    },
  };
}
