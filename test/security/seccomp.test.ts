/**
 * seccomp on the real kernel: a default container runs under Docker's default profile (compiled
 * by berth), in both inits and in execs; the calls Docker refuses are refused, and with
 * `seccomp=unconfined` + `privileged` the same attempts reach the kernel (which proves each probe).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BerthError, Container, type Engine } from '../../src/index.js';
import { BUSYBOX_REF, INIT_PATHS, NO_NETWORK, testEngine, withExecPath, withInitPath } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';
import { probeMount, runProbe } from './probe.js';
import { SYSCALL_TABLES } from '../../src/runtime/seccomp/syscall-tables.js';

const UNCONFINED = { privileged: true, securityOpt: ['seccomp=unconfined'] };

async function run(
  engine: Engine,
  command: string[],
  options: Record<string, unknown> = {},
): Promise<{ exitCode: number; text: string }> {
  const c = await Container.run(BUSYBOX_REF, command, { ...NO_NETWORK, ...options, engine });
  const { exitCode } = await c.wait();
  const text = await c.logs();
  await c.remove({ force: true });
  return { exitCode, text };
}

const seccompMode = async (engine: Engine, options: Record<string, unknown> = {}) =>
  (await run(engine, ['sh', '-c', 'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status'], options)).text;

/** Each attempt Docker's default profile refuses, and what the default container gets. */
const REFUSED: Array<{ args: string[]; errno: string; privileged: 'ok' | 'reaches the kernel' }> = [
  { args: ['unshare', 'user'], errno: 'EPERM', privileged: 'ok' },
  { args: ['clone-newuser'], errno: 'EPERM', privileged: 'ok' },
  // clone3's flags are in memory, out of the filter's reach: ENOSYS makes libc fall back to clone.
  { args: ['clone3'], errno: 'ENOSYS', privileged: 'ok' },
  { args: ['keyctl-user'], errno: 'EPERM', privileged: 'ok' },
  { args: ['add_key'], errno: 'EPERM', privileged: 'ok' },
  // There is no such key: unconfined, the kernel answers ENOKEY.
  { args: ['request_key'], errno: 'EPERM', privileged: 'reaches the kernel' },
  { args: ['io_uring'], errno: 'EPERM', privileged: 'ok' },
  { args: ['perf_event_open'], errno: 'EPERM', privileged: 'ok' },
  { args: ['bpf'], errno: 'EPERM', privileged: 'ok' },
  { args: ['userfaultfd'], errno: 'EPERM', privileged: 'ok' },
  { args: ['mount'], errno: 'EPERM', privileged: 'ok' },
  // An empty handle: unconfined, the kernel refuses the handle itself (not with EPERM).
  { args: ['open_by_handle_at'], errno: 'EPERM', privileged: 'reaches the kernel' },
  // ADDR_NO_RANDOMIZE: Docker allows only PER_LINUX, PER_LINUX32, UNAME26 and the query.
  { args: ['personality', '0x0040000'], errno: 'EPERM', privileged: 'ok' },
  // AF_VSOCK: unconfined, the socket is made (or the family is missing from the kernel).
  { args: ['socket', '40'], errno: 'EPERM', privileged: 'reaches the kernel' },
];

