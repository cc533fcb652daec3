import assert from "node:assert/strict";
import {
  type ByteRange,
  multipartLayout,
  parseRange,
  RANGE_LIMITS,
  type RangeOptions,
  type RangeResult,
} from "../src/range.ts";

const NONE: RangeResult = { kind: "none" };
const UNSATISFIABLE: RangeResult = { kind: "unsatisfiable" };

function ranges(...pairs: [number, number][]): RangeResult {
  return {
    kind: "ranges",
    ranges: pairs.map(([start, end]) => ({ start, end })),
  };
}

/** `count` disjoint one-byte specs: `0-0,2-2,4-4,...`. */
function manySpecs(count: number): string {
  return "bytes=" +
    Array.from({ length: count }, (_, i) => `${2 * i}-${2 * i}`).join(",");
}

function manyRanges(count: number): RangeResult {
  return ranges(
    ...Array.from(
      { length: count },
      (_, i): [number, number] => [2 * i, 2 * i],
    ),
  );
}

interface RangeCase {
  name: string;
  header: string | undefined;
  size: number;
  options?: RangeOptions;
  expected: RangeResult;
}

const RANGE_CASES: RangeCase[] = [
  // No range request.
  {
    name: "ignores an absent header",
    header: undefined,
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores an empty file",
    header: "bytes=0-0",
    size: 0,
    expected: NONE,
  },
  {
    name: "ignores a suffix range on an empty file",
    header: "bytes=-5",
    size: 0,
    expected: NONE,
  },
  {
    name: "ignores other units",
    header: "items=0-5",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores a missing =",
    header: "bytes 0-5",
    size: 100,
    expected: NONE,
  },
  { name: "ignores a missing unit", header: "=0-5", size: 100, expected: NONE },
  {
    name: "ignores an empty range set",
    header: "bytes=",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores a range set of empty elements",
    header: "bytes= , ,",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores non-numeric positions",
    header: "bytes=a-b",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores a last position before the first",
    header: "bytes=5-2",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores a double dash",
    header: "bytes=--5",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores three positions",
    header: "bytes=1-2-3",
    size: 100,
    expected: NONE,
  },
  { name: "ignores a bare dash", header: "bytes=-", size: 100, expected: NONE },
  {
    name: "ignores a missing dash",
    header: "bytes=5",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores negative positions",
    header: "bytes=-5-10",
    size: 100,
    expected: NONE,
  },
  { name: "ignores signs", header: "bytes=+1-2", size: 100, expected: NONE },
  {
    name: "ignores whitespace inside a spec",
    header: "bytes=1 - 2",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores whitespace around =",
    header: "bytes = 1-2",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores a malformed member among valid ones",
    header: "bytes=0-1,x,5-6",
    size: 100,
    expected: NONE,
  },
  // Numbers of any length (RFC 9110 section 14.1.1): past any size.
  {
    name: "clamps a last-pos longer than 15 digits",
    header: "bytes=0-1234567890123456",
    size: 100,
    expected: ranges([0, 99]),
  },
  {
    name: "clamps a 40-digit last-pos",
    header: "bytes=10-" + "9".repeat(40),
    size: 100,
    expected: ranges([10, 99]),
  },
  {
    name: "reads zero-padded numbers longer than 15 digits",
    header: "bytes=0000000000000001-00000000000000000002",
    size: 100,
    expected: ranges([1, 2]),
  },
  {
    name: "finds a 20-digit first-pos unsatisfiable",
    header: "bytes=12345678901234567890-",
    size: 100,
    expected: UNSATISFIABLE,
  },
  {
    name: "takes a 20-digit suffix as the whole",
    header: "bytes=-12345678901234567890",
    size: 100,
    expected: ranges([0, 99]),
  },
  {
    name: "ignores a long last-pos below its first-pos",
    header: "bytes=5-00000000000000000003",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores long numbers in the wrong order beyond 2^53",
    header: "bytes=99999999999999999999-99999999999999999998",
    size: 100,
    expected: NONE,
  },
  {
    name: "accepts 15-digit numbers",
    header: "bytes=0-999999999999999",
    size: 100,
    expected: ranges([0, 99]),
  },
  // Single ranges.
  {
    name: "parses a closed range",
    header: "bytes=0-0",
    size: 100,
    expected: ranges([0, 0]),
  },
  {
    name: "parses a middle range",
    header: "bytes=10-19",
    size: 100,
    expected: ranges([10, 19]),
  },
  {
    name: "accepts a case-insensitive unit",
    header: "BYTES=10-19",
    size: 100,
    expected: ranges([10, 19]),
  },
  {
    name: "accepts leading zeros",
    header: "bytes=007-010",
    size: 100,
    expected: ranges([7, 10]),
  },
  {
    name: "parses an open range",
    header: "bytes=90-",
    size: 100,
    expected: ranges([90, 99]),
  },
  {
    name: "parses an open range from 0",
    header: "bytes=0-",
    size: 100,
    expected: ranges([0, 99]),
  },
  {
    name: "parses a suffix range",
    header: "bytes=-10",
    size: 100,
    expected: ranges([90, 99]),
  },
  {
    name: "parses a one-byte suffix range",
    header: "bytes=-1",
    size: 100,
    expected: ranges([99, 99]),
  },
  {
    name: "clamps a last position past the end",
    header: "bytes=50-1000",
    size: 100,
    expected: ranges([50, 99]),
  },
  {
    name: "clamps a last position at the size",
    header: "bytes=0-100",
    size: 100,
    expected: ranges([0, 99]),
  },
  {
    name: "clamps a suffix longer than the file",
    header: "bytes=-500",
    size: 100,
    expected: ranges([0, 99]),
  },
  {
    name: "clamps a suffix equal to the file",
    header: "bytes=-100",
    size: 100,
    expected: ranges([0, 99]),
  },
  {
    name: "parses the last byte",
    header: "bytes=99-99",
    size: 100,
    expected: ranges([99, 99]),
  },
  {
    name: "parses a one-byte file",
    header: "bytes=0-",
    size: 1,
    expected: ranges([0, 0]),
  },
  // Unsatisfiable.
  {
    name: "is unsatisfiable for a first position at the size",
    header: "bytes=100-",
    size: 100,
    expected: UNSATISFIABLE,
  },
  {
    name: "is unsatisfiable for a closed range past the end",
    header: "bytes=100-200",
    size: 100,
    expected: UNSATISFIABLE,
  },
  {
    name: "is unsatisfiable for -0",
    header: "bytes=-0",
    size: 100,
    expected: UNSATISFIABLE,
  },
  {
    name: "is unsatisfiable when every member is",
    header: "bytes=200-300, -0, 100-",
    size: 100,
    expected: UNSATISFIABLE,
  },
  {
    name: "drops unsatisfiable members",
    header: "bytes=200-300, 0-4, -0",
    size: 100,
    expected: ranges([0, 4]),
  },
  // Multiple ranges.
  {
    name: "keeps multiple ranges in the order given",
    header: "bytes=50-59, 0-9,-10",
    size: 100,
    expected: ranges([50, 59], [0, 9], [90, 99]),
  },
  {
    name: "accepts OWS and empty elements",
    header: "bytes=,\t0-1 ,, 3-4 ,",
    size: 100,
    expected: ranges([0, 1], [3, 4]),
  },
  {
    name: "accepts adjacent ranges",
    header: "bytes=0-4,5-9",
    size: 100,
    expected: ranges([0, 4], [5, 9]),
  },
  // Amplification guard.
  {
    name: "ignores overlapping ranges",
    header: "bytes=0-5,5-9",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores repeated ranges",
    header: "bytes=0-0,0-0",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores a range inside another",
    header: "bytes=0-50,10-20",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores overlap found out of order",
    header: "bytes=60-70,0-9,5-9",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores overlap with a suffix range",
    header: "bytes=0-,-10",
    size: 100,
    expected: NONE,
  },
  {
    name: "ignores overlap after clamping",
    header: "bytes=90-200,-5",
    size: 100,
    expected: NONE,
  },
  {
    name: "does not count overlap between dropped members",
    header: "bytes=0-9,200-300,200-",
    size: 100,
    expected: ranges([0, 9]),
  },
  {
    name: "accepts exactly maxRanges specs",
    header: manySpecs(RANGE_LIMITS.maxRanges),
    size: 100,
    expected: manyRanges(RANGE_LIMITS.maxRanges),
  },
  {
    name: "ignores one spec more than maxRanges",
    header: manySpecs(RANGE_LIMITS.maxRanges + 1),
    size: 100,
    expected: NONE,
  },
  {
    name: "counts unsatisfiable specs towards maxRanges",
    header: manySpecs(RANGE_LIMITS.maxRanges) + ",500-600",
    size: 100,
    expected: NONE,
  },
  {
    name: "does not count empty elements towards maxRanges",
    header: manySpecs(RANGE_LIMITS.maxRanges) + ",,,",
    size: 100,
    expected: manyRanges(RANGE_LIMITS.maxRanges),
  },
  {
    name: "accepts a custom maxRanges",
    header: manySpecs(3),
    size: 100,
    options: { maxRanges: 3 },
    expected: manyRanges(3),
  },
  {
    name: "ignores one spec more than a custom maxRanges",
    header: manySpecs(4),
    size: 100,
    options: { maxRanges: 3 },
    expected: NONE,
  },
  {
    name: "accepts more than the default with a larger maxRanges",
    header: manySpecs(20),
    size: 100,
    options: { maxRanges: 20 },
    expected: manyRanges(20),
  },
  {
    name: "accepts a single range with maxRanges 1",
    header: "bytes=-1",
    size: 100,
    options: { maxRanges: 1 },
    expected: ranges([99, 99]),
  },
];

