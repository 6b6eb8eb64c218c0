/**
 * Errors thrown by berth.
 *
 * Every failure is a {@link BerthError} with a stable string {@link BerthError.code}, a message
 * that names the object and says what to do, and the underlying `cause` when there is one. The
 * set of subclasses is small and closed, in the spirit of containerd's errdefs.
 *
 * The classes are branded with `Symbol.for('berth.error…')` and implement `Symbol.hasInstance`,
 * so `instanceof` works across the ESM and CJS builds of berth loaded in one process.
 *
 * @module
 */

/** Every stable error code berth uses. */
export const ERROR_CODES = [
  'INVALID_ARGUMENT',
  'IMAGE_NOT_FOUND',
  'CONTAINER_NOT_FOUND',
  'VOLUME_NOT_FOUND',
  'NETWORK_NOT_FOUND',
  'NOT_FOUND',
  'NAME_CONFLICT',
  'CONFLICT',
  'NOT_RUNNING',
  'ALREADY_RUNNING',
  'INVALID_STATE',
  'IN_USE',
  'COMMAND_NOT_FOUND',
  'REGISTRY_AUTH',
  'REGISTRY_UNREACHABLE',
  'REGISTRY',
  'DOWNLOAD_FAILED',
  'PERMISSION_DENIED',
  'UNSAFE_LAYER',
  'NO_SPACE',
  'KERNEL',
  'TIMEOUT',
  'ABORTED',
  'UNSUPPORTED',
  'BUILD_FAILED',
  'INTERNAL',
] as const;

/** A stable error code; see {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

const BRAND = Symbol.for('berth.error.v1');

/** Where each branded class keeps the key of its brand (an own static property). */
const CLASS_BRAND = Symbol('berth.error.classBrand');

/**
 * Gives `cls` a stable `name` and a brand of its own, `Symbol.for('berth.error.v1.<name>')`, set on
 * its prototype. `instanceof cls` then checks that brand, so it holds for errors made by another
 * copy of berth (the ESM and the CJS build loaded in one process), and `name` does not depend on
 * the class's (possibly bundler-renamed) constructor name.
 */
function brand(cls: abstract new (...args: never[]) => BerthError, name: string): void {
  const key = Symbol.for(`berth.error.v1.${name}`);
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(cls.prototype, key, { value: true });
  Object.defineProperty(cls, CLASS_BRAND, { value: key });
}

/** Options accepted by every error constructor. */
export interface BerthErrorOptions {
  /** The error that caused this one. */
  cause?: unknown;
}

/**
 * The base class of every error berth throws.
 *
 * @example
 * ```ts
 * import { Container, BerthError } from 'berth';
 * try {
 *   await new Container('nope').inspect();
 * } catch (e) {
 *   if (e instanceof BerthError && e.code === 'CONTAINER_NOT_FOUND') console.log('gone');
 * }
 * ```
 */
export class BerthError extends Error {
  /** A stable, machine-readable code: switch on this, not on the message. */
  readonly code: ErrorCode;

  /** Creates an error with a code and a message that says what to do. */
  constructor(code: ErrorCode, message: string, options?: BerthErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    Object.defineProperty(this, BRAND, { value: true });
  }

  /**
   * `instanceof` that works across copies of berth: `x instanceof BerthError` is true for any berth
   * error, and `x instanceof NotFoundError` (or any other berth subclass) for any error of that
   * class, whichever copy of berth made it. Classes that users derive from these keep the ordinary
   * prototype-chain check.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    if (this === BerthError) return (value as Record<symbol, unknown>)[BRAND] === true;
    const key = Object.prototype.hasOwnProperty.call(this, CLASS_BRAND)
      ? (this as unknown as Record<symbol, symbol>)[CLASS_BRAND]
      : undefined;
    if (key === undefined) return Function.prototype[Symbol.hasInstance].call(this, value);
    return (value as Record<symbol, unknown>)[key] === true;
  }

  /**
   * The `instanceof` check above as a function, as undici's `errors.*.is`: true when `value` is an
   * error of this class made by any copy of berth (`BerthError.is(e)`, `NotFoundError.is(e)`).
   */
  static is<T extends BerthError>(this: abstract new (...args: never[]) => T, value: unknown): value is T {
    return value instanceof this;
  }
}
brand(BerthError, 'BerthError');

