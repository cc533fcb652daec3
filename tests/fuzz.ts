/**
 * A request fuzzer for a live static-srv: it mutates valid requests (byte
 * flips, inserted delimiters, splices, repeats, truncation) and sends them in
 * random splits over loopback, while an oracle checks that every answer is
 * well-formed HTTP/1.1, that the server ends every exchange (answers or
 * closes) within its timeouts, and that it still serves a clean request.
 *
 *   deno task fuzz [--count N] [--seconds S] [--seed N] [--concurrency N]
 *
 * Without `--port` it starts `main.ts` as a child process on a free port and
 * also checks that the process never dies. Bounded by count and time.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { STATUS_CODE } from "../src/http/status.ts";
import {
  closeQuietly,
  connect,
  findHeadEnd,
  prng,
  serveArgs,
} from "./test_util.ts";

/** Options of {@linkcode runFuzz}. */
export interface FuzzOptions {
  /** Port of the server under test (127.0.0.1). */
  port: number;
  /** Cases to try at most. */
  count: number;
  /** Seconds to run at most. */
  seconds: number;
  /** PRNG seed: the same seed tries the same cases. */
  seed: number;
  /** Cases in flight at once. */
  concurrency?: number;
  /** How long one exchange may take before it counts as a hang, ms. */
  caseTimeout?: number;
  /** Called when a case fails the oracle. */
  onFailure?: (failure: FuzzFailure) => void;
}

/** A case the oracle rejected. */
export interface FuzzFailure {
  /** What was wrong. */
  reason: string;
  /** The request bytes, as a JSON string. */
  request: string;
}

/** The outcome of a run. */
export interface FuzzStats {
  /** Cases sent. */
  cases: number;
  /** Responses received and checked. */
  responses: number;
  /** Responses by status code. */
  statuses: Record<number, number>;
  /** Cases the oracle rejected. */
  failures: FuzzFailure[];
  /** Clean requests after the cases that were answered 200. */
  healthChecks: number;
}

const SEEDS = [
  "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
  "GET /index.html HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\nAccept-Encoding: gzip, br\r\n\r\n",
  'HEAD /style.css HTTP/1.1\r\nHost: a\r\nIf-None-Match: "x"\r\n\r\n',
  "GET /index.html HTTP/1.1\r\nHost: a\r\nRange: bytes=0-10,20-30\r\n\r\n",
  "GET /sub HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
  "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
  "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: v\r\n\r\n",
  "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
  "GET http://a/%2e%2e/%2fetc/passwd?q=1 HTTP/1.1\r\nHost: a\r\n\r\n",
  "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /index.html HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
];

const INTERESTING = [
  0x0d,
  0x0a,
  0x00,
  0x20,
  0x09,
  0x3a,
  0x2c,
  0x3b,
  0x7f,
  0x80,
  0xff,
  0x25,
  0x2f,
  0x2e,
  0x30,
  0x39,
  0x66,
];

const encoder = new TextEncoder();
const SEED_BYTES = SEEDS.map((s) => encoder.encode(s));

/** Mutates one seed request with 1-4 random edits. */
export function mutate(random: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(random() * n);
  let bytes = Array.from(SEED_BYTES[pick(SEED_BYTES.length)]);
  const edits = 1 + pick(4);
  for (let e = 0; e < edits; e++) {
    const at = pick(bytes.length + 1);
    switch (pick(7)) {
      case 0: // flip a bit
        if (bytes.length > 0) bytes[at % bytes.length] ^= 1 << pick(8);
        break;
      case 1: // insert a delimiter or control byte
        bytes.splice(at, 0, INTERESTING[pick(INTERESTING.length)]);
        break;
      case 2: // delete a run
        bytes.splice(at, 1 + pick(4));
        break;
      case 3: { // splice in a piece of another seed
        const other = SEED_BYTES[pick(SEED_BYTES.length)];
        const from = pick(other.length);
        bytes.splice(at, 0, ...other.subarray(from, from + 1 + pick(40)));
        break;
      }
      case 4: { // repeat a slice
        const len = 1 + pick(30);
        const slice = bytes.slice(at, at + len);
        const times = 1 + pick(pick(10) === 0 ? 600 : 4);
        for (let t = 0; t < times; t++) bytes.splice(at, 0, ...slice);
        break;
      }
      case 5: // truncate
        bytes = bytes.slice(0, at);
        break;
      case 6: // replace with a random byte
        if (bytes.length > 0) bytes[at % bytes.length] = pick(256);
        break;
    }
  }
  return new Uint8Array(bytes);
}