for (const { name, header, size, options, expected } of RANGE_CASES) {
  Deno.test({
    name: `parseRange() ${name}`,
    sanitizeOps: true,
    sanitizeResources: true,
    fn(): void {
      assert.deepEqual(parseRange(header, size, options), expected);
    },
  });
}

Deno.test({
  name: "parseRange() has a default maxRanges of 16",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    assert.equal(RANGE_LIMITS.maxRanges, 16);
  },
});

Deno.test({
  name: "parseRange() throws on an invalid size or maxRanges",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    assert.throws(() => parseRange("bytes=0-1", -1), RangeError);
    assert.throws(() => parseRange("bytes=0-1", 1.5), RangeError);
    assert.throws(
      () => parseRange("bytes=0-1", 10, { maxRanges: 0 }),
      RangeError,
    );
  },
});

const decoder = new TextDecoder();

interface MultipartCase {
  name: string;
  ranges: ByteRange[];
  size: number;
  contentType: string;
  boundary: string;
  heads: string[];
  tail: string;
}

const MULTIPART_CASES: MultipartCase[] = [
  {
    name: "lays out two ranges",
    ranges: [{ start: 0, end: 4 }, { start: 90, end: 99 }],
    size: 100,
    contentType: "text/plain; charset=utf-8",
    boundary: "3d6b6a416f9b5",
    heads: [
      "\r\n--3d6b6a416f9b5\r\nContent-Type: text/plain; charset=utf-8\r\n" +
      "Content-Range: bytes 0-4/100\r\n\r\n",
      "\r\n--3d6b6a416f9b5\r\nContent-Type: text/plain; charset=utf-8\r\n" +
      "Content-Range: bytes 90-99/100\r\n\r\n",
    ],
    tail: "\r\n--3d6b6a416f9b5--\r\n",
  },
  {
    name: "lays out ranges in the order given",
    ranges: [{ start: 7, end: 7 }, { start: 0, end: 1 }, { start: 3, end: 5 }],
    size: 8,
    contentType: "image/png",
    boundary: "b",
    heads: [
      "\r\n--b\r\nContent-Type: image/png\r\nContent-Range: bytes 7-7/8\r\n\r\n",
      "\r\n--b\r\nContent-Type: image/png\r\nContent-Range: bytes 0-1/8\r\n\r\n",
      "\r\n--b\r\nContent-Type: image/png\r\nContent-Range: bytes 3-5/8\r\n\r\n",
    ],
    tail: "\r\n--b--\r\n",
  },
  {
    name: "lays out a single range",
    ranges: [{ start: 0, end: 1_099_511_627_775 }],
    size: 1_099_511_627_776,
    contentType: "application/octet-stream",
    boundary: "x".repeat(70),
    heads: [
      `\r\n--${"x".repeat(70)}\r\nContent-Type: application/octet-stream\r\n` +
      "Content-Range: bytes 0-1099511627775/1099511627776\r\n\r\n",
    ],
    tail: `\r\n--${"x".repeat(70)}--\r\n`,
  },
];

