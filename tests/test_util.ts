/**
 * Shared helpers for the integration tests and the soak and fuzz scripts: a
 * server on port 0 over a temp root, raw-byte clients, a strict HTTP/1.1
 * response reader, bounded waits, and main.ts as a child process.
 *
 * Nothing here uses Deno's test API, so that `deno run` scripts may import it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { parseCli, type ServeConfig } from "../src/cli.ts";
import { CLOCK, now } from "../src/clock.ts";
import { Handler, type HandlerOptions } from "../src/handler.ts";
import type { ContentCoding } from "../src/encoding.ts";
import { STATUS_CODE } from "../src/http/status.ts";
import { Server, type ServerOptions } from "../src/server.ts";

/** Sanitizers on, as every test here asks for. */
export const SANITIZE = { sanitizeOps: true, sanitizeResources: true } as const;

/** The path of main.ts. */
export const MAIN: string = fileURLToPath(
  new URL("../main.ts", import.meta.url),
);
/** The project directory (where main.ts, deno.json and html/ are). */
export const PROJECT: string = MAIN.slice(0, MAIN.lastIndexOf("/"));

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// --- timing ------------------------------------------------------------------

/** Waits `ms` (pacing only: never used to win a race). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Spins for `ms` without yielding, so that no timer can run meanwhile. */
export function spin(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy
  }
}

/** Asserts that `now()` stands still over a spin longer than the clock's resolution: the shared clock is held. Answers the held value. */
export function assertClockHeld(label: string): number {
  const held = now();
  spin(CLOCK.resolution + 10);
  assert.equal(now(), held, label);
  return held;
}

/** Asserts that `now()` moves with the real clock over a spin: nobody holds the shared clock. */
export function assertClockFree(label: string): void {
  const first = now();
  spin(5);
  assert.ok(now() >= first + 5, label);
}

/** The rejection of {@linkcode withTimeout}. */
export class TimeoutError extends Error {
  /** `label` names what was awaited for `ms`. */
  constructor(ms: number, label: string) {
    super(`Timed out after ${ms} ms: ${label}`);
    this.name = "TimeoutError";
  }
}

/** Options of {@linkcode withTimeout}. */
export interface WithTimeoutOptions {
  /** Names what is awaited, in the error. */
  label: string;
}

/** Rejects with a {@linkcode TimeoutError} when `promise` takes longer than `ms`; clears its timer. */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  options: WithTimeoutOptions,
): Promise<T> {
  const { label } = options;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(ms, label)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Options of {@linkcode until}. */
export interface UntilOptions {
  /** How long to poll, in ms (default 5000). */
  ms?: number;
  /** How often to poll, in ms (default 10). */
  step?: number;
}

/** Polls `done()` now and every `options.step` ms for up to `options.ms`; answers the ms it took, else fails naming `label`. */
export async function until(
  done: () => boolean | Promise<boolean>,
  label: string,
  options: UntilOptions = {},
): Promise<number> {
  const { ms = 5000, step = 10 } = options;
  const start = Date.now();
  const steps = Math.ceil(ms / step);
  for (let i = 0; i <= steps; i++) {
    if (await done()) return Date.now() - start;
    if (i < steps) await sleep(step);
  }
  return assert.fail(`Timed out after ${ms} ms waiting for ${label}`);
}

/** A seeded PRNG (mulberry32): the same seed draws the same sequence in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// --- bytes -------------------------------------------------------------------

/** Encodes a string as bytes (Latin-1 safe for ASCII requests). */
export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Encodes every UTF-16 unit as one byte (for raw bytes 0-255 written as characters). */
export function latin1Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

/** The pieces one after the other, in one new array. */
export function concatBytes(pieces: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

/** `n` random bytes. */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) {
    crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  }
  return out;
}

/** The SHA-256 of `data`, in lowercase hex. */
export async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data);
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** A GET request for `path` (HTTP/1.1, Host: example.test), with optional extra header lines. */
export function get(path: string, extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: example.test\r\n${extra}\r\n`;
}

// --- trees and servers -------------------------------------------------------

/** A temporary directory tree: `files` maps relative paths to contents. */
export async function makeTree(
  files: Record<string, string | Uint8Array>,
): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "static-srv-test-" });
  for (const [path, content] of Object.entries(files)) {
    const full = `${root}/${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(full, content);
    else await Deno.writeFile(full, content);
  }
  return root;
}

/** A running test server. */
export interface TestServer {
  /** The server. */
  server: Server;
  /** Its handler. */
  handler: Handler;
  /** The port it listens on (127.0.0.1). */
  port: number;
  /** Shuts the server down. */
  close(): Promise<void>;
}