const decoder = new TextDecoder("latin1");
const STATUS_LINE = /^HTTP\/1\.1 [1-5]\d\d [\x20-\x7e]*$/;
const FIELD_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [\x20-\x7e]*$/;

/**
 * Checks that `bytes` is a sequence of well-formed HTTP/1.1 responses.
 * With `mayBeHead` (the request bytes contain "HEAD "), a response without
 * its body is accepted. Returns the status codes, or a reason.
 */
export function checkResponses(
  bytes: Uint8Array,
  options: { mayBeHead?: boolean } = {},
): number[] | string {
  const statuses: number[] = [];
  let at = 0;
  while (at < bytes.length) {
    const end = findHeadEnd(bytes, at);
    if (end < 0) return `Incomplete response head at byte ${at}`;
    const lines = decoder.decode(bytes.subarray(at, end - 4)).split("\r\n");
    if (!STATUS_LINE.test(lines[0])) return `Bad status line "${lines[0]}"`;
    const status = Number(lines[0].slice(9, 12));
    let length = -1;
    for (const line of lines.slice(1)) {
      if (!FIELD_LINE.test(line)) return `Bad field line "${line}"`;
      const m = /^content-length: (\d+)$/i.exec(line);
      if (m) {
        if (length >= 0) return "Two Content-Length fields";
        length = Number(m[1]);
      }
    }
    statuses.push(status);
    at = end;
    if (
      status === STATUS_CODE.NoContent || status === STATUS_CODE.NotModified
    ) continue;
    if (length < 0) return `No Content-Length on ${status}`;
    // HEAD: no body follows; a body-less answer is followed by the next
    // status line or by the end.
    const next = decoder.decode(bytes.subarray(at, at + 9));
    if (
      options.mayBeHead && length > 0 &&
      (next === "HTTP/1.1 " || at === bytes.length)
    ) {
      continue;
    }
    if (bytes.length - at < length) return `Body cut short on ${status}`;
    at += length;
  }
  return statuses;
}

async function exchange(
  port: number,
  request: Uint8Array,
  random: () => number,
  timeout: number,
): Promise<Uint8Array | string> {
  let conn: Deno.TcpConn;
  try {
    conn = await connect(port);
  } catch (error) {
    return `Cannot connect: ${(error as Error).message}`;
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, timeout);
  const received: Uint8Array[] = [];
  let total = 0;
  try {
    const reading = (async () => {
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) return;
        received.push(buf.slice(0, n));
        total += n;
      }
    })();
    // Random splits; then half-close so a waiting server sees the end.
    let at = 0;
    while (at < request.length) {
      const step = 1 + Math.floor(random() * Math.max(1, request.length - at));
      const piece = request.subarray(at, at + step);
      let sent = 0;
      while (sent < piece.length) {
        sent += await conn.write(piece.subarray(sent)).catch(() =>
          piece.length
        );
      }
      at += step;
    }
    await conn.closeWrite().catch(() => {});
    await reading;
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
  if (timedOut) return `No end within ${timeout} ms`;
  const out = new Uint8Array(total);
  let o = 0;
  for (const r of received) {
    out.set(r, o);
    o += r.length;
  }
  return out;
}

const HEALTH = encoder.encode(
  "GET / HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n",
);

