import assert from "node:assert/strict";
import {
  BODY_LIMITS,
  type BodyLimits,
  ChunkedDecoder,
  type ChunkedResult,
} from "../../src/http/body.ts";
import { STATUS_CODE, type StatusCode } from "../../src/http/status.ts";

const encoder = new TextEncoder();

/** What follows the body on the connection; it must never be consumed. */
const NEXT_REQUEST = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

function describe(result: ChunkedResult): string {
  switch (result.kind) {
    case "done":
      return `done (consumed ${result.consumed})`;
    case "partial":
      return "partial";
    case "error":
      return `error ${result.status} (${result.reason})`;
  }
}

/**
 * Feeds [0, buf.length) as the given consecutive pieces (each a length) and
 * answers the last result and the offset where the body ended (-1 if not).
 */
function feedPieces(
  decoder: ChunkedDecoder,
  buf: Uint8Array,
  cuts: readonly number[],
): { result: ChunkedResult; end: number; at: number } {
  let start = 0;
  let result: ChunkedResult = { kind: "partial" };
  for (const end of [...cuts, buf.length]) {
    result = decoder.feed(buf, start, end);
    if (result.kind === "done") {
      return { result, end: start + result.consumed, at: start };
    }
    if (result.kind === "error") return { result, end: -1, at: start };
    start = end;
  }
  return { result, end: -1, at: start };
}

// ---------------------------------------------------------------------------
// Valid bodies

interface ValidCase {
  name: string;
  body: string;
  limits?: Partial<BodyLimits>;
}

const VALID_BODIES: readonly ValidCase[] = [
  { name: "one chunk", body: "5\r\nhello\r\n0\r\n\r\n" },
  { name: "empty body", body: "0\r\n\r\n" },
  {
    name: "several chunks",
    body: "5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n",
  },
  {
    name: "uppercase and lowercase hex sizes",
    body: `A\r\n0123456789\r\n1F\r\n${"x".repeat(31)}\r\n1f\r\n${
      "y".repeat(31)
    }\r\n0\r\n\r\n`,
  },
  { name: "leading zeros in size", body: "005\r\nhello\r\n000\r\n\r\n" },
  {
    name: "size digits of exactly maxChunkLine on every chunk line",
    body: "0005\r\nhello\r\n0000\r\n\r\n",
    limits: { maxChunkLine: 4 },
  },
  {
    name: "more than 15 leading zeros in size",
    body: `${"0".repeat(20)}5\r\nhello\r\n${"0".repeat(30)}\r\n\r\n`,
  },
  {
    name: "chunk data that looks like chunk framing",
    body: "7\r\n\r\n0\r\n\r\n\r\n0\r\n\r\n",
  },
  {
    name: "chunk extensions",
    body: '5;a=b;c="d"\r\nhello\r\n0;e\r\n\r\n',
  },
  {
    name: "chunk extension after BWS",
    body: "5 ;a=b\r\nhello\r\n0\t;x\r\n\r\n",
  },
  {
    name: "quoted extension value with escapes",
    body: '5;name="a \\"b\\" ;c"\r\nhello\r\n0\r\n\r\n',
  },
  {
    // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ): VCHAR is ! to ~.
    name: "quoted-pairs of the first and last VCHAR",
    body: '5;a="\\!\\~"\r\nhello\r\n0\r\n\r\n',
  },
  {
    name: "extension names without values",
    body: "5;a;b\r\nhello\r\n0;c ;d\r\n\r\n",
  },
  { name: "one trailer", body: "5\r\nhello\r\n0\r\nX: y\r\n\r\n" },
  {
    name: "several trailers",
    body: "5\r\nhello\r\n0\r\nX: y\r\nChecksum: abc\r\nE:\r\n\r\n",
  },
  {
    name: "body of exactly maxBodySize in one chunk",
    body: "5\r\nhello\r\n0\r\n\r\n",
    limits: { maxBodySize: 5 },
  },
  {
    name: "body of exactly maxBodySize in several chunks",
    body: "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
    limits: { maxBodySize: 10 },
  },
  {
    name: "empty body with maxBodySize 0",
    body: "0\r\n\r\n",
    limits: { maxBodySize: 0 },
  },
  {
    // "5;abcdefgh" is 10 bytes.
    name: "chunk line of exactly maxChunkLine",
    body: "5;abcdefgh\r\nhello\r\n0\r\n\r\n",
    limits: { maxChunkLine: 10 },
  },
  {
    // The trailer section (RFC 9112 section 7.1.2) is "X: y\r\n": 6 bytes.
    name: "trailer section of exactly maxTrailerSize",
    body: "0\r\nX: y\r\n\r\n",
    limits: { maxTrailerSize: 6 },
  },
  {
    name: "no trailer section with maxTrailerSize 0",
    body: "0\r\n\r\n",
    limits: { maxTrailerSize: 0 },
  },
  {
    // ";ab" (3), the second zero of "005" (1), " ;c" (3): 7 bytes.
    name: "chunk extensions and leading zeros of exactly maxChunkExtensions",
    body: "5;ab\r\nhello\r\n005 ;c\r\nworld\r\n0\r\n\r\n",
    limits: { maxChunkExtensions: 7 },
  },
  {
    // A size's first digit is no extra, even a zero: "0" ends every body.
    name:
      "no extensions and sizes of one leading zero with maxChunkExtensions 0",
    body: "05\r\nhello\r\n0\r\n\r\n",
    limits: { maxChunkExtensions: 0 },
  },
  {
    name: "chunk extensions of the default maxChunkExtensions",
    body: `${`1;${"x".repeat(4094)}\r\na\r\n`.repeat(4)}0;${
      "y".repeat(3)
    }\r\n\r\n`,
  },
];