/** Something named does not exist: an image, container, volume or network. */
export class NotFoundError extends BerthError {
  /** The kind of object that was looked up. */
  readonly kind: 'image' | 'container' | 'volume' | 'network' | 'path' | 'other';
  /** The name, id or path that was looked up. */
  readonly ref: string;

  /** Creates a not-found error for `kind` named `ref`. */
  constructor(kind: NotFoundError['kind'], ref: string, message?: string, options?: BerthErrorOptions) {
    const code: ErrorCode =
      kind === 'image'
        ? 'IMAGE_NOT_FOUND'
        : kind === 'container'
          ? 'CONTAINER_NOT_FOUND'
          : kind === 'volume'
            ? 'VOLUME_NOT_FOUND'
            : kind === 'network'
              ? 'NETWORK_NOT_FOUND'
              : 'NOT_FOUND';
    super(code, message ?? `${kind} '${ref}' not found`, options);
    this.kind = kind;
    this.ref = ref;
  }
}
brand(NotFoundError, 'NotFoundError');

/** A name or object is already taken, or an object is in use and cannot be removed. */
export class ConflictError extends BerthError {
  /** Creates a conflict error (`NAME_CONFLICT`, `IN_USE` or `CONFLICT`). */
  constructor(code: 'NAME_CONFLICT' | 'IN_USE' | 'CONFLICT', message: string, options?: BerthErrorOptions) {
    super(code, message, options);
  }
}
brand(ConflictError, 'ConflictError');

/** An option or argument is malformed. Nothing was changed. */
export class InvalidArgumentError extends BerthError {
  /** The dotted path of the offending field, e.g. `resources.memory`. */
  readonly field: string;

  /** Creates an error naming the offending `field`. */
  constructor(field: string, message: string, options?: BerthErrorOptions) {
    super('INVALID_ARGUMENT', field ? `invalid ${field}: ${message}` : message, options);
    this.field = field;
  }
}
brand(InvalidArgumentError, 'InvalidArgumentError');

/** The operation needs an object in another state (e.g. a running container). */
export class StateError extends BerthError {
  /** The state the object is in. */
  readonly current: string;
  /** What was attempted. */
  readonly attempted: string;

  /** Creates a state error; `code` defaults to `INVALID_STATE`. */
  constructor(
    current: string,
    attempted: string,
    message: string,
    code: 'NOT_RUNNING' | 'ALREADY_RUNNING' | 'INVALID_STATE' = 'INVALID_STATE',
    options?: BerthErrorOptions,
  ) {
    super(code, message, options);
    this.current = current;
    this.attempted = attempted;
  }
}
brand(StateError, 'StateError');

/** A process could not be started in a container: no such command, not executable, etc. */
export class CommandError extends BerthError {
  /** The command that was attempted (`argv[0]`). */
  readonly command: string;
  /** The exit code Docker reports for the same failure: 127 (not found) or 126 (not executable). */
  readonly exitCode: number;

  /** Creates an error for `command`, with Docker's exit code for the same case. */
  constructor(command: string, exitCode: number, message: string, options?: BerthErrorOptions) {
    super('COMMAND_NOT_FOUND', message, options);
    this.command = command;
    this.exitCode = exitCode;
  }
}
brand(CommandError, 'CommandError');

/** A layer or archive tried to escape its directory or is otherwise unsafe. Nothing was written. */
export class UnsafeLayerError extends BerthError {
  /** The offending entry's name inside the archive. */
  readonly entry: string;

  /** Creates an error for the offending `entry`. */
  constructor(entry: string, message: string, options?: BerthErrorOptions) {
    super('UNSAFE_LAYER', message, options);
    this.entry = entry;
  }
}
brand(UnsafeLayerError, 'UnsafeLayerError');

/**
 * A Dockerfile build failed in one of its steps: a `RUN` that exited non-zero, a `COPY` whose source
 * is missing, a base image that cannot be found. Carries the step (its line and text as written),
 * the exit code of a failed `RUN` and the tail of its output. Nothing was tagged.
 */
