/**
 * A service that runs untrusted shell scripts: `POST /run` with the script as the body answers
 * with its exit code and output. Each script runs in a container of its own with no network, a
 * memory, CPU and process limit, as an unprivileged user on a read-only root, with a run time
 * limit and an output cap; the script reaches the shell on its stdin.
 *
 * Run as root on Linux: `npx tsx examples/sandbox-service.ts` starts the service on a free
 * loopback port, sends it three scripts (a polite one, an endless loop, an output flood), prints
 * the answers and stops. `--serve` keeps it running: `curl --data-binary 'echo hi' http://127.0.0.1:PORT/run`.
 *
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, Engine, Image, buildBusyboxRootfs } from 'berth';

/** What the service answers for one script. */
interface RunReport {
  exitCode: number;
  timedOut: boolean;
  output: string;
  truncated: boolean;
}

/** Runs `script` under the sandbox's limits and reports what happened; the container is gone after. */
async function runUntrusted(engine: Engine, script: string): Promise<RunReport> {
  await using box = await Container.run('sandbox/busybox', ['sh'], {
    engine,
    input: script, // the shell's stdin: the script, then end of file
    timeout: 2_000, // the whole container is killed after 2 s
    maxOutput: 16 * 1024, // at most 16 KiB of each stream is kept
    network: 'none',
    user: 'nobody',
    readOnlyRootfs: true,
    mounts: [{ type: 'tmpfs', target: '/tmp', tmpfsSize: '8m' }],
    resources: { memory: '64m', cpus: 0.5, pids: 32 },
    capDrop: ['ALL'],
  });
  const { exitCode } = await box.wait();
  const { state } = await box.inspect();
  return {
    exitCode,
    timedOut: state.timedOut === true,
    output: await box.logs(),
    truncated: Boolean(state.outputTruncated?.stdout || state.outputTruncated?.stderr),
  };
}

/** Reads a request body, refusing more than `limit` bytes. */
async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > limit) throw new Error('script too large');
  }
  return body;
}

/** The HTTP service: `POST /run` with a script as the body. */
function sandboxService(engine: Engine) {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST' || req.url !== '/run') {
      res.writeHead(404).end();
      return;
    }
    readBody(req, 64 * 1024)
      .then((script) => runUntrusted(engine, script))
      .then((report) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(report)))
      .catch((e: unknown) => res.writeHead(500).end(String(e)));
  });
}

const dir = await mkdtemp(join(tmpdir(), 'berth-sandbox-'));
try {
  await using engine = new Engine({ root: join(dir, 'state'), runRoot: join(dir, 'run') });
  const { tar } = await buildBusyboxRootfs(join(dir, 'image'));
  await Image.import(tar, { ref: 'sandbox/busybox', engine });

  const server = sandboxService(engine).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/run`;
  if (process.argv.includes('--serve')) {
    console.log(`listening: curl --data-binary 'echo hi' ${url}`);
    await new Promise((resolve) => process.once('SIGINT', resolve));
  } else {
    const scripts = {
      polite: 'echo "hello from $(id -un)"; wc -l < /etc/passwd',
      endless: 'echo started; while :; do :; done',
      flood: 'yes flood',
    };
    for (const [name, script] of Object.entries(scripts)) {
      const report = (await (await fetch(url, { method: 'POST', body: script })).json()) as RunReport;
      const head = report.output.slice(0, 40).replaceAll('\n', '\\n');
      console.log(
        `${name}: exit ${report.exitCode}, timed out ${report.timedOut}, truncated ${report.truncated}, ` +
          `${report.output.length} bytes of output: ${head}`,
      );
    }
  }
  server.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
