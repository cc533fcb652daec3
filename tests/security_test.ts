/**
 * Hostile-input tests over raw sockets: request smuggling, path traversal and
 * open redirects, range amplification, and reflection of input in error
 * pages. The suite stands on its own (it overlaps connection_test.ts on
 * purpose): every byte the server sends is recorded and checked for markers
 * of files that must never be served.
 *
 * @module
 */

import assert from "node:assert/strict";
import { STATUS_CODE } from "../src/http/status.ts";
import {
  connect,
  get,
  latin1Bytes,
  type RawResponse,
  ResponseReader,
  SANITIZE,
  startServer,
  until,
  withTimeout,
  withTree,
  writeAll,
} from "./test_util.ts";

// --- helpers -----------------------------------------------------------------

/** Content of secret.txt: served only when a request for it is parsed. */
const SECRET = `secret-marker-${crypto.randomUUID()}`;
/** Content of the files outside the served root. */
const OUTSIDE = `outside-marker-${crypto.randomUUID()}`;

/** Files of the served tree. */
const FILES: Record<string, string> = {
  "a.txt": "legit a\n",
  "b.txt": "first b\n",
  "secret.txt": `${SECRET}\n`,
  "dir/index.html": "<p>dir</p>\n",
  "evil.example/index.html": "<p>evil.example dir</p>\n",
};

/** The longest one exchange (write, responses, probe) may take. */
const EXCHANGE_MS = 5000;

/** A connection reader that keeps a copy of every byte read. */
class Tap {
  #conn: Deno.Conn;
  #seen: Uint8Array[] = [];

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async read(p: Uint8Array): Promise<number | null> {
    const n = await this.#conn.read(p);
    if (n !== null && n > 0) this.#seen.push(p.slice(0, n));
    return n;
  }

  /** Everything read so far, one character per byte. */
  text(): string {
    let s = "";
    for (const chunk of this.#seen) {
      for (let at = 0; at < chunk.length; at += 4096) {
        s += String.fromCharCode(...chunk.subarray(at, at + 4096));
      }
    }
    return s;
  }
}

/** What came back on one connection. */
interface Talk {
  /** The responses expected. */
  responses: RawResponse[];
  /** True when the server closed the connection on its own after them. */
  closed: boolean;
  /** Every byte read, one character per byte. */
  raw: string;
}

const PROBE = "OPTIONS * HTTP/1.1\r\nHost: probe\r\n\r\n";

/**
 * After the expected responses: did the server close on its own? A probe
 * that a kept-alive server answers with 204, then our half-close; any other
 * response (such as one to a request smuggled out of a body) fails.
 */
async function probeClosed(
  conn: Deno.TcpConn,
  reader: ResponseReader,
): Promise<boolean> {
  try {
    await writeAll(conn, latin1Bytes(PROBE));
    await conn.closeWrite();
  } catch {
    // reset: the server is gone; whatever it sent is still read below
  }
  let probe: RawResponse;
  try {
    probe = await reader.read();
  } catch (error) {
    if (String(error).includes("Connection ended before a response head")) {
      return true;
    }
    throw error;
  }
  assert.equal(
    probe.status,
    STATUS_CODE.NoContent,
    `Unexpected extra response: ${probe.statusLine}`,
  );
  assert.ok(await reader.atEnd(), "bytes after the answer to the probe");
  return false;
}

/**
 * Sends `request` (raw bytes 0-255 as characters; in writes of `chunk` bytes
 * when given), reads `count` responses and whether the server closed; every
 * byte read is returned too. Bounded by {@linkcode EXCHANGE_MS}.
 */
async function talk(
  port: number,
  request: string,
  options: { count?: number; chunk?: number; head?: boolean } = {},
): Promise<Talk> {
  const conn = await connect(port);
  const tap = new Tap(conn);
  const converse = async (): Promise<Talk> => {
    const data = latin1Bytes(request);
    const step = options.chunk ?? data.length;
    try {
      for (let at = 0; at < data.length; at += step) {
        await writeAll(conn, data.subarray(at, at + step));
      }
    } catch {
      // The server answered an error and closed mid-request: read it below.
    }
    const reader = new ResponseReader(tap as unknown as Deno.Conn);
    const responses: RawResponse[] = [];
    for (let i = 0; i < (options.count ?? 1); i++) {
      responses.push(await reader.read({ head: options.head }));
    }
    const closed = await probeClosed(conn, reader);
    return { responses, closed, raw: tap.text() };
  };
  try {
    return await withTimeout(converse(), EXCHANGE_MS, { label: "exchange" });
  } catch (error) {
    const raw = tap.text();
    const leaks = [[SECRET, "secret.txt"], [OUTSIDE, "a file outside the root"]]
      .filter(([marker]) => raw.includes(marker))
      .map(([, what]) => `${what} was served! `).join("");
    throw new Error(
      `${leaks}${(error as Error).message}\n--- bytes read (${raw.length}): ${
        JSON.stringify(raw.slice(0, 1500))
      }`,
      { cause: error },
    );
  } finally {
    conn.close();
  }
}

/**
 * Starts a server over `root`, runs `fn`, and always shuts it down. While it
 * shuts down, `release` (when given) runs every 50 ms: it frees a server
 * stuck on a special file, so that such a bug fails its step instead of
 * hanging the suite.
 */
