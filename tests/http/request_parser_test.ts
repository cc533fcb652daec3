import assert from "node:assert/strict";
import {
  latin1,
  PARSE_LIMITS,
  type ParseLimits,
  parseRequestHead,
  type ParseResult,
  type RequestHead,
} from "../../src/http/request_parser.ts";
import { STATUS_CODE, type StatusCode } from "../../src/http/status.ts";
import { concatBytes } from "../test_util.ts";

const encoder = new TextEncoder();

/** Request bytes: strings are UTF-8 encoded, numbers are single raw bytes. */
function bytes(...parts: (string | number)[]): Uint8Array {
  return concatBytes(
    parts.map((part) =>
      typeof part === "string" ? encoder.encode(part) : Uint8Array.of(part)
    ),
  );
}

type Input = string | Uint8Array;

function enc(input: Input): Uint8Array {
  return typeof input === "string" ? encoder.encode(input) : input;
}

/** A request head: the request line, each field line, then the empty line. */
function req(requestLine: string, ...fieldLines: string[]): string {
  return requestLine + "\r\n" + fieldLines.map((f) => f + "\r\n").join("") +
    "\r\n";
}

/** A request line of exactly `n` bytes (CRLF excluded). */
function requestLineOf(n: number): string {
  const line = `GET /${"a".repeat(n - 14)} HTTP/1.1`;
  assert.equal(line.length, n);
  return line;
}

/** A complete head (request line through the final CRLF) of exactly `n` bytes. */
function headOf(n: number): string {
  const fields = ["Host: a"];
  const base = req("GET / HTTP/1.1", ...fields, "X: ");
  const head = req(
    "GET / HTTP/1.1",
    ...fields,
    "X: " + "a".repeat(n - base.length),
  );
  assert.equal(head.length, n);
  return head;
}

/** `n` field lines in total, Host included. */
function fieldLines(n: number): string[] {
  const lines = ["Host: a"];
  for (let k = 1; k < n; k++) lines.push(`X-${k}: v`);
  return lines;
}

function describe(result: ParseResult): string {
  switch (result.kind) {
    case "complete":
      return `complete (consumed ${result.consumed}, ${
        JSON.stringify(result.head)
      })`;
    case "partial":
      return "partial";
    case "error":
      return `error ${result.status} (${result.reason})`;
  }
}

function pick(
  head: RequestHead,
  expected: Partial<RequestHead>,
): Partial<RequestHead> {
  return Object.fromEntries(
    Object.keys(expected).map((k) => [k, head[k as keyof RequestHead]]),
  );
}

function parse(input: Input, limits?: Partial<ParseLimits>): ParseResult {
  const buf = enc(input);
  return limits === undefined
    ? parseRequestHead(buf)
    : parseRequestHead(buf, { limits });
}

/**
 * One table row. `expected` is the head fields to check (the whole input must
 * be consumed), an error status, or "partial".
 */
interface Case {
  name: string;
  input: Input;
  limits?: Partial<ParseLimits>;
  expected: Partial<RequestHead> | StatusCode | "partial";
}

function check(c: Case): void {
  const result = parse(c.input, c.limits);
  const got = describe(result);
  if (c.expected === "partial") {
    assert.equal(result.kind, "partial", `${c.name}: got ${got}`);
  } else if (typeof c.expected === "number") {
    assert.ok(
      result.kind === "error" && result.status === c.expected,
      `${c.name}: expected error ${c.expected}, got ${got}`,
    );
  } else {
    if (result.kind !== "complete") {
      assert.fail(`${c.name}: expected complete, got ${got}`);
    }
    assert.equal(
      result.consumed,
      enc(c.input).length,
      `${c.name}: consumed`,
    );
    assert.deepEqual(pick(result.head, c.expected), c.expected, c.name);
  }
}

async function runTable(
  t: Deno.TestContext,
  cases: readonly Case[],
): Promise<void> {
  for (const c of cases) {
    await t.step(c.name, (): void => check(c));
  }
}

// ---------------------------------------------------------------------------
// Prefixes, completeness and pipelining

interface ValidCase {
  name: string;
  input: Input;
  limits?: Partial<ParseLimits>;
  expected: Partial<RequestHead>;
}

const VALID_REQUESTS: readonly ValidCase[] = [
  {
    name: "GET with several headers",
    input: req(
      "GET /index.html?x=1 HTTP/1.1",
      "Host: example.com",
      "User-Agent: test/1.0",
      "Accept: text/html, */*;q=0.8",
      "Accept-Encoding: gzip, br",
      'If-None-Match: "abc"',
      "Range: bytes=0-99",
    ),
    expected: {
      method: "GET",
      target: "/index.html?x=1",
      form: "origin",
      path: "/index.html?x=1",
      minor: 1,
      host: "example.com",
      contentLength: -1,
      chunked: false,
      keepAlive: true,
      fields: {
        accept: "text/html, */*;q=0.8",
        acceptEncoding: "gzip, br",
        ifNoneMatch: '"abc"',
        range: "bytes=0-99",
      },
    },
  },
  {
    name: "HEAD HTTP/1.0 without Host",
    input: req("HEAD /a HTTP/1.0", "User-Agent: old"),
    expected: {
      method: "HEAD",
      target: "/a",
      form: "origin",
      path: "/a",
      minor: 0,
      host: "",
      contentLength: -1,
      chunked: false,
      keepAlive: false,
      fields: {},
    },
  },
  {
    name: "POST with Content-Length",
    input: req("POST /upload HTTP/1.1", "Host: h", "Content-Length: 11"),
    expected: { method: "POST", contentLength: 11, chunked: false },
  },
  {
    name: "POST with Transfer-Encoding: chunked",
    input: req(
      "POST /upload HTTP/1.1",
      "Host: h",
      "Transfer-Encoding: chunked",
    ),
    expected: { method: "POST", contentLength: -1, chunked: true },
  },
  {
    name: "absolute-form GET",
    input: req("GET http://example.com/x?q HTTP/1.1", "Host: example.com"),
    expected: {
      target: "http://example.com/x?q",
      form: "absolute",
      path: "/x?q",
    },
  },
  {
    name: "OPTIONS *",
    input: req("OPTIONS * HTTP/1.1", "Host: h"),
    expected: { method: "OPTIONS", target: "*", form: "asterisk", path: "" },
  },
  {
    name: "CONNECT authority-form",
    input: req("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443"),
    expected: { method: "CONNECT", form: "authority", path: "" },
  },
  {
    name: "request after leading empty lines",
    input: "\r\n\r\n" + req("GET / HTTP/1.1", "Host: h"),
    expected: { method: "GET", path: "/" },
  },
  {
    name: "request line of exactly maxRequestLine",
    input: req(requestLineOf(40), "Host: h"),
    limits: { maxRequestLine: 40 },
    expected: { method: "GET" },
  },
  {
    name: "head of exactly maxHeadSize",
    input: headOf(60),
    limits: { maxHeadSize: 60 },
    expected: { method: "GET", host: "a" },
  },
  {
    name: "exactly maxHeaders field lines",
    input: req("GET / HTTP/1.1", ...fieldLines(4)),
    limits: { maxHeaders: 4 },
    expected: { method: "GET", host: "a" },
  },
];

const NEXT_REQUEST = "GET /next HTTP/1.1\r\nHost: other\r\n\r\n";

