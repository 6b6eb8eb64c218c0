/**
 * Containers as vitest fixtures with `berth/vitest`: a web server started once for the file and
 * reached through its own network namespace, and a fresh container for every test.
 *
 * Run as root: `npx vitest run --config examples/vitest/vitest.config.ts`.
 */
import { get } from 'node:http';
import { test as base, expect } from 'vitest';
import type { Container } from 'berth';
import { containerFixture } from 'berth/vitest';

const IMAGE = 'example/busybox:latest';

const test = base.extend<{ web: Container; box: Container }>({
  // One web server for the whole file: started when a test first asks for it, ready once its
  // port accepts connections, removed after the file.
  web: containerFixture(
    IMAGE,
    ['sh', '-c', 'mkdir -p /www && echo hello from berth > /www/index.html && exec httpd -f -p 8080 -h /www'],
    { scope: 'file', waitFor: { port: 8080 } },
  ),
  // A new container for each test that names it, removed after the test.
  box: containerFixture(IMAGE, ['sleep', 'infinity']),
});

/** GET `path` from port 8080 of `c`, over a socket made inside the container's network namespace. */
async function fetchFrom(c: Container, path: string): Promise<{ status: number; body: string }> {
  const socket = await c.connect(8080);
  return new Promise((resolve, reject) => {
    get({ path, createConnection: () => socket }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

test('the web server answers, with no port published on the host', async ({ web }) => {
  const res = await fetchFrom(web, '/index.html');
  expect(res.status).toBe(200);
  expect(res.body).toBe('hello from berth\n');
});

test('the file-scoped server is the same container in every test of the file', async ({ web }) => {
  expect((await fetchFrom(web, '/missing')).status).toBe(404);
  expect((await web.inspect()).state.status).toBe('running');
});

test('a test-scoped container starts clean: what the previous test wrote is not there', async ({ box }) => {
  const seen = await box.exec(['sh', '-c', 'cat /tmp/mark 2>/dev/null; echo written > /tmp/mark']);
  expect(seen.stdout).toBe('');
});

test('and again in a second test', async ({ box }) => {
  const seen = await box.exec(['sh', '-c', 'cat /tmp/mark 2>/dev/null; echo written > /tmp/mark']);
  expect(seen.stdout).toBe('');
});
