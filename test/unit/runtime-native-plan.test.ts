import { describe, expect, it } from 'vitest';
import { buildPlan as buildPlanWith, type RuntimeSpec } from '../../src/runtime/plan.js';
import { CONTAINER_PLAN_DEFAULTS } from '../../src/container/defaults.js';
import { encodeInitPlan, nativeInitUnsupported, NATIVE_PLAN_MAX_BYTES } from '../../src/runtime/native-init.js';
import { decodeNativePlan as decode } from '../helpers/native-plan.js';
import { CLONE_NEWNET, MS_REC, MS_SLAVE } from '../../src/kernel/constants.js';
import { runtimeSpecFixture } from '../helpers/runtime-spec.js';

/** A plan with the container service's defaults, as a container start builds it. */
const buildPlan = (spec: RuntimeSpec) => buildPlanWith(spec, CONTAINER_PLAN_DEFAULTS);

const spec = (over: Partial<RuntimeSpec> = {}): RuntimeSpec => runtimeSpecFixture({ env: ['PATH=/bin'], ...over });

describe('native init plan', () => {
  it('carries every step of the plan, in order, with fixed field counts', () => {
    const p = buildPlan(
      spec({
        domainname: 'example',
        cgroupTasks: ['/sys/fs/cgroup/pids/berth/c1/tasks'],
        binds: [{ source: '/host/hosts', target: '/etc/hosts', readOnly: true }],
        mounts: [
          { kind: 'tmpfs', target: '/run', readOnly: false, data: null },
          {
            kind: 'bind',
            source: '/v',
            target: '/data',
            readOnly: true,
            propagation: 'rslave',
            copyUp: false,
            dir: true,
          },
          {
            kind: 'bind',
            source: '/f',
            target: '/f',
            readOnly: false,
            propagation: 'rprivate',
            copyUp: false,
            dir: false,
          },
        ],
        process: {
          args: ['sh', '-c', 'echo hé'],
          env: ['A=1', 'PATH=/bin'],
          cwd: '/work',
          user: 'app:staff',
          noNewPrivileges: true,
          capabilities: ['CAP_KILL'],
          init: true,
          terminal: { cols: 80, rows: 24 },
          seccomp: '0600000000007f7f',
        },
      }),
    );
    const r = decode(encodeInitPlan(p));
    const keys = r.map(([k]) => k);
    expect(r[0]).toEqual(['flags', String(p.unshareFlags)]);
    expect(r).toContainEqual(['task', '/sys/fs/cgroup/pids/berth/c1/tasks']);
    expect(r).toContainEqual(['root', '/m', 'lowerdir=/l2:/l1,upperdir=/u,workdir=/w']);
    expect(r).toContainEqual(['bind', '/host/hosts', '/etc/hosts', '1']);
    // The container's own mounts keep their order; rprivate needs no mount(2) call (0).
    expect(r.filter(([k]) => k === 'tmpfs' || k === 'vbind')).toEqual([
      ['tmpfs', '/run', '0', ''],
      ['vbind', '/v', '/data', '1', String(MS_SLAVE | MS_REC), '1', '0'],
      ['vbind', '/f', '/f', '0', '0', '0', '0'],
    ]);
    expect(r.filter(([k]) => k === 'mount').map(([, , target]) => target)).toEqual(p.mounts.map((m) => m.target));
    expect(r).toContainEqual(['mount', 'proc', '/proc', 'proc', String(p.mounts[0]!.flags), '']);
    expect(r).toContainEqual(['dev', '/dev/null', '1', '3', String(0o666)]);
    expect(r).toContainEqual(['link', 'pts/ptmx', '/dev/ptmx']);
    expect(r.filter(([k]) => k === 'mask')).toHaveLength(p.maskedPaths.length);
    expect(r.filter(([k]) => k === 'ropath')).toHaveLength(p.readonlyPaths.length);
    expect(keys).not.toContain('rootro');
    expect(r).toContainEqual(['host', 'h']);
    expect(r).toContainEqual(['domain', 'example']);
    expect(r).toContainEqual(['user', 'app:staff']);
    expect(r).toContainEqual(['tty', '80', '24']);
    expect(r).toContainEqual(['cwd', '/work']);
    expect(r).toContainEqual(['caps', '20']); // CAP_KILL is bit 5
    expect(keys).toContain('nnp');
    expect(keys).toContain('init');
    expect(r).toContainEqual(['seccomp', '0600000000007f7f']);
    expect(r.filter(([k]) => k === 'arg').map(([, v]) => v)).toEqual(['sh', '-c', 'echo hé']);
    expect(r.filter(([k]) => k === 'env').map(([, v]) => v)).toEqual(['A=1', 'PATH=/bin']);
  });

  it('leaves out what is not asked for', () => {
    const r = decode(
      encodeInitPlan(
        buildPlan(spec({ rootfs: { ...spec().rootfs, readOnly: true }, network: 'join', joinNetnsPid: 42 })),
      ),
    );
    const keys = r.map(([k]) => k);
    for (const k of ['task', 'bind', 'vbind', 'tmpfs', 'domain', 'tty', 'nnp', 'init', 'seccomp'])
      expect(keys).not.toContain(k);
    expect(keys).toContain('rootro');
    expect(r).toContainEqual(['netns', '42']);
    expect(r).toContainEqual(['caps', 0xa80425fbn.toString(16)]);
  });

  it('runs copied-up volumes; interfaces only in a namespace the zygote made', () => {
    const veth = buildPlan(spec({ interfaces: [{} as never] }));
    expect(veth.unshareFlags & CLONE_NEWNET).toBeTruthy();
    // The init would make its own network namespace: the zygote could not wire it from outside.
    expect(nativeInitUnsupported(veth)).toMatch(/network interfaces/);
    expect(() => encodeInitPlan(veth)).toThrow(/network interfaces/);
    // The zygote makes the namespace and clears the flag: then berth-init runs it.
    const wired = { ...veth, unshareFlags: veth.unshareFlags & ~CLONE_NEWNET };
    expect(nativeInitUnsupported(wired)).toBeUndefined();
    expect(() => encodeInitPlan(wired)).not.toThrow();
    // A volume to copy up: berth-init copies the image's content itself (the last field).
    const copyUp = buildPlan(
      spec({
        mounts: [
          {
            kind: 'bind',
            source: '/v',
            target: '/d',
            readOnly: false,
            propagation: 'rprivate',
            copyUp: true,
            dir: true,
          },
        ],
      }),
    );
    expect(nativeInitUnsupported(copyUp)).toBeUndefined();
    expect(encodeInitPlan(copyUp).subarray(4).toString('utf8').split('\0').join(' ')).toContain('vbind /v /d 0 0 1 1');
    expect(nativeInitUnsupported(buildPlan(spec()))).toBeUndefined();
  });

  it("with a user namespace: the maps, the root's dirs to idmap, which user mounts are idmapped, devpts' gid in host ids", () => {
    const userns = {
      uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }],
      gidMap: [
        { containerId: 0, hostId: 200000, size: 1000 },
        { containerId: 1000, hostId: 300000, size: 10 },
      ],
    };
    const p = buildPlan(
      spec({
        rootfs: {
          lowerDirs: ['/l2', '/l1'],
          upperDir: '/c/upper',
          workDir: '/c/work',
          mountPoint: '/m',
          readOnly: false,
        },
        userns,
        mounts: [
          {
            kind: 'bind',
            source: '/vol',
            target: '/data',
            readOnly: false,
            propagation: 'rprivate',
            copyUp: false,
            dir: true,
            idmap: true,
          },
          {
            kind: 'bind',
            source: '/host',
            target: '/host',
            readOnly: false,
            propagation: 'rprivate',
            copyUp: false,
            dir: true,
          },
        ],
      }),
    );
    const r = decode(encodeInitPlan(p));
    expect(r).toContainEqual(['userns', '0 100000 65536\n', '0 200000 1000\n1000 300000 10\n', '100000', '200000']);
    expect(r.filter(([k]) => k === 'idlower')).toEqual([
      ['idlower', '/l2'],
      ['idlower', '/l1'],
    ]);
    expect(r).toContainEqual(['idupper', '/c', 'upper', 'work']);
    // `idmap` follows the vbind it marks.
    const marks = r.map(([k]) => k).filter((k) => k === 'vbind' || k === 'idmap');
    expect(marks).toEqual(['vbind', 'idmap', 'vbind']);
    expect(p.mounts.find((m) => m.target === '/dev/pts')!.data).toContain('gid=200005');
    expect(buildPlan(spec()).mounts.find((m) => m.target === '/dev/pts')!.data).toContain('gid=5');
    expect(decode(encodeInitPlan(buildPlan(spec({ mounts: p.spec.mounts })))).map(([k]) => k)).not.toContain('idmap');
  });

  it('refuses what a C string or berth-init cannot hold: NUL bytes, huge plans', () => {
    expect(() => encodeInitPlan(buildPlan(spec({ process: { ...spec().process, env: ['A=a\0b'] } })))).toThrow(/NUL/);
    const huge = 'x'.repeat(NATIVE_PLAN_MAX_BYTES);
    expect(() => encodeInitPlan(buildPlan(spec({ process: { ...spec().process, env: [`A=${huge}`] } })))).toThrow(
      /more than/,
    );
  });
});