for (const c of MULTIPART_CASES) {
  Deno.test({
    name: `multipartLayout() ${c.name}`,
    sanitizeOps: true,
    sanitizeResources: true,
    fn(): void {
      const layout = multipartLayout(c.ranges, c.size, {
        contentType: c.contentType,
        boundary: c.boundary,
      });
      assert.equal(
        layout.contentType,
        `multipart/byteranges; boundary=${c.boundary}`,
      );
      assert.deepEqual(
        layout.parts.map((p) => decoder.decode(p.head)),
        c.heads,
      );
      assert.deepEqual(layout.parts.map((p) => p.range), c.ranges);
      assert.equal(decoder.decode(layout.tail), c.tail);
      // The length is the sum of the bytes actually sent.
      let sum = layout.tail.byteLength;
      for (const part of layout.parts) {
        sum += part.head.byteLength + part.range.end - part.range.start + 1;
      }
      assert.equal(layout.length, sum);
    },
  });
}

Deno.test({
  name: "multipartLayout() length equals the assembled body",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const file = new TextEncoder().encode("0123456789abcdefghij");
    const result = parseRange("bytes=0-2,-3,10-12", file.length);
    assert.equal(result.kind, "ranges");
    if (result.kind !== "ranges") return;
    const layout = multipartLayout(result.ranges, file.length, {
      contentType: "text/plain",
      boundary: "BOUNDARY",
    });
    const chunks: Uint8Array[] = [];
    for (const { head, range } of layout.parts) {
      chunks.push(head, file.subarray(range.start, range.end + 1));
    }
    chunks.push(layout.tail);
    const body = chunks.map((c) => decoder.decode(c)).join("");
    assert.equal(
      body,
      "\r\n--BOUNDARY\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-2/20\r\n\r\n012" +
        "\r\n--BOUNDARY\r\nContent-Type: text/plain\r\nContent-Range: bytes 17-19/20\r\n\r\nhij" +
        "\r\n--BOUNDARY\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-12/20\r\n\r\nabc" +
        "\r\n--BOUNDARY--\r\n",
    );
    assert.equal(layout.length, chunks.reduce((n, c) => n + c.byteLength, 0));
  },
});

