/**
 * What a killed import leaves in `<root>/layers/staging` (and a killed pull in `<root>/blobs/ingest`)
 * is removed by the next engine that opens the root's image store, at once; what a live process is
 * writing is kept.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine, Image } from '../../src/index.js';
import { processStartTime } from '../../src/runtime/proc.js';
import { busyboxImage } from '../helpers/busybox.js';
import { tempDir } from '../helpers/tmp.js';

const REPO = resolve(import.meta.dirname, '../..');

/** A child process importing half of `tar` as a stream, then waiting forever; resolves once the half is unpacked. */
async function halfImport(script: string, root: string, tar: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, root, tar], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8');
  await new Promise<void>((ok, fail) => {
    child.stdout!.on('data', (d: string) => {
      out += d;
      if (out.includes('half\n')) ok();
    });
    child.once('exit', (code) =>
      fail(new Error(`the importing child exited (${code}) before unpacking half of the layer`)),
    );
  });
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** The staging entries owned by process `pid`. */
function entriesOf(staging: string, pid: number): string[] {
  return fs.readdirSync(staging).filter((n) => n.startsWith(`${pid}-`));
}

describe('staging after a killed import', () => {
  it('a new engine removes the staging entry of a killed import at once, and keeps the one of a live import', async () => {
    const { tar } = await busyboxImage();
    const root = tempDir('staging');
    const staging = join(root, 'layers', 'staging');
    const script = join(root, 'half-import.mts');
    fs.writeFileSync(
      script,
      `import fs from 'node:fs';
import { Engine, Image } from '${join(REPO, 'src/index.ts')}';
const [root, tar] = process.argv.slice(2);
const engine = new Engine({ root, runRoot: root + '/run' });
const bytes = fs.readFileSync(tar);
setInterval(() => undefined, 1 << 30);
async function* half() {
  yield bytes.subarray(0, bytes.length >> 1);
  // Asked for more: the first half is unpacked into staging.
  process.stdout.write('half\\n');
  await new Promise(() => undefined);
}
await Image.import(half(), { ref: 'partial:latest', engine });`,
    );
    const killed = await halfImport(script, root, tar);
    const live = await halfImport(script, root, tar);
    let engine: Engine | undefined;
    try {
      const killedEntries = entriesOf(staging, killed.pid!);
      const liveEntries = entriesOf(staging, live.pid!);
      expect(killedEntries).toHaveLength(1);
      expect(liveEntries).toHaveLength(1);
      expect(fs.readdirSync(join(staging, killedEntries[0]!)).length).toBeGreaterThan(0);
      await kill(killed);
      // The live process's pid with another start time: a process that had that pid before it.
      const reused = `${live.pid}-${processStartTime(live.pid!)! - 1}-0123456789abcdef`;
      fs.mkdirSync(join(staging, reused));

      engine = new Engine({ root, runRoot: join(root, 'run') });
      expect(await Image.list({ engine })).toEqual([]);
      expect(fs.existsSync(join(staging, killedEntries[0]!))).toBe(false);
      expect(fs.existsSync(join(staging, reused))).toBe(false);
      expect(entriesOf(staging, live.pid!)).toEqual(liveEntries);

      await kill(live);
      await engine.images.layers.sweep();
      await engine.images.layers.sweep();
      expect(fs.readdirSync(staging)).toEqual([]);
    } finally {
      await Promise.all([kill(killed), kill(live)]);
      engine?.close();
    }
  }, 60_000);

  it('a new engine deletes the blob ingests of dead processes at once, and keeps those of live ones', async () => {
    const root = tempDir('staging');
    const ingest = join(root, 'blobs', 'ingest');
    fs.mkdirSync(ingest, { recursive: true });
    const start = processStartTime(process.pid)!;
    const live = `${process.pid}-${start}-7d444840-9dc0-11d1-b245-5ffdce74fad2`;
    const dead = `${process.pid}-${start - 1}-7d444840-9dc0-11d1-b245-5ffdce74fad3`;
    for (const n of [live, dead]) fs.writeFileSync(join(ingest, n), 'partial blob');
    const engine = new Engine({ root, runRoot: join(root, 'run') });
    try {
      expect(await Image.list({ engine })).toEqual([]);
      expect(fs.readdirSync(ingest)).toEqual([live]);
    } finally {
      engine.close();
    }
  });
});
