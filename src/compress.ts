/**
 * On-the-fly compression for `--compress`: gzip and brotli through
 * `node:zlib`, loaded only when first needed so that a server without
 * `--compress` does not pay for it in memory.
 *
 * @module
 */

import { concat } from "./bytes.ts";
import type { ContentCoding } from "./encoding.ts";

/** Brotli quality and gzip level: a balance for compress-once-then-cache use. */
export const COMPRESSION_LEVEL = { brotli: 6, gzip: 6 } as const;

/**
 * Bytes compressed between two turns of the event loop. Deno's `node:zlib`
 * compresses on the calling thread, its callback forms included: a file of
 * 8 MiB compressed in one call held every other connection of the thread
 * for about a second (brotli). A slice takes at most a few tens of ms.
 */
export const COMPRESS_SLICE = 64 * 1024;

/** Compresses `bytes` with `coding`, a slice at a time, letting the other connections of the thread be served between slices. */
export async function compress(
  bytes: Uint8Array,
  coding: ContentCoding,
): Promise<Uint8Array> {
  const zlib = await import("node:zlib");
  const stream = coding === "br"
    ? zlib.createBrotliCompress({
      params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: COMPRESSION_LEVEL.brotli,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
      },
    })
    : zlib.createGzip({ level: COMPRESSION_LEVEL.gzip });
  const pieces: Uint8Array[] = [];
  let total = 0;
  stream.on("data", (piece: Uint8Array) => {
    pieces.push(piece);
    total += piece.length;
  });
  const ended = new Promise<void>((resolve, reject) => {
    stream.once("end", resolve);
    stream.once("error", reject);
  });
  // A failed write rejects first; this one is then awaited by nobody.
  ended.catch(() => {});
  try {
    for (let at = 0; at < bytes.length; at += COMPRESS_SLICE) {
      await new Promise<void>((resolve, reject) =>
        stream.write(
          bytes.subarray(at, Math.min(bytes.length, at + COMPRESS_SLICE)),
          (error) => error ? reject(error) : resolve(),
        )
      );
      // A macrotask: the connections that are ready run before the next slice.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    stream.end();
    await ended;
  } finally {
    stream.destroy();
  }
  if (pieces.length === 1) {
    const only = pieces[0];
    return new Uint8Array(only.buffer, only.byteOffset, only.byteLength);
  }
  return concat(pieces, total);
}