Deno.test({
  name:
    "multipartLayout() throws on an invalid boundary, content type or range",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const ok = [{ start: 0, end: 0 }];
    const ct = "text/plain";
    assert.throws(
      () => multipartLayout(ok, 1, { contentType: ct, boundary: "" }),
      TypeError,
    );
    assert.throws(
      () => multipartLayout(ok, 1, { contentType: ct, boundary: "a\r\nb" }),
      TypeError,
    );
    assert.throws(
      () =>
        multipartLayout(ok, 1, { contentType: ct, boundary: "x".repeat(71) }),
      TypeError,
    );
    assert.throws(
      () => multipartLayout(ok, 1, { contentType: "a\r\nb", boundary: "b" }),
      TypeError,
    );
    assert.throws(
      () =>
        multipartLayout([{ start: 0, end: 1 }], 1, {
          contentType: ct,
          boundary: "b",
        }),
      RangeError,
    );
    assert.throws(
      () =>
        multipartLayout([{ start: 2, end: 1 }], 5, {
          contentType: ct,
          boundary: "b",
        }),
      RangeError,
    );
    // Offsets are whole, non-negative byte positions (RFC 9110 section 14.1.2).
    for (const range of [{ start: 0.5, end: 1 }, { start: 0, end: 1.5 }]) {
      assert.throws(
        () => multipartLayout([range], 5, { contentType: ct, boundary: "b" }),
        RangeError,
        JSON.stringify(range),
      );
    }
  },
});
