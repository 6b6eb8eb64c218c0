/**
 * `RUN --mount` values parsed as BuildKit's Dockerfile frontend parses them: defaults per type,
 * aliases, CSV quoting, and its errors (as InvalidArgumentError naming the mount).
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { parseRunMount, resolveMountTarget, type RunMount } from '../../src/image/build/sources/run-mount.js';

const parsed: [raw: string, mount: RunMount][] = [
  ['target=/src', { type: 'bind', target: '/src', source: '', readOnly: true }],
  [
    'type=bind,src=app,dst=/app,from=builder',
    { type: 'bind', target: '/app', source: 'app', from: 'builder', readOnly: true },
  ],
  ['type=bind,source=.,destination=/w,rw', { type: 'bind', target: '/w', source: '.', readOnly: false }],
  ['type=bind,target=/w,readwrite=true', { type: 'bind', target: '/w', source: '', readOnly: false }],
  ['type=bind,target=/w,rw=false', { type: 'bind', target: '/w', source: '', readOnly: true }],
  ['TYPE=BIND,Target=/w,RO', { type: 'bind', target: '/w', source: '', readOnly: true }],
  ['"type=bind","target=/a,b"', { type: 'bind', target: '/a,b', source: '', readOnly: true }],
  ['"target=/q""x"', { type: 'bind', target: '/q"x', source: '', readOnly: true }],
  [
    'type=cache,target=/root/.cache',
    {
      type: 'cache',
      target: '/root/.cache',
      id: '/root/.cache',
      sharing: 'shared',
      uid: 0,
      gid: 0,
      mode: 0o755,
      readOnly: false,
    },
  ],
  [
    'type=cache,target=/root/.cache/,id=x,sharing=locked,uid=1000,gid=100,mode=0700',
    {
      type: 'cache',
      target: '/root/.cache/',
      id: 'x',
      sharing: 'locked',
      uid: 1000,
      gid: 100,
      mode: 0o700,
      readOnly: false,
    },
  ],
  [
    'type=cache,target=/var/cache//apt/',
    {
      type: 'cache',
      target: '/var/cache//apt/',
      id: '/var/cache/apt',
      sharing: 'shared',
      uid: 0,
      gid: 0,
      mode: 0o755,
      readOnly: false,
    },
  ],
  [
    'type=cache,target=.cache,sharing=PRIVATE,from=base,source=/seed,ro',
    {
      type: 'cache',
      target: '.cache',
      id: '.cache',
      sharing: 'private',
      from: 'base',
      source: '/seed',
      uid: 0,
      gid: 0,
      mode: 0o755,
      readOnly: true,
    },
  ],
  ['type=tmpfs,target=/tmp', { type: 'tmpfs', target: '/tmp', readOnly: false }],
  ['type=tmpfs,target=/tmp,size=64m', { type: 'tmpfs', target: '/tmp', size: 64 * 2 ** 20, readOnly: false }],
  ['type=tmpfs,dst=/t,size=1.5GiB', { type: 'tmpfs', target: '/t', size: 1.5 * 2 ** 30, readOnly: false }],
  ['type=tmpfs,dst=/t,size=4096', { type: 'tmpfs', target: '/t', size: 4096, readOnly: false }],
  [
    'type=secret,id=npm',
    { type: 'secret', id: 'npm', target: '/run/secrets/npm', required: false, mode: 0o400, uid: 0, gid: 0 },
  ],
  [
    'type=secret,id=npm,target=/root/.npmrc,required,uid=1000,mode=0440',
    { type: 'secret', id: 'npm', target: '/root/.npmrc', required: true, mode: 0o440, uid: 1000, gid: 0 },
  ],
  [
    'type=secret,source=aws',
    { type: 'secret', id: 'aws', target: '/run/secrets/aws', required: false, mode: 0o400, uid: 0, gid: 0 },
  ],
  [
    'type=secret,target=/etc/token',
    { type: 'secret', id: 'token', target: '/etc/token', required: false, mode: 0o400, uid: 0, gid: 0 },
  ],
  [
    'type=secret,id=tok,env=TOKEN',
    { type: 'secret', id: 'tok', env: 'TOKEN', required: false, mode: 0o400, uid: 0, gid: 0 },
  ],
  [
    'type=secret,id=tok,env=TOKEN,target=/t,required=true',
    { type: 'secret', id: 'tok', target: '/t', env: 'TOKEN', required: true, mode: 0o400, uid: 0, gid: 0 },
  ],
  ['type=ssh', { type: 'ssh', id: 'default', required: false, mode: 0o600, uid: 0, gid: 0 }],
  [
    'type=ssh,id=gh,target=/agent,required',
    { type: 'ssh', id: 'gh', target: '/agent', required: true, mode: 0o600, uid: 0, gid: 0 },
  ],
];

const rejected: [raw: string, reason: string][] = [
  ['type=volume,target=/x', 'unsupported mount type "volume"'],
  ['target=/x,foo=bar', "unexpected key 'foo' in 'foo=bar'"],
  ['target=/x,bogus', "invalid field 'bogus' must be a key=value pair"],
  ['target=/x,', "invalid field '' must be a key=value pair"],
  ['type=bind,target=/x,ro=maybe', 'invalid value for ro: maybe'],
  ['type=bind,target=/x,uid=1', 'uid not allowed for "bind" type mounts'],
  ['type=tmpfs,target=/x,mode=0755', 'mode not allowed for "tmpfs" type mounts'],
  ['type=bind,target=/x,gid=1', 'gid not allowed for "bind" type mounts'],
  ['type=cache,target=/x,mode=0789', 'invalid value 0789 for mode'],
  ['type=cache,target=/x,uid=-1', 'invalid value -1 for uid'],
  ['type=cache,target=/x,gid=4294967296', 'invalid value 4294967296 for gid'],
  ['type=cache,target=/x,sharing=exclusive', 'unsupported sharing value "exclusive"'],
  ['type=bind,target=/x,sharing=locked', 'invalid cache sharing set for bind mount'],
  ['type=bind,target=/x,size=1m', "unexpected key 'size' for mount type 'bind'"],
  ['type=tmpfs,target=/x,size=lots', 'invalid value for size: lots'],
  ['type=cache,target=/x,required', "unexpected key 'required' for mount type 'cache'"],
  ['required,type=secret,id=x', "unexpected key 'required' for mount type 'bind'"],
  ['type=secret', 'invalid secret mount. one of source, target required'],
  ['type=secret,id=a,source=b', "both source and id can't be set"],
  ['type=secret,id=a,from=stage', 'secret mount should not have a from'],
  ['type=secret,id=a,sharing=shared', 'invalid cache sharing set for secret mount'],
  ['type=secret,id=a,env=', "'env' needs a variable name"],
  ['type=cache,target=/x,env=A', "unexpected key 'env' for mount type 'cache'"],
  ['type=ssh,source=x', 'ssh does not support source'],
  ['"target=/x', 'failed to parse csv mounts'],
  ['target=/x"y', 'bare " in non-quoted-field'],
];

describe('parseRunMount', () => {
  it.each(parsed)('parses %s', (raw, mount) => {
    expect(parseRunMount(raw)).toEqual(mount);
  });

  it.each(rejected)('rejects %s: %s', (raw, reason) => {
    let err: unknown;
    try {
      parseRunMount(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).toBe('mount');
    expect((err as Error).message).toContain(reason);
    expect((err as Error).message).toContain(`--mount=${raw}`);
  });
});

describe('resolveMountTarget', () => {
  it.each([
    ['/cache', '/app', '/cache'],
    ['cache', '/app', '/app/cache'],
    ['', '/app', '/app'],
    ['../x/', '/app/sub', '/app/x'],
  ])('resolves %j in workdir %s to %s', (target, workdir, abs) => {
    expect(resolveMountTarget(target, workdir)).toBe(abs);
  });

  it.each([
    ['/', '/app'],
    ['', '/'],
    ['..', '/app'],
  ])('rejects %j in workdir %s: the root is no mount target', (target, workdir) => {
    expect(() => resolveMountTarget(target, workdir)).toThrow(InvalidArgumentError);
  });
});
