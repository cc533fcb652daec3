/**
 * Raw-socket integration tests of one connection: keep-alive, pipelining,
 * HEAD, error pages, redirects, methods, malformed requests, bodies, large
 * files, and the header and idle timeouts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type AccessRecord, Connection, TIMEOUTS } from "../src/connection.ts";
import { ALLOWED_METHODS, Handler, type Reply } from "../src/handler.ts";
import { STATUS_CODE } from "../src/http/status.ts";
import { formatCommonLog } from "../src/log.ts";
import { Server } from "../src/server.ts";
import {
  bytes,
  concatBytes,
  connect,
  exchange,
  findHeadEnd,
  get,
  getOn,
  randomBytes,
  type RawResponse,
  readHead,
  readInto,
  ResponseReader,
  SANITIZE,
  sha256,
  sleep,
  startServer,
  until,
  waitClosed,
  withServer,
  withTimeout,
  withTree,
  writeAll,
} from "./test_util.ts";

const MiB = 1024 * 1024;
const BIG_SIZE = 20 * MiB;

/** Files of the default tree. */
const FILES: Record<string, string> = {
  "a.txt": "contents of a\n",
  "b.txt": "bee\n",
  "secret.txt": "TOP SECRET\n",
  "p1.txt": "pipelined one\n",
  "p2.txt": "pipelined two two\n",
  "p3.txt": "pipelined three three three\n",
  "p4.txt": "pipelined four\n",
  "p5.txt": "pipelined five five\n",
  "dir/index.html": "<p>dir index</p>\n",
};

/**
 * Reads one response with a large body efficiently (into one buffer of its
 * Content-Length). Never reads past the body: send the next request only
 * after it returns.
 */
async function readLarge(
  conn: Deno.Conn,
): Promise<
  {
    status: number;
    headers: Record<string, string>;
    body: Uint8Array<ArrayBuffer>;
  }
> {
  const { status, headers, rest } = await readHead(conn);
  const length = Number(headers["content-length"]);
  assert.ok(rest.length <= length, "bytes past the body");
  const body = new Uint8Array(length);
  body.set(rest);
  await readInto(conn, body, { got: rest.length, end: length });
  return { status, headers, body };
}

function assertFile(res: RawResponse, name: string): void {
  assert.equal(res.status, STATUS_CODE.OK, `${name}: ${res.statusLine}`);
  assert.equal(res.text, FILES[name], name);
}

// --- keep-alive ------------------------------------------------------------

Deno.test({
  name:
    "Connection.serve() serves several sequential requests on one HTTP/1.1 connection",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      const conn = await connect(port);
      try {
        const reader = new ResponseReader(conn);
        for (const name of ["a.txt", "b.txt", "a.txt", "p3.txt"]) {
          await writeAll(conn, bytes(get(`/${name}`)));
          const res = await reader.read();
          assertFile(res, name);
          assert.equal(res.headers.connection, undefined);
        }
      } finally {
        conn.close();
      }
    });
  },
});

Deno.test({
  name: "Connection.serve() closes an HTTP/1.0 connection by default",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      const { responses, closed } = await exchange(
        port,
        "GET /a.txt HTTP/1.0\r\n\r\n",
      );
      assertFile(responses[0], "a.txt");
      assert.equal(responses[0].headers.connection, "close");
      assert.equal(closed, true);
    });
  },
});

Deno.test({
  name:
    "Connection.serve() keeps an HTTP/1.0 connection open on Connection: keep-alive",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      const { responses, closed } = await exchange(
        port,
        "GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" +
          "GET /b.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        { count: 2 },
      );
      assertFile(responses[0], "a.txt");
      assertFile(responses[1], "b.txt");
      for (const res of responses) {
        assert.equal(res.headers.connection, "keep-alive");
      }
      assert.equal(closed, false);
    });
  },
});

Deno.test({
  name: "Connection.serve() honours Connection: close",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      await t.step("alone", async () => {
        const { responses, closed } = await exchange(
          port,
          get("/a.txt", "Connection: close\r\n"),
        );
        assertFile(responses[0], "a.txt");
        assert.equal(responses[0].headers.connection, "close");
        assert.equal(closed, true);
      });
      await t.step("a pipelined request after it is not answered", async () => {
        const conn = await connect(port);
        try {
          await writeAll(
            conn,
            bytes(get("/a.txt", "Connection: close\r\n") + get("/b.txt")),
          );
          const reader = new ResponseReader(conn);
          const res = await withTimeout(reader.read(), 5000, {
            label: "response",
          });
          assertFile(res, "a.txt");
          assert.equal(res.headers.connection, "close");
          assert.equal(
            await withTimeout(reader.atEnd(), 5000, { label: "end" }),
            true,
          );
        } finally {
          conn.close();
        }
      });
    });
  },
});

// --- pipelining ------------------------------------------------------------

Deno.test({
  name: "Connection.serve() answers pipelined requests in order",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      const names = ["p1.txt", "p2.txt", "p3.txt", "p4.txt", "p5.txt"];
      const request = names.map((n) => get(`/${n}`)).join("");
      for (const chunk of [undefined, 1]) {
        await t.step(
          chunk === undefined ? "one write" : "1-byte writes",
          async () => {
            const { responses, closed } = await exchange(port, request, {
              count: names.length,
              chunk,
            });
            responses.forEach((res, i) => assertFile(res, names[i]));
            assert.equal(closed, false);
          },
        );
      }
    });
  },
});

// --- HEAD ------------------------------------------------------------------

Deno.test({
  name: "Connection.serve() answers HEAD with the headers of GET and no body",
  ...SANITIZE,
  async fn(t): Promise<void> {
    const big = new Uint8Array(3 * MiB).fill(0x61);
    await withServer({ ...FILES, "big.bin": big }, {}, async ({ port }) => {
      for (const path of ["/a.txt", "/big.bin", "/missing.txt", "/dir/"]) {
        await t.step(path, async () => {
          const conn = await connect(port);
          try {
            const reader = new ResponseReader(conn);
            await writeAll(conn, bytes(get(path)));
            const full = await reader.read();
            // HEAD, then a GET pipelined behind it: it parses only when the
            // HEAD response carried no body bytes.
            await writeAll(
              conn,
              bytes(`HEAD ${path} HTTP/1.1\r\nHost: x\r\n\r\n` + get("/b.txt")),
            );
            const head = await reader.read({ head: true });
            const next = await reader.read();
            assert.equal(head.status, full.status);
            assert.equal(head.body.length, 0);
            for (
              const name of [
                "content-length",
                "content-type",
                "etag",
                "last-modified",
                "accept-ranges",
                "connection",
              ]
            ) {
              assert.equal(head.headers[name], full.headers[name], name);
            }
            assert.equal(
              Number(head.headers["content-length"]),
              full.body.length,
            );
            assertFile(next, "b.txt");
          } finally {
            conn.close();
          }
        });
      }
    });
  },
});

// --- 404 page --------------------------------------------------------------

Deno.test({
  name: "Connection.serve() sends the root's own 404.html when present",
  ...SANITIZE,
  async fn(): Promise<void> {
    const page = "<h1>my own missing page</h1>\n";
    await withServer({ ...FILES, "404.html": page }, {}, async ({ port }) => {
      const { responses, closed } = await exchange(port, get("/nope.txt"));
      assert.equal(responses[0].status, STATUS_CODE.NotFound);
      assert.equal(responses[0].text, page);
      assert.equal(closed, false);
    });
  },
});

