/**
 * What a container's processes inherit from the engine that they must not: capabilities in the
 * inheritable and ambient sets (CVE-2022-24769: Docker and runc set none), and the engine's session
 * keyring (runc gives each container a new one). Both inits, and execs (berth-exec and the forked
 * JavaScript exec).
 *
 * To make the inheritance visible, this test process puts capabilities in its own inheritable
 * and ambient sets and a key in its session keyring before the engine starts its zygote, which
 * inherits all three; everything is put back after.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from '../../src/index.js';
import { capget, capset, prctl } from '../../src/kernel/process.js';
import { addKey, searchKey, unlinkKey } from '../../src/kernel/keys.js';
import { KEY_SPEC_SESSION_KEYRING, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL } from '../../src/kernel/constants.js';
import { CAPABILITIES } from '../../src/runtime/capabilities.js';
import { BUSYBOX_REF, INIT_PATHS, NO_NETWORK, testEngine, withExecPath, withInitPath } from '../helpers/engine.js';
import { parseProbe, probeBinary, probeMount, runProbe } from './probe.js';

const PR_CAP_AMBIENT_RAISE = 2;
/** What this process adds to its inheritable set (and CAP_CHOWN to its ambient one). */
const PLANTED = (1n << BigInt(CAPABILITIES.CAP_CHOWN!)) | (1n << BigInt(CAPABILITIES.CAP_NET_RAW!));

const description = `berth-test-${process.pid}-${randomBytes(6).toString('hex')}`;
const payload = randomBytes(12).toString('hex');
let key = 0;
let saved: ReturnType<typeof capget>;

beforeAll(() => {
  saved = capget();
  capset({ ...saved, inheritable: saved.inheritable | PLANTED });
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAPABILITIES.CAP_CHOWN!);
  // This process's session keyring may be shared with the whole login session: a unique name, removed after.
  key = addKey('user', description, Buffer.from(payload), KEY_SPEC_SESSION_KEYRING);
});

afterAll(() => {
  if (key) unlinkKey(key, KEY_SPEC_SESSION_KEYRING);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL);
  capset(saved);
});

/** The capability sets in a /proc/<pid>/status text. */
function capSets(status: string): Record<string, string> {
  return Object.fromEntries([...status.matchAll(/^(Cap\w+):\s*([0-9a-f]+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

const DEFAULT_EFFECTIVE = '00000000a80425fb';

it("the planted sets and the key are there for the engine to pass on (the test's premise)", () => {
  const own = capSets(execFileSync('cat', ['/proc/self/status'], { encoding: 'utf8' }));
  expect(BigInt(`0x${own.CapInh}`) & PLANTED).toBe(PLANTED);
  expect(own.CapAmb).not.toBe('0000000000000000');
  expect(searchKey(KEY_SPEC_SESSION_KEYRING, 'user', description)).toBe(key);
  // The probe finds it from a process on the host: it would find it in a container that had the keyring.
  expect(execFileSync(probeBinary(), ['keyctl-search', description], { encoding: 'utf8' })).toBe(`ok ${payload}\n`);
});

for (const path of INIT_PATHS)
  describe(`${path} init and exec`, () => {
    withInitPath(path);
    withExecPath(path);

    it('leaves no inheritable or ambient capability to root, a user or a privileged container, nor to their execs', async () => {
      const { engine } = await testEngine();
      const cases = [
        { options: {}, effective: DEFAULT_EFFECTIVE },
        { options: { user: '1000:1000' }, effective: '0000000000000000' },
        {
          options: { privileged: true },
          effective: capSets(execFileSync('cat', ['/proc/self/status'], { encoding: 'utf8' })).CapBnd!,
        },
      ];
      for (const { options, effective } of cases) {
        const c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'cat /proc/self/status; exec sleep 60'], {
          ...NO_NETWORK,
          ...options,
          engine,
        });
        await expect.poll(() => c.logs().then((t) => t.includes('CapAmb'))).toBe(true);
        const exec = await c.exec(['cat', '/proc/self/status']);
        for (const status of [await c.logs(), exec.stdout]) {
          const sets = capSets(status);
          expect({ ...options, CapInh: sets.CapInh, CapAmb: sets.CapAmb, CapEff: sets.CapEff }).toEqual({
            ...options,
            CapInh: '0000000000000000',
            CapAmb: '0000000000000000',
            CapEff: effective,
          });
        }
        await c.remove({ force: true });
      }
    });

    it("gives the container and its execs a session keyring of their own: the engine's key is out of reach (seccomp, which refuses keyctl, off)", async () => {
      const { engine } = await testEngine();
      // Without seccomp the call reaches the kernel: what stops it is the keyring.
      const unconfined = { securityOpt: ['seccomp=unconfined'] };
      for (const options of [unconfined, { privileged: true }, { ...unconfined, user: '1000:1000' }]) {
        const r = await runProbe(engine, ['keyctl-search', description], options);
        expect({ options, line: r.line }).toEqual({ options, line: 'err ENOKEY keyctl(KEYCTL_SEARCH, @s)' });
      }
      // A default container does not even reach it.
      expect((await runProbe(engine, ['keyctl-search', description])).line).toBe('err EPERM keyctl(KEYCTL_SEARCH, @s)');
      const c = await Container.run(BUSYBOX_REF, ['sleep', '60'], {
        ...NO_NETWORK,
        ...unconfined,
        mounts: [probeMount()],
        engine,
      });
      const exec = await c.exec(['/probe', 'keyctl-search', description]);
      expect(parseProbe(exec.exitCode, exec.stdout).line).toBe('err ENOKEY keyctl(KEYCTL_SEARCH, @s)');
      // The key is still where the engine is.
      expect(searchKey(KEY_SPEC_SESSION_KEYRING, 'user', description)).toBe(key);
    });
  });