Deno.test({
  name: "ChunkedDecoder.feed() decodes a valid body fed whole",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    for (const c of VALID_BODIES) {
      await t.step(c.name, (): void => {
        const body = encoder.encode(c.body);
        const buf = encoder.encode(c.body + NEXT_REQUEST);
        const result = new ChunkedDecoder(c.limits).feed(buf);
        assert.deepEqual(
          result,
          { kind: "done", consumed: body.length },
          `${c.name}: got ${describe(result)}`,
        );
        const exact = new ChunkedDecoder(c.limits).feed(body);
        assert.deepEqual(
          exact,
          { kind: "done", consumed: body.length },
          `${c.name} without a following request: got ${describe(exact)}`,
        );
      });
    }
  },
});

Deno.test({
  name: "ChunkedDecoder.feed() decodes a valid body fed byte by byte",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    for (const c of VALID_BODIES) {
      await t.step(c.name, (): void => {
        const bodyLength = encoder.encode(c.body).length;
        const buf = encoder.encode(c.body + NEXT_REQUEST);
        const decoder = new ChunkedDecoder(c.limits);
        let end = -1;
        for (let k = 0; k < buf.length; k++) {
          const result = decoder.feed(buf, k, k + 1);
          if (k < bodyLength - 1) {
            assert.equal(
              result.kind,
              "partial",
              `${c.name}: byte ${k} got ${describe(result)}`,
            );
            continue;
          }
          assert.deepEqual(
            result,
            { kind: "done", consumed: 1 },
            `${c.name}: last byte ${k} got ${describe(result)}`,
          );
          end = k + 1;
          break;
        }
        assert.equal(end, bodyLength, c.name);
      });
    }
  },
});

Deno.test({
  name: "ChunkedDecoder.feed() decodes a valid body split at every position",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    for (const c of VALID_BODIES) {
      await t.step(c.name, (): void => {
        const bodyLength = encoder.encode(c.body).length;
        const buf = encoder.encode(c.body + NEXT_REQUEST);
        for (let cut = 0; cut <= buf.length; cut++) {
          const { result, end } = feedPieces(
            new ChunkedDecoder(c.limits),
            buf,
            [cut],
          );
          assert.equal(
            end,
            bodyLength,
            `${c.name}: split at ${cut} got ${describe(result)}`,
          );
        }
      });
    }
  },
});

