/**
 * Soak test: runs main.ts as a child process over a temp root and drives a
 * mix of valid, invalid and aborted requests at it for a while, sampling the
 * child's memory and open descriptors.
 *
 *   deno run -A tests/soak.ts [--seconds N] [--concurrency N]
 *                             [--max-requests N] [--seed N]
 *
 * Prints requests served, outcomes by kind, RSS over time, descriptors at
 * the end against the start, and the peak RSS. Exits non-zero when the child
 * died, its descriptors grew past a small tolerance, or nothing was served.
 * Only 127.0.0.1 is used; every loop is bounded by the deadline and the
 * request cap.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { STATUS_CODE } from "../src/http/status.ts";
import {
  closeQuietly,
  connect,
  findHeadEnd,
  latin1Bytes,
  prng,
  randomBytes,
  serveArgs,
  sleep,
  TimeoutError,
  withTimeout,
  writeAll,
} from "./test_util.ts";

const MiB = 1024 * 1024;
/** Descriptors the child may hold at the end beyond the start. */
const FD_TOLERANCE = 8;
/** How often the child is sampled, in ms. */
const SAMPLE_EVERY = 5000;
/** The child's header timeout in seconds (slow clients are cut after it). */
const HEADER_TIMEOUT_S = 2;
/** A client gives up on a response after this many ms. */
const CLIENT_TIMEOUT = 10_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// --- options -------------------------------------------------------------------

function positive(
  name: string,
  value: string | undefined,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    console.error(
      `soak: Invalid --${name} "${value}": expected a positive integer`,
    );
    Deno.exit(2);
  }
  return n;
}

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string" },
    concurrency: { type: "string" },
    "max-requests": { type: "string" },
    seed: { type: "string" },
  },
});
const SECONDS = positive("seconds", args.seconds, 180);
const CONCURRENCY = positive("concurrency", args.concurrency, 32);
const MAX_REQUESTS = positive("max-requests", args["max-requests"], 5_000_000);
const SEED = positive("seed", args.seed, Date.now() % 1_000_000_007);

// --- error kinds ---------------------------------------------------------------

/** The server ended the connection where a response was expected. */
class EndedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EndedError";
  }
}

/** A response that breaks what the scenario expects. */
class AnomalyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AnomalyError";
  }
}

// --- outcome counters ------------------------------------------------------------

const outcomes = new Map<string, number>();
const anomalies: string[] = [];
let served = 0;
let sent = 0;

function count(kind: string, n = 1): void {
  outcomes.set(kind, (outcomes.get(kind) ?? 0) + n);
}

function anomaly(message: string): void {
  count("anomaly");
  if (anomalies.length < 20) anomalies.push(message);
}

// --- a lean HTTP/1.1 client ------------------------------------------------------

interface Response {
  status: number;
  headers: Record<string, string>;
  /** Body bytes (counted, and kept only when small). */
  length: number;
  body: Uint8Array;
}

/** Reads responses from one connection; bodies are counted, large ones discarded. */
class Client {
  conn: Deno.TcpConn;
  #buf = new Uint8Array(0);
  #chunk = new Uint8Array(256 * 1024);

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  static async open(port: number): Promise<Client> {
    const conn = await withTimeout(connect(port), CLIENT_TIMEOUT, {
      label: "connect",
    });
    return new Client(conn);
  }

  async write(data: string | Uint8Array): Promise<void> {
    await writeAll(
      this.conn,
      typeof data === "string" ? encoder.encode(data) : data,
    );
  }

