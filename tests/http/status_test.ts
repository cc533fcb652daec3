import assert from "node:assert/strict";
import {
  STATUS_CODE,
  STATUS_TEXT,
  type StatusCode,
} from "../../src/http/status.ts";
import { SANITIZE } from "../test_util.ts";

/** Reason phrases as RFC 9110 section 15 names them (RFC 6585 for 431). */
const RFC_PHRASES: Record<number, string> = {
  200: "OK",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  304: "Not Modified",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  416: "Range Not Satisfiable",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

Deno.test({
  name: "STATUS_TEXT gives every STATUS_CODE its RFC reason phrase",
  ...SANITIZE,
  fn(): void {
    const codes = Object.values(STATUS_CODE) as StatusCode[];
    assert.equal(new Set(codes).size, codes.length, "codes are distinct");
    for (const [name, code] of Object.entries(STATUS_CODE)) {
      assert.ok(code >= 100 && code <= 599, name);
      assert.equal(STATUS_TEXT[code], RFC_PHRASES[code], `${name} (${code})`);
      // The phrase is sent as is: visible ASCII and spaces only.
      assert.match(STATUS_TEXT[code], /^[\x21-\x7e]+( [\x21-\x7e]+)*$/, name);
    }
    assert.deepEqual(
      Object.keys(STATUS_TEXT).map(Number).sort(),
      [...codes].sort(),
      "STATUS_TEXT has no phrase for a code STATUS_CODE lacks",
    );
  },
});

Deno.test({
  name: "STATUS_CODE names read as the RFC's reason phrases",
  ...SANITIZE,
  fn(): void {
    for (const [name, code] of Object.entries(STATUS_CODE)) {
      // "Not Modified" -> "NotModified"; "URI Too Long" -> "URITooLong".
      assert.equal(name, RFC_PHRASES[code].replaceAll(" ", ""), String(code));
    }
  },
});
