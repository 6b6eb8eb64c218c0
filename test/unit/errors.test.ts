import { describe, expect, it } from 'vitest';
import {
  BerthError,
  CommandError,
  ConflictError,
  DownloadError,
  ERROR_CODES,
  InvalidArgumentError,
  KernelError,
  NotFoundError,
  StateError,
  TimeoutError,
  UnsafeLayerError,
  asBerthError,
  attachCleanupErrors,
  cleanupAfter,
  cleanupAfterAsync,
  type ErrorCode,
} from '../../src/errors.js';

type AnyErrorClass = abstract new (...args: never[]) => BerthError;

interface Row {
  /** What the row builds. */
  title: string;
  /** The class the error must be an instance of. */
  cls: AnyErrorClass;
  /** Its expected `name`. */
  name: string;
  /** Builds the error with the given cause. */
  make: (cause?: unknown) => BerthError;
  code: ErrorCode;
  message: string;
  /** Extra own fields the error must carry. */
  fields?: Record<string, unknown>;
}

const rows: Row[] = [
  {
    title: 'BerthError',
    cls: BerthError,
    name: 'BerthError',
    make: (cause) => new BerthError('INTERNAL', 'something broke; report it', { cause }),
    code: 'INTERNAL',
    message: 'something broke; report it',
  },
  {
    title: 'NotFoundError(image)',
    cls: NotFoundError,
    name: 'NotFoundError',
    make: (cause) => new NotFoundError('image', 'alpine:3.20', undefined, { cause }),
    code: 'IMAGE_NOT_FOUND',
    message: "image 'alpine:3.20' not found",
    fields: { kind: 'image', ref: 'alpine:3.20' },
  },
  {
    title: 'NotFoundError(container)',
    cls: NotFoundError,
    name: 'NotFoundError',
    make: (cause) => new NotFoundError('container', 'web', undefined, { cause }),
    code: 'CONTAINER_NOT_FOUND',
    message: "container 'web' not found",
    fields: { kind: 'container', ref: 'web' },
  },
  {
    title: 'NotFoundError(volume)',
    cls: NotFoundError,
    name: 'NotFoundError',
    make: (cause) => new NotFoundError('volume', 'data', undefined, { cause }),
    code: 'VOLUME_NOT_FOUND',
    message: "volume 'data' not found",
    fields: { kind: 'volume', ref: 'data' },
  },
  {
    title: 'NotFoundError(network)',
    cls: NotFoundError,
    name: 'NotFoundError',
    make: (cause) => new NotFoundError('network', 'backend', undefined, { cause }),
    code: 'NETWORK_NOT_FOUND',
    message: "network 'backend' not found",
    fields: { kind: 'network', ref: 'backend' },
  },
  {
    title: 'NotFoundError(path) with a custom message',
    cls: NotFoundError,
    name: 'NotFoundError',
    make: (cause) => new NotFoundError('path', '/etc/x', 'no /etc/x in the container; check the path', { cause }),
    code: 'NOT_FOUND',
    message: 'no /etc/x in the container; check the path',
    fields: { kind: 'path', ref: '/etc/x' },
  },
  {
    title: 'NotFoundError(other)',
    cls: NotFoundError,
    name: 'NotFoundError',
    make: (cause) => new NotFoundError('other', 'thing', undefined, { cause }),
    code: 'NOT_FOUND',
    message: "other 'thing' not found",
  },
  ...(['NAME_CONFLICT', 'IN_USE', 'CONFLICT'] as const).map((code): Row => ({
    title: `ConflictError(${code})`,
    cls: ConflictError,
    name: 'ConflictError',
    make: (cause) => new ConflictError(code, `conflict ${code}`, { cause }),
    code,
    message: `conflict ${code}`,
  })),
  {
    title: 'InvalidArgumentError',
    cls: InvalidArgumentError,
    name: 'InvalidArgumentError',
    make: (cause) => new InvalidArgumentError('resources.memory', "expected a size like '256m'", { cause }),
    code: 'INVALID_ARGUMENT',
    message: "invalid resources.memory: expected a size like '256m'",
    fields: { field: 'resources.memory' },
  },
  {
    title: 'InvalidArgumentError without a field',
    cls: InvalidArgumentError,
    name: 'InvalidArgumentError',
    make: (cause) => new InvalidArgumentError('', 'give an image or a command', { cause }),
    code: 'INVALID_ARGUMENT',
    message: 'give an image or a command',
    fields: { field: '' },
  },
  {
    title: 'StateError (default code)',
    cls: StateError,
    name: 'StateError',
    make: (cause) => new StateError('paused', 'start', "container 'web' is paused; unpause it", undefined, { cause }),
    code: 'INVALID_STATE',
    message: "container 'web' is paused; unpause it",
    fields: { current: 'paused', attempted: 'start' },
  },
  ...(['NOT_RUNNING', 'ALREADY_RUNNING', 'INVALID_STATE'] as const).map((code): Row => ({
    title: `StateError(${code})`,
    cls: StateError,
    name: 'StateError',
    make: (cause) => new StateError('exited', 'exec', `state ${code}`, code, { cause }),
    code,
    message: `state ${code}`,
    fields: { current: 'exited', attempted: 'exec' },
  })),
  {
    title: 'CommandError',
    cls: CommandError,
    name: 'CommandError',
    make: (cause) => new CommandError('nosuch', 127, "'nosuch' not found in $PATH", { cause }),
    code: 'COMMAND_NOT_FOUND',
    message: "'nosuch' not found in $PATH",
    fields: { command: 'nosuch', exitCode: 127 },
  },
  {
    title: 'UnsafeLayerError',
    cls: UnsafeLayerError,
    name: 'UnsafeLayerError',
    make: (cause) => new UnsafeLayerError('../etc/passwd', 'entry escapes the layer', { cause }),
    code: 'UNSAFE_LAYER',
    message: 'entry escapes the layer',
    fields: { entry: '../etc/passwd' },
  },
  {
    title: 'KernelError(ENOENT) with detail and path',
    cls: KernelError,
    name: 'KernelError',
    make: (cause) => new KernelError('mount', 2, 'ENOENT', 'overlay, /x', '/x', { cause }),
    code: 'KERNEL',
    message: 'mount(overlay, /x) failed: ENOENT',
    fields: { syscall: 'mount', errno: 2, errnoCode: 'ENOENT', path: '/x' },
  },
  {
    title: 'KernelError(EINVAL) with a path only',
    cls: KernelError,
    name: 'KernelError',
    make: (cause) => new KernelError('pivot_root', 22, 'EINVAL', undefined, '/new', { cause }),
    code: 'KERNEL',
    message: 'pivot_root failed: EINVAL (/new)',
    fields: { syscall: 'pivot_root', errno: 22, errnoCode: 'EINVAL', path: '/new' },
  },
  {
    title: 'KernelError(EPERM)',
    cls: KernelError,
    name: 'KernelError',
    make: (cause) => new KernelError('unshare', 1, 'EPERM', undefined, undefined, { cause }),
    code: 'PERMISSION_DENIED',
    message: 'unshare failed: EPERM',
    fields: { path: undefined },
  },
  {
    title: 'KernelError(EACCES)',
    cls: KernelError,
    name: 'KernelError',
    make: (cause) => new KernelError('open', 13, 'EACCES', undefined, '/root/x', { cause }),
    code: 'PERMISSION_DENIED',
    message: 'open failed: EACCES (/root/x)',
  },
  {
    title: 'KernelError(ENOSPC) names the path whose file system to free',
    cls: KernelError,
    name: 'KernelError',
    make: (cause) => new KernelError('write', 28, 'ENOSPC', undefined, '/var/lib/berth/x', { cause }),
    code: 'NO_SPACE',
    message: 'write failed: ENOSPC (/var/lib/berth/x); free space on the file system that holds /var/lib/berth/x',
    fields: { errnoCode: 'ENOSPC', path: '/var/lib/berth/x' },
  },
  {
    title: 'KernelError(EDQUOT)',
    cls: KernelError,
    name: 'KernelError',
    make: (cause) => new KernelError('open', 122, 'EDQUOT', undefined, '/q/f', { cause }),
    code: 'NO_SPACE',
    message: 'open failed: EDQUOT (/q/f); free space on the file system that holds /q/f',
  },
  {
    title: 'TimeoutError',
    cls: TimeoutError,
    name: 'TimeoutError',
    make: (cause) => new TimeoutError('container did not stop in 10 s', { cause }),
    code: 'TIMEOUT',
    message: 'container did not stop in 10 s',
  },
  ...(
    [
      [404, 'NOT_FOUND'],
      [410, 'NOT_FOUND'],
      [401, 'PERMISSION_DENIED'],
      [403, 'PERMISSION_DENIED'],
      [500, 'DOWNLOAD_FAILED'],
      [undefined, 'DOWNLOAD_FAILED'],
    ] as const
  ).map(([status, code]): Row => ({
    title: `DownloadError(${status ?? 'no response'})`,
    cls: DownloadError,
    name: 'DownloadError',
    make: (cause) => new DownloadError('http://h/f', `cannot download http://h/f`, status, { cause }),
    code,
    message: 'cannot download http://h/f',
    fields: { url: 'http://h/f', status },
  })),
];