  /** Reads more bytes; false at the end (or a reset). */
  async #fill(): Promise<boolean> {
    let n: number | null;
    try {
      n = await this.conn.read(this.#chunk);
    } catch {
      n = null;
    }
    if (n === null) return false;
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(this.#chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  /** One response (no body for HEAD, 204, 304); throws EndedError on an early end. */
  async read(options: { head?: boolean } = {}): Promise<Response> {
    return await withTimeout(
      this.#read(options.head ?? false),
      CLIENT_TIMEOUT,
      { label: "response" },
    );
  }

  async #read(head: boolean): Promise<Response> {
    let end = -1;
    for (let i = 0; end < 0; i++) {
      end = findHeadEnd(this.#buf);
      if (end >= 0) break;
      if (i > 10_000 || this.#buf.length > 65536) {
        throw new AnomalyError("Response head too large");
      }
      if (!(await this.#fill())) {
        throw new EndedError(
          this.#buf.length === 0 ? "ended before a response" : "ended mid-head",
        );
      }
    }
    const lines = decoder.decode(this.#buf.subarray(0, end - 4)).split("\r\n");
    const match = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0]);
    if (match === null) throw new AnomalyError(`Bad status line "${lines[0]}"`);
    const status = Number(match[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1)
        .trim();
    }
    this.#buf = this.#buf.slice(end);
    const noBody = head || status === STATUS_CODE.NoContent ||
      status === STATUS_CODE.NotModified;
    const length = noBody ? 0 : Number(headers["content-length"] ?? NaN);
    if (!Number.isSafeInteger(length)) {
      throw new AnomalyError(`No Content-Length on a ${status}`);
    }
    const keep = length <= 65536;
    const body = new Uint8Array(keep ? length : 0);
    let got = Math.min(this.#buf.length, length);
    if (keep) body.set(this.#buf.subarray(0, got));
    this.#buf = this.#buf.slice(got);
    while (got < length) {
      // Read straight into the body (or a scratch chunk), never past it.
      const target = keep
        ? body.subarray(got)
        : this.#chunk.subarray(0, Math.min(this.#chunk.length, length - got));
      let n: number | null;
      try {
        n = await this.conn.read(target);
      } catch {
        n = null;
      }
      if (n === null) {
        throw new EndedError(`Ended after ${got} of ${length} body bytes`);
      }
      got += n;
    }
    served++;
    count(`status ${status}`);
    return { status, headers, length, body };
  }

  /** True when the server closes within `ms` without sending anything more. */
  async endsWithin(ms: number): Promise<boolean> {
    try {
      return await withTimeout(
        (async () => {
          if (this.#buf.length > 0) return false;
          return !(await this.#fill());
        })(),
        ms,
        { label: "the end" },
      );
    } catch {
      return false;
    }
  }

  close(): void {
    closeQuietly(this.conn);
  }
}

// --- the tree --------------------------------------------------------------------

const SMALL = "small file contents\n";
const MID_SIZE = 256 * 1024;
const BIG_SIZE = 32 * MiB;

async function makeRoot(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "static-srv-soak-" });
  await Deno.writeTextFile(`${root}/small.txt`, SMALL);
  await Deno.writeTextFile(`${root}/index.html`, "<h1>soak</h1>\n");
  await Deno.mkdir(`${root}/dir`);
  await Deno.writeTextFile(`${root}/dir/index.html`, "<p>dir</p>\n");
  await Deno.writeTextFile(`${root}/secret.txt`, "TOP SECRET\n");
  const block = randomBytes(MiB);
  await Deno.writeFile(`${root}/mid.bin`, block.subarray(0, MID_SIZE));
  const big = await Deno.open(`${root}/big.bin`, { write: true, create: true });
  try {
    for (let i = 0; i < BIG_SIZE / MiB; i++) {
      let at = 0;
      while (at < MiB) at += await big.write(block.subarray(at));
    }
  } finally {
    big.close();
  }
  return root;
}

// --- the child -------------------------------------------------------------------

interface Child {
  process: Deno.ChildProcess;
  port: number;
  /** Set once it exited (on its own or by our signal). */
  exited: Deno.CommandStatus | null;
  status: Promise<Deno.CommandStatus>;
  stderr: () => string;
}

async function startChild(root: string): Promise<Child> {
  const process = new Deno.Command(Deno.execPath(), {
    args: serveArgs(
      root,
      "--header-timeout",
      String(HEADER_TIMEOUT_S),
      "--idle-timeout",
      "5",
    ),
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let errText = "";
  (async () => {
    for await (
      const piece of process.stderr.pipeThrough(new TextDecoderStream())
    ) {
      if (errText.length < 100_000) errText += piece;
    }
  })().catch(() => {});
  const lines = process.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let seen = "";
  let port = 0;
  for (let i = 0; i < 100 && port === 0; i++) {
    const next = await withTimeout(lines.read(), 30_000, { label: "banner" })
      .catch(() => null);
    if (next === null || next.done) break;
    const value = next.value;
    seen += value;
    port = Number(/http:\/\/127\.0\.0\.1:(\d+)\//.exec(seen)?.[1] ?? 0);
  }
  (async () => {
    for (let i = 0; i < 10_000_000; i++) {
      if ((await lines.read()).done) break;
    }
  })().catch(() => {});
  const child: Child = {
    process,
    port,
    exited: null,
    status: process.status,
    stderr: () => errText,
  };
  child.status.then((status) => child.exited = status);
  if (port === 0) {
    process.kill("SIGKILL");
    await child.status;
    throw new Error(`main.ts printed no banner: ${seen}${errText}`);
  }
  return child;
}

function childRss(pid: number): { rss: number; hwm: number } | null {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = (name: string): number =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status)?.[1] ?? 0);
    return { rss: kb("VmRSS") * 1024, hwm: kb("VmHWM") * 1024 };
  } catch {
    return null;
  }
}

function childFds(pid: number): number {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
    return n;
  } catch {
    return -1;
  }
}

// --- scenarios -------------------------------------------------------------------

const H = "Host: soak.test\r\n";

function get(path: string, extra = ""): string {
  return `GET ${path} HTTP/1.1\r\n${H}${extra}\r\n`;
}

/** Validators of mid.bin, learnt at start. */
let midEtag = "";
let midLastModified = "";

function expect(res: Response, status: number, what: string): void {
  if (res.status !== status) {
    anomaly(
      `Unexpected status ${res.status} for "${what}": expected ${status}`,
    );
  }
}

/** A valid request and its expected status; `head` for HEAD. */
interface Valid {
  request: () => string;
  status: number;
  head?: boolean;
  check?: (res: Response) => void;
}

const VALID: Valid[] = [
  {
    request: () => get("/small.txt"),
    status: STATUS_CODE.OK,
    check: (r) => {
      if (decoder.decode(r.body) !== SMALL) {
        anomaly('Wrong content of "small.txt"');
      }
    },
  },
  { request: () => get("/"), status: STATUS_CODE.OK },
  { request: () => get("/dir/"), status: STATUS_CODE.OK },
  {
    request: () => `HEAD /mid.bin HTTP/1.1\r\n${H}\r\n`,
    status: STATUS_CODE.OK,
    head: true,
  },
  {
    request: () => get("/mid.bin"),
    status: STATUS_CODE.OK,
    check: (r) => {
      if (r.length !== MID_SIZE) {
        anomaly(`Wrong length of "mid.bin": ${r.length}`);
      }
    },
  },
  {
    request: () => get("/mid.bin", `If-None-Match: ${midEtag}\r\n`),
    status: STATUS_CODE.NotModified,
  },
  {
    request: () => get("/mid.bin", `If-Modified-Since: ${midLastModified}\r\n`),
    status: STATUS_CODE.NotModified,
  },
  {
    request: () => get("/mid.bin", "Range: bytes=0-1023\r\n"),
    status: STATUS_CODE.PartialContent,
    check: (r) => {
      if (r.length !== 1024) anomaly(`Wrong range length: ${r.length}`);
    },
  },
  {
    request: () =>
      get("/big.bin", "Range: bytes=0-99,1048576-1048675,-100\r\n"),
    status: STATUS_CODE.PartialContent,
  },
  {
    request: () => get("/mid.bin", "Range: bytes=999999999-\r\n"),
    status: STATUS_CODE.RangeNotSatisfiable,
  },
  { request: () => get("/missing.txt"), status: STATUS_CODE.NotFound },
  { request: () => get("/no/such/dir/"), status: STATUS_CODE.NotFound },
  { request: () => get("/dir"), status: STATUS_CODE.MovedPermanently },
  { request: () => get("/.hidden"), status: STATUS_CODE.NotFound },
  { request: () => get("/../../etc/passwd"), status: STATUS_CODE.NotFound },
  {
    request: () => `OPTIONS * HTTP/1.1\r\n${H}\r\n`,
    status: STATUS_CODE.NoContent,
  },
  {
    request: () =>
      `POST /small.txt HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`,
    status: STATUS_CODE.MethodNotAllowed,
  },
];

/** Invalid requests: each is answered with an error status, then closed. */
const INVALID: string[] = [
  `GET  /small.txt HTTP/1.1\r\n${H}\r\n`,
  `GET /small.txt\r\n${H}\r\n`,
  `GET /small.txt HTTP/2.0\r\n${H}\r\n`,
  "GET /small.txt HTTP/1.1\r\n\r\n",
  `GET /small.txt HTTP/1.1\r\n${H}${H}\r\n`,
  `GET /small.txt HTTP/1.1\n${H}\r\n`,
  `GET /small.txt HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`,
  `GET /small.txt HTTP/1.1\r\n${H}X-A : 1\r\n\r\n`,
  `GET /small.txt HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n`,
  // Smuggling attempts.
  `POST /small.txt HTTP/1.1\r\n${H}Content-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${
    get("/secret.txt")
  }`,
  `POST /small.txt HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 44\r\n\r\n${
    get("/secret.txt")
  }`,
  `POST /small.txt HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`,
  `POST /small.txt HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
  `POST /small.txt HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
  `POST /small.txt HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`,
  `POST /small.txt HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  `POST /small.txt HTTP/1.1\r\n${H}Content-Length: ${MiB * 4}\r\n\r\n`,
  // Bad encodings.
  `GET /%zz HTTP/1.1\r\n${H}\r\n`,
  `GET /small%2 HTTP/1.1\r\n${H}\r\n`,
  `GET /small.txt%00 HTTP/1.1\r\n${H}\r\n`,
  `GET /%c0%af HTTP/1.1\r\n${H}\r\n`,
  `GET /\xff HTTP/1.1\r\n${H}\r\n`,
  // Limits.
  `GET /${"a".repeat(9000)} HTTP/1.1\r\n${H}\r\n`,
  `GET /small.txt HTTP/1.1\r\n${H}X-Big: ${"b".repeat(17000)}\r\n\r\n`,
  `GET /small.txt HTTP/1.1\r\n${H}${
    Array.from({ length: 101 }, (_, i) => `X-N${i}: ${i}\r\n`).join("")
  }\r\n`,
];

type Scenario = (port: number, random: () => number) => Promise<void>;

/** Keep-alive: 1-8 valid requests one after the other. */
async function keepAlive(port: number, random: () => number): Promise<void> {
  const client = await Client.open(port);
  try {
    const n = 1 + Math.floor(random() * 8);
    for (let i = 0; i < n; i++) {
      const v = VALID[Math.floor(random() * VALID.length)];
      sent++;
      await client.write(v.request());
      const res = await client.read({ head: v.head });
      expect(res, v.status, v.request().split("\r\n")[0].slice(0, 60));
      v.check?.(res);
    }
  } finally {
    client.close();
  }
}

/** Pipelined: 2-10 valid requests in one write. */
async function pipelined(port: number, random: () => number): Promise<void> {
  const client = await Client.open(port);
  try {
    const n = 2 + Math.floor(random() * 9);
    const picks = Array.from(
      { length: n },
      () => VALID[Math.floor(random() * VALID.length)],
    );
    sent += n;
    await client.write(picks.map((v) => v.request()).join(""));
    for (const v of picks) {
      const res = await client.read({ head: v.head });
      expect(res, v.status, "pipelined");
      v.check?.(res);
    }
  } finally {
    client.close();
  }
}

/** The whole 32 MiB file, read and discarded. */
async function bigDownload(port: number): Promise<void> {
  const client = await Client.open(port);
  try {
    sent++;
    await client.write(get("/big.bin"));
    const res = await client.read();
    expect(res, STATUS_CODE.OK, "big.bin");
    if (res.length !== BIG_SIZE) {
      anomaly(`Wrong length of "big.bin": ${res.length}`);
    }
  } finally {
    client.close();
  }
}

/** HTTP/1.0: answered, then closed. */
async function http10(port: number): Promise<void> {
  const client = await Client.open(port);
  try {
    sent++;
    await client.write("GET /small.txt HTTP/1.0\r\n\r\n");
    expect(await client.read(), STATUS_CODE.OK, "HTTP/1.0");
    if (!(await client.endsWithin(5000))) anomaly("HTTP/1.0 not closed");
  } finally {
    client.close();
  }
}

/** An invalid request plus a valid one: an error status, then the close. */
async function invalid(port: number, random: () => number): Promise<void> {
  const request = INVALID[Math.floor(random() * INVALID.length)];
  const client = await Client.open(port);
  try {
    sent++;
    await client.write(
      latin1Bytes(request + get("/small.txt")),
    );
    const res = await client.read();
    if (res.status < STATUS_CODE.BadRequest) {
      anomaly(
        `Invalid request answered ${res.status}: "${request.slice(0, 50)}"`,
      );
    }
    if (res.body.length > 0 && decoder.decode(res.body).includes("SECRET")) {
      anomaly("Smuggled request served");
    }
    if (!(await client.endsWithin(5000))) {
      anomaly(`Not closed after ${res.status}: "${request.slice(0, 50)}"`);
    }
  } finally {
    client.close();
  }
}

/** Resets right after asking for the big file. */
async function resetEarly(port: number): Promise<void> {
  const client = await Client.open(port);
  sent++;
  try {
    await client.write(get("/big.bin"));
  } finally {
    client.close();
  }
  count("client aborted");
}

/** Reads some of the big file, then resets. */
async function resetMid(port: number, random: () => number): Promise<void> {
  const client = await Client.open(port);
  sent++;
  try {
    const big = random() < 0.5;
    await client.write(get(big ? "/big.bin" : "/mid.bin"));
    const buf = new Uint8Array(65536);
    // At most 1 MiB of big.bin, 128 KiB of mid.bin: always mid-response.
    const reads = 1 + Math.floor(random() * (big ? 16 : 2));
    for (let i = 0; i < reads; i++) {
      const n = await withTimeout(client.conn.read(buf), CLIENT_TIMEOUT, {
        label: "read",
      });
      if (n === null) break;
    }
  } finally {
    client.close();
  }
  count("client aborted");
}

/** Half-closes after the request: the whole response, then the end. */
async function halfClose(port: number, random: () => number): Promise<void> {
  const client = await Client.open(port);
  try {
    const v = VALID[Math.floor(random() * VALID.length)];
    sent++;
    await client.write(v.request());
    await client.conn.closeWrite();
    const res = await client.read({ head: v.head });
    expect(res, v.status, "half-closed");
    if (!(await client.endsWithin(5000))) anomaly("Half-close not closed");
  } finally {
    client.close();
  }
}

/** A slow but complete request (well within the header timeout). */
async function slowClient(port: number): Promise<void> {
  const client = await Client.open(port);
  try {
    const request = encoder.encode(get("/small.txt"));
    sent++;
    for (let at = 0; at < request.length; at += 10) {
      await client.write(request.subarray(at, at + 10));
      await sleep(50);
    }
    expect(await client.read(), STATUS_CODE.OK, "slow client");
  } finally {
    client.close();
  }
}

/** A head that never ends: the server must cut it after its header timeout. */
async function slowloris(port: number): Promise<void> {
  const client = await Client.open(port);
  const limit = (HEADER_TIMEOUT_S + 4) * 1000;
  try {
    let settled = false;
    const closed = client.endsWithin(limit).finally(() => settled = true);
    const drip = encoder.encode(`GET /small.txt HTTP/1.1\r\n${H}X-Slow: `);
    for (let i = 0; !settled && i < limit / 100; i++) {
      try {
        await client.write(i < drip.length ? drip.subarray(i, i + 1) : "s");
      } catch {
        break; // reset by the server
      }
      await sleep(100);
    }
    if (await closed) count("slowloris cut by server");
    else anomaly("Slowloris not cut by the header timeout");
  } finally {
    client.close();
  }
}

/** Reads the big file slowly for a while, then gives up. */
async function slowReader(port: number): Promise<void> {
  const client = await Client.open(port);
  sent++;
  try {
    await client.write(get("/big.bin"));
    const buf = new Uint8Array(64 * 1024);
    for (let i = 0; i < 10; i++) {
      const n = await withTimeout(client.conn.read(buf), CLIENT_TIMEOUT, {
        label: "read",
      });
      if (n === null) break;
      await sleep(100);
    }
  } finally {
    client.close();
  }
  count("client aborted");
}

/** Scenarios with their weights. */
const MIX: [Scenario, number, string][] = [
  [keepAlive, 40, "keep-alive"],
  [pipelined, 12, "pipelined"],
  [bigDownload, 1, "big download"],
  [http10, 3, "HTTP/1.0"],
  [invalid, 20, "invalid"],
  [resetEarly, 6, "reset early"],
  [resetMid, 6, "reset mid-response"],
  [halfClose, 6, "half-close"],
  [slowClient, 2, "slow client"],
  [slowloris, 1, "slowloris"],
  [slowReader, 1, "slow reader"],
];
const WEIGHT = MIX.reduce((sum, [, w]) => sum + w, 0);

function pick(random: () => number): Scenario {
  let r = random() * WEIGHT;
  for (const [scenario, weight] of MIX) {
    r -= weight;
    if (r < 0) return scenario;
  }
  return MIX[0][0];
}

/** Runs one scenario and classifies how it failed, if it did. */
async function run(
  scenario: Scenario,
  port: number,
  random: () => number,
): Promise<void> {
  try {
    await scenario(port, random);
  } catch (error) {
    if (error instanceof TimeoutError) count("client timeout");
    else if (error instanceof EndedError) count("connection ended early");
    else if (error instanceof AnomalyError) anomaly(error.message);
    else if (error instanceof Deno.errors.ConnectionReset) {
      count("connection reset");
    } else if (error instanceof Deno.errors.BrokenPipe) {
      count("broken pipe");
    } else if (error instanceof Deno.errors.ConnectionRefused) {
      count("connection refused");
    } else count(`error ${(error as Error).name}`);
  }
}

// --- main ------------------------------------------------------------------------

interface Sample {
  t: number;
  rss: number;
  hwm: number;
  fds: number;
  served: number;
}

function mib(bytes: number): string {
  return bytes < 0 ? "n/a" : (bytes / MiB).toFixed(1);
}

async function main(): Promise<number> {
  console.log(
    `soak: ${SECONDS} s, concurrency ${CONCURRENCY}, request cap ${MAX_REQUESTS}, seed ${SEED}`,
  );
  const root = await makeRoot();
  let child: Child | undefined;
  try {
    child = await startChild(root);
    const pid = child.process.pid;
    const port = child.port;

    // Warm up (and learn mid.bin's validators), then the baseline.
    {
      const client = await Client.open(port);
      try {
        await client.write(get("/mid.bin"));
        const res = await client.read();
        midEtag = res.headers.etag ?? "";
        midLastModified = res.headers["last-modified"] ?? "";
        for (const v of VALID) {
          await client.write(v.request());
          await client.read({ head: v.head });
        }
      } finally {
        client.close();
      }
      outcomes.clear();
      served = 0;
      await sleep(200);
    }
    const startFds = childFds(pid);
    const samples: Sample[] = [];
    const start = Date.now();
    const sample = (): void => {
      const mem = childRss(pid);
      samples.push({
        t: Math.round((Date.now() - start) / 1000),
        rss: mem?.rss ?? -1,
        hwm: mem?.hwm ?? -1,
        fds: childFds(pid),
        served,
      });
    };
    sample();
    const sampler = setInterval(sample, SAMPLE_EVERY);

    const deadline = start + SECONDS * 1000;
    const random = prng(SEED);
    const alive = (): boolean =>
      child!.exited === null && Date.now() < deadline && sent < MAX_REQUESTS;
    const workers = Array.from({ length: CONCURRENCY }, async () => {
      while (alive()) await run(pick(random), port, random);
    });
    // Bounded: every scenario ends within its own timeouts.
    await withTimeout(Promise.all(workers), SECONDS * 1000 + 60_000, {
      label: "the workers",
    }).catch(
      () => count("workers did not finish"),
    );
    clearInterval(sampler);
    sample();
    const died = child.exited;

    // Let the child close what it still holds (slowloris, idle), bounded.
    let endFds = childFds(pid);
    for (let i = 0; i < 100 && !died && endFds > startFds + FD_TOLERANCE; i++) {
      await sleep(100);
      endFds = childFds(pid);
    }
    const peak = Math.max(
      childRss(pid)?.hwm ?? -1,
      ...samples.map((s) => s.hwm),
    );
    const elapsed = (Date.now() - start) / 1000;

    // Report.
    console.log("");
    console.log(
      `requests: ${sent} sent, ${served} responses in ${
        elapsed.toFixed(1)
      } s (${(served / elapsed).toFixed(0)}/s)`,
    );
    console.log("outcomes:");
    for (const [kind, n] of [...outcomes].sort()) {
      console.log(`  ${kind.padEnd(28)} ${n}`);
    }
    for (const a of anomalies) console.log(`  anomaly: ${a}`);
    console.log("RSS over time:");
    console.log("  t(s)  rss(MiB)  fds  responses");
    for (const s of samples) {
      console.log(
        `  ${String(s.t).padStart(4)}  ${mib(s.rss).padStart(8)}  ${
          String(s.fds).padStart(3)
        }  ${s.served}`,
      );
    }
    console.log(`fds: ${startFds} at start, ${endFds} at the end`);
    console.log(`peak RSS (VmHWM): ${mib(peak)} MiB`);

    let failed = false;
    if (died !== null) {
      console.log(
        `FAIL: the child died (code ${died.code}, signal ${died.signal})`,
      );
      failed = true;
    }
    if (endFds > startFds + FD_TOLERANCE) {
      console.log(`FAIL: descriptors grew by ${endFds - startFds}`);
      failed = true;
    }
    if (served === 0) {
      console.log("FAIL: nothing was served");
      failed = true;
    }
    const errors = child.stderr().trim();
    if (errors !== "") {
      const lines = errors.split("\n");
      console.log(`child stderr (${lines.length} lines, first 5):`);
      for (const line of lines.slice(0, 5)) console.log(`  ${line}`);
    }
    console.log(failed ? "soak: FAILED" : "soak: OK");
    return failed ? 1 : 0;
  } finally {
    if (child !== undefined) {
      if (child.exited === null) {
        child.process.kill("SIGTERM");
        const stopped = await withTimeout(child.status, 20_000, {
          label: "the child to stop",
        }).catch(() => {
          child!.process.kill("SIGKILL");
          return child!.status;
        });
        console.log(`child stopped: code ${stopped.code}`);
      }
    }
    await Deno.remove(root, { recursive: true });
  }
}

Deno.exit(await main());
