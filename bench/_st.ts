import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Container, Engine, Image } from '/work/main/src/index.js';
import { benchRootfs } from '/work/main/bench/lib/busybox.js';
const root = mkdtempSync(join(tmpdir(), 'berth-st-'));
const engine = new Engine({ root, runRoot: join(root, 'run') });
const { tar } = await benchRootfs();
await Image.import(tar, { ref: 'b/b', engine });
for (let i = 0; i < 3; i++) { const c = await Container.run('b/b', ['true'], { engine, network: 'none' }); await c.wait(); await c.remove(); }
const st = spawn('strace', ['-f', '-tt', '-T', '-o', '/tmp/x/z.txt', '-p', String(engine.zygote.pid)], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 1000));
for (let i = 0; i < 5; i++) { const c = await Container.run('b/b', ['true'], { engine, network: 'none' }); await c.wait(); await c.remove(); await new Promise((r) => setTimeout(r, 100)); }
st.kill('SIGINT');
await new Promise((r) => setTimeout(r, 500));
engine.close();
rmSync(root, { recursive: true, force: true });