async function serving(
  root: string,
  fn: (port: number) => Promise<void>,
  options: { dirListing?: boolean; release?: () => Promise<void> } = {},
): Promise<void> {
  const s = await startServer(root, {
    handler: { dirListing: options.dirListing },
    server: { headerTimeout: 3000, idleTimeout: 3000 },
  });
  try {
    await fn(s.port);
  } finally {
    let done = false;
    const closing = s.close().finally(() => done = true);
    while (options.release !== undefined && !done) {
      await options.release();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        closing,
        new Promise((resolve) => timer = setTimeout(resolve, 50)),
      ]);
      clearTimeout(timer);
    }
    await closing;
  }
}

/** A printable form of raw request bytes for step names. */
function show(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

// --- 1. request smuggling ------------------------------------------------------

/** The request hidden in each attempt: answering it leaks SECRET. */
const S = "GET /secret.txt HTTP/1.1\r\nHost: x\r\n\r\n";
/** Sent after every attempt, in the same write. */
const LEGIT = "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
const L = S.length;
const HEX = L.toString(16);
/** A valid chunked body whose one chunk is S: S is data, never a request. */
const CHUNKED_S = `${HEX}\r\n${S}\r\n0\r\n\r\n`;
/** An empty chunked body, then S: only a server taking the body as chunked parses S. */
const AFTER_END = `0\r\n\r\n${S}`;

/** A GET of /b.txt with `fields` (each without CRLF), then `body`. */
function req(
  fields: string[],
  body: string,
  line = "GET /b.txt HTTP/1.1",
): string {
  return `${line}\r\nHost: x\r\n${
    fields.map((f) => f + "\r\n").join("")
  }\r\n${body}`;
}

interface SmuggleCase {
  name: string;
  request: string;
  /** The status of the first response. */
  status: number;
  /** The connection closes after the first response (else the legit GET is answered and it stays open). */
  closes: boolean;
}

const BAD: number = STATUS_CODE.BadRequest;
const OK: number = STATUS_CODE.OK;

/** Rejected at the head: the status, then close. */
function rejected(name: string, request: string, status = BAD): SmuggleCase {
  return { name, request, status, closes: true };
}

/** Valid: /b.txt, then /a.txt, and the connection stays open. */
function valid(name: string, request: string): SmuggleCase {
  return { name, request, status: OK, closes: false };
}

/** Valid head, unframeable body: the request is answered 400 (413 for a body too large) instead of /b.txt, then the connection closes. */
function badBody(name: string, body: string, status = BAD): SmuggleCase {
  return {
    name,
    request: req(["Transfer-Encoding: chunked"], body),
    status,
    closes: true,
  };
}

/** Control characters that no field name or value may hold. */
const CTLS: [string, string][] = [
  ["NUL", "\x00"],
  ["\\x01", "\x01"],
  ["DEL", "\x7f"],
];

const SMUGGLING: SmuggleCase[] = [
  // Content-Length and Transfer-Encoding together.
  rejected(
    "Transfer-Encoding then Content-Length (CL stops before S)",
    req([
      "Transfer-Encoding: chunked",
      `Content-Length: ${CHUNKED_S.indexOf(S)}`,
    ], CHUNKED_S),
  ),
  rejected(
    "Content-Length then Transfer-Encoding (chunked ends before S)",
    req([
      `Content-Length: ${AFTER_END.length}`,
      "Transfer-Encoding: chunked",
    ], AFTER_END),
  ),
  rejected(
    "Content-Length: 0 with Transfer-Encoding: chunked",
    req(["Content-Length: 0", "Transfer-Encoding: chunked"], CHUNKED_S),
  ),
  // Content-Length that is repeated, listed or not a plain decimal.
  rejected(
    "duplicate Content-Length, same value",
    req([`Content-Length: ${L}`, `Content-Length: ${L}`], S),
  ),
  rejected(
    "duplicate Content-Length, 0 then the body length",
    req(["Content-Length: 0", `Content-Length: ${L}`], S),
  ),
  rejected(
    "duplicate Content-Length, the body length then 0",
    req([`Content-Length: ${L}`, "Content-Length: 0"], S),
  ),
  rejected(
    "comma-listed Content-Length: 5, 5",
    req(["Content-Length: 5, 5"], `hello${S}`),
  ),
  rejected(
    `comma-listed Content-Length: ${L}, ${L}`,
    req([`Content-Length: ${L}, ${L}`], S),
  ),
  rejected(
    `comma-listed Content-Length: 0, ${L}`,
    req([`Content-Length: 0, ${L}`], S),
  ),
  rejected(
    "Content-Length: 0x.. (hex)",
    req([`Content-Length: 0x${HEX}`], S),
  ),
  rejected("Content-Length: 1e3", req(["Content-Length: 1e3"], `x${S}`)),
  rejected(
    "Content-Length: 2^64+1 (wraps to 1 in 64 bits): too large",
    req(["Content-Length: 18446744073709551617"], `x${S}`),
    STATUS_CODE.ContentTooLarge,
  ),
  rejected(
    "Content-Length with a space before the colon",
    req([`Content-Length : ${L}`], S),
  ),
  rejected(
    "Content-Length with a tab before the colon",
    req([`Content-Length\t: ${L}`], S),
  ),
  rejected(
    "Content-Length line without a colon",
    req([`Content-Length ${L}`], S),
  ),
  rejected(
    "bare LF in a field line hiding Content-Length",
    req([`X-A: b\nContent-Length: ${L}`], S),
  ),
  rejected(
    "bare CR in a field line hiding Content-Length",
    req([`X-A: b\rContent-Length: ${L}`], S),
  ),
  rejected(
    "obs-fold hiding Content-Length",
    req(["X-Fold: a", ` Content-Length: ${L}`], S),
  ),
  rejected(
    "obs-fold hiding Transfer-Encoding",
    req(["X-Fold: a", "\tTransfer-Encoding: chunked"], AFTER_END),
  ),
  // Transfer-Encoding other than exactly one final chunked.
  rejected(
    "Transfer-Encoding: chunked, gzip",
    req(["Transfer-Encoding: chunked, gzip"], AFTER_END),
  ),
  rejected(
    "Transfer-Encoding: gzip, chunked",
    req(["Transfer-Encoding: gzip, chunked"], AFTER_END),
    STATUS_CODE.NotImplemented,
  ),
  rejected(
    "Transfer-Encoding: gzip, then chunked on a second line",
    req(["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"], AFTER_END),
    STATUS_CODE.NotImplemented,
  ),
  rejected(
    "Transfer-Encoding: chunked, then gzip on a second line",
    req(["Transfer-Encoding: chunked", "Transfer-Encoding: gzip"], AFTER_END),
  ),
  rejected(
    "Transfer-Encoding: chunked, chunked",
    req(["Transfer-Encoding: chunked, chunked"], AFTER_END),
  ),
  rejected(
    "Transfer-Encoding: chunked on two lines",
    req(
      ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
      AFTER_END,
    ),
  ),
  rejected(
    "Transfer-Encoding: xchunked (unknown, no chunked)",
    req(["Transfer-Encoding: xchunked"], AFTER_END),
  ),
  rejected(
    "Transfer-Encoding: chunkedx",
    req(["Transfer-Encoding: chunkedx"], AFTER_END),
  ),
  rejected(
    'Transfer-Encoding: "chunked" (quoted)',
    req(['Transfer-Encoding: "chunked"'], AFTER_END),
  ),
  rejected(
    "Transfer-Encoding: identity",
    req(["Transfer-Encoding: identity"], AFTER_END),
  ),
  rejected(
    "Transfer-Encoding: (empty)",
    req(["Transfer-Encoding:"], AFTER_END),
  ),
  rejected(
    "Transfer-Encoding with a space before the colon",
    req(["Transfer-Encoding : chunked"], AFTER_END),
  ),
  rejected(
    "Transfer-Encoding with a tab before the colon",
    req(["Transfer-Encoding\t: chunked"], AFTER_END),
  ),
  rejected(
    "Transfer-Encoding in HTTP/1.0",
    req(
      ["Transfer-Encoding: chunked", "Connection: keep-alive"],
      AFTER_END,
      "GET /b.txt HTTP/1.0",
    ),
  ),
  valid(
    "Transfer-Encoding: ChUnKeD (case-insensitive)",
    req(["Transfer-Encoding: ChUnKeD"], CHUNKED_S),
  ),
  valid(
    "Transfer-Encoding with leading and trailing spaces",
    req(["Transfer-Encoding:    chunked   "], CHUNKED_S),
  ),
  valid(
    "Transfer-Encoding with leading and trailing tabs",
    req(["Transfer-Encoding:\t \tchunked \t"], CHUNKED_S),
  ),
  valid(
    "Transfer-Encoding:\\tchunked",
    req(["Transfer-Encoding:\tchunked"], CHUNKED_S),
  ),
  valid(
    "Transfer-Encoding: , chunked, (empty list elements)",
    req(["Transfer-Encoding: , chunked,"], CHUNKED_S),
  ),
  // Control characters in field names and values.
  ...CTLS.flatMap(([label, c]) => [
    rejected(
      `${label} in a field name (Transfer-Encoding${show(c)})`,
      req([`Transfer-Encoding${c}: chunked`], AFTER_END),
    ),
    rejected(
      `${label} in a field value (chunked${show(c)})`,
      req([`Transfer-Encoding: chunked${c}`], AFTER_END),
    ),
    rejected(
      `${label} in a Content-Length value`,
      req([`Content-Length: 0${c}${L}`], S),
    ),
  ]),
  rejected(
    "vertical tab in a field value",
    req(["Transfer-Encoding: \x0bchunked"], AFTER_END),
  ),
  rejected(
    "form feed in a field name",
    req(["Transfer-Encoding\x0c: chunked"], AFTER_END),
  ),
  rejected(
    "NUL in the request target",
    req([`Content-Length: ${L}`], S, "GET /b.txt\x00 HTTP/1.1"),
  ),
  // Chunked framing: the head is valid (b.txt is answered), the body is not.
  badBody("chunk size ended by a bare LF", `0\n\r\n${S}`),
  badBody("chunk size ended by a bare CR", `0\r\r\n${S}`),
  badBody("chunk data ended by a bare LF", `1\r\nx\n0\r\n\r\n${S}`),
  badBody("chunk data longer than its size", `1\r\nxx\r\n0\r\n\r\n${S}`),
  badBody(
    "chunk size ffffffffffffffffff (overflow)",
    `ffffffffffffffffff\r\n${S}\r\n0\r\n\r\n`,
    STATUS_CODE.ContentTooLarge, // past the body limit before it overflows
  ),
  badBody(
    "chunk size 10000000000000000 (wraps to 0 in 64 bits)",
    `10000000000000000\r\n\r\n${S}`,
    STATUS_CODE.ContentTooLarge,
  ),
  badBody("chunk size -1", `-1\r\n${S}\r\n0\r\n\r\n`),
  badBody("chunk size -0", `-0\r\n\r\n${S}`),
  badBody("chunk size +0", `+0\r\n\r\n${S}`),
  badBody("chunk size 0x0", `0x0\r\n\r\n${S}`),
  badBody("chunk size with a leading space", ` 0\r\n\r\n${S}`),
  badBody("chunk extension with a bare CR", `0;a=b\rc\r\n\r\n${S}`),
  badBody("chunk extension with a bare LF", `0;a=b\nc\r\n\r\n${S}`),
  badBody("chunk extension with a NUL", `0;a=\x00\r\n\r\n${S}`),
  badBody("trailer line ended by a bare LF", `0\r\nX-T: v\n\r\n${S}`),
  badBody("trailer line ended by a bare CR", `0\r\nX-T: v\r\r\n${S}`),
  badBody("trailer obs-fold", `0\r\nX-T: v\r\n folded\r\n\r\n${S}`),
  badBody("trailer line starting with a colon", `0\r\n: v\r\n\r\n${S}`),
  valid(
    "chunk extensions with quoted strings",
    req(
      ["Transfer-Encoding: chunked"],
      `${HEX};name="va;l\\"ue" ; x=y\r\n${S}\r\n0;last="\\\\"\r\n\r\n`,
    ),
  ),
  valid(
    "trailers (ignored, even Content-Length and Transfer-Encoding)",
    req(
      ["Transfer-Encoding: chunked"],
      `${HEX}\r\n${S}\r\n0\r\nX-Trailer: v\r\nContent-Length: 0\r\n` +
        "Transfer-Encoding: gzip\r\n\r\n",
    ),
  ),
  {
    name: "Connection: close, then a request",
    request: req(["Connection: close"], S),
    status: OK,
    closes: true,
  },
  {
    name: "Connection: close with a body holding a request",
    request: req(["Connection: close", `Content-Length: ${L}`], S),
    status: OK,
    closes: true,
  },
  valid(
    "GET with a Content-Length body holding a request",
    req([`Content-Length: ${L}`], S),
  ),
  valid(
    "Content-Length with surrounding whitespace",
    req([`Content-Length: \t${L} \t`], S),
  ),
];

/** Each case is sent in one write, then again one byte per write. */
const WRITE_MODES: { label: string; chunk?: number }[] = [
  { label: "one write" },
  { label: "1-byte writes", chunk: 1 },
];

Deno.test({
  name:
    "Connection.serve() rejects request smuggling and never answers a hidden request",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withTree(FILES, async (root) => {
      await serving(root, async (port) => {
        for (const mode of WRITE_MODES) {
          for (const c of SMUGGLING) {
            const expected = `${c.status}${c.closes ? " + close" : ""}`;
            await t.step(
              `${c.name} -> ${expected} (${mode.label})`,
              async () => {
                const count = c.closes ? 1 : 2;
                const { responses, closed, raw } = await talk(
                  port,
                  c.request + LEGIT,
                  { count, chunk: mode.chunk },
                );
                assert.ok(
                  !raw.includes(SECRET),
                  `secret.txt was served: ${JSON.stringify(raw)}`,
                );
                const first = responses[0];
                assert.equal(first.status, c.status, first.statusLine);
                if (c.status === OK) assert.equal(first.text, FILES["b.txt"]);
                else assert.equal(first.headers.connection, "close");
                if (!c.closes) {
                  assert.equal(
                    responses[1].status,
                    OK,
                    responses[1].statusLine,
                  );
                  assert.equal(responses[1].text, FILES["a.txt"]);
                }
                assert.equal(
                  closed,
                  c.closes,
                  "closed after the first response",
                );
              },
            );
          }
        }
      });
    });
  },
});

