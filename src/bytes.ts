/**
 * Byte-array helpers shared by the connection (pipelined replies written at
 * once) and the compressor (its output pieces).
 *
 * @module
 */

/** `pieces` copied one after another into one new array of `total` bytes (their summed length). */
export function concat(
  pieces: readonly Uint8Array[],
  total: number,
): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}
