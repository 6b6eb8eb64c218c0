/** A log reader's file access that counts what it reads: how tests and benchmarks show a tail reads only the end. */
import { fsLogIO, type LogIO } from '../../src/container/logs.js';

/** {@link fsLogIO} counting the bytes read in `bytes`. */
export function countingLogIO(): LogIO & { bytes: number } {
  const io = {
    bytes: 0,
    async open(path: string) {
      const f = await fsLogIO.open(path);
      if (!f) return undefined;
      return {
        ...f,
        ino: f.ino,
        read: async (buf: Buffer, off: number, len: number, pos: number) => {
          const n = await f.read(buf, off, len, pos);
          io.bytes += n;
          return n;
        },
      };
    },
    ino: fsLogIO.ino,
  };
  return io;
}