const allClasses: AnyErrorClass[] = [
  BerthError,
  NotFoundError,
  ConflictError,
  InvalidArgumentError,
  StateError,
  CommandError,
  UnsafeLayerError,
  KernelError,
  TimeoutError,
  DownloadError,
];

describe('errors', () => {
  it('has a row for every exported error class', () => {
    expect(new Set(rows.map((r) => r.cls))).toEqual(new Set(allClasses));
  });

  it('uses only codes from ERROR_CODES, with no duplicates', () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    for (const r of rows) expect(ERROR_CODES).toContain(r.code);
  });

  describe.each(rows)('$title', (row) => {
    it('has its name, code and message', () => {
      const e = row.make();
      expect(e.name).toBe(row.name);
      expect(e.code).toBe(row.code);
      expect(e.message).toBe(row.message);
      expect(String(e)).toBe(`${row.name}: ${row.message}`);
      expect(e.stack).toContain(row.name);
      for (const [k, v] of Object.entries(row.fields ?? {}))
        expect((e as unknown as Record<string, unknown>)[k]).toEqual(v);
    });

    it('keeps its cause, and has none when not given', () => {
      const cause = new Error('root cause');
      expect(row.make(cause).cause).toBe(cause);
      const bare = row.make();
      expect(bare.cause).toBeUndefined();
      expect('cause' in bare).toBe(false);
    });

    it('is an instance of its class, BerthError and Error, and of no sibling class', () => {
      const e = row.make();
      expect(e).toBeInstanceOf(row.cls);
      expect(e).toBeInstanceOf(BerthError);
      expect(e).toBeInstanceOf(Error);
      for (const other of allClasses) {
        if (other === BerthError || other === row.cls) continue;
        expect(e instanceof other).toBe(false);
      }
    });
  });

  it('recognises values branded by another copy of berth', () => {
    const foreign = { [Symbol.for('berth.error.v1')]: true, code: 'INTERNAL', message: 'from elsewhere' };
    expect(foreign instanceof BerthError).toBe(true);
    expect(foreign instanceof NotFoundError).toBe(false);
    const foreignNotFound = Object.assign(Object.create(null) as object, {
      [Symbol.for('berth.error.v1')]: true,
      [Symbol.for('berth.error.v1.NotFoundError')]: true,
    });
    expect(foreignNotFound instanceof BerthError).toBe(true);
    expect(foreignNotFound instanceof NotFoundError).toBe(true);
    expect(foreignNotFound instanceof KernelError).toBe(false);
  });

  it('recognises errors made by a separately loaded copy of the module', async () => {
    // A query string makes the module loader evaluate the file again: a second, independent copy.
    const specifier = '../../src/errors.js?copy';
    const copy = (await import(/* @vite-ignore */ specifier)) as typeof import('../../src/errors.js');
    expect(copy.BerthError).not.toBe(BerthError);
    const theirs = new copy.NotFoundError('container', 'web');
    expect(theirs instanceof BerthError).toBe(true);
    expect(theirs instanceof NotFoundError).toBe(true);
    expect(theirs instanceof ConflictError).toBe(false);
    const ours = new KernelError('mount', 2, 'ENOENT');
    expect(ours instanceof copy.BerthError).toBe(true);
    expect(ours instanceof copy.KernelError).toBe(true);
    expect(ours instanceof copy.StateError).toBe(false);
  });

  it('rejects values that are not berth errors', () => {
    for (const v of [
      null,
      undefined,
      0,
      'INTERNAL',
      new Error('plain'),
      { code: 'INTERNAL' },
      Symbol.for('berth.error.v1'),
    ]) {
      expect(v instanceof BerthError).toBe(false);
      expect(v instanceof NotFoundError).toBe(false);
    }
  });

  it('keeps the ordinary instanceof for classes derived outside berth', () => {
    class MyNotFound extends NotFoundError {}
    const mine = new MyNotFound('image', 'x');
    const plain = new NotFoundError('image', 'x');
    expect(mine).toBeInstanceOf(MyNotFound);
    expect(mine).toBeInstanceOf(NotFoundError);
    expect(mine).toBeInstanceOf(BerthError);
    expect(plain instanceof MyNotFound).toBe(false);
  });

  it('lets the name be reassigned', () => {
    const e = new TimeoutError('slow');
    e.name = 'Renamed';
    expect(e.name).toBe('Renamed');
    expect(new TimeoutError('slow').name).toBe('TimeoutError');
  });

  describe('asBerthError', () => {
    it('returns berth errors unchanged', () => {
      const e = new ConflictError('IN_USE', 'in use');
      expect(asBerthError(e, 'ctx')).toBe(e);
    });

    it('wraps other errors as INTERNAL with context and cause', () => {
      const cause = new TypeError('bad');
      const e = asBerthError(cause, 'reading state');
      expect(e).toBeInstanceOf(BerthError);
      expect(e.code).toBe('INTERNAL');
      expect(e.message).toBe('reading state: bad');
      expect(e.cause).toBe(cause);
    });

    it('wraps thrown non-errors', () => {
      const e = asBerthError('oops', 'ctx');
      expect(e.message).toBe('ctx: oops');
      expect(e.cause).toBe('oops');
    });
  });
});