// --- 2. traversal and redirects ---------------------------------------------

/** The layout: <base>/outside.txt, <base>/outside-dir/, and the served <base>/root/. */
const TRAVERSAL_FILES: Record<string, string> = {
  "outside.txt": `${OUTSIDE}\n`,
  "outside-dir/x.txt": `${OUTSIDE}\n`,
  "outside-dir/index.html": `${OUTSIDE}\n`,
  ...Object.fromEntries(
    Object.entries(FILES).map(([path, text]) => [`root/${path}`, text]),
  ),
};

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/** Special files that could be made (each needs a tool or a privilege). */
interface Specials {
  /** A character device: `mknod` needs root (CAP_MKNOD). */
  device: boolean;
  /** A socket file: made with python3. */
  socket: boolean;
}

/** Runs `cmd`; answers whether it succeeded (a missing tool counts as failure). */
async function tryRun(cmd: string, args: string[]): Promise<boolean> {
  try {
    await run(cmd, args);
    return true;
  } catch {
    return false;
  }
}

/** Adds the special entries of the traversal tree under `<base>/root`. */
async function addSpecialFiles(base: string): Promise<Specials> {
  const root = `${base}/root`;
  await Deno.symlink("../outside.txt", `${root}/link-out.txt`);
  await Deno.symlink(`${base}/outside.txt`, `${root}/link-abs.txt`);
  await Deno.symlink("../outside-dir", `${root}/link-dir`);
  await Deno.symlink("..", `${root}/up`);
  await Deno.symlink("loop2", `${root}/loop1`);
  await Deno.symlink("loop1", `${root}/loop2`);
  await Deno.symlink("self", `${root}/self`);
  await run("mkfifo", [`${root}/fifo`]);
  await Deno.symlink("fifo", `${root}/fifo-link`);
  // /dev/null's numbers: reading it never blocks, whatever the server does.
  const device = await tryRun("mknod", [`${root}/dev`, "c", "1", "3"]) &&
    (await Deno.lstat(`${root}/dev`)).isCharDevice === true;
  // Deno.listen on a unix path needs --allow-net for it, which this suite
  // does not ask for: a child process binds the socket file instead.
  const socket = await tryRun("python3", [
    "-c",
    "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
    `${root}/sock`,
  ]) && (await Deno.lstat(`${root}/sock`)).isSocket === true;
  return { device, socket };
}

