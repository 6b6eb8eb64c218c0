/**
 * The parsed shapes of a Dockerfile: instructions with their words kept raw (unexpanded), stages,
 * and the file's directives. What the planner expands, and how, is written on each field.
 *
 * @module
 */

/**
 * A command as `RUN`, `CMD`, `ENTRYPOINT` and `HEALTHCHECK CMD` take it: the exec form (a JSON
 * array of strings, run as is) or the shell form (the text after the flags, run by the stage's
 * `SHELL`). Neither form is expanded by the builder: the shell expands the shell form.
 */
export type CommandForm = { form: 'exec'; args: string[] } | { form: 'shell'; text: string };

/**
 * A here-document (`<<EOF` … `EOF`). `content` is the body with its line endings. For RUN it is
 * raw, WITHOUT `<<-` tab stripping: {@link chompHeredoc} strips it (BuildKit hands the raw bodies
 * of a RUN with several heredocs to the shell, which strips the tabs itself). For COPY/ADD it is
 * already stripped, as BuildKit's file contents are. Stripping twice changes nothing.
 */
export interface Heredoc {
  /** The delimiter word with quotes removed (`<<"EOF"` → `EOF`); also the file name for COPY. */
  name: string;
  /** The body, raw: every line up to the delimiter line, each with its line ending. */
  content: string;
  /** False when any part of the delimiter was quoted: the body is then never expanded. */
  expand: boolean;
  /** `<<-`: leading tabs of the body lines (and of the delimiter line) are stripped. */
  chomp: boolean;
  /** The file descriptor written before `<<` (`3<<EOF`), when one is. */
  fd?: number;
}

/** What every instruction has: where it is, and its text as written. */
export interface InstructionBase {
  /** The 1-based line of the instruction's first line. */
  line: number;
  /** The 1-based last line, heredoc bodies included. */
  endLine: number;
  /**
   * The instruction as written, continuation lines joined (escape char and line break removed,
   * comment lines inside dropped), trimmed: what BuildKit prints in history and errors. Heredoc
   * bodies are not part of it.
   */
  original: string;
}

/**
 * One Dockerfile instruction. Every word is RAW: quotes and escapes are kept for the expander.
 * What BuildKit expands (with {@link expandWord} against the stage's env and args in scope):
 *
 * - `FROM`: `image` and `platform`, against the global args only.
 * - `COPY`/`ADD`: each of `sources`, `dest`, `chown`, `chmod`, `checksum` (expandWord each);
 *   heredoc bodies with `expand` true are expanded WITHOUT quote removal (`skipQuotes`). `from`
 *   and `exclude` are never expanded (a `$` in `--from` is an error in BuildKit).
 * - `RUN`: each `mounts` string; the command itself is not expanded.
 * - `ENV`/`LABEL`: each pair's `key` and `value`; all pairs of one instruction are expanded
 *   against the env as it was BEFORE the instruction (`ENV A=2 B=$A` gives B the old A).
 * - `ARG`: each `value` (not the name), against the env before the instruction.
 * - `EXPOSE`: each port with {@link expandWords} (one port may expand into several).
 * - `VOLUME`, `WORKDIR`, `USER`, `STOPSIGNAL`: expandWord (each path for VOLUME).
 * - Never: `CMD`, `ENTRYPOINT`, `SHELL`, `HEALTHCHECK`, `ONBUILD`, `MAINTAINER`, `network`,
 *   `security`.
 */
export type Instruction = InstructionBase &
  (
    | { kind: 'FROM'; image: string; name?: string; platform?: string }
    | {
        kind: 'RUN';
        command: CommandForm;
        /** Each `--mount` value, quotes of the flag word removed, variables not yet expanded. */
        mounts: string[];
        /** `--network`: `default`, `none` or `host` (checked here, as BuildKit does). */
        network?: string;
        /** `--security`: `sandbox` or `insecure` (checked here). */
        security?: string;
        heredocs: Heredoc[];
      }
    | { kind: 'CMD' | 'ENTRYPOINT'; command: CommandForm }
    | {
        kind: 'COPY' | 'ADD';
        /** The sources that are paths (or URLs); heredoc sources are in `heredocs`. */
        sources: string[];
        dest: string;
        from?: string;
        chown?: string;
        chmod?: string;
        link: boolean;
        parents: boolean;
        exclude: string[];
        checksum?: string;
        keepGitDir?: boolean;
        /** `ADD --unpack[=bool]`, when given. */
        unpack?: boolean;
        /** The heredoc SOURCES, in order; each is a file named `name` in `dest` (`<<-` tabs already stripped). */
        heredocs: Heredoc[];
      }
    | { kind: 'ENV' | 'LABEL'; pairs: Array<{ key: string; value: string }> }
    | { kind: 'ARG'; args: Array<{ name: string; value?: string }> }
    | { kind: 'EXPOSE'; ports: string[] }
    | { kind: 'VOLUME'; paths: string[] }
    | { kind: 'WORKDIR'; path: string }
    | { kind: 'USER'; user: string }
    | { kind: 'SHELL'; shell: string[] }
    | { kind: 'STOPSIGNAL'; signal: string }
    | { kind: 'MAINTAINER'; name: string }
    | {
        kind: 'HEALTHCHECK';
        test: CommandForm | 'NONE';
        /** Nanoseconds, set only when given and non-zero (zero means "inherit", as Docker stores it). */
        interval?: number;
        timeout?: number;
        startPeriod?: number;
        startInterval?: number;
        retries?: number;
      }
    | {
        kind: 'ONBUILD';
        /** The trigger as the image config's `OnBuild` stores it (heredoc bodies appended). */
        trigger: string;
        instruction: Instruction;
      }
  );

/** The kinds of {@link Instruction}. */
export type InstructionKind = Instruction['kind'];

/** One build stage: its `FROM` and the instructions after it. */
export interface Stage {
  /** 0-based position in the file. */
  index: number;
  /** The `AS` name, lowercased as BuildKit does. */
  name?: string;
  from: Instruction & { kind: 'FROM' };
  instructions: Instruction[];
}

/** A parsed Dockerfile. */
export interface Dockerfile {
  /** The escape character (`# escape=` directive; `\` by default). */
  escape: '\\' | '`';
  /** The `# syntax=` directive's value, when there is one (berth does not switch frontends). */
  syntax?: string;
  /** The `ARG`s before the first `FROM`. */
  globalArgs: Array<Instruction & { kind: 'ARG' }>;
  stages: Stage[];
  /** What BuildKit warns about while parsing (empty continuation lines, deprecated MAINTAINER, stage name casing). */
  warnings: Array<{ line: number; message: string }>;
}

/** Strips leading tabs of every line of a `<<-` heredoc body. */
export function chompHeredoc(content: string): string {
  return content.replace(/^\t+/gm, '');
}