Deno.test({
  name: "parseRequestHead() answers partial for every proper prefix",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    for (const c of VALID_REQUESTS) {
      await t.step(c.name, (): void => {
        const buf = enc(c.input);
        for (let n = 0; n < buf.length; n++) {
          const result = parseRequestHead(buf.subarray(0, n), {
            limits: c.limits,
          });
          assert.equal(
            result.kind,
            "partial",
            `${c.name}: prefix of ${n}/${buf.length} bytes ${
              JSON.stringify(new TextDecoder().decode(buf.subarray(0, n)))
            } got ${describe(result)}`,
          );
        }
      });
    }
  },
});

Deno.test({
  name: "parseRequestHead() completes a whole head and consumes only it",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    for (const c of VALID_REQUESTS) {
      await t.step(c.name, (): void => {
        check(c);
        const head = enc(c.input);
        const pipelined = bytes(
          new TextDecoder().decode(head),
          "hello world",
          NEXT_REQUEST,
        );
        const result = parseRequestHead(pipelined, { limits: c.limits });
        if (result.kind !== "complete") {
          assert.fail(`${c.name} + pipelined: got ${describe(result)}`);
        }
        assert.equal(result.consumed, head.length, `${c.name} + pipelined`);
        assert.deepEqual(
          pick(result.head, c.expected),
          c.expected,
          `${c.name} + pipelined`,
        );
      });
    }
  },
});

// ---------------------------------------------------------------------------
// Request line

