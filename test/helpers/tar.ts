/**
 * Reading a tar stream in tests: its members by name, with their bodies as text.
 *
 * @module
 */
import { TarReader, type TarEntry } from '../../src/image/tar-reader.js';

/** One member of a tar read by {@link readTar}. */
export interface Member {
  /** Its header. */
  entry: TarEntry;
  /** Its body as UTF-8 text (empty for all but files). */
  body: string;
}

/** The members of a tar stream by name (a directory's without its trailing slash). */
export async function readTar(stream: AsyncIterable<Uint8Array>): Promise<Map<string, Member>> {
  const out = new Map<string, Member>();
  let cur: Member | undefined;
  const chunks: Buffer[] = [];
  const reader = new TarReader({
    entry(e) {
      cur = { entry: e, body: '' };
      chunks.length = 0;
    },
    data(c) {
      chunks.push(Buffer.from(c));
    },
    entryEnd() {
      if (cur === undefined) return;
      cur.body = Buffer.concat(chunks).toString('utf8');
      out.set(cur.entry.name.replace(/\/$/, ''), cur);
    },
  });
  for await (const c of stream) reader.write(c);
  reader.end();
  return out;
}