describe('cleanup after a failure', () => {
  const boom = (msg: string) => () => {
    throw new Error(msg);
  };

  it.each([
    ['no step fails: the error is returned as it was', [], undefined],
    ['one step fails: its error becomes the cause', ['close'], 'close'],
    ['two steps fail: an AggregateError of both becomes the cause', ['close', 'unlink'], ['close', 'unlink']],
  ] as const)('%s', async (_title, failing, cause) => {
    for (const run of [
      (first: Error, ...steps: Array<() => unknown>) => cleanupAfter(first, ...steps),
      (first: Error, ...steps: Array<() => unknown>) => cleanupAfterAsync(first, ...steps),
    ]) {
      const first = new KernelError('write', 5, 'EIO', '/x');
      const ran: string[] = [];
      const steps = ['close', 'unlink'].map((name) => () => {
        ran.push(name);
        if ((failing as readonly string[]).includes(name)) boom(name)();
      });
      const out = await run(first, ...steps);
      expect(out).toBe(first);
      expect(ran).toEqual(['close', 'unlink']);
      const c = first.cause as Error | undefined;
      if (cause === undefined) expect(c).toBeUndefined();
      else if (typeof cause === 'string') expect(c?.message).toBe(cause);
      else expect((c as AggregateError).errors.map((e: Error) => e.message)).toEqual(cause);
    }
  });

  it('keeps a cause the error had, beside the cleanup error', () => {
    const inner = new Error('inner');
    const first = new BerthError('KERNEL', 'outer', { cause: inner });
    attachCleanupErrors(first, [new Error('rmdir')]);
    expect((first.cause as AggregateError).errors.map((e: Error) => e.message)).toEqual(['inner', 'rmdir']);
  });

  it('awaits an asynchronous step, and a rejection counts as its failure', async () => {
    const first = new Error('first');
    await cleanupAfterAsync(first, () => Promise.reject(new Error('later')));
    expect((first.cause as Error).message).toBe('later');
  });

  it('wraps a thrown value that is not an Error in an AggregateError with the cleanup errors', () => {
    const out = cleanupAfter('plain', boom('close')) as AggregateError;
    expect(out).toBeInstanceOf(AggregateError);
    expect(out.errors[0]).toBe('plain');
    expect((out.errors[1] as Error).message).toBe('close');
  });
});