for (const path of INIT_PATHS)
  describe(`seccomp (${path} init)`, () => {
    withInitPath(path);

    it('a default container runs under a filter (Seccomp: 2); seccomp=unconfined and privileged run without one', async () => {
      const { engine } = await testEngine();
      expect(await seccompMode(engine)).toBe('NoNewPrivs:\t0\nSeccomp:\t2\n');
      expect(await seccompMode(engine, { securityOpt: ['seccomp=unconfined'] })).toBe('NoNewPrivs:\t0\nSeccomp:\t0\n');
      expect(await seccompMode(engine, { privileged: true })).toBe('NoNewPrivs:\t0\nSeccomp:\t0\n');
      // With no_new_privs the filter goes in last; for another user before the capabilities are dropped.
      expect(await seccompMode(engine, { securityOpt: ['no-new-privileges'] })).toBe('NoNewPrivs:\t1\nSeccomp:\t2\n');
      expect(await seccompMode(engine, { user: 'nobody' })).toBe('NoNewPrivs:\t0\nSeccomp:\t2\n');
      // The init: true reaper (PID 1) runs under it too.
      expect((await run(engine, ['grep', '^Seccomp:', '/proc/1/status'], { init: true })).text).toBe('Seccomp:\t2\n');
    });

    for (const attempt of REFUSED) {
      it(`refuses ${attempt.args.join(' ')} with ${attempt.errno}, as Docker's default profile; unconfined and privileged it ${attempt.privileged === 'ok' ? 'succeeds' : 'reaches the kernel'}`, async () => {
        const { engine } = await testEngine();
        const confined = await runProbe(engine, attempt.args);
        expect(confined.line).toBe(`err ${attempt.errno} ${confined.line.split(' ').slice(2).join(' ')}`);
        const free = await runProbe(engine, attempt.args, UNCONFINED);
        if (attempt.privileged === 'ok') expect(free.line).toMatch(/^ok\b/);
        else expect(free.errno ?? 'none').not.toBe(attempt.errno);
      });
    }

    it("refuses kexec_load with EPERM (not run unconfined: with a kexec kernel loaded it would unload the host's)", async () => {
      const { engine } = await testEngine();
      expect((await runProbe(engine, ['kexec_load'])).errno).toBe('EPERM');
    });

    it.skipIf(process.arch !== 'x64')(
      'filters the i386 compat ABI (int 0x80) by i386 numbers: keyctl (288 there, accept4 on x86_64) is refused, getpid allowed',
      async () => {
        const { engine } = await testEngine();
        // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING): a filter reading i386 calls with
        // x86_64 numbers would let it through as accept4.
        expect((await runProbe(engine, ['int80', '288', '0', '-4'])).line).toBe('err EPERM int 0x80');
        expect((await runProbe(engine, ['int80', '288', '0', '-4'], UNCONFINED)).errno ?? 'none').not.toBe('EPERM');
        expect((await runProbe(engine, ['int80', '20', '0', '0'])).line).toBe('ok');
      },
    );

    it('allows what Docker allows: ptrace of a sibling process (kernel 4.8 and later), plain clone, AF_INET sockets, personality(PER_LINUX)', async () => {
      const { engine } = await testEngine();
      const r = await run(
        engine,
        [
          'sh',
          '-c',
          'sleep 30 & /probe ptrace $!; kill $!; /probe personality 0; /probe socket 2; /probe unshare mnt; sh -c "echo forked"',
        ],
        { mounts: [probeMount()] },
      );
      // unshare of a mount namespace is CAP_SYS_ADMIN's, as under Docker.
      expect(r.text).toBe('ok\nok\nok\nerr EPERM unshare\nforked\n');
    });

    it('runs ordinary programs: a shell, ls, ps, a web server and wget over loopback', async () => {
      const { engine } = await testEngine();
      const r = await run(engine, [
        'sh',
        '-c',
        [
          'ls / | grep -c "^proc$"',
          'ps -o comm | grep -cx ps',
          'mkdir /www && echo hello > /www/index.html',
          'httpd -p 127.0.0.1:8080 -h /www',
          'wget -q -O - http://127.0.0.1:8080/',
          'date +%Y | grep -c 20',
          'echo $(( 6 * 7 ))',
        ].join(' && '),
      ]);
      expect(r).toEqual({ exitCode: 0, text: '1\n1\nhello\n1\n42\n' });
    });

    it('takes a custom profile as JSON text or as a file: mkdir denied with EACCES, everything else allowed', async () => {
      const { engine } = await testEngine();
      const profile = {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
      };
      const file = join(tempDir('seccomp'), 'profile.json');
      writeFileSync(file, JSON.stringify(profile));
      for (const opt of [`seccomp=${JSON.stringify(profile)}`, `seccomp=${file}`]) {
        const r = await run(
          engine,
          ['sh', '-c', 'grep ^Seccomp: /proc/self/status; mkdir /x 2>&1; echo mkdir=$?; touch /y && echo touched'],
          { securityOpt: [opt] },
        );
        expect(r.text).toBe("Seccomp:\t2\nmkdir: can't create directory '/x': Permission denied\nmkdir=1\ntouched\n");
      }
      const info = await (
        await Container.create({
          image: BUSYBOX_REF,
          command: ['true'],
          ...NO_NETWORK,
          securityOpt: [`seccomp=${file}`],
          engine,
        })
      ).inspect();
      expect(info.hostConfig.seccomp).toBe('profile');
    });
  });

for (const path of ['native', 'fork'] as const)
  describe(`seccomp in exec (${path})`, () => {
    withExecPath(path === 'fork' ? 'js' : 'native');

    it("an exec'd process runs under the container's filter (none when the container is unconfined)", async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], {
        ...NO_NETWORK,
        mounts: [probeMount()],
        engine,
      });
      expect((await c.exec(['grep', '^Seccomp:', '/proc/self/status'])).stdout).toBe('Seccomp:\t2\n');
      expect((await c.exec(['/probe', 'unshare', 'user'])).stdout).toBe('err EPERM unshare\n');
      expect((await c.exec(['/probe', 'keyctl-user'], { user: 'nobody' })).stdout).toMatch(/^err EPERM /);
      await using free = await Container.run(BUSYBOX_REF, ['sleep', '60'], {
        ...NO_NETWORK,
        securityOpt: ['seccomp=unconfined'],
        engine,
      });
      expect((await free.exec(['grep', '^Seccomp:', '/proc/self/status'])).stdout).toBe('Seccomp:\t0\n');
    });
  });

describe('seccomp options', () => {
  it('refuses a bad profile or option at create, naming securityOpt, before anything is made', async () => {
    const { engine } = await testEngine();
    const bad = [
      'seccomp={not json',
      'seccomp={"defaultAction":"SCMP_ACT_NOPE"}',
      'seccomp=/no/such/profile.json',
      'seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":9,"value":0,"op":"SCMP_CMP_EQ"}]}]}',
      'seccomp',
      'apparmor=unconfined',
      // Valid, but more than the kernel's 4096 instructions once compiled.
      `seccomp=${JSON.stringify({
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: Object.keys(SYSCALL_TABLES.x86_64).flatMap((name) =>
          [1, 2, 3].map((value) => ({
            names: [name],
            action: 'SCMP_ACT_ALLOW',
            args: [
              { index: 0, value, op: 'SCMP_CMP_EQ' },
              { index: 1, value, op: 'SCMP_CMP_EQ' },
            ],
          })),
        ),
      })}`,
    ];
    for (const opt of bad) {
      const e = await Container.create({ image: BUSYBOX_REF, command: ['true'], securityOpt: [opt], engine }).catch(
        (x: unknown) => x,
      );
      expect(e, opt).toBeInstanceOf(BerthError);
      expect((e as BerthError).code, opt).toBe('INVALID_ARGUMENT');
      expect((e as BerthError).message, opt).toMatch(/securityOpt/);
    }
    expect(await engine.containers.list({ all: true })).toEqual([]);
  });
});
