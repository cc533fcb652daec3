/**
 * Shared helpers for the integration tests: a server on port 0 over a temp
 * root, raw-byte clients, and a strict HTTP/1.1 response reader.
 *
 * @module
 */

import { Handler, type HandlerOptions } from "../src/handler.ts";
import { Server, type ServerOptions } from "../src/server.ts";

/** Sanitizers on, as every test here asks for. */
export const SANITIZE = { sanitizeOps: true, sanitizeResources: true } as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a string as bytes (Latin-1 safe for ASCII requests). */
export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

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
    const noBody = options.head || status === 204 || status === 304 ||
      (status >= 100 && status < 200);
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

function findHeadEnd(buf: Uint8Array): number {
  for (let i = 3; i < buf.length; i++) {
    if (
      buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 &&
      buf[i - 3] === 13
    ) return i + 1;
  }
  return -1;
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
    if (probe.status !== 204) {
      throw new Error(`Unexpected extra response: ${probe.statusLine}`);
    }
    return false;
  } catch (error) {
    if (String(error).includes("Connection ended before a response head")) {
      return true;
    }
    throw error;
  }
}
