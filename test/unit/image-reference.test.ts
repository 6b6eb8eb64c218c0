/**
 * Reference parsing and normalisation, table-driven against distribution/reference's behaviour.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { isValidTag, parseAnyReference, parseReference, validateDigest } from '../../src/image/reference.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference: normalisation', () => {
  it.each([
    // input, canonical, familiar, domain, path, tag, digest
    ['ubuntu', 'docker.io/library/ubuntu:latest', 'ubuntu:latest', 'docker.io', 'library/ubuntu', 'latest', undefined],
    [
      'ubuntu:14.04',
      'docker.io/library/ubuntu:14.04',
      'ubuntu:14.04',
      'docker.io',
      'library/ubuntu',
      '14.04',
      undefined,
    ],
    [
      'library/ubuntu',
      'docker.io/library/ubuntu:latest',
      'ubuntu:latest',
      'docker.io',
      'library/ubuntu',
      'latest',
      undefined,
    ],
    [
      'docker.io/ubuntu',
      'docker.io/library/ubuntu:latest',
      'ubuntu:latest',
      'docker.io',
      'library/ubuntu',
      'latest',
      undefined,
    ],
    [
      'index.docker.io/ubuntu',
      'docker.io/library/ubuntu:latest',
      'ubuntu:latest',
      'docker.io',
      'library/ubuntu',
      'latest',
      undefined,
    ],
    ['index.docker.io/user/app:v1', 'docker.io/user/app:v1', 'user/app:v1', 'docker.io', 'user/app', 'v1', undefined],
    ['user/app', 'docker.io/user/app:latest', 'user/app:latest', 'docker.io', 'user/app', 'latest', undefined],
    ['a/b/c', 'docker.io/a/b/c:latest', 'a/b/c:latest', 'docker.io', 'a/b/c', 'latest', undefined],
    [
      'docker.io/library/a/b',
      'docker.io/library/a/b:latest',
      'library/a/b:latest',
      'docker.io',
      'library/a/b',
      'latest',
      undefined,
    ],
    ['localhost/app', 'localhost/app:latest', 'localhost/app:latest', 'localhost', 'app', 'latest', undefined],
    [
      'localhost:5000/a/b:tag',
      'localhost:5000/a/b:tag',
      'localhost:5000/a/b:tag',
      'localhost:5000',
      'a/b',
      'tag',
      undefined,
    ],
    [
      'quay.io/org/img:1.2.3',
      'quay.io/org/img:1.2.3',
      'quay.io/org/img:1.2.3',
      'quay.io',
      'org/img',
      '1.2.3',
      undefined,
    ],
    [
      'registry:5000/img',
      'registry:5000/img:latest',
      'registry:5000/img:latest',
      'registry:5000',
      'img',
      'latest',
      undefined,
    ],
    ['Registry/img', 'Registry/img:latest', 'Registry/img:latest', 'Registry', 'img', 'latest', undefined],
    ['[::1]:5000/img:t', '[::1]:5000/img:t', '[::1]:5000/img:t', '[::1]:5000', 'img', 't', undefined],
    [
      '127.0.0.1:5000/img',
      '127.0.0.1:5000/img:latest',
      '127.0.0.1:5000/img:latest',
      '127.0.0.1:5000',
      'img',
      'latest',
      undefined,
    ],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`, `busybox@${D}`, 'docker.io', 'library/busybox', undefined, D],
    [
      `busybox:1.36@${D}`,
      `docker.io/library/busybox:1.36@${D}`,
      `busybox:1.36@${D}`,
      'docker.io',
      'library/busybox',
      '1.36',
      D,
    ],
    [
      'a_b.c-d__e---f',
      'docker.io/library/a_b.c-d__e---f:latest',
      'a_b.c-d__e---f:latest',
      'docker.io',
      'library/a_b.c-d__e---f',
      'latest',
      undefined,
    ],
    [
      'img:_Tag.with-Dots',
      'docker.io/library/img:_Tag.with-Dots',
      'img:_Tag.with-Dots',
      'docker.io',
      'library/img',
      '_Tag.with-Dots',
      undefined,
    ],
  ])('%s', (input, canonical, familiar, domain, path, tag, digest) => {
    const r = parseReference(input);
    expect(r.toString()).toBe(canonical);
    expect(r.familiar).toBe(familiar);
    expect(r.domain).toBe(domain);
    expect(r.path).toBe(path);
    expect(r.tag).toBe(tag);
    expect(r.digest).toBe(digest);
  });

  it('keeps a bare name without default tag when asked', () => {
    expect(parseReference('ubuntu', { defaultTag: false }).toString()).toBe('docker.io/library/ubuntu');
  });

  it('gives the familiar name', () => {
    expect(parseReference('docker.io/library/ubuntu:1').familiarName).toBe('ubuntu');
    expect(parseReference('user/app').familiarName).toBe('user/app');
    expect(parseReference('localhost:5000/x').familiarName).toBe('localhost:5000/x');
  });

  it('re-tags', () => {
    expect(parseReference(`busybox@${D}`).withTag('v2').toString()).toBe('docker.io/library/busybox:v2');
    expect(() => parseReference('busybox').withTag('-bad')).toThrow(InvalidArgumentError);
  });
});

describe('parseReference: rejects', () => {
  it.each([
    ['', 'empty'],
    ['UPPER', 'uppercase repository'],
    ['user/UPPER', 'uppercase path'],
    ['docker.io/Library/ubuntu', 'uppercase path after a domain'],
    ['a'.repeat(64).replace(/a/g, 'f'), '64-hex id'],
    ['ubuntu:', 'empty tag'],
    ['ubuntu:-tag', 'tag starting with a dash'],
    [`ubuntu:${'t'.repeat(129)}`, 'tag too long'],
    ['ubuntu@sha256:abc', 'short digest'],
    [`ubuntu@sha256:${'A'.repeat(64)}`, 'uppercase digest'],
    [`ubuntu@md5:${'a'.repeat(32)}`, 'unknown algorithm'],
    ['-ubuntu', 'leading separator'],
    ['ubuntu-', 'trailing separator'],
    ['a//b', 'empty component'],
    ['a/b/', 'trailing slash'],
    ['a b', 'space'],
    [`${'a'.repeat(250)}/bbbbbb`, 'name too long'],
    ['localhost:5000/', 'no path'],
    ['ubuntu:14.04:1', 'two colons'],
  ])('%s (%s)', (input) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).toBe('reference');
    expect((err as InvalidArgumentError).code).toBe('INVALID_ARGUMENT');
  });

  it('names another field when asked', () => {
    expect(() => parseReference('UPPER', { field: 'ref' })).toThrow(expect.objectContaining({ field: 'ref' }));
  });
});

describe('parseAnyReference', () => {
  const hex = 'b'.repeat(64);
  it.each([
    [hex, { kind: 'id', id: `sha256:${hex}` }],
    [`sha256:${hex}`, { kind: 'id', id: `sha256:${hex}` }],
  ])('%s is an id', (input, expected) => {
    expect(parseAnyReference(input)).toEqual(expected);
  });

  it.each(['abc123', 'sha256:abc', 'busybox', `sha256:${'B'.repeat(64)}`])('%s is a name', (input) => {
    expect(parseAnyReference(input).kind).toBe('named');
  });
});

describe('tags and digests', () => {
  it.each([
    ['latest', true],
    ['_x', true],
    ['1.0-rc.1', true],
    ['.x', false],
    ['-x', false],
    ['a'.repeat(128), true],
    ['a'.repeat(129), false],
    ['a/b', false],
  ])('tag %s valid: %s', (tag, ok) => {
    expect(isValidTag(tag)).toBe(ok);
  });

  it('validates digests', () => {
    expect(validateDigest(D)).toBe(D);
    expect(validateDigest(`sha512:${'c'.repeat(128)}`)).toMatch(/^sha512:/);
    expect(() => validateDigest('sha256:xyz')).toThrow(InvalidArgumentError);
    expect(() => validateDigest(`foo:${'a'.repeat(64)}`)).toThrow(InvalidArgumentError);
  });
});