interface TraversalCase {
  name: string;
  target: string;
  status: number;
  /** The exact Location of a redirect. */
  location?: string;
  /** Needs a special file that may not be makeable here (the step is then ignored). */
  needs?: keyof Specials;
}

const NOT_FOUND: number = STATUS_CODE.NotFound;

const TRAVERSAL: TraversalCase[] = [
  { name: "raw ..", target: "/../outside.txt", status: NOT_FOUND },
  { name: "raw .. twice", target: "/dir/../../outside.txt", status: NOT_FOUND },
  { name: "..%2f", target: "/..%2foutside.txt", status: NOT_FOUND },
  { name: "..%2F", target: "/..%2Foutside.txt", status: NOT_FOUND },
  { name: "%2e%2e", target: "/%2e%2e/outside.txt", status: NOT_FOUND },
  { name: "%2E%2e", target: "/%2E%2e/outside.txt", status: NOT_FOUND },
  { name: ".%2e", target: "/.%2e/outside.txt", status: NOT_FOUND },
  { name: "%2e%2e%2f", target: "/%2e%2e%2foutside.txt", status: NOT_FOUND },
  {
    name: "%2e%2e to /etc/passwd",
    target: "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    status: NOT_FOUND,
  },
  {
    name: "absolute-form with ..",
    target: "http://x/../outside.txt",
    status: NOT_FOUND,
  },
  { name: "..%5c", target: "/..%5coutside.txt", status: BAD },
  { name: "..%5C", target: "/..%5Coutside.txt", status: BAD },
  { name: "raw backslash ..\\", target: "/..\\outside.txt", status: BAD },
  {
    name: "over-long UTF-8 %c0%ae%c0%ae/",
    target: "/%c0%ae%c0%ae/outside.txt",
    status: BAD,
  },
  {
    name: "over-long UTF-8 slash %c0%af",
    target: "/..%c0%afoutside.txt",
    status: BAD,
  },
  {
    name: "over-long UTF-8 %e0%80%ae",
    target: "/%e0%80%ae%e0%80%ae/outside.txt",
    status: BAD,
  },
  { name: "//host/path", target: "//evil.example/path", status: NOT_FOUND },
  { name: "/\\host (raw backslash)", target: "/\\evil.example", status: BAD },
  { name: "/%5chost", target: "/%5cevil.example", status: BAD },
  { name: "NUL %00", target: "/a.txt%00.html", status: BAD },
  { name: "trailing dot", target: "/a.txt.", status: NOT_FOUND },
  { name: "file as a directory", target: "/a.txt/", status: NOT_FOUND },
  { name: "4 KiB segment", target: `/${"a".repeat(4096)}`, status: NOT_FOUND },
  {
    name: "4 KiB of 200-byte segments",
    target: `/${Array(20).fill("b".repeat(200)).join("/")}`,
    status: NOT_FOUND,
  },
  {
    name: "9 KiB target",
    target: `/${"a".repeat(9 * 1024)}`,
    status: STATUS_CODE.URITooLong,
  },
  { name: "symlink loop", target: "/loop1", status: NOT_FOUND },
  { name: "self-referencing symlink", target: "/self", status: NOT_FOUND },
  {
    name: "relative symlink to an outside file",
    target: "/link-out.txt",
    status: NOT_FOUND,
  },
  {
    name: "absolute symlink to an outside file",
    target: "/link-abs.txt",
    status: NOT_FOUND,
  },
  {
    name: "symlink to an outside directory, a file in it",
    target: "/link-dir/x.txt",
    status: NOT_FOUND,
  },
  {
    name: "symlink to an outside directory, with slash",
    target: "/link-dir/",
    status: NOT_FOUND,
  },
  {
    name: "symlink to an outside directory, no slash (no redirect)",
    target: "/link-dir",
    status: NOT_FOUND,
  },
  {
    name: "symlink to the parent",
    target: "/up/outside.txt",
    status: NOT_FOUND,
  },
  { name: "FIFO", target: "/fifo", status: NOT_FOUND },
  { name: "symlink to a FIFO", target: "/fifo-link", status: NOT_FOUND },
  {
    name: "character device",
    target: "/dev",
    status: NOT_FOUND,
    needs: "device",
  },
  { name: "socket file", target: "/sock", status: NOT_FOUND, needs: "socket" },
  // Redirects of a directory asked for without its trailing slash.
  {
    name: "redirect /dir",
    target: "/dir",
    status: STATUS_CODE.MovedPermanently,
    location: "/dir/",
  },
  {
    name: "redirect //dir",
    target: "//dir",
    status: STATUS_CODE.MovedPermanently,
    location: "/dir/",
  },
  {
    name: "redirect ///dir",
    target: "///dir",
    status: STATUS_CODE.MovedPermanently,
    location: "/dir/",
  },
  {
    name: "redirect /%2fdir",
    target: "/%2fdir",
    status: STATUS_CODE.MovedPermanently,
    location: "/dir/",
  },
  {
    name: "redirect /./dir",
    target: "/./dir",
    status: STATUS_CODE.MovedPermanently,
    location: "/dir/",
  },
  {
    name: "redirect /dir?x=//evil.example keeps the query verbatim",
    target: "/dir?x=//evil.example",
    status: STATUS_CODE.MovedPermanently,
    location: "/dir/?x=//evil.example",
  },
  {
    name: "redirect //evil.example (a directory of that name)",
    target: "//evil.example",
    status: STATUS_CODE.MovedPermanently,
    location: "/evil.example/",
  },
  {
    name: "redirect /%2fevil.example",
    target: "/%2fevil.example",
    status: STATUS_CODE.MovedPermanently,
    location: "/evil.example/",
  },
  {
    name: "redirect /%2F%2Fevil.example",
    target: "/%2F%2Fevil.example",
    status: STATUS_CODE.MovedPermanently,
    location: "/evil.example/",
  },
  {
    name: "redirect /.//evil.example",
    target: "/.//evil.example",
    status: STATUS_CODE.MovedPermanently,
    location: "/evil.example/",
  },
  {
    name: "redirect /x/..//evil.example",
    target: "/x/..//evil.example",
    status: STATUS_CODE.MovedPermanently,
    location: "/evil.example/",
  },
  {
    name: "redirect absolute-form http://x//evil.example",
    target: "http://x//evil.example",
    status: STATUS_CODE.MovedPermanently,
    location: "/evil.example/",
  },
  {
    name: "redirect //evil.example?//q keeps the query verbatim",
    target: "//evil.example?//q",
    status: STATUS_CODE.MovedPermanently,
    location: "/evil.example/?//q",
  },
];

