/**
 * What the parts of the zygote share: the record of each process it started ({@link Child}) and
 * its tables ({@link ZygoteState}). The parts (`start.ts`, `exec.ts`, `pump.ts`, `reap.ts`) are
 * functions over this state; `zygote.ts` holds it and routes the engine's requests.
 *
 * @module
 */
import type { InitFailure } from '../init-report.js';
import type { LogWriter } from '../log-writer.js';
import type { ExitRecord, ZygoteMessage } from '../protocol.js';
import type { TemplatePool } from './pool.js';
import type { Detached, Spawner } from './spawn.js';

/** A container's init or an exec the zygote started, until its end is reported. */
export interface Child {
  id: string;
  pid: number;
  startTime: number;
  rid: number;
  /** Writer of a container's log; none for an exec, whose output goes to the engine, or a detached container (its monitor writes it). */
  log?: LogWriter;
  /** Exit file of a container; empty for an exec. */
  exitPath: string;
  exec: boolean;
  openStreams: number;
  /** Write end of the control pipe, while a terminal handover is pending; else -1. */
  ctrlW: number;
  /** While the init waits to be let into its cgroups: the control pipe and the cgroup.procs files to write its pid to. */
  cgroupAck?: { fd: number; procs: string[]; terminal: boolean };
  /** Write end of the process's stdin pipe, kept open while it runs (attachers copy it); else -1. */
  stdinW: number;
  /** Master of the process's terminal; else -1. */
  ttyFd: number;
  /**
   * An exec's terminal master reported to the engine and not yet copied there (`ttyCopied`):
   * kept open past the exec's end until then.
   */
  ttyUncopied?: boolean;
  execResult?: InitFailure | null;
  /**
   * The container's mount namespace, held open until its exit is reported: when its last
   * process exits, the kernel would otherwise unmount its whole tree (and wait out an RCU grace
   * period) before the exit can be reaped; holding it moves that work to our close, after.
   */
  mntNs: number;
  /** A detached container (see {@link Detached}). */
  detached?: Detached;
  status?: Omit<ExitRecord, 'pid' | 'error'>;
  done: boolean;
}

/** The zygote's state, shared by its parts; one per zygote process. */
export interface ZygoteState {
  /** Delivers a message to the engine. */
  readonly send: (m: ZygoteMessage) => void;
  /** Makes the processes. */
  readonly spawner: Spawner;
  /** The ready templates. */
  readonly pool: TemplatePool;
  /** Started processes not yet reported as ended, by pid. */
  readonly byPid: Map<number, Child>;
  /** Containers by id. */
  readonly byId: Map<string, Child>;
  /** Detached containers by their monitor's pid. */
  readonly byMonitor: Map<number, Child>;
  /** Execs whose terminal master the engine has not copied yet, by exec id (see `ttyCopied`). */
  readonly execTty: Map<string, Child>;
  /** Reports `child`'s end once its status, streams and exec report are all in (`maybeFinish` in `reap.ts`). */
  readonly finish: (child: Child) => void;
}
