/**
 * The pure parts of `ADD <url>`: `--checksum` values as go-digest parses them, and the file name
 * BuildKit's Dockerfile frontend gives a URL's content.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { parseChecksum, urlFileName } from '../../src/image/build/sources/fetch.js';

const hex = (n: number): string => 'ab'.repeat(n / 2);

describe('parseChecksum', () => {
  it.each([
    [`sha256:${hex(64)}`, { algorithm: 'sha256', hex: hex(64) }],
    [`sha384:${hex(96)}`, { algorithm: 'sha384', hex: hex(96) }],
    [`sha512:${hex(128)}`, { algorithm: 'sha512', hex: hex(128) }],
  ])('parses %s', (value, parsed) => {
    expect(parseChecksum(value)).toEqual(parsed);
  });

  it.each([
    [hex(64), 'no algorithm'],
    [`sha256:${hex(62)}`, 'too short'],
    [`sha256:${hex(66)}`, 'too long'],
    [`sha256:${hex(64).toUpperCase()}`, 'uppercase hex'],
    [`md5:${hex(32)}`, 'an unknown algorithm'],
    [`sha256:${hex(62)}zz`, 'not hex'],
    ['', 'empty'],
  ])('rejects %s (%s)', (value) => {
    expect(() => parseChecksum(value)).toThrow(InvalidArgumentError);
  });
});

describe('urlFileName', () => {
  it.each([
    ['https://example.com/tool.tar.gz', 'tool.tar.gz'],
    ['https://example.com/dl/tool.tar.gz?token=x#frag', 'tool.tar.gz'],
    ['https://example.com/a%20b.txt', 'a b.txt'],
    ['https://example.com/dir/', 'dir'],
    ['https://example.com/', '__unnamed__'],
    ['https://example.com', '__unnamed__'],
    ['https://example.com/%2e%2e', '__unnamed__'], // the URL parser resolves %2e%2e as ..
    ['https://example.com/x/..%2f..%2fetc%2fpasswd', 'passwd'],
    ['https://example.com/bad%0aname', 'download'],
    ['https://example.com/%E0%A4%A', '%E0%A4%A'],
  ])('%s → %s', (url, name) => {
    expect(urlFileName(new URL(url))).toBe(name);
  });
});
