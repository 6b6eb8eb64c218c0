/**
 * The pure parts of snapshots: which layer ids a record holds, a fork's defaults from its source,
 * which extended attributes a snapshot's layer keeps; and the copy of an upper dir as a layer
 * (owners, modes, xattrs, hardlinks, whiteouts, devices, times) on plain directories (root only:
 * chown, mknod and trusted.* attributes need it).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { containerRecordSchema, isLayerId, type ContainerRecord } from '../../src/container/record.js';
import { snapshotRecordSchema, snapshotRunConfig } from '../../src/container/snapshot-store.js';
import { cloneItems, keptXattr } from '../../src/container/fs/clone-tree.js';
import { walkUpper } from '../../src/container/fs/union.js';
import { mknod } from '../../src/kernel/fs.js';
import { lgetxattr, llistxattr, lsetxattr } from '../../src/kernel/xattr.js';
import { S_IFCHR } from '../../src/kernel/constants.js';
import { tempDir } from '../helpers/tmp.js';

const HEX = 'ab'.repeat(32);

describe('layer ids a record holds', () => {
  it.each([
    [`sha256:${HEX}`, true],
    [`snapshot:${HEX}`, true],
    [`snapshot:${HEX.slice(2)}`, false],
    [`sha512:${HEX}`, false],
    [`snapshot:${HEX.toUpperCase()}`, false],
    [HEX, false],
    ['snapshot:../../etc', false],
    [42, false],
  ])('%s: %s', (id, ok) => {
    expect(isLayerId(id)).toBe(ok);
    expect(containerRecordSchema.out.shape.layers.safeParse([id]).success).toBe(ok);
  });

  it('a record written before snapshots (diffIDs only, or older layerDirs) still reads', () => {
    const layers = containerRecordSchema.out.shape.layers;
    expect(layers.parse([`sha256:${HEX}`, `sha256:${'cd'.repeat(32)}`])).toHaveLength(2);
  });
});

describe("a fork's defaults", () => {
  const config = {
    cmd: ['postgres'],
    entrypoint: ['docker-entrypoint.sh'],
    env: ['PATH=/bin', 'HOSTNAME=abc', 'POSTGRES_PASSWORD=x'],
    workdir: '/var/lib',
    user: '999',
    stopSignal: 2,
    mounts: [
      { type: 'volume', name: 'v1', target: '/data', anonymous: true },
      { type: 'volume', name: 'named', target: '/named', anonymous: false },
      { type: 'bind', source: '/host', target: '/b' },
    ],
    net: { exposedPorts: ['5432/tcp'] },
    healthcheck: { test: ['CMD', 'true'], interval: 1000, timeout: 500, retries: 3, startPeriod: 0 },
  };

  it("are the source's settings as docker commit takes them", () => {
    const rc = snapshotRunConfig({ config } as unknown as ContainerRecord);
    expect(rc).toEqual({
      cmd: ['postgres'],
      entrypoint: ['docker-entrypoint.sh'],
      env: ['PATH=/bin', 'POSTGRES_PASSWORD=x'],
      workdir: '/var/lib',
      user: '999',
      stopSignal: 'SIGINT',
      volumes: ['/data'],
      exposedPorts: ['5432/tcp'],
      healthcheck: config.healthcheck,
    });
  });

  it('a stop signal without a name is kept as its number', () => {
    expect(snapshotRunConfig({ config: { ...config, stopSignal: 40 } } as unknown as ContainerRecord).stopSignal).toBe(
      '40',
    );
  });

  it('round-trips through the snapshot record schema', () => {
    const rec = {
      id: HEX,
      created: new Date(0).toISOString(),
      container: HEX,
      containerName: '',
      image: 'busybox',
      imageId: `sha256:${HEX}`,
      config: snapshotRunConfig({ config } as unknown as ContainerRecord),
      layers: [`sha256:${HEX}`],
      labels: {},
      size: 0,
    };
    expect(snapshotRecordSchema.parse(rec)).toEqual(rec);
    expect(snapshotRecordSchema.safeParse({ ...rec, layers: ['../x'] }).success).toBe(false);
    expect(snapshotRecordSchema.safeParse({ ...rec, id: 'x' }).success).toBe(false);
  });
});

describe('extended attributes a snapshot layer keeps', () => {
  it.each([
    ['trusted.overlay.opaque', true],
    ['trusted.overlay.origin', false],
    ['trusted.overlay.impure', false],
    ['trusted.overlay.redirect', false],
    ['user.mime', true],
    ['security.capability', true],
    ['trusted.other', true],
  ])('%s: %s', (name, kept) => {
    expect(keptXattr(name)).toBe(kept);
  });
});

describe.skipIf(process.geteuid?.() !== 0)('copy of an upper dir as a layer', () => {
  it('keeps owners, modes, xattrs, hardlinks, whiteouts, opaque dirs, devices, symlinks and times', () => {
    const d = tempDir('clone');
    const upper = join(d, 'upper');
    const out = join(d, 'out');
    fs.mkdirSync(join(upper, 'dir/sub'), { recursive: true });
    fs.mkdirSync(out);
    fs.writeFileSync(join(upper, 'dir/sub/file'), 'content');
    fs.chownSync(join(upper, 'dir/sub/file'), 1234, 5678);
    fs.chmodSync(join(upper, 'dir/sub/file'), 0o4751);
    lsetxattr(join(upper, 'dir/sub/file'), 'user.note', Buffer.from('kept'));
    lsetxattr(join(upper, 'dir/sub/file'), 'trusted.overlay.origin', Buffer.from('dropped'));
    fs.linkSync(join(upper, 'dir/sub/file'), join(upper, 'hard'));
    mknod(join(upper, 'gone'), S_IFCHR, 0n);
    fs.mkdirSync(join(upper, 'opq'));
    lsetxattr(join(upper, 'opq'), 'trusted.overlay.opaque', Buffer.from('y'));
    fs.symlinkSync('/dir/sub/file', join(upper, 'link'));
    const binary = Buffer.concat([Buffer.from(join(upper, 'fifo-')), Buffer.from([0xff])]);
    fs.writeFileSync(join(upper, 'plain'), 'x');
    mknod(join(upper, 'pipe'), fs.constants.S_IFIFO | 0o640, 0n);
    fs.renameSync(join(upper, 'pipe'), binary);
    fs.utimesSync(join(upper, 'dir/sub'), 1_000_000, 1_000_000.25);
    fs.utimesSync(join(upper, 'dir/sub/file'), 2_000_000, 2_000_000.5);

    const r = cloneItems(walkUpper(upper), out);
    expect(r.bytes).toBe('content'.length + 1);

    const st = fs.lstatSync(join(out, 'dir/sub/file'));
    expect([st.uid, st.gid, st.mode & 0o7777, st.nlink]).toEqual([1234, 5678, 0o4751, 2]);
    expect(fs.readFileSync(join(out, 'dir/sub/file'), 'utf8')).toBe('content');
    expect(fs.lstatSync(join(out, 'hard')).ino).toBe(st.ino);
    expect(lgetxattr(join(out, 'dir/sub/file'), 'user.note')?.toString()).toBe('kept');
    expect(llistxattr(join(out, 'dir/sub/file'))).not.toContain('trusted.overlay.origin');
    expect(st.mtimeMs).toBe(2_000_000_500);
    expect(fs.lstatSync(join(out, 'dir/sub')).mtimeMs).toBe(1_000_000_250);
    const wh = fs.lstatSync(join(out, 'gone'));
    expect([wh.isCharacterDevice(), wh.rdev]).toEqual([true, 0]);
    expect(lgetxattr(join(out, 'opq'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(fs.readlinkSync(join(out, 'link'))).toBe('/dir/sub/file');
    const fifo = fs.lstatSync(Buffer.concat([Buffer.from(join(out, 'fifo-')), Buffer.from([0xff])]));
    expect([fifo.isFIFO(), fifo.mode & 0o777]).toEqual([true, 0o640]);
    expect(fs.readdirSync(out).sort()).toEqual(['dir', 'fifo-\ufffd', 'gone', 'hard', 'link', 'opq', 'plain']);
  });
});

describe.skipIf(process.geteuid?.() !== 0)("a fork's upper dir merged with its snapshot's layer (commit)", () => {
  it('keeps whiteouts, and makes a directory opaque where what it merged hid the image', () => {
    const d = tempDir('merge');
    const [upper, snap] = [join(d, 'upper'), join(d, 'snap')];
    for (const dir of ['upper/opq', 'upper/over-file', 'upper/over-wh', 'upper/plain', 'snap/opq', 'snap/plain'])
      fs.mkdirSync(join(d, dir), { recursive: true });
    lsetxattr(join(snap, 'opq'), 'trusted.overlay.opaque', Buffer.from('y'));
    fs.writeFileSync(join(snap, 'over-file'), 'f');
    mknod(join(snap, 'over-wh'), S_IFCHR, 0n);
    mknod(join(snap, 'gone'), S_IFCHR, 0n);
    fs.writeFileSync(join(snap, 'plain/a'), 'a');
    fs.writeFileSync(join(upper, 'plain/b'), 'b');
    mknod(join(upper, 'plain/c'), S_IFCHR, 0n);
    fs.writeFileSync(join(snap, 'plain/c'), 'hidden');
    const items = [...walkUpper([upper, snap])].map((i) => [
      i.name,
      i.whiteout ? 'whiteout' : i.opaque ? 'opaque' : i.st.isDirectory() ? 'dir' : 'file',
    ]);
    expect(items).toEqual([
      ['gone', 'whiteout'],
      ['opq', 'opaque'],
      ['over-file', 'opaque'],
      ['over-wh', 'opaque'],
      ['plain', 'dir'],
      ['plain/a', 'file'],
      ['plain/b', 'file'],
      ['plain/c', 'whiteout'],
    ]);
  });
});