/** One "/" then neither "/" nor "\": a path on this origin, never a scheme or network path. */
const SAFE_LOCATION = /^\/[^/\\]/;

Deno.test({
  name: "Connection.serve() rejects traversal and never redirects off-site",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withTree(TRAVERSAL_FILES, async (base) => {
      const specials = await addSpecialFiles(base);
      // Opening a FIFO read-write never blocks on Linux, and it releases
      // whoever blocks opening (or reading) it: a server that wrongly opens
      // the FIFO would otherwise never finish shutting down.
      const release = async (): Promise<void> => {
        const fifo = await Deno.open(`${base}/root/fifo`, {
          read: true,
          write: true,
        });
        fifo.close();
      };
      await serving(`${base}/root`, async (port) => {
        for (const c of TRAVERSAL) {
          const target = c.target.length > 60
            ? `${c.target.slice(0, 40)}... (${c.target.length} chars)`
            : c.target;
          await t.step({
            name: `${c.name}: ${show(target)} -> ${c.status}`,
            ignore: c.needs !== undefined && !specials[c.needs],
            fn: async () => {
              const { responses, closed, raw } = await talk(
                port,
                `GET ${c.target} HTTP/1.1\r\nHost: x\r\n\r\n`,
              );
              assert.ok(
                !raw.includes(OUTSIDE),
                "a file outside the root was served",
              );
              assert.ok(!raw.includes("root:x:0:0"), "/etc/passwd was served");
              const res = responses[0];
              assert.equal(res.status, c.status, res.statusLine);
              const location = res.headers.location;
              if (c.location === undefined) {
                assert.equal(location, undefined, "no Location");
              } else {
                assert.equal(location, c.location);
                assert.match(location, SAFE_LOCATION);
                assert.doesNotMatch(location, /^[a-z][a-z0-9+.-]*:/i);
              }
              // 400 and 414 close; 404 and 301 keep the connection.
              assert.equal(
                closed,
                c.status === BAD || c.status === STATUS_CODE.URITooLong,
              );
            },
          });
        }
      }, { release });
    });
  },
});

