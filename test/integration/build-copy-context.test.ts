/**
 * Build contexts on real directories: a directory read in place, a tar stream (plain and gzip)
 * unpacked safely, in-memory files, the Dockerfile and its ignore files.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError, UnsafeLayerError } from '../../src/errors.js';
import { openBuildContext } from '../../src/image/build/context/index.js';
import { END_OF_ARCHIVE, encodeHeader } from '../../src/image/tar-writer.js';
import { tempDir } from '../helpers/tmp.js';

/** A tar of regular files (name → content). */
function tarOf(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, text] of Object.entries(files)) {
    const data = Buffer.from(text);
    parts.push(encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 1 }));
    parts.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

describe('openBuildContext', () => {
  it('reads a directory in place with its Dockerfile and .dockerignore', async () => {
    const dir = tempDir('ctx-dir');
    fs.writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');
    fs.writeFileSync(join(dir, '.dockerignore'), '*.log\n');
    const ctx = await openBuildContext(dir, {});
    expect(ctx.root).toBe(dir);
    expect(ctx.dockerfile).toEqual({ path: join(dir, 'Dockerfile'), text: 'FROM scratch\n' });
    expect(ctx.ignore.matches('a.log', false)).toBe(true);
    await ctx.close();
    expect(fs.existsSync(dir)).toBe(true);
  });

  it('prefers <dockerfile>.dockerignore next to the Dockerfile over the context’s .dockerignore', async () => {
    const dir = tempDir('ctx-specific');
    fs.mkdirSync(join(dir, 'build'));
    fs.writeFileSync(join(dir, 'build/app.Dockerfile'), 'FROM scratch\n');
    fs.writeFileSync(join(dir, 'build/app.Dockerfile.dockerignore'), 'secret\n');
    fs.writeFileSync(join(dir, '.dockerignore'), '*.log\n');
    const ctx = await openBuildContext(dir, { dockerfile: 'build/app.Dockerfile' });
    expect(ctx.ignore.matches('secret', false)).toBe(true);
    expect(ctx.ignore.matches('a.log', false)).toBe(false);
  });

  it('reads the Dockerfile even when .dockerignore leaves it out, and takes an absolute host path outside the context', async () => {
    const dir = tempDir('ctx-ignored');
    const elsewhere = tempDir('ctx-elsewhere');
    fs.writeFileSync(join(dir, 'Dockerfile'), 'FROM a\n');
    fs.writeFileSync(join(dir, '.dockerignore'), 'Dockerfile\n.dockerignore\n');
    fs.writeFileSync(join(elsewhere, 'Other'), 'FROM b\n');
    expect((await openBuildContext(dir)).dockerfile.text).toBe('FROM a\n');
    expect((await openBuildContext(dir, { dockerfile: join(elsewhere, 'Other') })).dockerfile.text).toBe('FROM b\n');
  });

  it('fails with NotFoundError for a missing context or Dockerfile, and reads no Dockerfile through a symlink out of the context', async () => {
    const dir = tempDir('ctx-missing');
    await expect(openBuildContext(join(dir, 'nope'))).rejects.toThrow(NotFoundError);
    await expect(openBuildContext(dir)).rejects.toThrow(NotFoundError);
    const host = tempDir('ctx-host');
    fs.writeFileSync(join(host, 'Dockerfile'), 'FROM host\n');
    fs.symlinkSync(join(host, 'Dockerfile'), join(dir, 'Dockerfile'));
    await expect(openBuildContext(dir)).rejects.toThrow(NotFoundError);
  });

  it.each([
    ['plain', (b: Buffer) => b],
    ['gzip', (b: Buffer) => gzipSync(b)],
  ])('unpacks a %s tar stream into a temp directory that close() removes', async (_kind, wrap) => {
    const tar = wrap(tarOf({ Dockerfile: 'FROM t\n', 'app/main.js': 'x', '.dockerignore': 'app\n' }));
    const ctx = await openBuildContext(Readable.from([tar]), { tempDir: tempDir('ctx-tar') });
    expect(ctx.dockerfile.text).toBe('FROM t\n');
    expect(fs.readFileSync(join(ctx.root, 'app/main.js'), 'utf8')).toBe('x');
    expect(ctx.ignore.matches('app/main.js', false)).toBe(true);
    await ctx.close();
    expect(fs.existsSync(ctx.root)).toBe(false);
  });

  it('refuses a tar whose entry climbs out, leaving no temp directory', async () => {
    const temp = tempDir('ctx-evil');
    const tar = tarOf({ Dockerfile: 'FROM t\n', '../../evil': 'x' });
    await expect(openBuildContext(Readable.from([tar]), { tempDir: temp })).rejects.toThrow(UnsafeLayerError);
    expect(fs.readdirSync(temp)).toEqual([]);
  });

  it('writes in-memory files into a temp directory and refuses names outside the context', async () => {
    const ctx = await openBuildContext(
      { Dockerfile: 'FROM m\n', 'src/a.txt': Buffer.from('A'), 'b.txt': 'B' },
      { tempDir: tempDir('ctx-map') },
    );
    expect(fs.readFileSync(join(ctx.root, 'src/a.txt'), 'utf8')).toBe('A');
    expect(ctx.dockerfile.text).toBe('FROM m\n');
    await ctx.close();
    expect(fs.existsSync(ctx.root)).toBe(false);
    await expect(openBuildContext({ Dockerfile: 'x', '../up': 'x' }, { tempDir: tempDir('ctx-map2') })).rejects.toThrow(
      InvalidArgumentError,
    );
  });
});
