/**
 * Reads process facts from /proc: start times (to tell a live process from a reused pid) and
 * the boot id.
 *
 * @module
 */
import { readFileSync } from 'node:fs';

/** A process's start time in clock ticks since boot (/proc/PID/stat field 22), or undefined when it is gone. */
export function processStartTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    // Gone (ENOENT, or ESRCH while its /proc entry is torn down), as documented.
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  const v = Number(fields[19]);
  return Number.isFinite(v) ? v : undefined;
}

/** True when `pid` runs and is the process that started at `startTime`. */
export function isSameProcess(pid: number, startTime: number): boolean {
  return pid > 0 && processStartTime(pid) === startTime;
}

let bootId: string | undefined;

/** This boot's id (/proc/sys/kernel/random/boot_id): pids from another boot mean nothing. */
export function currentBootId(): string {
  bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
  return bootId;
}

let selfTag: string | undefined;

/**
 * `<pid>-<start time>` of this process: the prefix of the names of files and directories it owns
 * only while it runs (staging, ingests), so that any process can tell that their owner died
 * (see {@link ownerIsDead}) even after its pid was reused.
 */
export function ownerTag(): string {
  selfTag ??= `${process.pid}-${processStartTime(process.pid) ?? 0}`;
  return selfTag;
}

/**
 * For a name made with {@link ownerTag} (`[<prefix>-]<pid>-<start time>-<rest>`): true when that
 * process no longer runs (its pid is gone or now another process's), false while it runs, and
 * undefined when the name carries no owner tag.
 */
export function ownerIsDead(name: string, prefix = ''): boolean | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const m = /^([0-9]+)-([0-9]+)-[0-9a-z-]+$/.exec(name.slice(prefix.length));
  if (!m) return undefined;
  return !isSameProcess(Number(m[1]), Number(m[2]));
}