/** Size of the streamed file of the swap test: past what the handler holds in memory. */
const SWAP_BIG = 16 * 1024 * 1024 + 4096;

Deno.test({
  name:
    "Connection.serve() never serves a file outside the root after a directory is swapped for a symlink",
  ...SANITIZE,
  async fn(t): Promise<void> {
    const pad = (marker: string, size: number): Uint8Array => {
      const bytes = new Uint8Array(size).fill(0x2e);
      bytes.set(latin1Bytes(marker));
      return bytes;
    };
    await withTree({
      "root/d/small.txt": pad("inside small", 64),
      "root/d/big.bin": pad("inside big", SWAP_BIG),
      "swap/small.txt": pad(OUTSIDE, 64),
      "swap/big.bin": pad(OUTSIDE, SWAP_BIG),
    }, async (base) => {
      await serving(`${base}/root`, async (port) => {
        const fetchBoth = async (): Promise<RawResponse[]> => {
          const { responses, raw } = await talk(
            port,
            get("/d/small.txt") + get("/d/big.bin", "Range: bytes=0-63\r\n"),
            { count: 2 },
          );
          assert.ok(
            !raw.includes(OUTSIDE),
            "a file outside the root was served",
          );
          return responses;
        };
        await t.step("before the swap: both served", async () => {
          const [small, big] = await fetchBoth();
          assert.equal(small.status, STATUS_CODE.OK);
          assert.equal(big.status, STATUS_CODE.PartialContent);
        });
        await Deno.rename(`${base}/root/d`, `${base}/root/d-old`);
        await Deno.symlink(`${base}/swap`, `${base}/root/d`);
        await t.step(
          "at once, and until both are 404: never outside",
          async () => {
            // The resolution of the big file and the small file's bytes are
            // held up to a second: poll past that, checking every answer.
            await until(async () => {
              const [small, big] = await fetchBoth();
              return small.status === STATUS_CODE.NotFound &&
                big.status === STATUS_CODE.NotFound;
            }, "both to be 404");
          },
        );
      });
    });
  },
});

