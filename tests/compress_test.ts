import assert from "node:assert/strict";
import {
  compress,
  COMPRESS_SLICE,
  COMPRESSION_LEVEL,
} from "../src/compress.ts";
import { decompress, prng, SANITIZE } from "./test_util.ts";

const encoder = new TextEncoder();

/** Bytes that do not compress: a xorshift stream. */
function noise(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const INPUTS: { name: string; bytes: Uint8Array }[] = [
  { name: "empty input", bytes: new Uint8Array(0) },
  { name: "one byte", bytes: encoder.encode("x") },
  {
    name: "repetitive text",
    bytes: encoder.encode("body { margin: 0 auto; }\n".repeat(400)),
  },
  { name: "incompressible bytes", bytes: noise(70_000) },
  {
    name: "a view into a larger buffer",
    bytes: encoder.encode("<p>" + "lorem ipsum ".repeat(300)).subarray(3, 2003),
  },
];

for (const coding of ["gzip", "br"] as const) {
  for (const input of INPUTS) {
    Deno.test({
      name: `compress() round-trips ${input.name} in ${coding}`,
      ...SANITIZE,
      async fn(): Promise<void> {
        const out = await compress(input.bytes, coding);
        assert.ok(out instanceof Uint8Array);
        assert.deepEqual(decompress(coding, out), input.bytes);
        if (coding === "gzip") {
          // RFC 1952: the magic bytes, then deflate (8).
          assert.deepEqual([...out.subarray(0, 3)], [0x1f, 0x8b, 8]);
        }
      },
    });
  }
}

Deno.test({
  name: "compress() makes repetitive text much smaller in both codings",
  ...SANITIZE,
  async fn(): Promise<void> {
    const text = encoder.encode("body { margin: 0 auto; }\n".repeat(400));
    for (const coding of ["gzip", "br"] as const) {
      const out = await compress(text, coding);
      assert.ok(out.length * 20 < text.length, `${coding}: ${out.length}`);
    }
  },
});

Deno.test({
  name: "compress() compresses at COMPRESSION_LEVEL, not the fastest level",
  ...SANITIZE,
  async fn(): Promise<void> {
    assert.ok(COMPRESSION_LEVEL.gzip > 1 && COMPRESSION_LEVEL.gzip <= 9);
    assert.ok(COMPRESSION_LEVEL.brotli > 1 && COMPRESSION_LEVEL.brotli <= 11);
    const { gzipSync } = await import("node:zlib");
    const text = encoder.encode(
      Array.from({ length: 3000 }, (_, i) => `item-${(i * 7919) % 1000};`)
        .join(""),
    );
    const out = await compress(text, "gzip");
    const expected = gzipSync(text, { level: COMPRESSION_LEVEL.gzip });
    const fastest = gzipSync(text, { level: 1 });
    assert.equal(out.length, expected.length);
    assert.ok(out.length < fastest.length, `${out.length} < ${fastest.length}`);
  },
});

Deno.test({
  name: "compress() runs concurrent compressions independently",
  ...SANITIZE,
  async fn(): Promise<void> {
    const inputs = Array.from(
      { length: 8 },
      (_, i) => encoder.encode(`file ${i}: ` + "abc".repeat(2000 + i)),
    );
    const outs = await Promise.all(
      inputs.map((bytes, i) => compress(bytes, i % 2 === 0 ? "gzip" : "br")),
    );
    outs.forEach((out, i) => {
      assert.deepEqual(
        decompress(i % 2 === 0 ? "gzip" : "br", out),
        inputs[i],
        `input ${i}`,
      );
    });
  },
});

Deno.test({
  name:
    "compress() lets the thread's other tasks run while it compresses a large input",
  ...SANITIZE,
  async fn(): Promise<void> {
    // Text of about 3 MiB that takes brotli a while: tenths of a second.
    const random = prng(7);
    const words = Array.from(
      { length: 4000 },
      () => Math.floor(random() * 1e9).toString(36),
    );
    const parts: string[] = [];
    for (let size = 0; size < 3 * 1024 * 1024;) {
      const word = words[Math.floor(random() * words.length)];
      parts.push(word);
      size += word.length + 1;
    }
    const text = encoder.encode(parts.join(" "));
    assert.ok(text.length > 40 * COMPRESS_SLICE);
    for (const coding of ["br", "gzip"] as const) {
      let ticks = 0;
      let last = performance.now();
      let longest = 0;
      const timer = setInterval(() => {
        const time = performance.now();
        longest = Math.max(longest, time - last);
        last = time;
        ticks++;
      }, 1);
      const start = performance.now();
      let out;
      try {
        out = await compress(text, coding);
      } finally {
        clearInterval(timer);
      }
      const took = performance.now() - start;
      longest = Math.max(longest, performance.now() - last);
      assert.deepEqual(decompress(coding, out), text, coding);
      // Before: not one tick in the whole compression.
      assert.ok(ticks >= 10, `${coding}: ${ticks} ticks in ${took} ms`);
      assert.ok(
        longest < Math.max(took / 4, 50),
        `${coding}: the longest wait ${longest} ms of ${took} ms`,
      );
    }
  },
});