/** Removes a tree, ignoring a missing one. */
export async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Runs `fn` over a fresh tree of `files`, and removes the tree. */
export async function withTree(
  files: Record<string, string | Uint8Array>,
  fn: (root: string) => Promise<void>,
): Promise<void> {
  const root = await makeTree(files);
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Starts a server on 127.0.0.1, port 0, serving `root`. */
export async function startServer(
  root: string,
  options: { handler?: HandlerOptions; server?: ServerOptions } = {},
): Promise<TestServer> {
  const handler = await Handler.create(root, options.handler);
  const server = Server.listen(handler, {
    hostname: "127.0.0.1",
    port: 0,
    ...options.server,
  });
  return {
    server,
    handler,
    port: server.addr.port,
    close: () => server.shutdown({ grace: 2000 }),
  };
}

/** Runs `fn` with a server over a fresh tree of `files`; always cleans up (`fn` may remove the tree). */
export async function withServer(
  files: Record<string, string | Uint8Array>,
  options: { handler?: HandlerOptions; server?: ServerOptions },
  fn: (s: TestServer, root: string) => Promise<void>,
): Promise<void> {
  const root = await makeTree(files);
  try {
    const s = await startServer(root, options);
    try {
      await fn(s, root);
    } finally {
      await s.close();
    }
  } finally {
    await removeTree(root);
  }
}

// --- raw responses -----------------------------------------------------------

/** A parsed response. */
export interface RawResponse {
  /** The status line. */
  statusLine: string;
  /** The status code. */
  status: number;
  /** Header fields, names lowercased (repeated ones joined with ", "). */
  headers: Record<string, string>;
  /** The body bytes. */
  body: Uint8Array;
  /** The body as UTF-8 text. */
  text: string;
}

/** Reads HTTP/1.1 responses from a connection, strictly (CRLF, Content-Length framing). */
export class ResponseReader {
  #conn: Deno.Conn;
  #buf = new Uint8Array(0);
  #eof = false;

  /** Reads from `conn`. */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const chunk = new Uint8Array(65536);
    let n: number | null;
    try {
      n = await this.#conn.read(chunk);
    } catch {
      n = null; // reset by the peer counts as the end
    }
    if (n === null) {
      this.#eof = true;
      return false;
    }
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  /** True once the peer has closed and every byte was read. */
  async atEnd(): Promise<boolean> {
    while (this.#buf.length === 0) {
      if (!(await this.#fill())) return true;
    }
    return false;
  }

  /** Reads one response; `head: true` for a response to HEAD (no body). Throws on malformed bytes or EOF. */
  async read(options: { head?: boolean } = {}): Promise<RawResponse> {
    let end = -1;
    for (;;) {
      end = findHeadEnd(this.#buf);
      if (end >= 0) break;
      if (!(await this.#fill())) {
        throw new Error(
          `Connection ended before a response head: "${
            decoder.decode(this.#buf)
          }"`,
        );
      }
    }
    const headText = decoder.decode(this.#buf.subarray(0, end - 4));
    const lines = headText.split("\r\n");
    for (const line of lines) {
      if (line.includes("\n") || line.includes("\r")) {
        throw new Error(
          `Bare CR or LF in response head: ${JSON.stringify(headText)}`,
        );
      }
    }
    const statusLine = lines[0];
    const match = /^HTTP\/1\.1 (\d{3}) [^\r\n]*$/.exec(statusLine);
    if (match === null) throw new Error(`Bad status line: "${statusLine}"`);
    const status = Number(match[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon <= 0) throw new Error(`Bad header line: "${line}"`);
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    this.#buf = this.#buf.slice(end);
    let length = 0;
    const noBody = options.head || status === STATUS_CODE.NoContent ||
      status === STATUS_CODE.NotModified ||
      (status >= 100 && status < STATUS_CODE.OK);
    if (!noBody) {
      if (headers["content-length"] === undefined) {
        throw new Error(`No Content-Length in a ${status} response`);
      }
      length = Number(headers["content-length"]);
    }
    while (this.#buf.length < length) {
      if (!(await this.#fill())) {
        throw new Error(
          `Connection ended after ${this.#buf.length} of ${length} body bytes`,
        );
      }
    }
    const body = this.#buf.slice(0, length);
    this.#buf = this.#buf.slice(length);
    return { statusLine, status, headers, body, text: decoder.decode(body) };
  }
}

/** The index just past the first CRLF CRLF in `buf` at or after `from`, or -1. */
export function findHeadEnd(buf: Uint8Array, from = 0): number {
  for (let i = from + 3; i < buf.length; i++) {
    if (
      buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 &&
      buf[i - 3] === 13
    ) return i + 1;
  }
  return -1;
}

/** A response head read by {@linkcode readHead}. */
export interface RawHead {
  /** The status code. */
  status: number;
  /** Header fields, names lowercased (a repeated one keeps its last value). */
  headers: Record<string, string>;
  /** The body bytes read with the head. */
  rest: Uint8Array;
}

/** Reads a response head (in at most 1000 reads) for a caller that reads the body itself. */
export async function readHead(conn: Deno.Conn): Promise<RawHead> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(65536);
  for (let i = 0; i < 1000; i++) {
    const n = await conn.read(chunk);
    if (n === null) throw new Error("Connection ended before a response head");
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
    const end = findHeadEnd(buf);
    if (end < 0) continue;
    const lines = decoder.decode(buf.subarray(0, end - 4)).split("\r\n");
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1)
        .trim();
    }
    return {
      status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(lines[0])?.[1]),
      headers,
      rest: buf.subarray(end),
    };
  }
  throw new Error("No response head");
}

/** Where {@linkcode readInto} reads. */
export interface ReadIntoOptions {
  /** The bytes of `body` already there. */
  got: number;
  /** Where to stop reading. */
  end: number;
}

/** Reads into `body` from offset `options.got` until `options.end` bytes are there (never past it); answers `end`. */
export async function readInto(
  conn: Deno.Conn,
  body: Uint8Array,
  options: ReadIntoOptions,
): Promise<number> {
  let { got } = options;
  const { end } = options;
  while (got < end) {
    const n = await conn.read(body.subarray(got, end));
    if (n === null) {
      throw new Error(`Connection ended after ${got} of ${end} body bytes`);
    }
    got += n;
  }
  return got;
}

/** Writes all of `data`. */
export async function writeAll(
  conn: Deno.Conn,
  data: Uint8Array,
): Promise<void> {
  let at = 0;
  while (at < data.length) at += await conn.write(data.subarray(at));
}

/** Connects to 127.0.0.1:`port`. */
export function connect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

/** Closes `conn`, ignoring "already closed". */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** What {@linkcode waitClosed} read before the server closed. */
export interface Drained {
  /** The number of bytes. */
  total: number;
  /** The first bytes (about 64) as text. */
  start: string;
}

/** Reads until the server closes the connection (end of stream or reset); fails after `ms`. */
export async function waitClosed(conn: Deno.Conn, ms = 5000): Promise<Drained> {
  const drain = async (): Promise<Drained> => {
    const buf = new Uint8Array(256 * 1024);
    let total = 0;
    let start = "";
    for (let i = 0; i < 1_000_000; i++) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        return { total, start }; // reset counts as closed
      }
      if (n === null) return { total, start };
      if (start.length < 64) {
        start += decoder.decode(buf.subarray(0, Math.min(n, 64)));
      }
      total += n;
    }
    throw new Error("The server kept sending");
  };
  return await withTimeout(drain(), ms, {
    label: "waiting for the server to close",
  });
}

/** Options of {@linkcode getOn}. */
export interface GetOnOptions {
  /** How long the response may take, in ms (default 5000). */
  ms?: number;
}

/** Sends a GET of `path` on an open connection and reads its response within `options.ms`. */
export async function getOn(
  conn: Deno.Conn,
  path: string,
  options: GetOnOptions = {},
): Promise<RawResponse> {
  const { ms = 5000 } = options;
  await writeAll(conn, bytes(get(path)));
  return await withTimeout(new ResponseReader(conn).read(), ms, {
    label: path,
  });
}

/** What {@linkcode openServed} expects, and how long it waits. */
export interface OpenServedOptions {
  /** The body the GET must answer. */
  text: string;
  /** How long the response may take, in ms (default 5000). */
  ms?: number;
}

/** Opens a connection and completes one keep-alive GET of `path` on it (200, body `options.text`) within `options.ms`. */
export async function openServed(
  port: number,
  path: string,
  options: OpenServedOptions,
): Promise<Deno.TcpConn> {
  const { text, ms } = options;
  const conn = await connect(port);
  try {
    const res = await getOn(conn, path, { ms });
    assert.equal(res.status, STATUS_CODE.OK);
    assert.equal(res.text, text);
    assert.equal(res.headers.connection, undefined, "kept alive");
    return conn;
  } catch (error) {
    closeQuietly(conn);
    throw error;
  }
}

/** GETs `path` on a fresh connection with `Connection: close` (Host: 127.0.0.1) and reads the response. */
export async function getAndClose(
  port: number,
  path = "/",
): Promise<RawResponse> {
  const conn = await connect(port);
  try {
    await writeAll(
      conn,
      bytes(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      ),
    );
    return await new ResponseReader(conn).read();
  } finally {
    conn.close();
  }
}

/**
 * Sends `request` (raw bytes, optionally split into writes of `chunk` bytes),
 * reads `count` responses, then whether the server closed the connection.
 */
export async function exchange(
  port: number,
  request: string | Uint8Array,
  options: { count?: number; chunk?: number; head?: boolean[] } = {},
): Promise<{ responses: RawResponse[]; closed: boolean }> {
  const conn = await connect(port);
  try {
    const data = typeof request === "string" ? bytes(request) : request;
    const step = options.chunk ?? data.length;
    for (let at = 0; at < data.length; at += step) {
      await writeAll(conn, data.subarray(at, at + step));
    }
    const reader = new ResponseReader(conn);
    const responses: RawResponse[] = [];
    for (let i = 0; i < (options.count ?? 1); i++) {
      responses.push(await reader.read({ head: options.head?.[i] }));
    }
    // Did the server close? Half-close our side so a kept-alive server
    // answers the end of input by closing too; then any bytes left would be
    // an extra response.
    const closed = await closedByServer(conn, reader);
    return { responses, closed };
  } finally {
    conn.close();
  }
}

/**
 * True when the server closed the connection without being asked (it had
 * already decided to close); false when it was still open and only closed
 * after our half-close. Any extra bytes fail the test.
 */
async function closedByServer(
  conn: Deno.TcpConn,
  reader: ResponseReader,
): Promise<boolean> {
  // Probe: a kept-alive server answers a valid request; a closed one cannot.
  try {
    await writeAll(conn, bytes("OPTIONS * HTTP/1.1\r\nHost: probe\r\n\r\n"));
  } catch {
    return true;
  }
  try {
    const probe = await reader.read();
    if (probe.status !== STATUS_CODE.NoContent) {
      throw new Error(`Unexpected extra response "${probe.statusLine}"`);
    }
    return false;
  } catch (error) {
    if (String(error).includes("Connection ended before a response head")) {
      return true;
    }
    throw error;
  }
}

// --- processes ---------------------------------------------------------------

/** `deno run` arguments that start main.ts serving `root` quietly on 127.0.0.1 and a free port, then `extra`. */
export function serveArgs(root: string, ...extra: string[]): string[] {
  return [
    "run",
    "-A",
    MAIN,
    root,
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    "--quiet",
    ...extra,
  ];
}

/** SIGKILLs `child` if it still runs after `ms` (a hang fails, not hangs); clear the timer once it exits. */
export function killAfter(
  child: Deno.ChildProcess,
  ms: number,
): ReturnType<typeof setTimeout> {
  return setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, ms);
}

/** What a process run to its exit wrote, and its exit code. */
export interface ProcessOutput {
  /** The exit code. */
  code: number;
  /** Its stdout as text. */
  stdout: string;
  /** Its stderr as text. */
  stderr: string;
}

/** Runs `command` (stdout and stderr piped) to its exit, killed after `ms`. */
export async function runWithin(
  command: Deno.Command,
  ms: number,
): Promise<ProcessOutput> {
  const child = command.spawn();
  const timer = killAfter(child, ms);
  try {
    const output = await child.output();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a /proc file; a `cat` child reads it where Deno wants --allow-all (/proc/self, /proc/PID). */
export async function procText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) throw error;
  }
  const out = await new Deno.Command("cat", {
    args: [path],
    stdin: "null",
    stderr: "null",
  }).output();
  return decoder.decode(out.stdout);
}

/** An `onError` that keeps every message, and the messages. */
export function errorLog(): {
  errors: string[];
  onError: (message: string) => void;
} {
  const errors: string[] = [];
  return {
    errors,
    onError: (message: string): void => {
      errors.push(message);
    },
  };
}

/** `bytes` decoded from `coding` (gzip or brotli). */
export function decompress(
  coding: ContentCoding,
  bytes: Uint8Array,
): Uint8Array {
  return new Uint8Array(
    coding === "gzip" ? gunzipSync(bytes) : brotliDecompressSync(bytes),
  );
}

/** The config the command line gives for `args` (which must ask to serve). */
export function serveConfig(args: string[]): ServeConfig {
  const command = parseCli(args);
  assert.equal(command.kind, "serve");
  return (command as { config: ServeConfig }).config;
}