// --- 3. range amplification ------------------------------------------------

const RANGE_SIZE = 4000;
/** Printable, position-dependent content, so that any reordering shows. */
const RANGE_TEXT = Array.from(
  { length: RANGE_SIZE },
  (_, i) => String.fromCharCode(0x41 + (i * 7 + (i >> 5)) % 26),
).join("");

function ranges(count: number, stride = 2): string {
  return "bytes=" +
    Array.from({ length: count }, (_, i) => `${i * stride}-${i * stride}`)
      .join(",");
}

interface RangeCase {
  name: string;
  /** The Range field lines (each without the name). */
  range: string[];
  status: number;
}

const RANGES: RangeCase[] = [
  {
    name: "one range (control)",
    range: ["bytes=0-9"],
    status: STATUS_CODE.PartialContent,
  },
  {
    name: "2 disjoint ranges (control)",
    range: [ranges(2)],
    status: STATUS_CODE.PartialContent,
  },
  {
    name: "16 disjoint ranges (the limit)",
    range: [ranges(16)],
    status: STATUS_CODE.PartialContent,
  },
  { name: "17 disjoint ranges", range: [ranges(17)], status: STATUS_CODE.OK },
  {
    name: "2 overlapping ranges",
    range: ["bytes=0-10,5-15"],
    status: STATUS_CODE.OK,
  },
  {
    name: "0-,0- (whole file twice)",
    range: ["bytes=0-,0-"],
    status: STATUS_CODE.OK,
  },
  {
    name: "suffix overlapping a range",
    range: [`bytes=-${RANGE_SIZE},0-0`],
    status: STATUS_CODE.OK,
  },
  {
    name: "the same range twice",
    range: ["bytes=5-9,5-9"],
    status: STATUS_CODE.OK,
  },
  { name: "1000 tiny ranges", range: [ranges(1000)], status: STATUS_CODE.OK },
  {
    name: "20 Range lines of one range each",
    range: Array.from({ length: 20 }, (_, i) => `bytes=${i * 2}-${i * 2}`),
    status: STATUS_CODE.OK,
  },
];

Deno.test({
  name: "Connection.serve() rejects range amplification",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withTree({ "r.txt": RANGE_TEXT }, async (root) => {
      await serving(root, async (port) => {
        for (const c of RANGES) {
          await t.step(`${c.name} -> ${c.status}`, async () => {
            const fields = c.range.map((r) => `Range: ${r}\r\n`).join("");
            assert.ok(fields.length < 15_000, "under the head limit");
            const { responses, closed, raw } = await talk(
              port,
              `GET /r.txt HTTP/1.1\r\nHost: x\r\n${fields}\r\n`,
            );
            const res = responses[0];
            assert.equal(res.status, c.status, res.statusLine);
            assert.equal(closed, false);
            if (c.status === STATUS_CODE.OK) {
              assert.equal(res.headers["content-length"], String(RANGE_SIZE));
              assert.equal(res.text, RANGE_TEXT);
              assert.equal(res.headers["content-range"], undefined);
            }
            // No amplification: never more than the file plus a head and
            // the parts' small heads (16 ranges at most).
            assert.ok(
              raw.length < RANGE_SIZE + 4096,
              `${raw.length} bytes for a ${RANGE_SIZE}-byte file`,
            );
          });
        }
      });
    });
  },
});

// --- 4. reflection -----------------------------------------------------------

interface ReflectCase {
  name: string;
  request: string;
  status: number;
  /** Strings that must appear nowhere in the response (head or body). */
  never: string[];
}

