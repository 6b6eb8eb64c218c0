/**
 * Entry point of the zygote process (see `zygote/zygote.ts`). Spawned by the engine as
 * `node --single-threaded zygote-main.js` with an IPC channel.
 *
 * @module
 */
import { prctl } from '../kernel/process.js';
import { PR_SET_PDEATHSIG, SIGNALS } from '../kernel/constants.js';
import { Zygote } from './zygote/zygote.js';
import { warmUp } from './init.js';
import { DEFAULT_UNSHARE_FLAGS } from './plan.js';
import { isZygoteRequest, type ZygoteMessage } from './protocol.js';

prctl(PR_SET_PDEATHSIG, SIGNALS.SIGKILL!);
// The engine may have died before PDEATHSIG was armed.
if (process.ppid === 1 || !process.send) process.exit(1);
process.title = 'berth-zygote';

const send = (m: ZygoteMessage) => {
  process.send!(m);
};
const zygote = new Zygote(send);
process.on('SIGCHLD', () => zygote.reap());
process.on('message', (m: unknown) => {
  if (!isZygoteRequest(m)) return;
  zygote.handle(m);
  // A child may have exited before the SIGCHLD handler ran for it.
  zygote.reap();
});
process.on('disconnect', () => process.exit(0));
// Compile the init once here: every template forked later inherits the compiled code.
for (let i = 0; i < 3; i++) warmUp();
process.send!({ t: 'ok', rid: 0 });
zygote.warm(DEFAULT_UNSHARE_FLAGS);