Deno.test({
  name: "Connection.serve() sends the built-in 404 page when the root has none",
  ...SANITIZE,
  async fn(): Promise<void> {
    const builtIn = await Deno.readFile(
      new URL("../html/404.html", import.meta.url),
    );
    await withServer(FILES, {}, async ({ port }) => {
      const { responses } = await exchange(port, get("/nope/deeper.txt"));
      assert.equal(responses[0].status, STATUS_CODE.NotFound);
      assert.deepEqual(responses[0].body, builtIn);
      assert.match(responses[0].headers["content-type"], /^text\/html/);
    });
  },
});

// --- redirects -------------------------------------------------------------

Deno.test({
  name: "Connection.serve() redirects a directory without its trailing slash",
  ...SANITIZE,
  async fn(t): Promise<void> {
    const cases: { target: string; location: string }[] = [
      { target: "/dir", location: "/dir/" },
      { target: "/dir?x=1", location: "/dir/?x=1" },
      { target: "//dir", location: "/dir/" },
      { target: "/%2fdir", location: "/dir/" },
      { target: "/%2Fdir?a=b", location: "/dir/?a=b" },
      { target: "//%2f/dir", location: "/dir/" },
      { target: "/a/../dir", location: "/dir/" },
      { target: "/./dir", location: "/dir/" },
    ];
    await withServer(FILES, {}, async ({ port }) => {
      for (const c of cases) {
        await t.step(c.target, async () => {
          const { responses, closed } = await exchange(port, get(c.target));
          const res = responses[0];
          assert.equal(res.status, STATUS_CODE.MovedPermanently);
          assert.equal(res.headers.location, c.location);
          assert.ok(!res.headers.location.startsWith("//"));
          assert.equal(res.body.length, 0);
          assert.equal(closed, false);
        });
      }
      await t.step("/a/../dir/ serves the index", async () => {
        const { responses } = await exchange(port, get("/a/../dir/"));
        assert.equal(responses[0].status, STATUS_CODE.OK);
        assert.equal(responses[0].text, FILES["dir/index.html"]);
      });
    });
  },
});

// --- methods ---------------------------------------------------------------

Deno.test({
  name:
    "Connection.serve() sends 100 Continue to a client that holds its body back, and answers after the body",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      const head = (expect: string): string =>
        `GET /a.txt HTTP/1.1\r\nHost: x\r\nExpect: ${expect}\r\n` +
        "Content-Length: 5\r\n\r\n";
      for (
        const expect of ["100-continue", "100-Continue", "x, 100-continue"]
      ) {
        await t.step(`held back (${expect})`, async () => {
          const conn = await connect(port);
          try {
            await writeAll(conn, bytes(head(expect)));
            const reader = new ResponseReader(conn);
            const interim = await withTimeout(reader.read(), 5000, {
              label: "the 100",
            });
            assert.equal(interim.statusLine, "HTTP/1.1 100 Continue");
            assert.deepEqual(interim.headers, {});
            await writeAll(conn, bytes("hello" + get("/b.txt")));
            assertFile(
              await withTimeout(reader.read(), 5000, { label: "a" }),
              "a.txt",
            );
            assertFile(
              await withTimeout(reader.read(), 5000, { label: "b" }),
              "b.txt",
            );
          } finally {
            conn.close();
          }
        });
      }
      await t.step("refused method: the answer at once, no 100", async () => {
        const conn = await connect(port);
        try {
          await writeAll(
            conn,
            bytes(
              "POST /a.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n" +
                "Content-Length: 5\r\n\r\n",
            ),
          );
          const reader = new ResponseReader(conn);
          const answer = await withTimeout(reader.read(), 5000, {
            label: "405",
          });
          assert.equal(answer.status, STATUS_CODE.MethodNotAllowed);
          assert.equal(answer.headers.connection, "close");
          await waitClosed(conn);
        } finally {
          conn.close();
        }
      });
      await t.step("sent with the head: no 100", async () => {
        const { responses, closed } = await exchange(
          port,
          head("100-continue") + "hello" + get("/b.txt"),
          { count: 2 },
        );
        assertFile(responses[0], "a.txt");
        assertFile(responses[1], "b.txt");
        assert.equal(closed, false);
      });
    });
  },
});

Deno.test({
  name:
    "Connection.serve() answers at once, and closes, past maxPendingHeads of heads held for their bodies",
  ...SANITIZE,
  async fn(): Promise<void> {
    const head = "GET /a.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n" +
      "Content-Length: 5\r\n\r\n";
    // Room for one such head (cost: 1024 + 2 per byte), not two.
    const maxPendingHeads = 1024 + 2 * head.length + 100;
    await withServer(
      FILES,
      { server: { maxPendingHeads } },
      async ({ port }) => {
        const first = await connect(port);
        const second = await connect(port);
        try {
          // The first is held: it is invited to send its body.
          await writeAll(first, bytes(head));
          const firstReader = new ResponseReader(first);
          const interim = await withTimeout(firstReader.read(), 5000, {
            label: "100",
          });
          assert.equal(interim.status, 100);

          // The second would pass the bound: its final answer comes at once,
          // with Connection: close, although its body was never sent.
          await writeAll(second, bytes(head));
          const secondReader = new ResponseReader(second);
          const answer = await withTimeout(secondReader.read(), 5000, {
            label: "answer",
          });
          assertFile(answer, "a.txt");
          assert.equal(answer.headers.connection, "close");
          await writeAll(second, bytes("hello")); // drained by the linger
          await waitClosed(second);

          // The first gets its answer once its body is in, and stays open.
          await writeAll(first, bytes("hello" + get("/b.txt")));
          assertFile(
            await withTimeout(firstReader.read(), 5000, { label: "a" }),
            "a.txt",
          );
          assertFile(
            await withTimeout(firstReader.read(), 5000, { label: "b" }),
            "b.txt",
          );

          // Its head is no longer held: a new one is invited again.
          await writeAll(first, bytes(head));
          const again = await withTimeout(firstReader.read(), 5000, {
            label: "100",
          });
          assert.equal(again.status, 100);
        } finally {
          first.close();
          second.close();
        }
      },
    );
  },
});

Deno.test({
  name: "Connection.serve() answers 501 to methods that are not known at all",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      // Methods are case-sensitive: "get" is not GET.
      for (const method of ["FOO", "get", "Get", "PURGE", "PROPFIND"]) {
        await t.step(method, async () => {
          const { responses, closed } = await exchange(
            port,
            `${method} /a.txt HTTP/1.1\r\nHost: x\r\n\r\n` + get("/b.txt"),
            { count: 2 },
          );
          assert.equal(responses[0].status, STATUS_CODE.NotImplemented);
          assertFile(responses[1], "b.txt");
          assert.equal(closed, false);
        });
      }
    });
  },
});

Deno.test({
  name:
    "Connection.serve() answers 405 with Allow to methods other than GET and HEAD",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      for (const method of ["POST", "PUT", "DELETE", "PATCH", "TRACE"]) {
        await t.step(method, async () => {
          const { responses, closed } = await exchange(
            port,
            `${method} /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n` +
              get("/b.txt"),
            { count: 2 },
          );
          assert.equal(responses[0].status, STATUS_CODE.MethodNotAllowed);
          assert.equal(responses[0].headers.allow, ALLOWED_METHODS);
          assert.match(ALLOWED_METHODS, /\bGET\b.*\bHEAD\b/);
          assertFile(responses[1], "b.txt");
          assert.equal(closed, false);
        });
      }
    });
  },
});

Deno.test({
  name:
    "Connection.serve() answers CONNECT with 405 and closes: what follows its head is never read as a request",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      for (
        const fields of [
          "",
          "Connection: keep-alive\r\n",
          "Content-Length: 5\r\n",
        ]
      ) {
        await t.step(fields === "" ? "no fields" : fields.trim(), async () => {
          const body = fields.startsWith("Content-Length") ? "hello" : "";
          const { responses, closed } = await exchange(
            port,
            `CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n${fields}\r\n` +
              body + get("/b.txt"),
          );
          assert.equal(responses[0].status, STATUS_CODE.MethodNotAllowed);
          assert.equal(responses[0].headers.connection, "close");
          assert.equal(closed, true);
        });
      }
    });
  },
});

