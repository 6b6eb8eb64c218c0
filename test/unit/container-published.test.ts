/**
 * Where published ports are reached (`c.host()`, `c.url()`): the address of a binding, loopback
 * for a wildcard one, the URL built from it, and a typed error naming a port that is not published.
 */
import { describe, expect, it } from 'vitest';
import { publishedHost, publishedUrl, reachableAddress, type PublishedPort } from '../../src/container/published.js';

const PORTS: PublishedPort[] = [
  { containerPort: 80, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 32768 },
  { containerPort: 53, protocol: 'udp', hostIp: '10.0.0.5', hostPort: 5353 },
  { containerPort: 443, protocol: 'tcp', hostIp: '127.0.0.2', hostPort: 8443 },
  { containerPort: 8080, protocol: 'tcp', hostIp: '::', hostPort: 9090 },
];

describe('published ports', () => {
  it.each([
    ['0.0.0.0', '127.0.0.1'],
    ['', '127.0.0.1'],
    ['::', '::1'],
    ['127.0.0.2', '127.0.0.2'],
    ['10.0.0.5', '10.0.0.5'],
  ])('a binding on %j is reached on %s', (hostIp, address) => {
    expect(reachableAddress(hostIp)).toBe(address);
  });

  it.each([
    [80, undefined, 'http://127.0.0.1:32768/'],
    [80, { path: 'health?x=1' }, 'http://127.0.0.1:32768/health?x=1'],
    [443, { protocol: 'https' as const, path: '/api' }, 'https://127.0.0.2:8443/api'],
    [8080, undefined, 'http://[::1]:9090/'],
  ])('url(%d, %j) is %s', (port, options, url) => {
    expect(publishedUrl(PORTS, 'c', port, options)).toBe(url);
  });

  it.each([
    [undefined, 'tcp' as const, '127.0.0.1'],
    [443, 'tcp' as const, '127.0.0.2'],
    [53, 'udp' as const, '10.0.0.5'],
  ])('host(%j/%s) is %s', (port, protocol, host) => {
    expect(publishedHost(PORTS, 'c', port, protocol)).toBe(host);
  });

  it('a port not published (or published for another protocol) is a NOT_FOUND error naming it', () => {
    expect(() => publishedUrl(PORTS, 'web', 81)).toThrow(
      expect.objectContaining({ code: 'NOT_FOUND', ref: '81/tcp', message: expect.stringContaining('web') }),
    );
    expect(() => publishedHost(PORTS, 'web', 53, 'tcp')).toThrow(
      expect.objectContaining({ code: 'NOT_FOUND', ref: '53/tcp' }),
    );
    expect(() => publishedHost([], 'web')).toThrow(expect.objectContaining({ code: 'NOT_FOUND', ref: 'ports' }));
  });
});
