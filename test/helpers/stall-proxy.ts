/**
 * A registry that stops answering part-way: an HTTP proxy on 127.0.0.1 in front of a test
 * registry ({@link startRegistry}) that forwards every request, except that the requests `stall`
 * picks are held — `'body'`: the response's status, headers and first 32 KiB are passed on, then
 * nothing more; `'response'`: nothing of the response is passed on. A held request stays held until
 * the client gives up or the proxy stops, so a pull or push through it is cancelled mid-transfer
 * without any timing.
 *
 * @example
 * ```ts
 * await using proxy = await startStallProxy(reg.url, (req) => (req.url?.includes('/blobs/sha256:') ? 'body' : undefined));
 * const op = new Image(`${proxy.host}/test/busybox:1`, { engine }).pull({ signal });
 * await proxy.stalled; // a blob is half sent
 * ```
 *
 * @module
 */
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How a picked request is held (see the module documentation). */
export type StallMode = 'body' | 'response';

/** A running stalling proxy. */
export interface StallProxy extends AsyncDisposable {
  /** `127.0.0.1:<port>`: use it as the domain of references. */
  host: string;
  /** Resolves once the first request is held (for `'body'`: once its first bytes were passed on). */
  stalled: Promise<void>;
  /** Ends every connection and stops listening. */
  stop(): Promise<void>;
}

const FIRST_BYTES = 32 * 1024;

/** Starts a proxy to `target` (`http://127.0.0.1:<port>`) that holds the requests `stall` picks. */
export async function startStallProxy(
  target: string,
  stall: (req: IncomingMessage) => StallMode | undefined,
): Promise<StallProxy> {
  const upstream = new URL(target);
  let onStall!: () => void;
  const stalled = new Promise<void>((resolve) => (onStall = resolve));
  const server = createServer((req, res) => {
    const mode = stall(req);
    const out = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        if (mode === 'response') {
          up.resume();
          onStall();
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (mode === undefined) {
          up.pipe(res);
          return;
        }
        let sent = 0;
        up.on('data', (c: Buffer) => {
          if (sent >= FIRST_BYTES) return;
          res.write(c.subarray(0, FIRST_BYTES - sent));
          sent += c.byteLength;
          if (sent >= FIRST_BYTES) onStall();
        });
        up.on('end', () => {
          if (sent < FIRST_BYTES) res.end(); // smaller than what is held back: passed on whole
        });
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const stop = async (): Promise<void> => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { host: `127.0.0.1:${port}`, stalled, stop, [Symbol.asyncDispose]: stop };
}