const XSS = ["<script", "</script", "onload=", "zq7probe", "<svg", "<img"];

function getWith(target: string, fields = ""): string {
  return `GET ${target} HTTP/1.1\r\nHost: x\r\n${fields}\r\n`;
}

const REFLECT: ReflectCase[] = [
  {
    name: "%3Cscript%3E in the path",
    request: getWith("/%3Cscript%3Ealert('zq7probe')%3C/script%3E"),
    status: NOT_FOUND,
    never: XSS,
  },
  {
    name: "raw <script> in the path",
    request: getWith("/<script>alert('zq7probe')</script>"),
    status: NOT_FOUND,
    never: XSS,
  },
  {
    name: "%22onload= in the path",
    request: getWith("/x%22onload=alert('zq7probe')%22"),
    status: NOT_FOUND,
    never: [...XSS, '"onload='],
  },
  {
    name: 'raw "onload= in the path',
    request: getWith('/x"onload=alert(zq7probe)//'),
    status: NOT_FOUND,
    never: [...XSS, '"onload='],
  },
  {
    name: "%3Csvg in the query",
    request: getWith("/nope?q=%3Csvg%20onload=alert('zq7probe')%3E"),
    status: NOT_FOUND,
    never: XSS,
  },
  {
    name: "<script> in a bad percent-encoding (400)",
    request: getWith("/%3Cscript%3Ezq7probe%zz"),
    status: BAD,
    never: XSS,
  },
  {
    name: "<script> in the Host header (400)",
    request:
      "GET /a.txt HTTP/1.1\r\nHost: <script>alert('zq7probe')</script>\r\n\r\n",
    status: BAD,
    never: XSS,
  },
  {
    name: "<script> in a too-long target (414)",
    request: getWith(`/${"%3Cscript%3Ezq7probe".repeat(500)}`),
    status: STATUS_CODE.URITooLong,
    never: XSS,
  },
  {
    name: "<script> in a too-large head (431)",
    request: getWith(
      "/a.txt",
      `X-Big: ${"<script>zq7probe</script>".repeat(700)}\r\n`,
    ),
    status: STATUS_CODE.RequestHeaderFieldsTooLarge,
    never: XSS,
  },
  {
    name: "an unknown method (501)",
    request: "ZQ7PROBE /%3Cscript%3E HTTP/1.1\r\nHost: x\r\n\r\n",
    status: STATUS_CODE.NotImplemented,
    never: [...XSS, "ZQ7PROBE"],
  },
  {
    name: "<script> in a Range (ignored)",
    request: getWith("/a.txt", "Range: bytes=<script>zq7probe\r\n"),
    status: OK,
    never: XSS,
  },
  {
    name: "<script> in an If-Match (412)",
    request: getWith("/a.txt", 'If-Match: "<script>zq7probe"\r\n'),
    status: STATUS_CODE.PreconditionFailed,
    never: XSS,
  },
];

Deno.test({
  name: "Connection.serve() rejects reflecting request input in responses",
  ...SANITIZE,
  async fn(t): Promise<void> {
    await withTree(FILES, async (root) => {
      await serving(root, async (port) => {
        for (const c of REFLECT) {
          await t.step(`${c.name} -> ${c.status}`, async () => {
            const { responses, raw } = await talk(port, c.request);
            assert.equal(
              responses[0].status,
              c.status,
              responses[0].statusLine,
            );
            const lower = raw.toLowerCase();
            for (const s of c.never) {
              assert.ok(
                !lower.includes(s.toLowerCase()),
                `response contains ${s}`,
              );
            }
          });
        }
      });
    });
  },
});

Deno.test({
  name: "Connection.serve() rejects markup in file names of directory listings",
  ...SANITIZE,
  async fn(t): Promise<void> {
    const dir = "<svg onload=alert('zq7probe')>";
    const names = [
      `"><img src=x onerror=alert('zq7probe')>.txt`,
      "'><script>zq7probe",
    ];
    await withTree(
      Object.fromEntries(names.map((n) => [`${dir}/${n}`, "x\n"])),
      async (root) => {
        await serving(root, async (port) => {
          const target = `/${encodeURIComponent(dir)}/`;
          await t.step(`HTML listing of ${show(target)} escapes`, async () => {
            const { responses } = await talk(port, getWith(target));
            const res = responses[0];
            assert.equal(res.status, OK, res.statusLine);
            assert.match(res.headers["content-type"], /^text\/html/);
            assert.ok(res.text.includes("zq7probe"), "the entries are listed");
            for (const s of ["<script", "<img", "<svg"]) {
              assert.ok(!res.text.includes(s), `listing contains ${s}`);
            }
          });
          await t.step(`JSON listing of ${show(target)} is JSON`, async () => {
            const { responses } = await talk(
              port,
              getWith(target, "Accept: application/json\r\n"),
            );
            const res = responses[0];
            assert.equal(res.status, OK, res.statusLine);
            assert.equal(res.headers["content-type"], "application/json");
            const listing = JSON.parse(res.text) as {
              entries: { name: string }[];
            };
            assert.deepEqual(
              listing.entries.map((e) => e.name).sort(),
              names.slice().sort(),
            );
          });
        }, { dirListing: true });
      },
    );
  },
});
