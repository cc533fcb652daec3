import assert from "node:assert/strict";
import {
  buildErrorPages,
  encodeResponse,
  ERROR_STATUSES,
  errorPage,
  escapeHtml,
  httpDate,
  type ResponseOptions,
  SERVER_NAME,
} from "../../src/http/response.ts";
import {
  STATUS_CODE,
  STATUS_TEXT,
  type StatusCode,
} from "../../src/http/status.ts";
import { bytes, SANITIZE } from "../test_util.ts";

const decoder = new TextDecoder();

/** RFC 9110's example date. */
const NOW = 784111777000;
const DATE = "Sun, 06 Nov 1994 08:49:37 GMT";

Deno.test({
  name: "httpDate() formats fixed times as IMF-fixdate",
  ...SANITIZE,
  fn(): void {
    const cases: [number, string][] = [
      [NOW, DATE],
      [NOW + 999, DATE],
      [NOW + 1000, "Sun, 06 Nov 1994 08:49:38 GMT"],
      [0, "Thu, 01 Jan 1970 00:00:00 GMT"],
      [951782400000, "Tue, 29 Feb 2000 00:00:00 GMT"],
      [Date.UTC(2025, 6, 4, 5, 6, 7), "Fri, 04 Jul 2025 05:06:07 GMT"],
      [Date.UTC(1999, 11, 31, 23, 59, 59), "Fri, 31 Dec 1999 23:59:59 GMT"],
      [NOW, DATE], // back again after the cache moved on
    ];
    for (const [ms, text] of cases) {
      assert.equal(httpDate(ms), text, String(ms));
    }
  },
});

Deno.test({
  name: "httpDate() defaults to now",
  ...SANITIZE,
  fn(): void {
    assert.match(
      httpDate(),
      /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/,
    );
  },
});

Deno.test({
  name: "encodeResponse() encodes exact response bytes",
  ...SANITIZE,
  fn(): void {
    const head = (status: string, extra: string): string =>
      `HTTP/1.1 ${status}\r\nDate: ${DATE}\r\nServer: ${SERVER_NAME}\r\n${extra}\r\n`;
    const cases: {
      name: string;
      status: StatusCode;
      fields: string;
      options: ResponseOptions;
      expected: string;
    }[] = [
      {
        name: "200 with a body",
        status: STATUS_CODE.OK,
        fields: "Content-Type: text/plain\r\n",
        options: { body: bytes("hello"), now: NOW },
        expected: head(
          "200 OK",
          "Content-Type: text/plain\r\nContent-Length: 5\r\n",
        ) + "hello",
      },
      {
        name: "200 without a body or a length",
        status: STATUS_CODE.OK,
        fields: "",
        options: { now: NOW },
        expected: head("200 OK", "Content-Length: 0\r\n"),
      },
      {
        name: "304 with contentLength null",
        status: STATUS_CODE.NotModified,
        fields: 'ETag: "abc"\r\n',
        options: { contentLength: null, now: NOW },
        expected: head("304 Not Modified", 'ETag: "abc"\r\n'),
      },
      {
        name: "204 with contentLength null and close",
        status: STATUS_CODE.NoContent,
        fields: "",
        options: { contentLength: null, close: true, now: NOW },
        expected: head("204 No Content", "Connection: close\r\n"),
      },
      {
        name: "close",
        status: STATUS_CODE.NotFound,
        fields: "",
        options: { body: bytes("x"), close: true, now: NOW },
        expected: head(
          "404 Not Found",
          "Content-Length: 1\r\nConnection: close\r\n",
        ) + "x",
      },
      {
        name: "keepAlive",
        status: STATUS_CODE.OK,
        fields: "",
        options: { body: bytes("ab"), keepAlive: true, now: NOW },
        expected: head(
          "200 OK",
          "Content-Length: 2\r\nConnection: keep-alive\r\n",
        ) + "ab",
      },
      {
        name: "close wins over keepAlive",
        status: STATUS_CODE.OK,
        fields: "",
        options: { close: true, keepAlive: true, now: NOW },
        expected: head("200 OK", "Content-Length: 0\r\nConnection: close\r\n"),
      },
      {
        name: "HEAD-style: a length without a body",
        status: STATUS_CODE.OK,
        fields: "Content-Type: text/html\r\n",
        options: { contentLength: 1234, now: NOW },
        expected: head(
          "200 OK",
          "Content-Type: text/html\r\nContent-Length: 1234\r\n",
        ),
      },
      {
        name: "an explicit length with a partial body (streamed rest)",
        status: STATUS_CODE.PartialContent,
        fields: "Content-Range: bytes 0-9/100\r\n",
        options: { contentLength: 10, body: bytes("0123"), now: NOW },
        expected: head(
          "206 Partial Content",
          "Content-Range: bytes 0-9/100\r\nContent-Length: 10\r\n",
        ) + "0123",
      },
    ];
    for (const c of cases) {
      const out = encodeResponse(c.status, c.fields, c.options);
      assert.equal(decoder.decode(out), c.expected, c.name);
      assert.equal(out.length, bytes(c.expected).length, c.name);
    }
  },
});