Deno.test({
  name: "ChunkedDecoder.feed() consumes nothing more once done",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const buf = encoder.encode("0\r\n\r\n" + NEXT_REQUEST);
    const decoder = new ChunkedDecoder();
    assert.deepEqual(decoder.feed(buf, 0, 5), { kind: "done", consumed: 5 });
    assert.deepEqual(decoder.feed(buf, 5), { kind: "done", consumed: 0 });
  },
});

// ---------------------------------------------------------------------------
// Errors

interface ErrorCase {
  name: string;
  body: string;
  limits?: Partial<BodyLimits>;
  status: StatusCode;
}

const ERROR_BODIES: readonly ErrorCase[] = [
  // Chunk-size line.
  {
    name: "bare LF after size",
    body: "5\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "bare CR after size",
    body: "5\rhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    // Read as LF, the next byte would leave a valid body.
    name: "bare CR and another byte after size",
    body: "5\rxhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "CR CR LF after size",
    body: "5\r\r\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "bare CR after an extension",
    body: "5;a=b\rhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "bare LF after an extension",
    body: "5;a=b\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "non-hex size",
    body: "g\r\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "size with a trailing non-hex byte",
    body: "5g\r\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "0x prefix",
    body: "0x5\r\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "signed size",
    body: "+5\r\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "empty size",
    body: "\r\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "extension without size",
    body: ";a=b\r\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "leading space before size",
    body: " 5\r\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    // No size limit in the way: only the overflow guard can answer.
    name: "overflowing size ffffffffffffffffff",
    body: "ffffffffffffffffff\r\n",
    limits: { maxBodySize: Infinity },
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "16 significant digits after leading zeros",
    body: `0000${"1".repeat(16)}\r\n`,
    limits: { maxBodySize: Infinity },
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "leading zeros past maxChunkLine",
    body: `${"0".repeat(11)}5\r\nhello\r\n0\r\n\r\n`,
    limits: { maxChunkLine: 10 },
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "16 significant digits, 1 followed by 15 zeros",
    body: `1${"0".repeat(15)}\r\n`,
    limits: { maxBodySize: Infinity },
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "empty chunk-size line",
    body: "\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "overflowing size 1 followed by 17 zeros",
    body: "100000000000000000\r\n",
    limits: { maxBodySize: Infinity },
    status: STATUS_CODE.BadRequest,
  },
  // Chunk data.
  {
    name: "missing CRLF after data",
    body: "5\r\nhello0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "data longer than its size",
    body: "3\r\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "bare LF after data",
    body: "5\r\nhello\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "bare CR after data",
    body: "5\r\nhello\r0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "another byte then LF after data",
    body: "5\r\nhellox\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "bare CR and another byte after data",
    body: "5\r\nhello\rx0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  // Body size.
  {
    name: "chunk size over maxBodySize",
    body: "6\r\nhello!\r\n0\r\n\r\n",
    limits: { maxBodySize: 5 },
    status: STATUS_CODE.ContentTooLarge,
  },
  {
    name: "chunk size over the default maxBodySize",
    body: `${(BODY_LIMITS.maxBodySize + 1).toString(16)}\r\n`,
    status: STATUS_CODE.ContentTooLarge,
  },
  {
    name: "huge chunk size with the default maxBodySize",
    body: "ffffffffffffffffff\r\n",
    status: STATUS_CODE.ContentTooLarge,
  },
  {
    name: "total of several chunks over maxBodySize",
    body: "5\r\nhello\r\n5\r\nworld\r\n1\r\n!\r\n0\r\n\r\n",
    limits: { maxBodySize: 10 },
    status: STATUS_CODE.ContentTooLarge,
  },
  {
    name: "total of two chunks one over maxBodySize",
    body: "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
    limits: { maxBodySize: 9 },
    status: STATUS_CODE.ContentTooLarge,
  },
  {
    name: "chunk extensions and leading zeros over maxChunkExtensions",
    body: "5;ab\r\nhello\r\n005 ;c\r\nworld\r\n0\r\n\r\n",
    limits: { maxChunkExtensions: 6 },
    status: STATUS_CODE.ContentTooLarge,
  },
  {
    name: "leading zeros over maxChunkExtensions",
    body: "0005\r\nhello\r\n0\r\n\r\n",
    limits: { maxChunkExtensions: 1 },
    status: STATUS_CODE.ContentTooLarge,
  },
  {
    // Each line within maxChunkLine; together one byte over the default.
    name: "chunk extensions over the default maxChunkExtensions",
    body: `${`1;${"x".repeat(4094)}\r\na\r\n`.repeat(4)}0;${
      "y".repeat(16)
    }\r\n\r\n`,
    status: STATUS_CODE.ContentTooLarge,
  },
  // Chunk extensions: *( BWS ";" BWS name [ BWS "=" BWS value ] ).
  ...[
    ["text after the size without a ;", "0 junk"],
    ["a ; with no name", "0;"],
    ["a name starting with =", "0;=v"],
    ["= with no value", "0;a="],
    ["an unterminated quoted value", '0;a="x'],
    ["a quoted value with a bare quote inside", '0;a="x"y"'],
    ["a value with a non-token character", "0;a=b/c"],
    ["two values", "0;a=b c"],
    ["a name with a non-token character", "0;a@b"],
    ["an escape of a control character", '0;a="\\\x01"'],
    ["an escape of DEL", '0;a="\\\x7f"'],
    // BWS only before ";" or "=" (RFC 9112 section 7.1.1), never before CRLF.
    ["whitespace after the size", "0 "],
    ["a tab after the size", "0\t"],
    ["whitespace after a name", "0;a "],
    ["whitespace after a value", "0;a=b "],
    ["whitespace after a quoted value", '0;a="b" '],
  ].map(([name, line]): ErrorCase => ({
    name: `extension: ${name}`,
    body: `${line}\r\n\r\n`,
    status: STATUS_CODE.BadRequest,
  })),
  // Trailer lines are field lines.
  ...[
    ["no colon", "garbage"],
    ["space before the colon", "X : y"],
    ["empty name", ": y"],
    ["a non-token name", "X(y): z"],
    ["a control character in the value", "X: a\x01b"],
  ].map(([name, line]): ErrorCase => ({
    name: `trailer: ${name}`,
    body: `0\r\n${line}\r\n\r\n`,
    status: STATUS_CODE.BadRequest,
  })),
  // Chunk extensions: characters.
  {
    name: "extension with NUL",
    body: "5;a=\0\r\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "extension with \\x01",
    body: "5;a=\x01\r\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "extension with \\x7f",
    body: "5;a=b\x7f\r\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "extension with LF inside",
    body: "5;a\nb\r\nhello\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "extension longer than maxChunkLine",
    body: `5;${"a".repeat(100)}\r\nhello\r\n0\r\n\r\n`,
    limits: { maxChunkLine: 10 },
    status: STATUS_CODE.BadRequest,
  },
  {
    // "5;abcdefghi" is 11 bytes.
    name: "chunk line one over maxChunkLine",
    body: "5;abcdefghi\r\nhello\r\n0\r\n\r\n",
    limits: { maxChunkLine: 10 },
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "extension longer than the default maxChunkLine",
    body: `5;${"a".repeat(BODY_LIMITS.maxChunkLine)}\r\nhello\r\n0\r\n\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  // Trailers.
  {
    name: "trailer ended by bare LF",
    body: "0\r\nX: y\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "trailer ended by bare CR",
    body: "0\r\nX: y\rZ: w\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "trailer ended by bare CR and another byte",
    body: "0\r\nX: y\rxZ: w\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "final line after trailers is a bare LF",
    body: "0\r\nX: y\r\n\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "final line without trailers is a bare LF",
    body: "0\r\n\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "final line is a bare CR",
    body: "0\r\n\rX",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "trailer with a CTL",
    body: "0\r\nX: a\x01b\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "trailer line starting with SP (obs-fold)",
    body: "0\r\nX: y\r\n z\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "trailer line starting with HT (obs-fold)",
    body: "0\r\nX: y\r\n\tz\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "first trailer line starting with SP",
    body: "0\r\n X: y\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "trailer with an empty name",
    body: "0\r\n: y\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "trailer section one over maxTrailerSize",
    body: "0\r\nX: yz\r\n\r\n",
    limits: { maxTrailerSize: 6 },
    status: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
  {
    name: "trailer section far over maxTrailerSize",
    body: `0\r\nX: ${"a".repeat(100)}\r\n\r\n`,
    limits: { maxTrailerSize: 16 },
    status: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
  {
    name: "many trailers over maxTrailerSize",
    body: `0\r\n${"X: y\r\n".repeat(10)}\r\n`,
    limits: { maxTrailerSize: 20 },
    status: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
  {
    name: "trailer section over the default maxTrailerSize",
    body: `0\r\nX: ${"a".repeat(BODY_LIMITS.maxTrailerSize)}\r\n\r\n`,
    status: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
];

Deno.test({
  name: "ChunkedDecoder.feed() rejects an invalid body",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    for (const c of ERROR_BODIES) {
      await t.step(c.name, (): void => {
        const buf = encoder.encode(c.body + NEXT_REQUEST);
        const whole = new ChunkedDecoder(c.limits).feed(buf);
        assert.ok(
          whole.kind === "error" && whole.status === c.status,
          `${c.name} (whole): expected error ${c.status}, got ${
            describe(whole)
          }`,
        );
        const cuts = Array.from({ length: buf.length - 1 }, (_, k) => k + 1);
        const { result, at } = feedPieces(
          new ChunkedDecoder(c.limits),
          buf,
          cuts,
        );
        assert.ok(
          result.kind === "error" && result.status === c.status,
          `${c.name} (byte by byte): expected error ${c.status}, got ${
            describe(result)
          } at byte ${at}`,
        );
      });
    }
  },
});

Deno.test({
  name:
    "ChunkedDecoder.feed() accepts a chunk size of 15 significant digits on every chunk line",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const fifteen = ["1" + "0".repeat(14), "f".repeat(15)];
    for (const body of [`${fifteen[0]}\r\n`, `1\r\na\r\n${fifteen[1]}\r\n`]) {
      const decoder = new ChunkedDecoder({ maxBodySize: Infinity });
      const result = decoder.feed(encoder.encode(body));
      assert.equal(result.kind, "partial", `${body}: got ${describe(result)}`);
    }
  },
});

/** Chunked bodies whose last byte can never be followed by a valid body. */
const BAD_LAST_BYTES: readonly string[] = [
  "5x",
  "5\rx",
  "0 x",
  "0;@",
  "0;a@",
  "0;a @",
  "0;a=@",
  "0;a=b@",
  '0;a="\x01',
  '0;a="\\\x01',
  "5\r\nhellox",
  "5\r\nhello\rx",
  "0\r\n@",
  "0\r\nX@",
  "0\r\nX: \x01",
  "0\r\nX: y\rx",
  "0\r\n\rx",
];

Deno.test({
  name: "ChunkedDecoder.feed() rejects a bad byte as soon as it arrives",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    for (const body of BAD_LAST_BYTES) {
      await t.step(JSON.stringify(body), (): void => {
        const buf = encoder.encode(body);
        const decoder = new ChunkedDecoder();
        const before = decoder.feed(buf, 0, buf.length - 1);
        assert.equal(before.kind, "partial", `before: got ${describe(before)}`);
        const last = decoder.feed(buf, buf.length - 1);
        assert.ok(
          last.kind === "error" && last.status === STATUS_CODE.BadRequest,
          `last byte: got ${describe(last)}`,
        );
      });
    }
  },
});

Deno.test({
  name: "ChunkedDecoder.feed() uses BODY_LIMITS when no limits are given",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    assert.deepEqual(
      { ...BODY_LIMITS },
      {
        maxBodySize: 1048576,
        maxChunkLine: 4096,
        maxTrailerSize: 16384,
        maxChunkExtensions: 16384,
      },
    );
  },
});
