/**
 * Types of the decompressors `archive.ts` loads on first use that ship none.
 *
 * @module
 */
declare module 'unbzip2-stream' {
  /** A bzip2 decoder stream: `write` compressed chunks, `end`; decoded chunks come as `data` events, synchronously. */
  interface Bunzip2Stream {
    write(chunk: Uint8Array): boolean;
    end(): void;
    on(event: 'data', listener: (chunk: Uint8Array) => void): this;
    on(event: 'error', listener: (err: unknown) => void): this;
  }
  /** Makes a decoder. */
  export default function unbzip2Stream(): Bunzip2Stream;
}