Deno.test({
  name: "encodeResponse() keeps binary body bytes intact",
  ...SANITIZE,
  fn(): void {
    const body = new Uint8Array(256).map((_, i) => i);
    const out = encodeResponse(STATUS_CODE.OK, "", { body, now: NOW });
    assert.deepEqual(out.subarray(out.length - 256), body);
  },
});

Deno.test({
  name: "encodeResponse() throws on non-ASCII header fields",
  ...SANITIZE,
  fn(): void {
    const fields = [
      "X-A: caf\u00e9\r\n",
      "X-A: \u20ac\r\n",
      "X-A: \u{1f600}\r\n",
    ];
    const options: [string, ResponseOptions][] = [
      ["with a body", { body: bytes("body"), now: NOW }],
      ["without a body", { now: NOW }],
      ["with contentLength null", { contentLength: null, now: NOW }],
      ["HEAD-style", { contentLength: 10, now: NOW }],
    ];
    for (const field of fields) {
      for (const [name, opts] of options) {
        assert.throws(
          () => encodeResponse(STATUS_CODE.OK, field, opts),
          TypeError,
          `${JSON.stringify(field)} ${name}`,
        );
      }
    }
  },
});

Deno.test({
  name: "escapeHtml() escapes the five HTML special characters",
  ...SANITIZE,
  fn(): void {
    const cases: [string, string][] = [
      ["", ""],
      ["plain text", "plain text"],
      ["&", "&amp;"],
      ["<", "&lt;"],
      [">", "&gt;"],
      ['"', "&quot;"],
      ["'", "&#39;"],
      ["&amp;", "&amp;amp;"],
      [
        `<a href="x" title='y'>A & B</a>`,
        "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;A &amp; B&lt;/a&gt;",
      ],
      ["caf\u00e9 \u{1f600}", "caf\u00e9 \u{1f600}"],
    ];
    for (const [input, output] of cases) {
      assert.equal(escapeHtml(input), output, JSON.stringify(input));
    }
  },
});

Deno.test({
  name: "errorPage() is a fixed HTML page naming the status",
  ...SANITIZE,
  fn(): void {
    const page = decoder.decode(errorPage(STATUS_CODE.NotFound));
    assert.ok(page.includes("<title>404 Not Found</title>"), page);
    assert.ok(page.includes("<h1>404 Not Found</h1>"), page);
    assert.match(page, /^<!doctype html>/i);
    assert.ok(page.includes('<meta charset="utf-8">'));
    // The page depends on the status only.
    assert.deepEqual(errorPage(STATUS_CODE.NotFound), errorPage(404));
    for (const status of ERROR_STATUSES) {
      const text = decoder.decode(errorPage(status));
      assert.ok(
        text.includes(`<h1>${status} ${STATUS_TEXT[status]}</h1>`),
        String(status),
      );
    }
  },
});

Deno.test({
  name: "buildErrorPages() has a page for every error status",
  ...SANITIZE,
  fn(): void {
    const pages = buildErrorPages();
    assert.equal(pages.size, ERROR_STATUSES.length);
    for (const status of ERROR_STATUSES) {
      assert.deepEqual(pages.get(status), errorPage(status), String(status));
    }
    for (
      const status of [
        STATUS_CODE.BadRequest,
        STATUS_CODE.NotFound,
        STATUS_CODE.RequestTimeout,
        STATUS_CODE.InternalServerError,
        STATUS_CODE.ServiceUnavailable,
        STATUS_CODE.HTTPVersionNotSupported,
      ]
    ) {
      assert.ok(ERROR_STATUSES.includes(status), String(status));
    }
  },
});

Deno.test({
  name: "buildErrorPages() uses the given 404 page",
  ...SANITIZE,
  fn(): void {
    const custom = bytes("<h1>Gone fishing</h1>");
    const pages = buildErrorPages(custom);
    assert.equal(pages.size, ERROR_STATUSES.length);
    assert.deepEqual(pages.get(STATUS_CODE.NotFound), custom);
    assert.deepEqual(pages.get(STATUS_CODE.Forbidden), errorPage(403));
  },
});
