/**
 * The union walk and `docker diff` over plain directories laid out like overlayfs layers
 * (whiteouts are 0/0 character devices, which needs root; skipped otherwise).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { upperChanges, walkUnion, walkUpper } from '../../src/container/fs/union.js';
import { packItems } from '../../src/image/tar-writer.js';
import { TarReader, type TarEntry } from '../../src/image/tar-reader.js';
import { mknod } from '../../src/kernel/fs.js';
import { lsetxattr } from '../../src/kernel/xattr.js';
import { S_IFCHR } from '../../src/kernel/constants.js';
import { tempDir } from '../helpers/tmp.js';

const root = process.geteuid?.() === 0;

function tree(dir: string, files: Record<string, string | null | 'dir' | 'opaque'>): void {
  for (const [rel, v] of Object.entries(files)) {
    const p = join(dir, rel);
    fs.mkdirSync(join(p, '..'), { recursive: true });
    if (v === null) mknod(p, S_IFCHR, 0n);
    else if (v === 'dir' || v === 'opaque') {
      fs.mkdirSync(p, { recursive: true });
      if (v === 'opaque') lsetxattr(p, 'trusted.overlay.opaque', Buffer.from('y'));
    } else fs.writeFileSync(p, v);
  }
}

function layers(): { upper: string; mid: string; base: string } {
  const d = tempDir('union');
  const upper = join(d, 'upper');
  const mid = join(d, 'mid');
  const base = join(d, 'base');
  tree(base, { 'etc/passwd': 'root', 'etc/group': 'g', 'bin/sh': 'sh', 'opq/old': 'o', 'gone/x': 'x', f: 'base' });
  tree(mid, { 'etc/extra': 'e', 'bin/true': 't', f: 'mid' });
  tree(upper, { 'etc/passwd': 'root2', 'new/a': 'a', opq: 'opaque', 'opq/new': 'n', gone: null, 'bin/true': null });
  return { upper, mid, base };
}

describe.skipIf(!root)('union of layers', () => {
  it('walks what overlayfs would show', () => {
    const { upper, mid, base } = layers();
    const names = [...walkUnion([upper, mid, base])].map((i) => i.name);
    expect(names).toEqual([
      'bin',
      'bin/sh',
      'etc',
      'etc/extra',
      'etc/group',
      'etc/passwd',
      'f',
      'new',
      'new/a',
      'opq',
      'opq/new',
    ]);
    const passwd = [...walkUnion([upper, mid, base])].find((i) => i.name === 'etc/passwd');
    expect(fs.readFileSync(passwd!.path, 'utf8')).toBe('root2');
    const f = [...walkUnion([upper, mid, base])].find((i) => i.name === 'f');
    expect(fs.readFileSync(f!.path, 'utf8')).toBe('mid');
  });

  it('lists changes as docker diff', () => {
    const { upper, mid, base } = layers();
    expect(upperChanges(upper, [mid, base])).toEqual([
      { path: '/bin', kind: 'C' },
      { path: '/bin/true', kind: 'D' },
      { path: '/etc', kind: 'C' },
      { path: '/etc/passwd', kind: 'C' },
      { path: '/gone', kind: 'D' },
      { path: '/new', kind: 'A' },
      { path: '/new/a', kind: 'A' },
      { path: '/opq', kind: 'C' },
      { path: '/opq/new', kind: 'A' },
    ]);
  });

  it('leaves out the empty stubs made for mount points', () => {
    const { upper, mid, base } = layers();
    tree(upper, { 'etc/hosts': '', data: 'dir' });
    const mounts = new Set(['/etc/hosts', '/data']);
    expect(upperChanges(upper, [mid, base], mounts).map((c) => c.path)).not.toContain('/etc/hosts');
    expect(upperChanges(upper, [mid, base], mounts).map((c) => c.path)).not.toContain('/data');
    expect([...walkUpper(upper, [mid, base], mounts)].map((i) => i.name)).not.toContain('etc/hosts');
  });

  it('packs the upper dir as a layer with whiteout entries', async () => {
    const { upper } = layers();
    const entries: TarEntry[] = [];
    const r = new TarReader({ entry: (e) => entries.push(e), data: () => undefined, entryEnd: () => undefined });
    for await (const c of packItems(walkUpper(upper))) r.write(c);
    r.end();
    expect(entries.map((e) => e.name)).toEqual([
      'bin/',
      'bin/.wh.true',
      'etc/',
      'etc/passwd',
      '.wh.gone',
      'new/',
      'new/a',
      'opq/',
      'opq/.wh..wh..opq',
      'opq/new',
    ]);
  });
});