Deno.test({
  name: "Connection.serve() answers OPTIONS with 204 and Allow",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      for (const target of ["/a.txt", "*", "/"]) {
        await t.step(target, async () => {
          const { responses, closed } = await exchange(
            port,
            `OPTIONS ${target} HTTP/1.1\r\nHost: x\r\n\r\n`,
          );
          assert.equal(responses[0].status, STATUS_CODE.NoContent);
          assert.equal(responses[0].headers.allow, ALLOWED_METHODS);
          assert.equal(responses[0].body.length, 0);
          assert.equal(closed, false);
        });
      }
      // A path that could never be served is a bad request, as for GET.
      for (const target of ["/%00", "/%zz", "/a%00b"]) {
        await t.step(target, async () => {
          const { responses, closed } = await exchange(
            port,
            `OPTIONS ${target} HTTP/1.1\r\nHost: x\r\n\r\n`,
          );
          assert.equal(responses[0].status, STATUS_CODE.BadRequest);
          assert.equal(closed, true);
        });
      }
    });
  },
});

Deno.test({
  name: "Connection.serve() ignores preconditions on OPTIONS",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      const get = await exchange(
        port,
        `GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n`,
      );
      const etag = get.responses[0].headers.etag;
      // RFC 9110 section 13.2.1: a server MUST ignore them for a method that
      // neither selects nor modifies a representation, such as OPTIONS.
      const conditions = [
        'If-Match: "nope"',
        "If-None-Match: *",
        `If-None-Match: ${etag}`,
        "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT",
        "If-Modified-Since: Fri, 31 Dec 9999 23:59:59 GMT",
      ];
      for (const target of ["/a.txt", "*"]) {
        for (const condition of conditions) {
          await t.step(`${target} ${condition}`, async () => {
            const { responses } = await exchange(
              port,
              `OPTIONS ${target} HTTP/1.1\r\nHost: x\r\n${condition}\r\n\r\n`,
            );
            assert.equal(responses[0].status, STATUS_CODE.NoContent);
            assert.equal(responses[0].headers.allow, ALLOWED_METHODS);
          });
        }
      }
      // The same failing condition on a GET is evaluated.
      const failed = await exchange(
        port,
        `GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-Match: "nope"\r\n\r\n`,
      );
      assert.equal(failed.responses[0].status, STATUS_CODE.PreconditionFailed);
    });
  },
});

// --- malformed requests ----------------------------------------------------

const H = "Host: example.test\r\n";

