/**
 * On-the-fly compression for `--compress`: gzip and brotli through
 * `node:zlib`, loaded only when first needed so that a server without
 * `--compress` does not pay for it in memory.
 *
 * @module
 */

import type { ContentCoding } from "./encoding.ts";

/** Brotli quality and gzip level: a balance for compress-once-then-cache use. */
export const COMPRESSION_LEVEL = { brotli: 6, gzip: 6 } as const;

/** Compresses `bytes` with `coding` on the thread pool. */
export async function compress(
  bytes: Uint8Array,
  coding: ContentCoding,
): Promise<Uint8Array> {
  const zlib = await import("node:zlib");
  const out = await new Promise<Uint8Array>((resolve, reject) => {
    const done = (error: Error | null, result: Uint8Array) =>
      error === null ? resolve(result) : reject(error);
    if (coding === "br") {
      zlib.brotliCompress(bytes, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: COMPRESSION_LEVEL.brotli,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
        },
      }, done);
    } else {
      zlib.gzip(bytes, { level: COMPRESSION_LEVEL.gzip }, done);
    }
  });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