export class BuildError extends BerthError {
  /** The 1-based line of the failing instruction in the Dockerfile. */
  readonly line: number;
  /** The failing instruction as written (`RUN make install`). */
  readonly instruction: string;
  /** The exit code of a failed `RUN`; null for other failures. */
  readonly exitCode: number | null;
  /** The last lines of the step's output (stdout and stderr in order); empty for other failures. */
  readonly output: string;

  /** Creates an error for the step at `line`. */
  constructor(
    step: { line: number; instruction: string; exitCode?: number | null; output?: string },
    message: string,
    options?: BerthErrorOptions,
  ) {
    super('BUILD_FAILED', message, options);
    this.line = step.line;
    this.instruction = step.instruction;
    this.exitCode = step.exitCode ?? null;
    this.output = step.output ?? '';
  }
}
brand(BuildError, 'BuildError');

/** The errno names of a full file system: no blocks or inodes left (`ENOSPC`), or the user's quota used up (`EDQUOT`). */
const NO_SPACE_ERRNOS: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);

/** The stable code of a failed system call with errno `errnoCode`. */
function kernelCode(errnoCode: string): ErrorCode {
  if (errnoCode === 'EPERM' || errnoCode === 'EACCES') return 'PERMISSION_DENIED';
  return NO_SPACE_ERRNOS.has(errnoCode) ? 'NO_SPACE' : 'KERNEL';
}

/**
 * A system call failed. Carries the syscall, the errno name and the arguments that matter. Its
 * code is `PERMISSION_DENIED` for EPERM and EACCES, `NO_SPACE` for ENOSPC and EDQUOT (a full file
 * system: the message names the path whose file system to free space on), `KERNEL` otherwise.
 */
export class KernelError extends BerthError {
  /** The system call or libc function, e.g. `mount`. */
  readonly syscall: string;
  /** The errno number. */
  readonly errno: number;
  /** The errno name, e.g. `ENOENT`. */
  readonly errnoCode: string;
  /** The path the call was about, when there is one. */
  readonly path: string | undefined;

  /** Creates an error for a failed `syscall` with `errno`. */
  constructor(
    syscall: string,
    errno: number,
    errnoCode: string,
    detail?: string,
    path?: string,
    options?: BerthErrorOptions,
  ) {
    const code = kernelCode(errnoCode);
    const advice = code === 'NO_SPACE' ? `; free space on the file system that holds ${path ?? 'it'}` : '';
    super(
      code,
      `${syscall}${detail ? `(${detail})` : ''} failed: ${errnoCode}${path !== undefined && !detail?.includes(path) ? ` (${path})` : ''}${advice}`,
      options,
    );
    this.syscall = syscall;
    this.errno = errno;
    this.errnoCode = errnoCode;
    this.path = path;
  }
}
brand(KernelError, 'KernelError');

/** An operation did not finish in time. */
export class TimeoutError extends BerthError {
  /** Creates a timeout error. */
  constructor(message: string, options?: BerthErrorOptions) {
    super('TIMEOUT', message, options);
  }
}
brand(TimeoutError, 'TimeoutError');

/** The caller cancelled the call through its `AbortSignal`; what it had started was undone. The signal's reason is the `cause`. */
export class AbortedError extends BerthError {
  /** Creates an error for a call cancelled with `reason`. */
  constructor(message: string, reason: unknown) {
    super('ABORTED', message, { cause: reason });
  }
}
brand(AbortedError, 'AbortedError');

/**
 * A registry refused or failed a request, or could not be reached. `code` is `REGISTRY_AUTH`
 * (401/403: log in or check the credentials), `IMAGE_NOT_FOUND` (404: no such repository, tag or
 * blob), `REGISTRY_UNREACHABLE` (no connection, TLS failure, or 5xx/429 after retries) or
 * `REGISTRY` (anything else the registry rejected, or content whose digest does not match).
 */