const REQUEST_LINE_CASES: readonly Case[] = [
  {
    name: "origin-form",
    input: req("GET /a/b?c=d HTTP/1.1", "Host: h"),
    expected: {
      method: "GET",
      target: "/a/b?c=d",
      form: "origin",
      path: "/a/b?c=d",
      minor: 1,
    },
  },
  {
    name: "origin-form root",
    input: req("GET / HTTP/1.1", "Host: h"),
    expected: { target: "/", form: "origin", path: "/" },
  },
  {
    name: "absolute-form with path and query",
    input: req("GET http://host/x?q HTTP/1.1", "Host: host"),
    expected: { target: "http://host/x?q", form: "absolute", path: "/x?q" },
  },
  {
    name: "absolute-form without path",
    input: req("GET http://host HTTP/1.1", "Host: host"),
    expected: { target: "http://host", form: "absolute", path: "/" },
  },
  {
    name: "absolute-form with query and no path",
    input: req("GET http://host?q=1 HTTP/1.1", "Host: host"),
    expected: { form: "absolute", path: "/?q=1" },
  },
  {
    name: "absolute-form https with port",
    input: req("GET https://host:8443/y HTTP/1.1", "Host: host:8443"),
    expected: { form: "absolute", path: "/y" },
  },
  {
    name: "absolute-form scheme is case-insensitive",
    input: req("GET HTTP://Host/z HTTP/1.1", "Host: Host"),
    expected: { form: "absolute", path: "/z" },
  },
  {
    name: "absolute-form with empty authority before path",
    input: req("GET http:///x HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    // RFC 9110 section 4.2.1: an "http" URI with an empty host is invalid.
    name: "absolute-form with nothing after the scheme",
    input: req("GET http:// HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "absolute-form with another scheme",
    input: req("GET ftp://host/x HTTP/1.1", "Host: host"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "target in no known form",
    input: req("GET index.html HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "asterisk-form with OPTIONS",
    input: req("OPTIONS * HTTP/1.1", "Host: h"),
    expected: { method: "OPTIONS", target: "*", form: "asterisk", path: "" },
  },
  {
    name: "asterisk-form with GET",
    input: req("GET * HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "asterisk-form with HEAD",
    input: req("HEAD * HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "CONNECT authority-form",
    input: req("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443"),
    expected: {
      method: "CONNECT",
      target: "example.com:443",
      form: "authority",
      path: "",
      keepAlive: false,
    },
  },
  {
    name: "CONNECT to an IPv6 literal",
    input: req("CONNECT [::1]:443 HTTP/1.1", "Host: [::1]:443"),
    expected: { target: "[::1]:443", form: "authority", keepAlive: false },
  },
  {
    name: "CONNECT without a port",
    input: req("CONNECT example.com HTTP/1.1", "Host: example.com"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "CONNECT to an IPv6 literal without a port",
    input: req("CONNECT [::1] HTTP/1.1", "Host: [::1]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "CONNECT with a port only",
    input: req("CONNECT :443 HTTP/1.1", "Host: a"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "CONNECT with a quote in its authority",
    input: req('CONNECT a":443 HTTP/1.1', "Host: a"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "CONNECT with userinfo",
    input: req("CONNECT u@a:443 HTTP/1.1", "Host: a"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "CONNECT with origin-form",
    input: req("CONNECT / HTTP/1.1", "Host: a"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "CONNECT with absolute-form",
    input: req("CONNECT http://a:443/ HTTP/1.1", "Host: a"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "CONNECT with asterisk-form",
    input: req("CONNECT * HTTP/1.1", "Host: a"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name:
      "CONNECT with a body: the connection closes after it (no request read from tunnel data)",
    input: req(
      "CONNECT a:443 HTTP/1.1",
      "Host: a",
      "Content-Length: 5",
    ),
    expected: { contentLength: 5, keepAlive: false },
  },
  {
    name: "CONNECT with Connection: keep-alive still closes",
    input: req("CONNECT a:443 HTTP/1.1", "Host: a", "Connection: keep-alive"),
    expected: { keepAlive: false },
  },
  {
    name: "HTTP/1.0",
    input: req("GET / HTTP/1.0"),
    expected: { minor: 0, sentMinor: 0 },
  },
  {
    name: "HTTP/1.1",
    input: req("GET / HTTP/1.1", "Host: h"),
    expected: { minor: 1, sentMinor: 1 },
  },
  {
    name: "extension method token",
    input: req("PURGE /x HTTP/1.1", "Host: h"),
    expected: { method: "PURGE" },
  },
  {
    name: "method case preserved",
    input: req("get / HTTP/1.1", "Host: h"),
    expected: { method: "get" },
  },
  {
    name: "method of all tchar",
    input: req("!#$%&'*+-.^_`|~09AZaz / HTTP/1.1", "Host: h"),
    expected: { method: "!#$%&'*+-.^_`|~09AZaz" },
  },
  {
    name: "leading CRLF skipped",
    input: "\r\n" + req("GET /x HTTP/1.1", "Host: h"),
    expected: { method: "GET", path: "/x" },
  },
  {
    name: "two leading CRLF skipped",
    input: "\r\n\r\n" + req("GET /x HTTP/1.1", "Host: h"),
    expected: { method: "GET", path: "/x" },
  },
  {
    name: "leading CR alone is partial",
    input: "\r",
    expected: "partial",
  },
  {
    name: "leading CRLF alone is partial",
    input: "\r\n",
    expected: "partial",
  },
  // Unsupported versions.
  {
    name: "HTTP/2.0",
    input: req("GET / HTTP/2.0", "Host: h"),
    expected: STATUS_CODE.HTTPVersionNotSupported,
  },
  // RFC 9110 section 2.5: a higher minor version of 1 is served as 1.1.
  {
    name: "HTTP/1.2 read as 1.1",
    input: req("GET / HTTP/1.2", "Host: h"),
    expected: { minor: 1, sentMinor: 2, keepAlive: true },
  },
  {
    name: "HTTP/1.9 read as 1.1, Host still required",
    input: req("GET / HTTP/1.9"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "HTTP/0.9",
    input: req("GET / HTTP/0.9", "Host: h"),
    expected: STATUS_CODE.HTTPVersionNotSupported,
  },
  {
    name: "HTTP/3.0",
    input: req("GET / HTTP/3.0", "Host: h"),
    expected: STATUS_CODE.HTTPVersionNotSupported,
  },
  // Malformed versions.
  {
    name: "version HTTP/1",
    input: req("GET / HTTP/1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "version HTTP/1.",
    input: req("GET / HTTP/1.", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "lowercase version http/1.1",
    input: req("GET / http/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "version HTTP/1.1x",
    input: req("GET / HTTP/1.1x", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "version HTTP/11.1",
    input: req("GET / HTTP/11.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "version HTTP/1.10",
    input: req("GET / HTTP/1.10", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "version HTTP/a.1",
    input: req("GET / HTTP/a.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "version with trailing space",
    input: req("GET / HTTP/1.1 ", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "missing version",
    input: req("GET /", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "missing version after a space",
    input: req("GET / ", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "two spaces after method",
    input: req("GET  / HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "two spaces before version",
    input: req("GET /  HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "tab as separator",
    input: req("GET\t/ HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "tab before version",
    input: req("GET /\tHTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  // Methods.
  {
    name: "empty method",
    input: req(" / HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "method with (",
    input: req("G(T / HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "method with @",
    input: req("GET@ / HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "method with a quote",
    input: req('G"T / HTTP/1.1', "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "method with NUL",
    input: req("G\0T / HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "method with \\x7f",
    input: req("G\x7fT / HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "method with byte 0xff",
    input: bytes("G", 0xff, "T / HTTP/1.1\r\nHost: h\r\n\r\n"),
    expected: STATUS_CODE.BadRequest,
  },
  // Request target characters.
  {
    name: "target with NUL",
    input: req("GET /a\0b HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "target with \\x01",
    input: req("GET /a\x01b HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "target with tab",
    input: req("GET /a\tb HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "target with a space",
    input: req("GET /a b HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "target with \\x7f",
    input: req("GET /a\x7fb HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "target with byte 0x80",
    input: bytes("GET /a", 0x80, " HTTP/1.1\r\nHost: h\r\n\r\n"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "target with byte 0xff",
    input: bytes("GET /a", 0xff, " HTTP/1.1\r\nHost: h\r\n\r\n"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "target with UTF-8 text",
    input: req("GET /caf\u00e9 HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "target with a fragment (#)",
    input: req("GET /dir#x?y HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
];

Deno.test({
  name: "parseRequestHead() parses and validates the request line",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await runTable(t, REQUEST_LINE_CASES);
  },
});

// ---------------------------------------------------------------------------
// Field lines and line endings

const FIELD_CASES: readonly Case[] = [
  {
    name: "OWS around values trimmed",
    input: req(
      "GET / HTTP/1.1",
      "Host: \t a.example \t ",
      "Accept:\t text/html \t",
    ),
    expected: { host: "a.example", fields: { accept: "text/html" } },
  },
  {
    name: "value without OWS",
    input: req("GET / HTTP/1.1", "Host:a", "Accept:x/y"),
    expected: { host: "a", fields: { accept: "x/y" } },
  },
  {
    name: "inner whitespace kept",
    input: req("GET / HTTP/1.1", "Host: a", "Accept: a,  \tb"),
    expected: { fields: { accept: "a,  \tb" } },
  },
  {
    name: "empty value",
    input: req("GET / HTTP/1.1", "Host: a", "Accept:"),
    expected: { fields: { accept: "" } },
  },
  {
    name: "whitespace-only value",
    input: req("GET / HTTP/1.1", "Host: a", "Accept:  \t "),
    expected: { fields: { accept: "" } },
  },
  {
    name: "field names case-insensitive",
    input: req("GET / HTTP/1.1", "hOsT: a", "ACCEPT-ENCODING: gzip"),
    expected: { host: "a", fields: { acceptEncoding: "gzip" } },
  },
  {
    name: "Expect",
    input: req("GET / HTTP/1.1", "Host: a", "Expect: 100-continue"),
    expected: { host: "a", fields: { expect: "100-continue" } },
  },
  {
    name: "all fields acted on",
    input: req(
      "GET / HTTP/1.1",
      "Host: a",
      "Accept: text/*",
      "Accept-Encoding: br",
      "Range: bytes=1-2",
      'If-Range: "e"',
      'If-Match: "m"',
      'If-None-Match: W/"n"',
      "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT",
      "If-Unmodified-Since: Mon, 07 Nov 1994 08:49:37 GMT",
      "Origin: https://o.example",
      "Access-Control-Request-Method: PUT",
    ),
    expected: {
      fields: {
        accept: "text/*",
        acceptEncoding: "br",
        range: "bytes=1-2",
        ifRange: '"e"',
        ifMatch: '"m"',
        ifNoneMatch: 'W/"n"',
        ifModifiedSince: "Sun, 06 Nov 1994 08:49:37 GMT",
        ifUnmodifiedSince: "Mon, 07 Nov 1994 08:49:37 GMT",
        origin: "https://o.example",
        accessControlRequestMethod: "PUT",
      },
    },
  },
  {
    name: "unknown fields ignored",
    input: req("GET / HTTP/1.1", "Host: a", "X-Accept: b", "Accepts: c"),
    expected: { fields: {} },
  },
  {
    name: "repeated Accept-Encoding lines joined",
    input: req(
      "GET / HTTP/1.1",
      "Host: a",
      "Accept-Encoding: gzip",
      "Accept-Encoding: br",
    ),
    expected: { fields: { acceptEncoding: "gzip, br" } },
  },
  {
    name: "three repeated If-None-Match lines joined",
    input: req(
      "GET / HTTP/1.1",
      "Host: a",
      'If-None-Match: "a"',
      'If-None-Match: "b", "c"',
      'if-none-match: "d"',
    ),
    expected: { fields: { ifNoneMatch: '"a", "b", "c", "d"' } },
  },
  {
    name: "obs-text in a value",
    input: bytes(
      "GET / HTTP/1.1\r\nHost: a\r\nAccept: text/",
      0x80,
      0xe9,
      0xff,
      "\r\n\r\n",
    ),
    expected: { fields: { accept: "text/\x80\xe9\xff" } },
  },
  {
    name: "obs-text in an unknown field",
    input: bytes("GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf", 0xe9, "\r\n\r\n"),
    expected: { method: "GET" },
  },
  {
    name: "field name of all tchar",
    input: req("GET / HTTP/1.1", "Host: a", "!#$%&'*+-.^_`|~09AZaz: v"),
    expected: { method: "GET" },
  },
  {
    name: "space before the colon",
    input: req("GET / HTTP/1.1", "Host : a"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "space before the colon in another field",
    input: req("GET / HTTP/1.1", "Host: a", "X-A : b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "tab before the colon",
    input: req("GET / HTTP/1.1", "Host: a", "X-A\t: b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "line with no colon",
    input: req("GET / HTTP/1.1", "Host: a", "X-A b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "line of a bare name",
    input: req("GET / HTTP/1.1", "Host: a", "X-A"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "empty field name",
    input: req("GET / HTTP/1.1", "Host: a", ": b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "name with a space inside",
    input: req("GET / HTTP/1.1", "Host: a", "X A: b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "name with (",
    input: req("GET / HTTP/1.1", "Host: a", "X(A): b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "name with /",
    input: req("GET / HTTP/1.1", "Host: a", "X/A: b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "name with a byte 0xe9",
    input: bytes("GET / HTTP/1.1\r\nHost: a\r\nX", 0xe9, ": b\r\n\r\n"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "obs-fold with SP",
    input: req("GET / HTTP/1.1", "Host: a", "X-A: b", " c"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "obs-fold with HT",
    input: req("GET / HTTP/1.1", "Host: a", "X-A: b", "\tc"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "first field line starts with SP",
    input: req("GET / HTTP/1.1", " Host: a"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "NUL in a name",
    input: req("GET / HTTP/1.1", "Host: a", "X\0A: b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "NUL in a value",
    input: req("GET / HTTP/1.1", "Host: a", "X-A: b\0c"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "NUL at the end of a value",
    input: req("GET / HTTP/1.1", "Host: a", "X-A: b\0"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "\\x01 in a name",
    input: req("GET / HTTP/1.1", "Host: a", "X\x01A: b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "\\x01 in a value",
    input: req("GET / HTTP/1.1", "Host: a", "X-A: b\x01c"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "\\x1f in a value",
    input: req("GET / HTTP/1.1", "Host: a", "Accept: b\x1fc"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "\\x7f in a name",
    input: req("GET / HTTP/1.1", "Host: a", "X\x7fA: b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "\\x7f in a value",
    input: req("GET / HTTP/1.1", "Host: a", "X-A: b\x7fc"),
    expected: STATUS_CODE.BadRequest,
  },
];

Deno.test({
  name: "parseRequestHead() parses and validates field lines",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await runTable(t, FIELD_CASES);
  },
});

const LINE_ENDING_CASES: readonly Case[] = [
  {
    name: "request line ended by bare LF",
    input: "GET / HTTP/1.1\nHost: a\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "request line ended by bare CR",
    input: "GET / HTTP/1.1\rHost: a\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "request line with CR CR LF",
    input: "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "bare CR in the target",
    input: "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "bare LF in the target",
    input: "GET /a\nb HTTP/1.1\r\nHost: a\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "bare CR in the method",
    input: "GE\rT / HTTP/1.1\r\nHost: a\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "field line ended by bare LF",
    input: "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "field line ended by bare CR",
    input: "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "bare CR inside a value",
    input: "GET / HTTP/1.1\r\nHost: a\r\nX: b\rc\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "bare LF inside a value",
    input: "GET / HTTP/1.1\r\nHost: a\r\nX: b\nc\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "bare CR inside a name",
    input: "GET / HTTP/1.1\r\nHost: a\r\nX\rY: b\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "bare LF inside a name",
    input: "GET / HTTP/1.1\r\nHost: a\r\nX\nY: b\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "final empty line is a bare LF",
    input: "GET / HTTP/1.1\r\nHost: a\r\n\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "final empty line is a bare CR",
    input: "GET / HTTP/1.1\r\nHost: a\r\n\rX",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "final empty line is CR CR LF",
    input: "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "head of bare LF lines only",
    input: "GET / HTTP/1.1\nHost: a\n\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "leading bare LF",
    input: "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "leading bare CR",
    input: "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "leading CRLF then bare CR",
    input: "\r\n\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    expected: STATUS_CODE.BadRequest,
  },
];

Deno.test({
  name: "parseRequestHead() rejects bare CR and bare LF in the head",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await runTable(t, LINE_ENDING_CASES);
  },
});

// ---------------------------------------------------------------------------
// Host

const HOST_CASES: readonly Case[] = [
  {
    name: "reg-name",
    input: req("GET / HTTP/1.1", "Host: example.com"),
    expected: { host: "example.com" },
  },
  {
    name: "reg-name and port",
    input: req("GET / HTTP/1.1", "Host: example.com:8080"),
    expected: { host: "example.com:8080" },
  },
  {
    name: "IPv6 literal and port",
    input: req("GET / HTTP/1.1", "Host: [::1]:8080"),
    expected: { host: "[::1]:8080" },
  },
  {
    name: "percent-encoded and sub-delims",
    input: req("GET / HTTP/1.1", "Host: a%20b!$&'()*+,;=-._~"),
    expected: { host: "a%20b!$&'()*+,;=-._~" },
  },
  {
    name: "empty value",
    input: req("GET / HTTP/1.1", "Host:"),
    expected: { host: "" },
  },
  {
    name: "missing on HTTP/1.1",
    input: req("GET / HTTP/1.1", "Accept: */*"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "missing on HTTP/1.1 absolute-form",
    input: req("GET http://host/ HTTP/1.1"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "missing on HTTP/1.0",
    input: req("GET / HTTP/1.0", "Accept: */*"),
    expected: { host: "", minor: 0 },
  },
  {
    name: "present on HTTP/1.0",
    input: req("GET / HTTP/1.0", "Host: old.example"),
    expected: { host: "old.example", minor: 0 },
  },
  {
    name: "repeated with different values",
    input: req("GET / HTTP/1.1", "Host: a", "Host: b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "repeated with the same value",
    input: req("GET / HTTP/1.1", "Host: a", "Host: a"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "repeated on HTTP/1.0",
    input: req("GET / HTTP/1.0", "Host: a", "host: a"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "value with a space",
    input: req("GET / HTTP/1.1", "Host: a b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "value with a slash",
    input: req("GET / HTTP/1.1", "Host: a/b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "value with userinfo",
    input: req("GET / HTTP/1.1", "Host: a@b"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "value with a quote",
    input: req("GET / HTTP/1.1", 'Host: "a"'),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "value with a tab inside",
    input: req("GET / HTTP/1.1", "Host: a\tb"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "value with obs-text",
    input: bytes("GET / HTTP/1.1\r\nHost: caf", 0xe9, "\r\n\r\n"),
    expected: STATUS_CODE.BadRequest,
  },
  // The structure of uri-host [ ":" port ] (RFC 3986 section 3.2.2).
  {
    name: "IPv4 and port",
    input: req("GET / HTTP/1.1", "Host: 127.0.0.1:7890"),
    expected: { host: "127.0.0.1:7890" },
  },
  {
    name: "IPv6 loopback",
    input: req("GET / HTTP/1.1", "Host: [::1]"),
    expected: { host: "[::1]" },
  },
  {
    name: "IPv6 in full",
    input: req("GET / HTTP/1.1", "Host: [2001:db8:0:0:1:0:0:1]"),
    expected: { host: "[2001:db8:0:0:1:0:0:1]" },
  },
  {
    name: "IPv6 elided in the middle",
    input: req("GET / HTTP/1.1", "Host: [2001:db8::1]"),
    expected: { host: "[2001:db8::1]" },
  },
  {
    name: "IPv6 all elided",
    input: req("GET / HTTP/1.1", "Host: [::]"),
    expected: { host: "[::]" },
  },
  {
    name: "IPv6 elided at the end",
    input: req("GET / HTTP/1.1", "Host: [fe80::]"),
    expected: { host: "[fe80::]" },
  },
  {
    name: "IPv6 with an IPv4 tail",
    input: req("GET / HTTP/1.1", "Host: [::ffff:192.0.2.1]"),
    expected: { host: "[::ffff:192.0.2.1]" },
  },
  {
    name: "IPv6 in full with an IPv4 tail",
    input: req("GET / HTTP/1.1", "Host: [1:2:3:4:5:6:192.0.2.1]"),
    expected: { host: "[1:2:3:4:5:6:192.0.2.1]" },
  },
  {
    name: "IPvFuture",
    input: req("GET / HTTP/1.1", "Host: [v1.fe80::a+en1]"),
    expected: { host: "[v1.fe80::a+en1]" },
  },
  {
    name: "IPvFuture with version 0",
    input: req("GET / HTTP/1.1", "Host: [v0.a]"),
    expected: { host: "[v0.a]" },
  },
  {
    name: "IPv6 with an IPv4 tail of 255s",
    input: req("GET / HTTP/1.1", "Host: [::ffff:255.255.255.255]"),
    expected: { host: "[::ffff:255.255.255.255]" },
  },
  {
    name: "empty port",
    input: req("GET / HTTP/1.1", "Host: example.com:"),
    expected: { host: "example.com:" },
  },
  {
    name: "IPv6 literal and empty port",
    input: req("GET / HTTP/1.1", "Host: [::1]:"),
    expected: { host: "[::1]:" },
  },
  {
    name: "reg-name with uppercase escapes",
    input: req("GET / HTTP/1.1", "Host: a%2Fb"),
    expected: { host: "a%2Fb" },
  },
  {
    name: "two colons (a:b:c)",
    input: req("GET / HTTP/1.1", "Host: a:b:c"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "IPv6 without brackets (::1)",
    input: req("GET / HTTP/1.1", "Host: ::1"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "unclosed IPv6 literal ([::1)",
    input: req("GET / HTTP/1.1", "Host: [::1"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "closing bracket alone (::1])",
    input: req("GET / HTTP/1.1", "Host: ::1]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "bracket in a reg-name (a])",
    input: req("GET / HTTP/1.1", "Host: a]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "IPv6 literal with non-hex ([zz])",
    input: req("GET / HTTP/1.1", "Host: [zz]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "empty IP-literal ([])",
    input: req("GET / HTTP/1.1", "Host: []"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "bad escape (a%zz)",
    input: req("GET / HTTP/1.1", "Host: a%zz"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "cut escape (a%2)",
    input: req("GET / HTTP/1.1", "Host: a%2"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "text after the literal ([::1]x)",
    input: req("GET / HTTP/1.1", "Host: [::1]x"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "letters in the port (a:8a)",
    input: req("GET / HTTP/1.1", "Host: a:8a"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "port after a literal with letters ([::1]:8a)",
    input: req("GET / HTTP/1.1", "Host: [::1]:8a"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "nine IPv6 groups ([1:2:3:4:5:6:7:8:9])",
    input: req("GET / HTTP/1.1", "Host: [1:2:3:4:5:6:7:8:9]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "seven groups, nothing elided ([1:2:3:4:5:6:7])",
    input: req("GET / HTTP/1.1", "Host: [1:2:3:4:5:6:7]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "two elisions ([1::2::3])",
    input: req("GET / HTTP/1.1", "Host: [1::2::3]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "five hex digits in a group ([12345::1])",
    input: req("GET / HTTP/1.1", "Host: [12345::1]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "trailing single colon ([1::2:])",
    input: req("GET / HTTP/1.1", "Host: [1::2:]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "leading single colon ([:1::2])",
    input: req("GET / HTTP/1.1", "Host: [:1::2]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "IPv4 tail octet over 255 ([::256.0.0.1])",
    input: req("GET / HTTP/1.1", "Host: [::256.0.0.1]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "IPv4 tail with a leading zero ([::01.0.0.1])",
    input: req("GET / HTTP/1.1", "Host: [::01.0.0.1]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "IPv4 tail with three octets ([::1.2.3])",
    input: req("GET / HTTP/1.1", "Host: [::1.2.3]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "IPv4 tail and eight groups ([1:2:3:4:5:6:7:1.2.3.4])",
    input: req("GET / HTTP/1.1", "Host: [1:2:3:4:5:6:7:1.2.3.4]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "IPvFuture without a version ([v.a])",
    input: req("GET / HTTP/1.1", "Host: [v.a]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    // RFC 3986 section 3.2.2: a leading ":" only as part of "::".
    name: "IPv6 with one leading colon ([:12:3:4:5:6:7:8])",
    input: req("GET / HTTP/1.1", "Host: [:12:3:4:5:6:7:8]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "IPvFuture without a dot ([v1fe])",
    input: req("GET / HTTP/1.1", "Host: [v1fe]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "IPvFuture with nothing after the dot ([v1.])",
    input: req("GET / HTTP/1.1", "Host: [v1.]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "percent in an IP-literal ([::1%25eth0])",
    input: req("GET / HTTP/1.1", "Host: [::1%25eth0]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "IPvFuture with a bracket inside ([v1.[])",
    input: req("GET / HTTP/1.1", "Host: [v1.[]"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "a port without a host (:80)",
    input: req("GET / HTTP/1.1", "Host: :80"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "absolute-form with a port and no host",
    input: req("GET http://:80/x HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "absolute-form with an IPvFuture holding a bracket",
    input: req("GET http://[v1.[]/x HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  // The authority of an absolute-form target, the same way.
  {
    name: "absolute-form with an IPv6 authority",
    input: req("GET http://[::1]:8080/x HTTP/1.1", "Host: [::1]:8080"),
    expected: { form: "absolute", path: "/x" },
  },
  {
    name: "absolute-form with quotes and angle brackets in the authority",
    input: req('GET http://a"b<c>/x HTTP/1.1', "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "absolute-form with userinfo",
    input: req("GET http://user@host/x HTTP/1.1", "Host: host"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "absolute-form with two colons in the authority",
    input: req("GET http://a:b:c/x HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.BadRequest,
  },
];

Deno.test({
  name: "parseRequestHead() validates Host",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await runTable(t, HOST_CASES);
  },
});

// ---------------------------------------------------------------------------
// Content-Length

function withContentLength(...lines: string[]): string {
  return req("POST / HTTP/1.1", "Host: a", ...lines);
}

const CONTENT_LENGTH_CASES: readonly Case[] = [
  {
    name: "absent",
    input: req("POST / HTTP/1.1", "Host: a"),
    expected: { contentLength: -1, chunked: false },
  },
  {
    name: "zero",
    input: withContentLength("Content-Length: 0"),
    expected: { contentLength: 0 },
  },
  {
    name: "a number",
    input: withContentLength("Content-Length: 1234"),
    expected: { contentLength: 1234 },
  },
  {
    name: "leading zeros",
    input: withContentLength("Content-Length: 007"),
    expected: { contentLength: 7 },
  },
  {
    name: "OWS around the value",
    input: withContentLength("content-length: \t42 \t"),
    expected: { contentLength: 42 },
  },
  {
    name: "15 digits",
    input: withContentLength("Content-Length: 999999999999999"),
    expected: { contentLength: 999999999999999 },
  },
  {
    name: "16 digits: valid, too large",
    input: withContentLength("Content-Length: 1000000000000000"),
    expected: STATUS_CODE.ContentTooLarge,
  },
  {
    name: "20 digits: valid, too large",
    input: withContentLength("Content-Length: 99999999999999999999"),
    expected: STATUS_CODE.ContentTooLarge,
  },
  {
    name: "400 digits: valid, too large",
    input: withContentLength(`Content-Length: ${"9".repeat(400)}`),
    expected: STATUS_CODE.ContentTooLarge,
  },
  {
    name: "15 digits after 20 leading zeros",
    input: withContentLength(
      `Content-Length: ${"0".repeat(20)}999999999999999`,
    ),
    expected: { contentLength: 999999999999999 },
  },
  {
    name: "only zeros, 30 of them",
    input: withContentLength(`Content-Length: ${"0".repeat(30)}`),
    expected: { contentLength: 0 },
  },
  {
    name: "20 digits, a letter last",
    input: withContentLength("Content-Length: 9999999999999999999x"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "letters",
    input: withContentLength("Content-Length: abc"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "trailing letter",
    input: withContentLength("Content-Length: 5a"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "hexadecimal",
    input: withContentLength("Content-Length: 0x5"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "decimal point",
    input: withContentLength("Content-Length: 5.0"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "plus sign",
    input: withContentLength("Content-Length: +5"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "minus sign",
    input: withContentLength("Content-Length: -5"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "empty",
    input: withContentLength("Content-Length:"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "whitespace only",
    input: withContentLength("Content-Length:   "),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "comma list of equal values",
    input: withContentLength("Content-Length: 5, 5"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "two numbers separated by a space",
    input: withContentLength("Content-Length: 5 5"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "repeated identical lines",
    input: withContentLength("Content-Length: 5", "Content-Length: 5"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "repeated different lines",
    input: withContentLength("Content-Length: 5", "Content-Length: 6"),
    expected: STATUS_CODE.BadRequest,
  },
];

Deno.test({
  name: "parseRequestHead() validates Content-Length",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await runTable(t, CONTENT_LENGTH_CASES);
  },
});

// ---------------------------------------------------------------------------
// Transfer-Encoding

function withTE(...lines: string[]): string {
  return req("POST / HTTP/1.1", "Host: a", ...lines);
}

const TRANSFER_ENCODING_CASES: readonly Case[] = [
  {
    name: "chunked",
    input: withTE("Transfer-Encoding: chunked"),
    expected: { chunked: true, contentLength: -1 },
  },
  {
    name: "odd case ChUnKeD",
    input: withTE("transfer-encoding: ChUnKeD"),
    expected: { chunked: true },
  },
  {
    name: "whitespace around chunked",
    input: withTE("Transfer-Encoding: \t chunked \t"),
    expected: { chunked: true },
  },
  {
    // RFC 9110 section 5.6.1: empty list elements are ignored (llhttp
    // rejects "chunked,"; a recipient must accept it).
    name: "empty list elements around chunked",
    input: withTE("Transfer-Encoding: , chunked,"),
    expected: { chunked: true },
  },
  {
    name: "with Content-Length after",
    input: withTE("Transfer-Encoding: chunked", "Content-Length: 5"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "with Content-Length before",
    input: withTE("Content-Length: 5", "Transfer-Encoding: chunked"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "chunked, gzip",
    input: withTE("Transfer-Encoding: chunked, gzip"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "gzip alone",
    input: withTE("Transfer-Encoding: gzip"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "gzip, chunked",
    input: withTE("Transfer-Encoding: gzip, chunked"),
    expected: STATUS_CODE.NotImplemented,
  },
  {
    // As long as "chunked", and not it.
    name: "deflate, chunked",
    input: withTE("Transfer-Encoding: deflate, chunked"),
    expected: STATUS_CODE.NotImplemented,
  },
  {
    name: "gzip line then chunked line",
    input: withTE("Transfer-Encoding: gzip", "Transfer-Encoding: chunked"),
    expected: STATUS_CODE.NotImplemented,
  },
  {
    name: "chunked twice in one line",
    input: withTE("Transfer-Encoding: chunked, chunked"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "chunked in two lines",
    input: withTE("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "chunked line then gzip line",
    input: withTE("Transfer-Encoding: chunked", "Transfer-Encoding: gzip"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "in HTTP/1.0",
    input: req("POST / HTTP/1.0", "Transfer-Encoding: chunked"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "with a parameter",
    input: withTE("Transfer-Encoding: chunked;x=1"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "quoted",
    input: withTE('Transfer-Encoding: "chunked"'),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "two codings without a comma",
    input: withTE("Transfer-Encoding: gzip chunked"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "empty value",
    input: withTE("Transfer-Encoding:"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "a near-miss of chunked",
    input: withTE("Transfer-Encoding: chunke"),
    expected: STATUS_CODE.BadRequest,
  },
];

Deno.test({
  name: "parseRequestHead() validates Transfer-Encoding",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await runTable(t, TRANSFER_ENCODING_CASES);
  },
});

// ---------------------------------------------------------------------------
// Connection

const CONNECTION_CASES: readonly Case[] = [
  {
    name: "HTTP/1.1 default",
    input: req("GET / HTTP/1.1", "Host: a"),
    expected: { keepAlive: true },
  },
  {
    name: "HTTP/1.1 close",
    input: req("GET / HTTP/1.1", "Host: a", "Connection: close"),
    expected: { keepAlive: false },
  },
  {
    name: "HTTP/1.1 CLOSE",
    input: req("GET / HTTP/1.1", "Host: a", "connection: CLOSE"),
    expected: { keepAlive: false },
  },
  {
    name: "HTTP/1.1 close in a list",
    input: req("GET / HTTP/1.1", "Host: a", "Connection: foo, Close , bar"),
    expected: { keepAlive: false },
  },
  {
    name: "HTTP/1.1 close in a second line",
    input: req(
      "GET / HTTP/1.1",
      "Host: a",
      "Connection: keep-alive",
      "Connection: close",
    ),
    expected: { keepAlive: false },
  },
  {
    name: "HTTP/1.1 other options",
    input: req("GET / HTTP/1.1", "Host: a", "Connection: upgrade, te"),
    expected: { keepAlive: true },
  },
  {
    name: "HTTP/1.1 keep-alive",
    input: req("GET / HTTP/1.1", "Host: a", "Connection: keep-alive"),
    expected: { keepAlive: true },
  },
  {
    name: "HTTP/1.1 an option as long as close",
    input: req("GET / HTTP/1.1", "Host: a", "Connection: clone"),
    expected: { keepAlive: true },
  },
  {
    name: "HTTP/1.0 default",
    input: req("GET / HTTP/1.0"),
    expected: { keepAlive: false },
  },
  {
    name: "HTTP/1.0 keep-alive",
    input: req("GET / HTTP/1.0", "Connection: keep-alive"),
    expected: { keepAlive: true },
  },
  {
    name: "HTTP/1.0 Keep-Alive",
    input: req("GET / HTTP/1.0", "Connection: Keep-Alive"),
    expected: { keepAlive: true },
  },
  {
    name: "HTTP/1.0 keep-alive, close",
    input: req("GET / HTTP/1.0", "Connection: keep-alive, close"),
    expected: { keepAlive: false },
  },
  {
    name: "HTTP/1.0 close",
    input: req("GET / HTTP/1.0", "Connection: close"),
    expected: { keepAlive: false },
  },
  {
    name: "Connection that is not a token list",
    input: req("GET / HTTP/1.1", "Host: a", "Connection: cl;ose"),
    expected: STATUS_CODE.BadRequest,
  },
  {
    name: "Connection with two tokens not separated by a comma",
    input: req("GET / HTTP/1.0", "Connection: keep-alive close"),
    expected: STATUS_CODE.BadRequest,
  },
];

Deno.test({
  name: "parseRequestHead() decides keepAlive from version and Connection",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await runTable(t, CONNECTION_CASES);
  },
});

// ---------------------------------------------------------------------------
// Limits

const LINE_LIMIT = { maxRequestLine: 40 };
const HEAD_LIMIT = { maxHeadSize: 60 };
const COUNT_LIMIT = { maxHeaders: 4 };
const METHOD_LIMIT = { maxMethod: 8 };

const LIMIT_CASES: readonly Case[] = [
  {
    name: "request line of exactly maxRequestLine",
    input: req(requestLineOf(40), "Host: h"),
    limits: LINE_LIMIT,
    expected: { method: "GET" },
  },
  {
    name: "request line one over maxRequestLine",
    input: req(requestLineOf(41), "Host: h"),
    limits: LINE_LIMIT,
    expected: STATUS_CODE.URITooLong,
  },
  {
    name: "request line one over maxRequestLine, head still partial",
    input: requestLineOf(41) + "\r\nHost: h\r\n",
    limits: LINE_LIMIT,
    expected: STATUS_CODE.URITooLong,
  },
  {
    name: "request line of exactly maxRequestLine, cut after its CR",
    input: requestLineOf(40) + "\r",
    limits: LINE_LIMIT,
    expected: "partial",
  },
  {
    name: "request line of exactly maxRequestLine, cut before its CR",
    input: requestLineOf(40),
    limits: LINE_LIMIT,
    expected: "partial",
  },
  {
    name: "partial request line of exactly maxRequestLine bytes",
    input: "GET /" + "a".repeat(35),
    limits: LINE_LIMIT,
    expected: "partial",
  },
  {
    name: "partial request line one over maxRequestLine in the target",
    input: "GET /" + "a".repeat(36),
    limits: LINE_LIMIT,
    expected: STATUS_CODE.URITooLong,
  },
  {
    name: "partial request line one over maxRequestLine in the method",
    input: "G".repeat(41),
    limits: { ...LINE_LIMIT, maxMethod: 100 },
    expected: STATUS_CODE.URITooLong,
  },
  {
    name: "method of exactly maxMethod",
    input: req("ABCDEFGH / HTTP/1.1", "Host: h"),
    limits: METHOD_LIMIT,
    expected: { method: "ABCDEFGH" },
  },
  {
    name: "method one over maxMethod",
    input: req("ABCDEFGHI / HTTP/1.1", "Host: h"),
    limits: METHOD_LIMIT,
    expected: STATUS_CODE.NotImplemented,
  },
  {
    name: "partial method of exactly maxMethod",
    input: "ABCDEFGH",
    limits: METHOD_LIMIT,
    expected: "partial",
  },
  {
    name: "partial method one over maxMethod",
    input: "ABCDEFGHI",
    limits: METHOD_LIMIT,
    expected: STATUS_CODE.NotImplemented,
  },
  {
    name: "a 9000-byte method is 501, not 414",
    input: req("M".repeat(9000) + " / HTTP/1.1", "Host: h"),
    expected: STATUS_CODE.NotImplemented,
  },
  {
    name: "leading CRLF not counted in the request line",
    input: "\r\n" + req(requestLineOf(40), "Host: h"),
    limits: LINE_LIMIT,
    expected: { method: "GET" },
  },
  {
    name: "head of exactly maxHeadSize",
    input: headOf(60),
    limits: HEAD_LIMIT,
    expected: { host: "a" },
  },
  {
    name: "head one over maxHeadSize",
    input: headOf(61),
    limits: HEAD_LIMIT,
    expected: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
  {
    name: "partial head of exactly maxHeadSize bytes",
    input: headOf(70).slice(0, 60),
    limits: HEAD_LIMIT,
    expected: "partial",
  },
  {
    name: "partial head one over maxHeadSize",
    input: headOf(70).slice(0, 61),
    limits: HEAD_LIMIT,
    expected: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
  {
    name: "partial head far over maxHeadSize",
    input: "GET / HTTP/1.1\r\nHost: a\r\nX: " + "a".repeat(200),
    limits: HEAD_LIMIT,
    expected: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
  {
    name: "partial head over maxHeadSize inside a field name",
    input: "GET / HTTP/1.1\r\nHost: a\r\n" + "X".repeat(100),
    limits: HEAD_LIMIT,
    expected: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
  {
    name: "exactly maxHeaders field lines",
    input: req("GET / HTTP/1.1", ...fieldLines(4)),
    limits: COUNT_LIMIT,
    expected: { host: "a" },
  },
  {
    name: "one over maxHeaders field lines",
    input: req("GET / HTTP/1.1", ...fieldLines(5)),
    limits: COUNT_LIMIT,
    expected: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
  {
    name: "one over maxHeaders field lines, head still partial",
    input: "GET / HTTP/1.1\r\n" + fieldLines(5).join("\r\n") + "\r\n",
    limits: COUNT_LIMIT,
    expected: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
];

Deno.test({
  name: "parseRequestHead() enforces caller-set limits at the boundary",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await runTable(t, LIMIT_CASES);
  },
});

const DEFAULT_LIMIT_CASES: readonly Case[] = [
  {
    name: "target of 9000 characters",
    input: req(`GET /${"a".repeat(9000)} HTTP/1.1`, "Host: h"),
    expected: STATUS_CODE.URITooLong,
  },
  {
    name: "partial target of 9000 characters",
    input: `GET /${"a".repeat(9000)}`,
    expected: STATUS_CODE.URITooLong,
  },
  {
    name: "request line of exactly 8192",
    input: req(requestLineOf(PARSE_LIMITS.maxRequestLine), "Host: h"),
    expected: { method: "GET" },
  },
  {
    name: "request line of 8193",
    input: req(requestLineOf(PARSE_LIMITS.maxRequestLine + 1), "Host: h"),
    expected: STATUS_CODE.URITooLong,
  },
  {
    name: "head of exactly 16384",
    input: headOf(PARSE_LIMITS.maxHeadSize),
    expected: { host: "a" },
  },
  {
    name: "head of 16385",
    input: headOf(PARSE_LIMITS.maxHeadSize + 1),
    expected: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
  {
    name: "100 field lines",
    input: req("GET / HTTP/1.1", ...fieldLines(PARSE_LIMITS.maxHeaders)),
    expected: { host: "a" },
  },
  {
    name: "101 field lines",
    input: req("GET / HTTP/1.1", ...fieldLines(PARSE_LIMITS.maxHeaders + 1)),
    expected: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
  {
    name: "method of exactly 32",
    input: req("M".repeat(PARSE_LIMITS.maxMethod) + " / HTTP/1.1", "Host: h"),
    expected: { method: "M".repeat(32) },
  },
  {
    name: "method of 33",
    input: req(
      "M".repeat(PARSE_LIMITS.maxMethod + 1) + " / HTTP/1.1",
      "Host: h",
    ),
    expected: STATUS_CODE.NotImplemented,
  },
  {
    name: "empty limits object falls back to the defaults",
    input: req(`GET /${"a".repeat(9000)} HTTP/1.1`, "Host: h"),
    limits: {},
    expected: STATUS_CODE.URITooLong,
  },
  {
    name: "one limit set keeps the other defaults",
    input: req(`GET /${"a".repeat(9000)} HTTP/1.1`, "Host: h"),
    limits: { maxHeaders: 2 },
    expected: STATUS_CODE.URITooLong,
  },
];

Deno.test({
  name: "parseRequestHead() uses PARSE_LIMITS when no limits are given",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await t.step("PARSE_LIMITS values", (): void => {
      assert.deepEqual(
        { ...PARSE_LIMITS },
        {
          maxRequestLine: 8192,
          maxHeadSize: 16384,
          maxHeaders: 100,
          maxMethod: 32,
        },
      );
    });
    await runTable(t, DEFAULT_LIMIT_CASES);
  },
});

Deno.test({
  name: "latin1() decodes right when short strings share a cache slot",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    // 4,000 distinct paths of one length through 512 slots: most collide,
    // and each must still come back as its own text, hit or miss.
    const paths = Array.from(
      { length: 4000 },
      (_, i) => `/p${String(i).padStart(8, "0")}.html`,
    );
    const bytes = paths.map((p) => new TextEncoder().encode(`GET ${p} x`));
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < paths.length; i += round + 1) {
        const b = bytes[i];
        assert.equal(latin1(b, 4, b.length - 2), paths[i]);
      }
    }
    const long = "/" + "a".repeat(5000);
    const b = new TextEncoder().encode(long);
    assert.equal(latin1(b, 0, b.length), long);
    assert.equal(latin1(new Uint8Array([0xe9, 0x41]), 0, 2), "\u00e9A");
  },
});

Deno.test({
  name:
    "parseRequestHead() returns each Host as sent when hosts share a cache slot",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    // Host is checked and hashed in one pass, then looked up in the same
    // cache as latin1(): distinct hosts (63 to 66 bytes long, around the
    // cache's 64-byte limit, and short ones) must each come back intact.
    const hosts: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const pad = i % 4 === 0 ? 0 : 59 + (i % 4);
      hosts.push(`h${i}.example`.padEnd(pad, "x") + ":80");
    }
    for (let round = 0; round < 2; round++) {
      for (const host of hosts) {
        const result = parseRequestHead(
          new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`),
        );
        assert.equal(result.kind, "complete");
        if (result.kind === "complete") assert.equal(result.head.host, host);
      }
    }
  },
});

Deno.test({
  name:
    "parseRequestHead() says where a complete, valid request line lies when what follows it fails",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const line = "GET /x?y HTTP/1.1";
    const manyFields = Array.from({ length: 101 }, (_, i) => `X-${i}: v`);
    const cases: [string, string, StatusCode, string | undefined][] = [
      [
        "too many fields",
        req(line, "Host: a", ...manyFields),
        STATUS_CODE.RequestHeaderFieldsTooLarge,
        line,
      ],
      [
        "head too large",
        req(line, "Host: a", `X: ${"v".repeat(17000)}`),
        STATUS_CODE.RequestHeaderFieldsTooLarge,
        line,
      ],
      ["missing Host", req(line), STATUS_CODE.BadRequest, line],
      ["invalid Host", req(line, "Host: a b"), STATUS_CODE.BadRequest, line],
      [
        "repeated Host",
        req(line, "Host: a", "Host: b"),
        STATUS_CODE.BadRequest,
        line,
      ],
      [
        "bare LF in a field",
        line + "\r\nHost: a\n\r\n",
        STATUS_CODE.BadRequest,
        line,
      ],
      [
        "obs-fold",
        req(line, "Host: a", " folded"),
        STATUS_CODE.BadRequest,
        line,
      ],
      [
        "Transfer-Encoding with Content-Length",
        req(line, "Host: a", "Content-Length: 1", "Transfer-Encoding: chunked"),
        STATUS_CODE.BadRequest,
        line,
      ],
      [
        "after empty lines",
        "\r\n\r\n" + req(line),
        STATUS_CODE.BadRequest,
        line,
      ],
      [
        "HTTP/1.0 line",
        req("GET / HTTP/1.0", "Content-Length: x"),
        STATUS_CODE.BadRequest,
        "GET / HTTP/1.0",
      ],
      // The request line itself is at fault: nothing to log.
      [
        "invalid method",
        req("G@T / HTTP/1.1", "Host: a"),
        STATUS_CODE.BadRequest,
        undefined,
      ],
      [
        "HTTP/2.0",
        req("GET / HTTP/2.0", "Host: a"),
        STATUS_CODE.HTTPVersionNotSupported,
        undefined,
      ],
      [
        "asterisk without OPTIONS",
        req("GET * HTTP/1.1", "Host: a"),
        STATUS_CODE.BadRequest,
        undefined,
      ],
      [
        "bad authority",
        req("GET http://a b/ HTTP/1.1", "Host: a"),
        STATUS_CODE.BadRequest,
        undefined,
      ],
      [
        "request line too long",
        req(`GET /${"a".repeat(9000)} HTTP/1.1`),
        STATUS_CODE.URITooLong,
        undefined,
      ],
      [
        "bare LF ending the request line",
        "GET / HTTP/1.1\nHost: a\r\n\r\n",
        400,
        undefined,
      ],
      [
        "CR CR LF ending the request line",
        "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n",
        400,
        undefined,
      ],
    ];
    for (const [name, input, status, expected] of cases) {
      for (const offset of [0, 3]) {
        // Also from inside a buffer, as a connection parses.
        const buf = concatBytes([new Uint8Array(offset), enc(input)]);
        const result = parseRequestHead(buf, { start: offset });
        assert.equal(result.kind, "error", name);
        if (result.kind !== "error") continue;
        assert.equal(result.status, status, name);
        const found = result.lineEnd === undefined
          ? undefined
          : latin1(buf, result.lineStart!, result.lineEnd);
        assert.equal(found, expected, `${name} at ${offset}`);
      }
    }
  },
});

Deno.test({
  name:
    "latin1() decodes right when a string shares a cache slot with a longer one it starts",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    // Each string after each one-byte extension of it: for some of the
    // pairs both land in one slot, where the cached bytes match as far as
    // the shorter string goes.
    for (let i = 0; i < 200; i++) {
      const short = `/p${i}`;
      for (let c = 0x21; c < 0x7f; c++) {
        const long = short + String.fromCharCode(c);
        assert.equal(latin1(encoder.encode(long), 0, long.length), long);
        assert.equal(latin1(encoder.encode(short), 0, short.length), short);
      }
    }
  },
});

/** The methods of RFC 9110 and RFC 5789, which the parser shares. */
const KNOWN_METHODS = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "OPTIONS",
  "PATCH",
  "CONNECT",
  "TRACE",
];

Deno.test({
  name:
    "parseRequestHead() keeps a method one byte away from a known one as sent",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const variants = new Set<string>();
    for (const m of KNOWN_METHODS) {
      variants.add(m + "X");
      variants.add(m.slice(0, -1));
      for (let k = 0; k < m.length; k++) {
        for (const d of [-1, 1]) {
          const c = String.fromCharCode(m.charCodeAt(k) + d);
          variants.add(m.slice(0, k) + c + m.slice(k + 1));
        }
      }
    }
    for (const method of variants) {
      if (!/^[A-Z]+$/.test(method) || KNOWN_METHODS.includes(method)) continue;
      check({
        name: method,
        input: req(`${method} / HTTP/1.1`, "Host: a"),
        expected: { method },
      });
    }
  },
});

Deno.test({
  name: "parseRequestHead() checks every byte of the HTTP-version",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    // HTTP-version = "HTTP/" DIGIT "." DIGIT, then CRLF (RFC 9112 section 2.3).
    const version = "HTTP/1.1\r\n";
    for (let k = 0; k < version.length; k++) {
      for (const d of [-1, 1]) {
        const sent = version.slice(0, k) +
          String.fromCharCode(version.charCodeAt(k) + d) +
          version.slice(k + 1);
        const input = `GET / ${sent}Host: a\r\n\r\n`;
        const m = /^HTTP\/(\d)\.(\d)\r\n$/.exec(sent);
        check({
          name: JSON.stringify(sent),
          input,
          expected: m === null
            ? STATUS_CODE.BadRequest
            : m[1] !== "1"
            ? STATUS_CODE.HTTPVersionNotSupported
            : { sentMinor: +m[2] },
        });
      }
    }
  },
});