/** Runs the fuzzer against a live server. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzStats> {
  const random = prng(options.seed);
  const stats: FuzzStats = {
    cases: 0,
    responses: 0,
    statuses: {},
    failures: [],
    healthChecks: 0,
  };
  const deadline = Date.now() + options.seconds * 1000;
  const timeout = options.caseTimeout ?? 5000;
  const fail = (reason: string, request: Uint8Array) => {
    const failure = {
      reason,
      request: JSON.stringify(decoder.decode(request)),
    };
    stats.failures.push(failure);
    options.onFailure?.(failure);
  };
  const one = async (): Promise<void> => {
    const request = mutate(random);
    const splits = prng(Math.floor(random() * 2 ** 32));
    stats.cases++;
    const answer = await exchange(options.port, request, splits, timeout);
    if (typeof answer === "string") return fail(answer, request);
    const checked = checkResponses(answer, {
      mayBeHead: decoder.decode(request).includes("HEAD "),
    });
    if (typeof checked === "string") return fail(checked, request);
    for (const status of checked) {
      stats.responses++;
      stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    }
  };
  const concurrency = options.concurrency ?? 8;
  while (stats.cases < options.count && Date.now() < deadline) {
    const batch = Math.min(concurrency, options.count - stats.cases);
    await Promise.all(Array.from({ length: batch }, one));
    if (stats.cases % (concurrency * 25) < concurrency) {
      await health(options.port, stats, timeout, fail);
    }
  }
  await health(options.port, stats, timeout, fail);
  return stats;
}

async function health(
  port: number,
  stats: FuzzStats,
  timeout: number,
  fail: (reason: string, request: Uint8Array) => void,
): Promise<void> {
  const answer = await exchange(port, HEALTH, () => 1, timeout);
  const checked = typeof answer === "string" ? answer : checkResponses(answer);
  if (typeof checked === "string" || checked[0] !== STATUS_CODE.OK) {
    fail(`Health check failed: ${checked}`, HEALTH);
  } else {
    stats.healthChecks++;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      count: { type: "string", default: "20000" },
      seconds: { type: "string", default: "120" },
      seed: { type: "string", default: String(Date.now() % 2 ** 31) },
      concurrency: { type: "string", default: "8" },
      port: { type: "string" },
    },
  });
  let child: Deno.ChildProcess | undefined;
  let port = Number(values.port ?? 0);
  if (values.port === undefined) {
    const root = new URL("../html", import.meta.url).pathname;
    child = new Deno.Command(Deno.execPath(), {
      args: serveArgs(root, "--header-timeout", "1", "--idle-timeout", "1"),
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    let text = "";
    while (port === 0) {
      const { value, done } = await reader.read();
      if (done) throw new Error("Server exited before listening");
      text += new TextDecoder().decode(value);
      const m = /:(\d+)\//.exec(text);
      if (m) port = Number(m[1]);
    }
    reader.releaseLock();
    child.stdout.cancel();
  }
  const seed = Number(values.seed);
  console.log(`fuzz: seed ${seed}, port ${port}`);
  const started = Date.now();
  const stats = await runFuzz({
    port,
    count: Number(values.count),
    seconds: Number(values.seconds),
    seed,
    concurrency: Number(values.concurrency),
    onFailure: (f) => console.log(`FAIL ${f.reason}: ${f.request}`),
  });
  let crashed = false;
  if (child !== undefined) {
    const status = await Promise.race([
      child.status,
      new Promise<null>((r) => setTimeout(() => r(null), 100)),
    ]);
    crashed = status !== null;
    if (!crashed) child.kill("SIGTERM");
    await child.status;
  }
  console.log(
    `fuzz: ${stats.cases} cases, ${stats.responses} responses in ${
      ((Date.now() - started) / 1000).toFixed(1)
    } s; statuses ${JSON.stringify(stats.statuses)}; ` +
      `${stats.healthChecks} health checks; ${stats.failures.length} failures; ` +
      `server ${crashed ? "CRASHED" : "alive"}`,
  );
  return stats.failures.length === 0 && !crashed ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