export class RegistryError extends BerthError {
  /** The registry host as referenced (`docker.io`, `localhost:5000`). */
  readonly registry: string;
  /** The HTTP status of the failed response; absent when no response came. */
  readonly status: number | undefined;
  /**
   * The distribution spec's error code from the response body (`UNAUTHORIZED`, `DENIED`,
   * `MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, `NAME_UNKNOWN`, `DIGEST_INVALID`, …); absent when the
   * registry sent none.
   */
  readonly registryCode: string | undefined;

  /** Creates a registry error. */
  constructor(
    code: 'REGISTRY_AUTH' | 'IMAGE_NOT_FOUND' | 'REGISTRY_UNREACHABLE' | 'REGISTRY',
    registry: string,
    message: string,
    details: { status?: number; registryCode?: string } = {},
    options?: BerthErrorOptions,
  ) {
    super(code, message, options);
    this.registry = registry;
    this.status = details.status;
    this.registryCode = details.registryCode;
  }
}
brand(RegistryError, 'RegistryError');

/**
 * Downloading a file over HTTP failed (a Dockerfile's `ADD <url>`): the server answered with an
 * error status, the connection failed, the redirects went on too long, or the file was larger than
 * allowed. Its code is `NOT_FOUND` for 404 and 410, `PERMISSION_DENIED` for 401 and 403, and
 * `DOWNLOAD_FAILED` otherwise.
 */
export class DownloadError extends BerthError {
  /** The URL as given (before redirects). */
  readonly url: string;
  /** The HTTP status of the failed response; absent when no response came. */
  readonly status: number | undefined;

  /** Creates an error for `url`; the code follows `status`. */
  constructor(url: string, message: string, status?: number, options?: BerthErrorOptions) {
    const code: ErrorCode =
      status === 404 || status === 410
        ? 'NOT_FOUND'
        : status === 401 || status === 403
          ? 'PERMISSION_DENIED'
          : 'DOWNLOAD_FAILED';
    super(code, message, options);
    this.url = url;
    this.status = status;
  }
}
brand(DownloadError, 'DownloadError');

/** Wraps an unknown thrown value into a BerthError with code `INTERNAL`, keeping berth errors as they are. */
export function asBerthError(e: unknown, context: string): BerthError {
  if (e instanceof BerthError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new BerthError('INTERNAL', `${context}: ${msg}`, { cause: e });
}

/**
 * Returns `first` with the errors of the cleanup that followed it attached, never dropped: as its
 * `cause` (an `AggregateError` of its former cause and them when it had one). `first` keeps its
 * type and code, so callers still see why the operation failed.
 */
export function attachCleanupErrors(first: unknown, errors: unknown[]): unknown {
  if (!errors.length) return first;
  if (!(first instanceof Error)) return new AggregateError([first, ...errors], String(first));
  const cause =
    first.cause === undefined && errors.length === 1
      ? errors[0]
      : new AggregateError(
          [...(first.cause === undefined ? [] : [first.cause]), ...errors],
          `the cleanup after "${first.message}" failed too`,
        );
  Object.defineProperty(first, 'cause', { value: cause, configurable: true, writable: true, enumerable: false });
  return first;
}

/**
 * Runs the `cleanup` steps after `first` failed (each one, even when one before it throws) and
 * returns `first` for the caller to throw, with their errors attached
 * ({@link attachCleanupErrors}): a cleanup neither replaces nor loses the error.
 *
 * @example
 * ```ts
 * try { use(fd); } catch (e) { throw cleanupAfter(e, () => close(fd)); }
 * ```
 */
export function cleanupAfter(first: unknown, ...cleanup: Array<() => unknown>): unknown {
  const errors: unknown[] = [];
  for (const step of cleanup) {
    try {
      step();
    } catch (e) {
      errors.push(e);
    }
  }
  return attachCleanupErrors(first, errors);
}

/** {@link cleanupAfter} with steps that may be asynchronous: each is awaited, in order. */
export async function cleanupAfterAsync(first: unknown, ...cleanup: Array<() => unknown>): Promise<unknown> {
  const errors: unknown[] = [];
  for (const step of cleanup) {
    try {
      await step();
    } catch (e) {
      errors.push(e);
    }
  }
  return attachCleanupErrors(first, errors);
}
