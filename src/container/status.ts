/**
 * The container state table, as runc's: which verb a container in each status accepts, the
 * status it leads to, and the one error for a verb its status refuses.
 *
 * ```
 *   created ──start──▶ running ──pause──▶ paused
 *      │                │  ▲ ◀──unpause──  │
 *      │              exit │start          exit
 *      │                ▼  │               ▼
 *      │    restarting ◀─restart── exited ◀┘
 *      │       │stop ──▶ exited      │
 *      └──remove──▶ removed ◀─remove─┘   (dead: remove only)
 * ```
 *
 * A container is *active* while a run holds its process and what the run acquired (running,
 * paused, and restarting: between two runs of its restart policy). Every check of a status in
 * `src/container` goes through {@link can}, {@link isActive} or {@link assertCan}.
 *
 * @module
 */
import { StateError } from '../errors.js';
import type { ContainerStatus } from './record.js';

/** What can be asked of a container (the public verbs, and the engine's own `exit` and `restart`). */
export type ContainerVerb =
  | 'start'
  | 'stop'
  | 'kill'
  | 'remove'
  | 'pause'
  | 'unpause'
  | 'exec'
  | 'attach'
  | 'join'
  | 'stat'
  | 'top'
  | 'update'
  | 'exit'
  | 'restart'
  | 'connect'
  | 'preattach';

/** The statuses in which a run holds the container's process and what it acquired. */
export const ACTIVE_STATUSES: readonly ContainerStatus[] = ['running', 'paused', 'restarting'];

const ACTIVE: ReadonlySet<ContainerStatus> = new Set(ACTIVE_STATUSES);
const INACTIVE: readonly ContainerStatus[] = ['created', 'exited', 'dead'];

/** One row of the table. */
interface Row {
  /** The statuses that accept the verb. */
  from: readonly ContainerStatus[];
  /** The status it leads to (`removed`: the record is gone); absent when it changes none. */
  to?: ContainerStatus | 'removed';
  /** How the error names the verb: `cannot <words> container …`. */
  words: string;
  /** The error code when an inactive container refuses it. */
  code: 'NOT_RUNNING' | 'INVALID_STATE';
}

/** The transitions. */
const TABLE: Readonly<Record<ContainerVerb, Row>> = {
  start: { from: INACTIVE, to: 'running', words: 'start', code: 'INVALID_STATE' },
  stop: { from: ACTIVE_STATUSES, to: 'exited', words: 'stop', code: 'NOT_RUNNING' },
  kill: { from: ACTIVE_STATUSES, words: 'kill', code: 'NOT_RUNNING' },
  remove: { from: INACTIVE, to: 'removed', words: 'remove', code: 'INVALID_STATE' },
  pause: { from: ['running'], to: 'paused', words: 'pause', code: 'NOT_RUNNING' },
  unpause: { from: ['paused'], to: 'running', words: 'unpause', code: 'INVALID_STATE' },
  exec: { from: ['running'], words: 'exec in', code: 'NOT_RUNNING' },
  attach: { from: ACTIVE_STATUSES, words: 'attach to', code: 'NOT_RUNNING' },
  join: { from: ACTIVE_STATUSES, words: 'join the network of', code: 'NOT_RUNNING' },
  stat: { from: ACTIVE_STATUSES, words: 'stat', code: 'NOT_RUNNING' },
  top: { from: ACTIVE_STATUSES, words: 'list the processes of', code: 'NOT_RUNNING' },
  update: {
    from: ['created', 'running', 'paused', 'restarting', 'exited', 'dead'],
    words: 'update',
    code: 'INVALID_STATE',
  },
  exit: { from: ACTIVE_STATUSES, to: 'exited', words: 'record the exit of', code: 'NOT_RUNNING' },
  restart: { from: ['exited'], to: 'restarting', words: 'restart', code: 'INVALID_STATE' },
  connect: { from: ['running', 'paused'], words: 'connect to', code: 'NOT_RUNNING' },
  /** Attaching before the start (`docker start -a -i`): the attachment waits for this process's start. */
  preattach: { from: ['created'], words: 'attach before the start to', code: 'INVALID_STATE' },
};

/** Whether a run holds the container (its process may be alive): running, paused or restarting. */
export function isActive(status: ContainerStatus): boolean {
  return ACTIVE.has(status);
}

/** Whether a container in `status` accepts `verb`. */
export function can(verb: ContainerVerb, status: ContainerStatus): boolean {
  return TABLE[verb].from.includes(status);
}

/** The status `verb` leads to from an accepting status (`removed`: the record is deleted); undefined when it changes none. */
export function nextStatus(verb: ContainerVerb): ContainerStatus | 'removed' | undefined {
  return TABLE[verb].to;
}

/**
 * The error for `verb` refused in `status`, naming both: `NOT_RUNNING` when the container does not
 * run and the verb needs it to, `INVALID_STATE` otherwise. `label` names the container.
 */
export function stateError(
  verb: ContainerVerb,
  status: ContainerStatus,
  label: string,
  options?: { cause?: unknown },
): StateError {
  const row = TABLE[verb];
  const code = isActive(status) ? 'INVALID_STATE' : row.code;
  const hint =
    code === 'NOT_RUNNING'
      ? '; start it first'
      : status === 'paused'
        ? '; unpause it first'
        : verb === 'remove'
          ? '; stop it first or use force'
          : '';
  return new StateError(status, verb, `cannot ${row.words} container ${label}: it is ${status}${hint}`, code, options);
}

/** Throws {@link stateError} unless a container in `status` accepts `verb`. */
export function assertCan(verb: ContainerVerb, status: ContainerStatus, label: string): void {
  if (!can(verb, status)) throw stateError(verb, status, label);
}