/** Each is answered with `status`, then the connection is closed. */
const MALFORMED: { name: string; request: string; status: number }[] = [
  {
    name: "request line with two spaces",
    request: `GET  /a.txt HTTP/1.1\r\n${H}\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "request line without a version",
    request: `GET /a.txt\r\n${H}\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "lowercase version",
    request: `GET /a.txt http/1.1\r\n${H}\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "invalid method character",
    request: `G(T /a.txt HTTP/1.1\r\n${H}\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "HTTP/2.0",
    request: `GET /a.txt HTTP/2.0\r\n${H}\r\n`,
    status: STATUS_CODE.HTTPVersionNotSupported,
  },
  {
    name: "missing Host",
    request: "GET /a.txt HTTP/1.1\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "repeated Host",
    request: `GET /a.txt HTTP/1.1\r\n${H}${H}\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "space before the colon",
    request: `GET /a.txt HTTP/1.1\r\n${H}X-Test : 1\r\n\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "obs-fold",
    request: `GET /a.txt HTTP/1.1\r\n${H}X-Test: a\r\n b\r\n\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "bare LF after the request line",
    request: `GET /a.txt HTTP/1.1\n${H}\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "bare LF after a field",
    request: `GET /a.txt HTTP/1.1\r\nHost: example.test\nX-Test: 1\r\n\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "NUL in a field value",
    request: `GET /a.txt HTTP/1.1\r\n${H}X-Test: a\0b\r\n\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "Content-Length with Transfer-Encoding",
    request: `POST /a.txt HTTP/1.1\r\n${H}Content-Length: 5\r\n` +
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "Transfer-Encoding: gzip, chunked",
    request: `POST /a.txt HTTP/1.1\r\n${H}` +
      "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    status: STATUS_CODE.NotImplemented,
  },
  {
    name: "Transfer-Encoding: chunked, gzip",
    request: `POST /a.txt HTTP/1.1\r\n${H}` +
      "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "Content-Length: abc",
    request: `POST /a.txt HTTP/1.1\r\n${H}Content-Length: abc\r\n\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "Content-Length: -1",
    request: `POST /a.txt HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "Content-Length: +5",
    request: `POST /a.txt HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "Content-Length: 0, 0",
    request: `POST /a.txt HTTP/1.1\r\n${H}Content-Length: 0, 0\r\n\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "duplicate Content-Length",
    request: `POST /a.txt HTTP/1.1\r\n${H}Content-Length: 0\r\n` +
      "Content-Length: 0\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "too-long request line",
    request: `GET /${"a".repeat(9000)} HTTP/1.1\r\n${H}\r\n`,
    status: STATUS_CODE.URITooLong,
  },
  {
    name: "too-large head",
    request: `GET /a.txt HTTP/1.1\r\n${H}X-Big: ${"b".repeat(17000)}\r\n\r\n`,
    status: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
  {
    name: "too many header fields",
    request: `GET /a.txt HTTP/1.1\r\n${H}` +
      Array.from({ length: 101 }, (_, i) => `X-N${i}: ${i}\r\n`).join("") +
      "\r\n",
    status: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
  {
    name: "invalid percent-encoding /%zz",
    request: `GET /%zz HTTP/1.1\r\n${H}\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "truncated percent-encoding /a%2",
    request: `GET /a%2 HTTP/1.1\r\n${H}\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "%00 in the path",
    request: `GET /a.txt%00 HTTP/1.1\r\n${H}\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "invalid UTF-8 in the path",
    request: `GET /%c0%af HTTP/1.1\r\n${H}\r\n`,
    status: STATUS_CODE.BadRequest,
  },
];

/** HEAD requests answered with an error: headers only (RFC 9110 section 9.3.2), then a close. */
const MALFORMED_HEAD: { name: string; request: string; status: number }[] = [
  {
    name: "missing Host",
    request: "HEAD /a.txt HTTP/1.1\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "missing Host, after empty lines",
    request: "\r\n\r\nHEAD /a.txt HTTP/1.1\r\n\r\n",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "too-long request line",
    request: `HEAD /${"a".repeat(9000)} HTTP/1.1\r\n${H}\r\n`,
    status: STATUS_CODE.URITooLong,
  },
  {
    name: "too-large head",
    request: `HEAD /a.txt HTTP/1.1\r\n${H}X-Big: ${"b".repeat(17000)}\r\n\r\n`,
    status: STATUS_CODE.RequestHeaderFieldsTooLarge,
  },
  {
    name: "HTTP/2.0",
    request: `HEAD /a.txt HTTP/2.0\r\n${H}\r\n`,
    status: STATUS_CODE.HTTPVersionNotSupported,
  },
  {
    name: "Content-Length over the body limit",
    request: `HEAD /a.txt HTTP/1.1\r\n${H}Content-Length: 99999999999\r\n\r\n`,
    status: STATUS_CODE.ContentTooLarge,
  },
  {
    name: "malformed chunked body",
    request:
      `HEAD /a.txt HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\n`,
    status: STATUS_CODE.BadRequest,
  },
  {
    // Every chunk line within its limit, their extensions over the body's.
    name: "chunk extensions over their limit",
    request: `HEAD /a.txt HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n` +
      `1;${"x".repeat(4000)}\r\na\r\n`.repeat(5),
    status: STATUS_CODE.ContentTooLarge,
  },
];

Deno.test({
  name: "Connection.serve() answers a malformed HEAD request with headers only",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      for (const c of MALFORMED_HEAD) {
        await t.step(`${c.name} -> ${c.status}`, async () => {
          const conn = await connect(port);
          try {
            await writeAll(conn, bytes(c.request));
            const reader = new ResponseReader(conn);
            const res = await withTimeout(reader.read({ head: true }), 5000, {
              label: "error response",
            });
            assert.equal(res.status, c.status, res.statusLine);
            assert.equal(res.headers.connection, "close");
            assert.ok(
              Number(res.headers["content-length"]) > 0,
              "Content-Length of the page a GET would get",
            );
            assert.equal(
              await withTimeout(reader.atEnd(), 5000, {
                label: "end of connection",
              }),
              true,
              "no body after the head",
            );
          } finally {
            conn.close();
          }
        });
      }
    });
  },
});

/** Sends `request` and a valid request in one write; answers the first response and whether the connection then ended. */
async function sendMalformed(
  port: number,
  request: string,
): Promise<{ res: RawResponse; ended: boolean }> {
  const conn = await connect(port);
  try {
    await writeAll(conn, bytes(request + get("/a.txt")));
    const reader = new ResponseReader(conn);
    const res = await withTimeout(reader.read(), 5000, {
      label: "error response",
    });
    const ended = await withTimeout(reader.atEnd(), 5000, {
      label: "end of connection",
    });
    return { res, ended };
  } finally {
    conn.close();
  }
}

Deno.test({
  name:
    "Connection.serve() answers a malformed request with its status and closes",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      for (const c of MALFORMED) {
        await t.step(`${c.name} -> ${c.status}`, async () => {
          const { res, ended } = await sendMalformed(port, c.request);
          assert.equal(res.status, c.status, res.statusLine);
          assert.equal(res.headers.connection, "close");
          assert.equal(
            ended,
            true,
            "the appended request must not be answered",
          );
        });
      }
    });
  },
});

// --- bodies ----------------------------------------------------------------

const SMUGGLED = get("/secret.txt");

function chunkedBody(pieces: string[]): string {
  return pieces.map((p) =>
    `${new TextEncoder().encode(p).length.toString(16)};ext=1\r\n${p}\r\n`
  ).join("") + "0\r\nX-Trailer: GET /secret.txt\r\n\r\n";
}

Deno.test({
  name:
    "Connection.serve() skips request bodies and never parses them as requests",
  ...SANITIZE,
  async fn(t): Promise<void> {
    const chunked = chunkedBody([
      SMUGGLED,
      "0\r\n\r\n" + SMUGGLED,
      "GET /secret.txt HTTP/1.1\r\n",
    ]);
    const cases: { name: string; request: string; chunk?: number }[] = [
      {
        name: "Content-Length body",
        request:
          `POST /a.txt HTTP/1.1\r\n${H}Content-Length: ${SMUGGLED.length}\r\n\r\n` +
          SMUGGLED,
      },
      {
        name: "chunked body",
        request:
          `POST /a.txt HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n` +
          chunked,
      },
      {
        name: "Content-Length body in 1-byte writes",
        request:
          `PUT /a.txt HTTP/1.1\r\n${H}Content-Length: ${SMUGGLED.length}\r\n\r\n` +
          SMUGGLED,
        chunk: 1,
      },
      {
        name: "chunked body in 1-byte writes",
        request:
          `PUT /a.txt HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n` +
          chunked,
        chunk: 1,
      },
      {
        name: "GET with a Content-Length body",
        request:
          `GET /b.txt HTTP/1.1\r\n${H}Content-Length: ${SMUGGLED.length}\r\n\r\n` +
          SMUGGLED,
      },
    ];
    await withServer(FILES, {}, async ({ port }) => {
      for (const c of cases) {
        await t.step(c.name, async () => {
          // exchange() fails on any response beyond the two expected.
          const { responses, closed } = await exchange(
            port,
            c.request + get("/a.txt"),
            { count: 2, chunk: c.chunk },
          );
          if (c.request.startsWith("GET")) assertFile(responses[0], "b.txt");
          else {
            assert.equal(responses[0].status, STATUS_CODE.MethodNotAllowed);
          }
          assertFile(responses[1], "a.txt");
          for (const res of responses) {
            assert.ok(!res.text.includes(FILES["secret.txt"]));
          }
          assert.equal(closed, false);
        });
      }
    });
  },
});

Deno.test({
  name: "Connection.serve() answers 413 to a body over the limit and closes",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withServer(FILES, {}, async ({ port }) => {
      await t.step("Content-Length over 1 MiB", async () => {
        const { res, ended } = await sendMalformed(
          port,
          `POST /a.txt HTTP/1.1\r\n${H}Content-Length: ${MiB + 1}\r\n\r\n`,
        );
        assert.equal(res.status, STATUS_CODE.ContentTooLarge);
        assert.equal(res.headers.connection, "close");
        assert.equal(ended, true);
      });
      await t.step("GET with Content-Length over 1 MiB", async () => {
        const { res, ended } = await sendMalformed(
          port,
          `GET /a.txt HTTP/1.1\r\n${H}Content-Length: 99999999999\r\n\r\n`,
        );
        assert.equal(res.status, STATUS_CODE.ContentTooLarge);
        assert.equal(ended, true);
      });
      await t.step(
        "chunk size over 1 MiB: the next request is never served",
        async () => {
          const conn = await connect(port);
          try {
            await writeAll(
              conn,
              bytes(
                `POST /a.txt HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n` +
                  `${(MiB + 1).toString(16)}\r\n${SMUGGLED}` + get("/a.txt"),
              ),
            );
            const reader = new ResponseReader(conn);
            // The body is checked before the request is answered.
            const first = await withTimeout(reader.read(), 5000, {
              label: "response",
            });
            assert.equal(first.status, STATUS_CODE.ContentTooLarge);
            assert.equal(first.headers.connection, "close");
            // Whatever follows (an error page at most), the connection ends
            // without serving a file.
            for (let i = 0; i < 5; i++) {
              if (await withTimeout(reader.atEnd(), 5000, { label: "end" })) {
                return;
              }
              const res = await withTimeout(reader.read(), 5000, {
                label: "response",
              });
              assert.ok(
                res.status >= STATUS_CODE.BadRequest,
                `unexpected ${res.statusLine}`,
              );
            }
            assert.fail("The connection stayed open");
          } finally {
            conn.close();
          }
        },
      );
    });
  },
});

// --- files -----------------------------------------------------------------

Deno.test({
  name: "Connection.serve() answers 404 to a symlink pointing outside the root",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withTree({ "outside.txt": "OUTSIDE SECRET\n" }, async (outside) => {
      await withTree(FILES, async (root) => {
        await Deno.symlink(`${outside}/outside.txt`, `${root}/link.txt`);
        await Deno.symlink(outside, `${root}/linkdir`);
        await Deno.symlink(`${root}/a.txt`, `${root}/inside-link.txt`);
        const s = await startServer(root);
        try {
          for (const path of ["/link.txt", "/linkdir/outside.txt"]) {
            const { responses } = await exchange(s.port, get(path));
            assert.equal(responses[0].status, STATUS_CODE.NotFound, path);
            assert.ok(!responses[0].text.includes("OUTSIDE SECRET"));
          }
          const { responses } = await exchange(s.port, get("/inside-link.txt"));
          assertFile(responses[0], "a.txt");
        } finally {
          await s.close();
        }
      });
    });
  },
});

Deno.test({
  name: "Connection.serve() serves a 20 MiB file byte-exact over keep-alive",
  ...SANITIZE,
  async fn(): Promise<void> {
    const big = randomBytes(BIG_SIZE);
    const expected = await sha256(big);
    await withServer({ ...FILES, "big.bin": big }, {}, async ({ port }) => {
      const conn = await connect(port);
      try {
        for (let round = 0; round < 2; round++) {
          await writeAll(conn, bytes(get("/big.bin")));
          const res = await withTimeout(readLarge(conn), 20000, {
            label: "big file",
          });
          assert.equal(res.status, STATUS_CODE.OK);
          assert.equal(res.headers["content-length"], String(BIG_SIZE));
          assert.equal(res.headers.connection, undefined);
          assert.equal(await sha256(res.body), expected);
        }
        const next = await getOn(conn, "/a.txt");
        assertFile(next, "a.txt");
      } finally {
        conn.close();
      }
    });
  },
});

Deno.test({
  name: "Connection.serve() survives a client that closes mid-response",
  ...SANITIZE,
  async fn(): Promise<void> {
    const files = { ...FILES, "big.bin": new Uint8Array(BIG_SIZE) };
    await withServer(files, {}, async (s) => {
      for (let round = 0; round < 3; round++) {
        const conn = await connect(s.port);
        try {
          await writeAll(conn, bytes(get("/big.bin")));
          const n = await conn.read(new Uint8Array(4096));
          assert.ok(n !== null && n > 0);
        } finally {
          conn.close();
        }
      }
      const { responses, closed } = await exchange(s.port, get("/a.txt"));
      assertFile(responses[0], "a.txt");
      assert.equal(closed, false);
      // The aborted connections end on the server too.
      await until(
        () => s.server.connections === 0,
        "the aborted connections to end",
        { ms: 2000 },
      );
    });
  },
});

// --- timeouts --------------------------------------------------------------

const TINY = { headerTimeout: 300, idleTimeout: 300 };

Deno.test({
  name:
    "Connection.serve() closes the connection when a head does not arrive in time",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withServer(FILES, { server: TINY }, async ({ port }) => {
      await t.step("nothing after the request line", async () => {
        const start = Date.now();
        const conn = await connect(port);
        try {
          await writeAll(conn, bytes("GET / HTTP/1.1\r\n"));
          await waitClosed(conn);
          const elapsed = Date.now() - start;
          assert.ok(elapsed >= 250, `closed too early: ${elapsed} ms`);
          assert.ok(elapsed < 5000, `closed too late: ${elapsed} ms`);
        } finally {
          conn.close();
        }
      });
      await t.step("nothing at all", async () => {
        const start = Date.now();
        const conn = await connect(port);
        try {
          await waitClosed(conn);
          assert.ok(Date.now() - start < 5000);
        } finally {
          conn.close();
        }
      });
      await t.step("one byte every 100 ms", async () => {
        const start = Date.now();
        const conn = await connect(port);
        try {
          let closed = false;
          // Settles (with the error, if any) once the server has closed.
          const done = waitClosed(conn, 5000).then(
            () => undefined,
            (error: unknown) => error,
          ).finally(() => closed = true);
          const drip = bytes(
            `GET /a.txt HTTP/1.1\r\nX-Slow: ${"s".repeat(100)}`,
          );
          let sent = 0;
          for (; sent < drip.length && !closed; sent++) {
            try {
              await writeAll(conn, drip.subarray(sent, sent + 1));
            } catch {
              break; // reset by the server
            }
            await sleep(100);
          }
          const error = await done;
          if (error !== undefined) throw error;
          const elapsed = Date.now() - start;
          assert.ok(sent < drip.length, "the server waited for the whole drip");
          assert.ok(sent >= 3, `closed after only ${sent} bytes`);
          assert.ok(elapsed >= 250 && elapsed < 5000, `${elapsed} ms`);
        } finally {
          conn.close();
        }
      });
    });
  },
});

Deno.test({
  name:
    "Connection.serve() closes when a body is not in within the header timeout of its head's first byte",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(
      FILES,
      { server: { headerTimeout: 1200 } },
      async ({ port }) => {
        const start = Date.now();
        const conn = await connect(port);
        try {
          // Most of the timeout goes on the head, then the body trickles.
          await writeAll(conn, bytes("GET /a.txt HTTP/1.1\r\nHost: x\r\n"));
          await sleep(1000);
          await writeAll(conn, bytes("Content-Length: 100\r\n\r\n"));
          let closed = false;
          const done = waitClosed(conn, 5000).then(
            (result) => result,
            (error: unknown) => error,
          ).finally(() => closed = true);
          for (let sent = 0; sent < 100 && !closed; sent++) {
            try {
              await writeAll(conn, bytes("a"));
            } catch {
              break; // reset by the server
            }
            await sleep(50);
          }
          const result = await done;
          if (result instanceof Error) throw result;
          const elapsed = Date.now() - start;
          // Due at 1200 ms, closed by the next sweep (every 500 ms); a fresh
          // timeout for the body would have run to 2200 ms at least.
          assert.ok(elapsed >= 1150, `closed too early: ${elapsed} ms`);
          assert.ok(elapsed < 2100, `closed too late: ${elapsed} ms`);
        } finally {
          conn.close();
        }
      },
    );
  },
});

Deno.test({
  name:
    "Connection.serve() answers a request whose handler outlasts the header timeout",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withTree(FILES, async (root) => {
      // The head arrives at once; the handler (a slow disk, say) takes longer
      // than the header timeout and a sweep of the deadlines (every 500 ms).
      const handler = await Handler.create(root);
      const slow: Handler = Object.create(handler);
      slow.handle = (head) => sleep(1200).then(() => handler.handle(head));
      const server = Server.listen(slow, {
        hostname: "127.0.0.1",
        port: 0,
        ...TINY,
      });
      try {
        const conn = await connect(server.addr.port);
        try {
          await writeAll(conn, bytes(get("/a.txt")));
          // Throws "Connection ended before a response head" when cut off.
          assertFile(await new ResponseReader(conn).read(), "a.txt");
        } finally {
          conn.close();
        }
      } finally {
        await server.shutdown({ grace: 2000 });
      }
    });
  },
});

Deno.test({
  name:
    "Connection.serve() gives a body pipelined behind a slow response the header timeout from when it may come",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withTree(FILES, async (root) => {
      // The first request takes longer than the header timeout to answer; the
      // second, sent with it, waits for 100 Continue and then takes longer
      // than a sweep of the deadlines (every 500 ms) to send its body.
      const handler = await Handler.create(root);
      const slow: Handler = Object.create(handler);
      let calls = 0;
      slow.handle = (head) =>
        calls++ === 0
          ? sleep(1800).then(() => handler.handle(head))
          : handler.handle(head);
      const server = Server.listen(slow, {
        hostname: "127.0.0.1",
        port: 0,
        headerTimeout: 1500,
      });
      try {
        const conn = await connect(server.addr.port);
        try {
          await writeAll(
            conn,
            bytes(
              get("/a.txt") +
                "GET /b.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n" +
                "Content-Length: 3\r\n\r\n",
            ),
          );
          const reader = new ResponseReader(conn);
          assertFile(await reader.read(), "a.txt");
          const interim = await reader.read();
          assert.equal(interim.statusLine, "HTTP/1.1 100 Continue");
          await sleep(700);
          await writeAll(conn, bytes("abc"));
          // Throws "Connection ended before a response head" when cut off.
          assertFile(await reader.read(), "b.txt");
        } finally {
          conn.close();
        }
      } finally {
        await server.shutdown({ grace: 2000 });
      }
    });
  },
});

Deno.test({
  name:
    "Connection.serve() closes the connection when kept alive idle too long",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, { server: TINY }, async ({ port }) => {
      const conn = await connect(port);
      try {
        const res = await getOn(conn, "/a.txt");
        assertFile(res, "a.txt");
        assert.equal(res.headers.connection, undefined);
        const start = Date.now();
        assert.equal((await waitClosed(conn)).total, 0);
        const elapsed = Date.now() - start;
        assert.ok(elapsed >= 200 && elapsed < 5000, `${elapsed} ms`);
      } finally {
        conn.close();
      }
    });
  },
});

Deno.test({
  name:
    "Connection.serve() delivers every response before closing, even with a pipeline past the close",
  ...SANITIZE,
  async fn(): Promise<void> {
    // 300 answers of 4 KiB overflow the socket buffers, so the close comes
    // while the client still has responses to read and requests unread by
    // the server: closing outright would reset and lose responses.
    const page = "p".repeat(4096);
    const cases = [
      {
        name: "a request with Connection: close in the middle",
        last: "GET /p.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        status: STATUS_CODE.OK,
      },
      {
        name: "a malformed request in the middle",
        last: "GET  HTTP/1.1\r\nHost: x\r\n\r\n",
        status: STATUS_CODE.BadRequest,
      },
    ];
    await withServer({ "p.txt": page }, {}, async ({ port }) => {
      for (const c of cases) {
        const conn = await connect(port);
        try {
          const one = "GET /p.txt HTTP/1.1\r\nHost: x\r\n\r\n";
          await writeAll(
            conn,
            bytes(one.repeat(300) + c.last + one.repeat(100)),
          );
          const reader = new ResponseReader(conn);
          for (let i = 0; i < 300; i++) {
            const res = await reader.read();
            assert.equal(res.text, page, `${c.name}: response ${i}`);
          }
          const final = await reader.read();
          assert.equal(final.status, c.status, c.name);
          assert.equal(final.headers.connection, "close", c.name);
          assert.ok(await reader.atEnd(), `${c.name}: nothing after the close`);
        } finally {
          conn.close();
        }
      }
    });
  },
});

/** A stand-in socket, and what was done with it. */
interface FakeConn {
  /** The socket to serve. */
  conn: Deno.Conn;
  /** Everything written to it, decoded. */
  text: () => string;
  /** How many writes it took. */
  writes: () => number;
  /** The most bytes handed to one write. */
  largestWrite: () => number;
  /** Everything written to it, as bytes. */
  bytes: () => Uint8Array;
  /** The buffer each read was given. */
  buffers: Uint8Array[];
  /** How many chunks had been handed out when the first write came (-1: none). */
  readsBeforeWrite: () => number;
  /** The writes made before each `setNoDelay(true)` call, one entry per call. */
  noDelayCalls: number[];
  /** The largest memory behind one write (its `ArrayBuffer`). */
  largestBuffer: () => number;
}

/** A stand-in socket: hands out `chunks` one read at a time, then end of stream; takes at most `step` bytes per write. */
function fakeConn(chunks: string[], step = Infinity): FakeConn {
  const written: Uint8Array[] = [];
  const buffers: Uint8Array[] = [];
  let given = 0;
  let writes = 0;
  let largestWrite = 0;
  let largestBuffer = 0;
  let readsBeforeWrite = -1;
  const noDelayCalls: number[] = [];
  const all = (): Uint8Array => concatBytes(written);
  const conn = {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    read(buf: Uint8Array): Promise<number | null> {
      buffers.push(buf);
      if (given === chunks.length) return Promise.resolve(null);
      const chunk = bytes(chunks[given++]);
      buf.set(chunk);
      return Promise.resolve(chunk.length);
    },
    write(chunk: Uint8Array): Promise<number> {
      if (writes++ === 0) readsBeforeWrite = given;
      largestWrite = Math.max(largestWrite, chunk.length);
      largestBuffer = Math.max(largestBuffer, chunk.buffer.byteLength);
      const n = Math.min(step, chunk.length);
      written.push(chunk.slice(0, n));
      return Promise.resolve(n);
    },
    close(): void {},
    closeWrite(): Promise<void> {
      return Promise.resolve();
    },
    setNoDelay(on: boolean): void {
      if (on) noDelayCalls.push(writes);
    },
  };
  return {
    conn: conn as unknown as Deno.Conn,
    text: () => new TextDecoder().decode(all()),
    writes: () => writes,
    largestWrite: () => largestWrite,
    bytes: all,
    buffers,
    readsBeforeWrite: () => readsBeforeWrite,
    noDelayCalls,
    largestBuffer: () => largestBuffer,
  };
}

/** A stand-in socket whose reads wait for `push` (or `end`); writes are kept. */
function gatedConn(): {
  conn: Deno.Conn;
  push: (chunk: string) => void;
  end: () => void;
  /** Reads waiting for a chunk. */
  waiting: () => number;
  text: () => string;
} {
  const chunks: (string | null)[] = [];
  const readers: ((chunk: string | null) => void)[] = [];
  const written: Uint8Array[] = [];
  const give = (chunk: string | null): void => {
    const reader = readers.shift();
    if (reader === undefined) chunks.push(chunk);
    else reader(chunk);
  };
  const conn = {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    async read(buf: Uint8Array): Promise<number | null> {
      const chunk = chunks.length > 0
        ? chunks.shift()!
        : await new Promise<string | null>((resolve) => readers.push(resolve));
      if (chunk === null) return null;
      const b = bytes(chunk);
      buf.set(b);
      return b.length;
    },
    write(chunk: Uint8Array): Promise<number> {
      written.push(chunk.slice());
      return Promise.resolve(chunk.length);
    },
    close(): void {
      for (const reader of readers.splice(0)) reader(null);
    },
    closeWrite(): Promise<void> {
      return Promise.resolve();
    },
  };
  return {
    conn: conn as unknown as Deno.Conn,
    push: give,
    end: () => give(null),
    waiting: () => readers.length,
    text: () => new TextDecoder().decode(concatBytes(written)),
  };
}

Deno.test({
  name:
    "Connection.drain() lets a request head that is coming arrive, in pieces, and answers it with Connection: close",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withTree({ "a.html": "page a\n" }, async (root) => {
      const handler = await Handler.create(root);
      const request = get("/a.html");
      for (const when of ["before the first byte", "within the head"]) {
        await t.step(when, async () => {
          const gated = gatedConn();
          const connection = new Connection(gated.conn, handler);
          const served = connection.serve();
          if (when === "within the head") {
            gated.push(request.slice(0, 10));
            await until(() => gated.waiting() === 1, "the next read");
          }
          connection.drain();
          const pieces = [request.slice(10, 20), request.slice(20)];
          if (when === "before the first byte") {
            pieces.unshift(request.slice(0, 10));
          }
          for (const piece of pieces) {
            await until(() => gated.waiting() === 1, "a read");
            gated.push(piece);
          }
          gated.end(); // the client's end, after the lingering close
          await served;
          const text = gated.text();
          assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
          assert.ok(text.includes("\r\nConnection: close\r\n"), text);
          assert.ok(text.endsWith("\r\n\r\npage a\n"), text);
        });
      }
    });
  },
});

Deno.test({
  name:
    "Connection.drain() while a response is prepared lets a pipelined head partly read arrive and answers it",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withTree(
      { "a.html": "page a\n", "b.html": "page b\n" },
      async (root) => {
        const handler = await Handler.create(root);
        // The first request is answered slowly (a file read from disk, say);
        // the stop comes meanwhile, with part of the second head read.
        let release!: () => void;
        const gate = new Promise<void>((resolve) => release = resolve);
        let calls = 0;
        const slow: Handler = Object.create(handler);
        slow.handle = (head) =>
          calls++ === 0
            ? gate.then(() => handler.handle(head))
            : handler.handle(head);
        const gated = gatedConn();
        const connection = new Connection(gated.conn, slow);
        const served = connection.serve();
        const second = get("/b.html");
        gated.push(get("/a.html") + second.slice(0, 10));
        await until(() => calls === 1, "the first request to be handled");
        connection.drain();
        release();
        await until(() => gated.waiting() === 1, "the next read");
        // Waited for as briefly as a head on its way when the stop comes.
        assert.ok(
          connection.deadline <= performance.now() + TIMEOUTS.headOnStop,
          "the header timeout, not the stop's wait",
        );
        gated.push(second.slice(10));
        await until(() => gated.waiting() === 1, "the read after it");
        gated.end(); // the client's end, after the lingering close
        await served;
        const text = gated.text();
        assert.match(text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\npage a\n/);
        assert.ok(text.includes("\r\n\r\npage a\nHTTP/1.1 200 OK\r\n"), text);
        assert.match(text, /\r\nConnection: close\r\n\r\npage b\n$/);
      },
    );
  },
});

Deno.test({
  name:
    "Connection.serve() turns Nagle off once, before the first response that keeps the connection open",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withTree({ "a.html": "page a\n" }, async (root) => {
      const handler = await Handler.create(root);
      const close = get("/a.html").replace(
        "\r\n\r\n",
        "\r\nConnection: close\r\n\r\n",
      );
      const cases: [string, string[], number[]][] = [
        ["keep-alive", [get("/a.html")], [0]],
        ["three keep-alive", [get("/a.html"), get("/a.html"), get("/a.html")], [
          0,
        ]],
        ["pipelined", [get("/a.html").repeat(2)], [0]],
        ["keep-alive, then close", [get("/a.html"), close], [0]],
        ["Connection: close", [close], []],
        ["HTTP/1.0", ["GET /a.html HTTP/1.0\r\n\r\n"], []],
        ["malformed (400)", ["GET /a.html HTTP/1.1\r\nHost x\r\n\r\n"], []],
      ];
      for (const [what, chunks, expected] of cases) {
        const fake = fakeConn(chunks);
        await new Connection(fake.conn, handler).serve();
        assert.match(fake.text(), /^HTTP\/1\.1 [24]00 /, what);
        assert.deepEqual(fake.noDelayCalls, expected, what);
      }
    });
  },
});

Deno.test({
  name:
    "Connection.serve() finishes responses a socket takes a few bytes at a time",
  ...SANITIZE,
  async fn(): Promise<void> {
    const page = "<p>" + "x".repeat(500) + "</p>\n";
    await withTree({ "a.html": page }, async (root) => {
      const handler = await Handler.create(root);
      // One request, then two pipelined ones: the single-response write and
      // the combined write must both carry on after short writes.
      for (const count of [1, 2]) {
        const request = get("/a.html").repeat(count);
        const fake = fakeConn([request], 7);
        await new Connection(fake.conn, handler).serve();
        const text = fake.text();
        const parts = text.split("HTTP/1.1 200 OK\r\n");
        assert.equal(parts.length, count + 1, text.slice(0, 200));
        for (const part of parts.slice(1)) {
          assert.ok(part.includes(`Content-Length: ${page.length}\r\n`));
          assert.ok(part.endsWith(`\r\n\r\n${page}`), part.slice(-80));
        }
        assert.ok(fake.writes() >= text.length / 7, "many short writes");
      }
    });
  },
});

Deno.test({
  name:
    "Connection.serve() reuses an ended connection's read buffer without reading its old bytes",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withTree(
      { "a.html": "page a\n", "b.html": "page b\n" },
      async (root) => {
        const handler = await Handler.create(root);
        const first = fakeConn([get("/a.html")]);
        await new Connection(first.conn, handler).serve();
        assert.match(first.text(), /\r\n\r\npage a\n$/);
        // The second head arrives without its final CRLF, which the old bytes
        // in the reused buffer would supply at the same place.
        const head = get("/b.html");
        const second = fakeConn([head.slice(0, -2), "\r\n"]);
        await new Connection(second.conn, handler).serve();
        assert.equal(second.buffers[0].buffer, first.buffers[0].buffer);
        assert.equal(second.readsBeforeWrite(), 2, "answered a partial head");
        assert.match(
          second.text(),
          /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\npage b\n$/,
        );
      },
    );
  },
});

Deno.test({
  name:
    "Connection.serve() hands a large body to the socket at most 1 MiB per write",
  ...SANITIZE,
  async fn(): Promise<void> {
    const cap = MiB; // README: "at most 1 MiB per write"
    const body = new Uint8Array(3 * cap + 12345);
    for (let k = 0; k < body.length; k++) body[k] = (k * 7 + (k >> 11)) & 0xff;
    await withTree({ "big.bin": body }, async (root) => {
      const handler = await Handler.create(root);
      // Twice: the first request reads the file, the second is answered from
      // the handler's cached entry.
      for (const round of [1, 2]) {
        const fake = fakeConn([get("/big.bin")]);
        await new Connection(fake.conn, handler).serve();
        const out = fake.bytes();
        const head = new TextDecoder().decode(out.subarray(0, 400));
        assert.match(head, /^HTTP\/1\.1 200 OK\r\n/, `round ${round}`);
        const headEnd = head.indexOf("\r\n\r\n") + 4;
        assert.deepEqual(out.subarray(headEnd), body, `round ${round}: body`);
        assert.ok(
          fake.largestWrite() <= cap,
          `round ${round}: largest write ${fake.largestWrite()}`,
        );
      }
    });
  },
});

Deno.test({
  name:
    "Connection.serve() copies at most 64 KiB of a pipelined batch's responses at a time",
  ...SANITIZE,
  async fn(): Promise<void> {
    // 60 KiB bodies are combined with their heads, not written as they are;
    // a whole batch of them combined would be megabytes pinned by a few KiB
    // of requests for as long as the client does not read.
    const body = new Uint8Array(60 * 1024).fill(0x61);
    await withTree({ "f.bin": body }, async (root) => {
      const handler = await Handler.create(root);
      const request = get("/f.bin");
      const count = Math.floor(4000 / request.length); // one 4 KiB read
      for (const round of [1, 2]) {
        const fake = fakeConn([request.repeat(count)]);
        await new Connection(fake.conn, handler).serve();
        const text = fake.text();
        const one = text.indexOf("\r\n\r\n") + 4 + body.length;
        assert.equal(text.split("HTTP/1.1 200 OK\r\n").length - 1, count);
        assert.equal(text.length, count * one, `round ${round}: every body`);
        assert.ok(
          fake.largestBuffer() <= 64 * 1024,
          `round ${round}: ${fake.largestBuffer()} bytes behind one write`,
        );
      }
    });
  },
});

Deno.test({
  name:
    "Connection.serve() holds about 64 KiB of a long pipelined batch's replies at once",
  ...SANITIZE,
  async fn(): Promise<void> {
    // A reply may be built for its request (a copy of its own: to a range,
    // say), and each queued one is counted: a batch answered whole before
    // its first write would hold megabytes for a few KiB of requests, for as
    // long as the client does not read.
    const body = new Uint8Array(60 * 1024).fill(0x62);
    await withTree({ "f.bin": body }, async (root) => {
      const handler = await Handler.create(root);
      let answered = 0;
      let written = 0;
      let held = 0;
      const counting: Handler = Object.create(handler);
      const count = (reply: Reply): Reply => {
        answered += reply.head.length;
        for (const part of reply.parts) {
          if (part instanceof Uint8Array) answered += part.length;
        }
        held = Math.max(held, answered - written);
        return reply;
      };
      counting.handle = (head) => {
        const reply = handler.handle(head);
        return reply instanceof Promise ? reply.then(count) : count(reply);
      };
      const request = "GET /f.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
      const requests = Math.floor(4000 / request.length); // one 4 KiB read
      const fake = fakeConn([request.repeat(requests)]);
      const write = fake.conn.write.bind(fake.conn);
      fake.conn.write = (chunk) => {
        written += chunk.length;
        return write(chunk);
      };
      await new Connection(fake.conn, counting).serve();
      const text = fake.text();
      assert.equal(text.split("HTTP/1.1 200 OK\r\n").length - 1, requests);
      assert.equal(written, answered, "every reply written");
      assert.ok(held <= 256 * 1024, `${held} bytes of replies held at once`);
    });
  },
});

// --- access log ------------------------------------------------------------

/** A `log` option that keeps every record, and the records. */
function recordLog(): {
  records: AccessRecord[];
  log: (record: AccessRecord) => void;
} {
  const records: AccessRecord[] = [];
  return { records, log: (record) => void records.push(record) };
}

Deno.test({
  name:
    "Connection.serve() logs the HTTP version a request was sent with, also one read as another",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withTree({ "a.html": "page a\n" }, async (root) => {
      const handler = await Handler.create(root);
      for (const version of ["1.0", "1.1", "1.2", "1.9"]) {
        const { records, log } = recordLog();
        const fake = fakeConn([
          `GET /a.html HTTP/${version}\r\nHost: x\r\n\r\n`,
        ]);
        await new Connection(fake.conn, handler, { log }).serve();
        assert.match(fake.text(), /^HTTP\/1\.1 200 /, version);
        assert.deepEqual(
          records.map((r) => r.request),
          [`GET /a.html HTTP/${version}`],
        );
      }
    });
  },
});

Deno.test({
  name:
    "Connection.serve() logs a response cut off by the client with its status and the body bytes sent",
  ...SANITIZE,
  async fn(t): Promise<void> {
    const { records, log } = recordLog();
    const files = {
      ...FILES,
      "big.bin": new Uint8Array(BIG_SIZE), // streamed from disk
      "mid.bin": new Uint8Array(8 * MiB), // sent from memory once cached
    };
    await withServer(files, { server: { log } }, async ({ port }) => {
      for (
        const [name, size] of [["big.bin", BIG_SIZE], [
          "mid.bin",
          8 * MiB,
        ]] as const
      ) {
        await t.step(name, async () => {
          records.length = 0;
          const conn = await connect(port);
          let received = 0;
          try {
            await writeAll(conn, bytes(get(`/a.txt`) + get(`/${name}`)));
            // The first response whole, then 1 MiB of the second, then leave.
            let buf: Uint8Array = new Uint8Array(0);
            let second = -1;
            for (let i = 0; i < 10_000 && received < MiB; i++) {
              const chunk = new Uint8Array(65536);
              const n = await withTimeout(conn.read(chunk), 5000, {
                label: "a read",
              });
              assert.ok(n !== null, "closed early");
              if (second < 0) {
                buf = concatBytes([buf, chunk.subarray(0, n)]);
                const first = findHeadEnd(buf);
                if (first < 0) continue;
                second = findHeadEnd(buf, first + FILES["a.txt"].length);
                if (second >= 0) received = buf.length - second;
              } else received += n;
            }
            assert.ok(received >= MiB, `received ${received}`);
          } finally {
            conn.close(); // unread bytes: a reset
          }
          await until(
            () => records.some((r) => r.request === `GET /${name} HTTP/1.1`),
            `the record of /${name}`,
          );
          assert.equal(records[0].request, "GET /a.txt HTTP/1.1");
          assert.equal(records[0].length, FILES["a.txt"].length);
          const cut = records[1];
          assert.equal(cut.status, STATUS_CODE.OK);
          assert.ok(
            cut.length >= received && cut.length < size,
            `logged ${cut.length} body bytes, received ${received} of ${size}`,
          );
        });
      }
    });
  },
});

Deno.test({
  name:
    "Connection.serve() logs a 408 when the header timeout cuts off part of a request, and nothing for idle connections",
  ...SANITIZE,
  async fn(): Promise<void> {
    const { records, log } = recordLog();
    await withServer(FILES, { server: { ...TINY, log } }, async ({ port }) => {
      const conns = await Promise.all([1, 2, 3, 4].map(() => connect(port)));
      try {
        const [partial, silent, idle, body] = conns;
        // Part of a head; nothing at all; a whole request, then idle; a
        // whole head whose body never comes.
        await writeAll(partial, bytes("GET /a.txt HTTP/1.1\r\nHost: x\r\n"));
        await writeAll(idle, bytes(get("/a.txt")));
        assertFile(await new ResponseReader(idle).read(), "a.txt");
        await writeAll(
          body,
          bytes(
            "GET /b.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
          ),
        );
        const drained = [];
        for (const conn of conns) drained.push(await waitClosed(conn));
        // A timeout closes without an answer (no 408 is sent, as nginx).
        assert.equal(drained[conns.indexOf(silent)].total, 0, "silent");
        assert.equal(drained[conns.indexOf(partial)].total, 0, "partial");
      } finally {
        for (const conn of conns) conn.close();
      }
      await until(() => records.length >= 3, "three records");
    });
    // The server is shut down: every record is in.
    const lines = records.map((r) => `${r.request} ${r.status} ${r.length}`)
      .sort();
    assert.deepEqual(lines, [
      " 408 0",
      "GET /a.txt HTTP/1.1 200 14",
      "GET /b.txt HTTP/1.1 408 0",
    ]);
  },
});

Deno.test({
  name:
    "Connection.serve() logs the request line of a request rejected after it, and - when the line itself is bad",
  ...SANITIZE,
  async fn(): Promise<void> {
    const fields = Array.from({ length: 101 }, (_, i) => `X-${i}: v\r\n`);
    const cases: [string, number, string][] = [
      [
        `GET /many HTTP/1.1\r\nHost: x\r\n${fields.join("")}\r\n`,
        STATUS_CODE.RequestHeaderFieldsTooLarge,
        "GET /many HTTP/1.1",
      ],
      [
        "GET /nohost HTTP/1.1\r\n\r\n",
        STATUS_CODE.BadRequest,
        "GET /nohost HTTP/1.1",
      ],
      [
        "HEAD /h HTTP/1.1\r\nHost: a b\r\n\r\n",
        STATUS_CODE.BadRequest,
        "HEAD /h HTTP/1.1",
      ],
      [
        "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        STATUS_CODE.HTTPVersionNotSupported,
        "",
      ],
      ["G@T / HTTP/1.1\r\nHost: x\r\n\r\n", STATUS_CODE.BadRequest, ""],
    ];
    const { records, log } = recordLog();
    await withServer(FILES, { server: { log } }, async ({ port }) => {
      for (const [request, status] of cases) {
        const { responses, closed } = await exchange(port, request, {
          head: [request.startsWith("HEAD")],
        });
        assert.equal(responses[0].status, status, request);
        assert.equal(closed, true);
      }
      await until(() => records.length === cases.length, "every record");
    });
    assert.deepEqual(
      records.map((r) => [r.request, r.status]).sort(),
      cases.map(([, status, line]) => [line, status]).sort(),
    );
    for (const record of records) {
      if (record.request === "") {
        assert.match(formatCommonLog(record), / "-" \d{3} \d+$/);
      }
    }
  },
});
