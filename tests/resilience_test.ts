/**
 * Resilience tests: resource exhaustion (slowloris, slow readers, thousands
 * of connections, the connection limit), descriptor leaks under aborted
 * clients, file-system faults while serving, and the memory of a child
 * process streaming a large file to many clients at once.
 *
 * Every loop is bounded in count and time; only 127.0.0.1 is used.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { STATUS_CODE } from "../src/http/status.ts";
import {
  bytes,
  closeQuietly,
  connect,
  type Drained,
  errorLog,
  get,
  getOn,
  killAfter,
  makeTree,
  openServed,
  procText,
  randomBytes,
  type RawResponse,
  readHead,
  removeTree,
  ResponseReader,
  SANITIZE,
  serveArgs,
  sleep,
  startServer,
  until,
  waitClosed,
  withServer,
  withTimeout,
  writeAll,
} from "./test_util.ts";

const MiB = 1024 * 1024;

const FILES: Record<string, string> = {
  "a.txt": "contents of a\n",
  "b.txt": "bee\n",
};

// --- helpers -----------------------------------------------------------------

/** One request on a fresh connection (closed afterwards); fails after 5 s. */
async function request(
  port: number,
  path: string,
  extra = "",
  method = "GET",
): Promise<RawResponse> {
  const conn = await connect(port);
  try {
    await writeAll(
      conn,
      bytes(`${method} ${path} HTTP/1.1\r\nHost: example.test\r\n${extra}\r\n`),
    );
    return await withTimeout(
      new ResponseReader(conn).read({ head: method === "HEAD" }),
      5000,
      { label: `${method} ${path}` },
    );
  } finally {
    closeQuietly(conn);
  }
}

/**
 * Opens `count` served keep-alive connections, `batch` at a time (a bounded
 * number of SYNs in flight). On failure closes what it opened and throws.
 */
async function openMany(
  port: number,
  count: number,
  batch: number,
): Promise<Deno.TcpConn[]> {
  const conns: Deno.TcpConn[] = [];
  try {
    for (let at = 0; at < count; at += batch) {
      const results = await Promise.allSettled(
        Array.from(
          { length: Math.min(batch, count - at) },
          () =>
            openServed(port, "/a.txt", { text: FILES["a.txt"], ms: 10_000 }),
        ),
      );
      for (const r of results) {
        if (r.status === "fulfilled") conns.push(r.value);
      }
      const failed = results.find((r) => r.status === "rejected");
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    }
    return conns;
  } catch (error) {
    for (const conn of conns) closeQuietly(conn);
    throw error;
  }
}

// --- 1. slowloris --------------------------------------------------------------

/** What one slowloris client saw. */
interface Drip {
  /** ms from its connect to the server's close. */
  closedAfter: number;
  /** Bytes it managed to send. */
  sent: number;
  /** Bytes it would have sent. */
  total: number;
  /** What the server sent it before closing. */
  received: Drained;
}

/**
 * Sends a request head that never ends, one byte every 100 ms, until the
 * server closes (at most `limitMs`, then fails).
 */
async function slowloris(port: number, limitMs: number): Promise<Drip> {
  const conn = await connect(port);
  const start = Date.now();
  try {
    let done = false;
    let closedAfter = -1;
    const closed = waitClosed(conn, limitMs).then((received) => {
      closedAfter = Date.now() - start;
      return received;
    }).finally(() => done = true);
    closed.catch(() => {}); // awaited below
    // 200 bytes at 10 per second would take 20 s: never finishes in time.
    const drip = bytes(
      `GET /a.txt HTTP/1.1\r\nHost: example.test\r\nX-Slow: ${"s".repeat(160)}`,
    );
    let sent = 0;
    for (; sent < drip.length && !done; sent++) {
      try {
        await writeAll(conn, drip.subarray(sent, sent + 1));
      } catch {
        break; // reset by the server
      }
      await sleep(100);
    }
    const received = await closed;
    return { closedAfter, sent, total: drip.length, received };
  } finally {
    closeQuietly(conn);
  }
}

Deno.test({
  name: "Server.listen() survives a slowloris attack (header timeout)",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, { server: { headerTimeout: 500 } }, async (s) => {
      const attackers = Array.from(
        { length: 20 },
        () => slowloris(s.port, 5000),
      );
      try {
        await until(
          () => s.server.connections >= 20,
          "20 slowloris connections",
        );
        // A normal client is served promptly while they drip.
        for (let i = 0; i < 20; i++) {
          const start = performance.now();
          const res = await request(s.port, i % 2 ? "/a.txt" : "/b.txt");
          const took = performance.now() - start;
          assert.equal(res.status, STATUS_CODE.OK);
          assert.equal(res.text, FILES[i % 2 ? "a.txt" : "b.txt"]);
          assert.ok(took < 1000, `request ${i} took ${took.toFixed(0)} ms`);
        }
      } finally {
        const drips = await Promise.all(attackers);
        for (const d of drips) {
          assert.ok(
            d.closedAfter >= 0 && d.closedAfter < 5000,
            `${d.closedAfter} ms`,
          );
          assert.ok(d.sent < d.total, "the server waited for the whole drip");
          assert.ok(
            !/^HTTP\/1\.1 2/.test(d.received.start),
            `an unfinished head was answered: ${d.received.start}`,
          );
        }
      }
      await until(() => s.server.connections === 0, "no connections left");
    });
  },
});

// --- 2. slow reader ------------------------------------------------------------

Deno.test({
  name: "Server.listen() survives a client that never reads (send timeout)",
  ...SANITIZE,
  async fn(): Promise<void> {
    const size = 64 * MiB;
    await withServer(
      { ...FILES, "big.bin": new Uint8Array(size) },
      { handler: { maxCachedFile: 1024 }, server: { sendTimeout: 500 } },
      async (s) => {
        const slow = await connect(s.port);
        try {
          await writeAll(slow, bytes(get("/big.bin")));
          const start = Date.now();
          await until(() => s.server.connections === 1, "the slow reader");
          // Meanwhile another client is served normally.
          for (const name of ["a.txt", "b.txt"]) {
            const res = await request(s.port, `/${name}`);
            assert.equal(res.status, STATUS_CODE.OK);
            assert.equal(res.text, FILES[name]);
          }
          await until(
            () => s.server.connections === 0,
            "the slow reader to be cut off",
            { ms: 10_000 },
          );
          assert.ok(Date.now() - start < 10_000);
          // It got less than the file, then the end.
          const { total, start: first } = await waitClosed(slow, 10_000);
          assert.match(first, /^HTTP\/1\.1 200 /);
          assert.ok(total < size, `received ${total} bytes`);
        } finally {
          closeQuietly(slow);
        }
        const res = await request(s.port, "/a.txt");
        assert.equal(res.status, STATUS_CODE.OK);
      },
    );
  },
});

// --- 3. many connections, the connection limit -------------------------------

Deno.test({
  name: "Server.listen() survives 5,000 idle keep-alive connections",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(
      FILES,
      // Long timeouts: opening them all must not race the idle timeout.
      {
        server: {
          maxConnections: 6000,
          headerTimeout: 60_000,
          idleTimeout: 60_000,
        },
      },
      async (s) => {
        const conns = await openMany(s.port, 5000, 250);
        try {
          await until(() => s.server.connections === 5000, "5000 connections");
          const res = await request(s.port, "/b.txt");
          assert.equal(res.status, STATUS_CODE.OK);
          assert.equal(res.text, FILES["b.txt"]);
          // The first and the last held connection still work.
          for (const conn of [conns[0], conns[conns.length - 1]]) {
            const again = await getOn(conn, "/b.txt");
            assert.equal(again.text, FILES["b.txt"]);
          }
        } finally {
          for (const conn of conns) closeQuietly(conn);
        }
        await until(
          () => s.server.connections === 0,
          "every connection to end",
          { ms: 10_000 },
        );
      },
    );
  },
});

Deno.test({
  name:
    "Server.listen() survives connections past maxConnections (503, then serves)",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, { server: { maxConnections: 50 } }, async (s) => {
      const held = await openMany(s.port, 50, 25);
      try {
        assert.equal(s.server.connections, 50);
        // Ten more: each is answered 503 + Connection: close, then closed.
        const extra = await Promise.all(
          Array.from({ length: 10 }, async () => {
            const conn = await connect(s.port);
            try {
              const reader = new ResponseReader(conn);
              const res = await withTimeout(reader.read(), 5000, {
                label: "503",
              });
              const ended = await withTimeout(reader.atEnd(), 5000, {
                label: "end",
              });
              return { res, ended };
            } finally {
              closeQuietly(conn);
            }
          }),
        );
        for (const { res, ended } of extra) {
          assert.equal(res.status, STATUS_CODE.ServiceUnavailable);
          assert.equal(res.headers.connection, "close");
          assert.equal(ended, true, "the refused connection stayed open");
        }
        assert.equal(s.server.connections, 50);
        // The held ones still work.
        for (const conn of held.slice(0, 5)) {
          const res = await getOn(conn, "/b.txt");
          assert.equal(res.text, FILES["b.txt"]);
        }
        // One leaves: a new client is served again.
        closeQuietly(held.pop()!);
        await until(() => s.server.connections < 50, "a free slot");
        const res = await request(s.port, "/a.txt");
        assert.equal(res.status, STATUS_CODE.OK);
      } finally {
        for (const conn of held) closeQuietly(conn);
      }
      await until(() => s.server.connections === 0, "every connection to end");
      const res = await request(s.port, "/a.txt");
      assert.equal(res.status, STATUS_CODE.OK);
      assert.equal(res.text, FILES["a.txt"]);
    });
  },
});

// --- 4. descriptor leaks -------------------------------------------------------

/**
 * The open descriptors of process `pid` (this one by default): fd number ->
 * link target. Read in-process when allowed, else by a `find` child (whose
 * own descriptors are not listed; its pipes are the same at every call).
 */
async function fdTable(pid = Deno.pid): Promise<Map<string, string>> {
  const dir = `/proc/${pid}/fd`;
  const out = new Map<string, string>();
  try {
    for (const entry of Deno.readDirSync(dir)) {
      try {
        out.set(entry.name, Deno.readLinkSync(`${dir}/${entry.name}`));
      } catch {
        // closed meanwhile (e.g. the handle of this very listing)
      }
    }
    return out;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) throw error;
  }
  const listing = await new Deno.Command("find", {
    args: [dir, "-mindepth", "1", "-maxdepth", "1", "-printf", "%f %l\\n"],
    stdin: "null",
    stderr: "null",
  }).output();
  for (const line of new TextDecoder().decode(listing.stdout).split("\n")) {
    const space = line.indexOf(" ");
    if (space > 0) out.set(line.slice(0, space), line.slice(space + 1));
  }
  return out;
}

/** The number of open descriptors of this process. */
async function fdCount(): Promise<number> {
  return (await fdTable()).size;
}

/** Socket inodes known to the kernel's tables: inode -> TCP ports (none for UDP/unix). */
async function socketInodes(): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const table of ["tcp", "tcp6", "udp", "udp6", "unix", "raw", "raw6"]) {
    let text: string;
    try {
      text = await procText(`/proc/net/${table}`);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 7) continue;
      if (table.startsWith("tcp")) {
        const port = (a: string): number => parseInt(a.split(":")[1], 16);
        out.set(f[9], [port(f[1]), port(f[2])]);
      } else {
        out.set(table === "unix" ? f[6] : f[9], []);
      }
    }
  }
  return out;
}

/**
 * The descriptors opened since `before` that belong to the server under
 * test: files under `root`, TCP sockets on `port`, and sockets the kernel no
 * longer lists (a reset TCP socket whose descriptor was never closed).
 */
async function leakedFds(
  before: Map<string, string>,
  root: string,
  port: number,
): Promise<string[]> {
  const sockets = await socketInodes();
  const out: string[] = [];
  for (const [fd, link] of await fdTable()) {
    if (before.get(fd) === link) continue;
    if (link.startsWith(root)) {
      out.push(`${fd} -> ${link}`);
      continue;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    if (inode === undefined) continue;
    const ports = sockets.get(inode);
    if (ports === undefined || ports.includes(port)) {
      out.push(`${fd} -> ${link} ${ports === undefined ? "(unlisted)" : ""}`);
    }
  }
  return out;
}

/** Requests of the descriptor test; each answers how many requests it sent. */
type Scenario = (port: number, etag: string) => Promise<number>;

const BIG_STREAMED = 16 * MiB;
const MID_STREAMED = 64 * 1024;

const SCENARIOS: Scenario[] = [
  // A well-behaved keep-alive client: GET, HEAD, 304, multi-range, small.
  async (port, etag) => {
    const conn = await connect(port);
    try {
      const reader = new ResponseReader(conn);
      const ask = async (
        request: string,
        head = false,
      ): Promise<RawResponse> => {
        await writeAll(conn, bytes(request));
        return await withTimeout(reader.read({ head }), 10_000, {
          label: request,
        });
      };
      const full = await ask(get("/mid.bin"));
      assert.equal(full.status, STATUS_CODE.OK);
      assert.equal(full.body.length, MID_STREAMED);
      const head = await ask(
        "HEAD /mid.bin HTTP/1.1\r\nHost: example.test\r\n\r\n",
        true,
      );
      assert.equal(head.status, STATUS_CODE.OK);
      const cached = await ask(get("/mid.bin", `If-None-Match: ${etag}\r\n`));
      assert.equal(cached.status, STATUS_CODE.NotModified);
      const ranges = await ask(
        get("/big.bin", "Range: bytes=0-99,4096-8191\r\n"),
      );
      assert.equal(ranges.status, STATUS_CODE.PartialContent);
      const small = await ask(get("/a.txt"));
      assert.equal(small.text, FILES["a.txt"]);
      return 5;
    } finally {
      closeQuietly(conn);
    }
  },
  // Resets mid-response: closes right after asking for a large streamed file.
  async (port) => {
    const conn = await connect(port);
    try {
      await writeAll(conn, bytes(get("/big.bin")));
    } finally {
      closeQuietly(conn);
    }
    return 1;
  },
  // Half-closes after the request, then reads the whole response and the end.
  async (port) => {
    const conn = await connect(port);
    try {
      await writeAll(conn, bytes(get("/mid.bin", "Range: bytes=100-199\r\n")));
      await conn.closeWrite();
      const reader = new ResponseReader(conn);
      const res = await withTimeout(reader.read(), 10_000, {
        label: "half-closed",
      });
      assert.equal(res.status, STATUS_CODE.PartialContent);
      assert.equal(res.body.length, 100);
      assert.equal(
        await withTimeout(reader.atEnd(), 10_000, { label: "end" }),
        true,
      );
    } finally {
      closeQuietly(conn);
    }
    return 1;
  },
  // Reads a little of a large file, then resets.
  async (port) => {
    const conn = await connect(port);
    try {
      await writeAll(conn, bytes(get("/big.bin")));
      await withTimeout(conn.read(new Uint8Array(16384)), 10_000, {
        label: "a little",
      });
    } finally {
      closeQuietly(conn);
    }
    return 1;
  },
  // Disconnects during a 304.
  async (port, etag) => {
    const conn = await connect(port);
    try {
      await writeAll(
        conn,
        bytes(get("/mid.bin", `If-None-Match: ${etag}\r\n`)),
      );
    } finally {
      closeQuietly(conn);
    }
    return 1;
  },
  // Disconnects during a large range.
  async (port) => {
    const conn = await connect(port);
    try {
      await writeAll(
        conn,
        bytes(get("/big.bin", "Range: bytes=1000-4194303\r\n")),
      );
    } finally {
      closeQuietly(conn);
    }
    return 1;
  },
  // Half-closes after a HEAD of the large file, then closes without reading.
  async (port) => {
    const conn = await connect(port);
    try {
      await writeAll(
        conn,
        bytes("HEAD /big.bin HTTP/1.1\r\nHost: example.test\r\n\r\n"),
      );
      await conn.closeWrite();
    } finally {
      closeQuietly(conn);
    }
    return 1;
  },
  // Half-closes after asking for the large file, reads a little, resets.
  async (port) => {
    const conn = await connect(port);
    try {
      await writeAll(conn, bytes(get("/big.bin")));
      await conn.closeWrite();
      await withTimeout(conn.read(new Uint8Array(65536)), 10_000, {
        label: "a little",
      });
    } finally {
      closeQuietly(conn);
    }
    return 1;
  },
];

/** Runs scenarios round-robin on `workers` parallel clients until `total` requests were sent (bounded by `ms`). */
async function drive(
  port: number,
  etag: string,
  total: number,
  workers: number,
  ms: number,
): Promise<number> {
  let sent = 0;
  let next = 0;
  const deadline = Date.now() + ms;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (sent < total && Date.now() < deadline) {
      const scenario = SCENARIOS[next++ % SCENARIOS.length];
      const n = await scenario(port, etag);
      sent += n;
    }
  }));
  return sent;
}

Deno.test({
  name:
    "Server.listen() survives 20,000 mixed and aborted requests without leaking descriptors",
  ...SANITIZE,
  async fn(): Promise<void> {
    const files = {
      ...FILES,
      "big.bin": new Uint8Array(BIG_STREAMED).fill(0x62),
      "mid.bin": new Uint8Array(MID_STREAMED).fill(0x6d),
    };
    const root = await Deno.realPath(await makeTree(files));
    try {
      // Files over 1 KiB are streamed: each request opens a file handle.
      const options = { handler: { maxCachedFile: 1024 } };
      // Warm up whatever the runtime opens lazily on first use.
      {
        const s = await startServer(root, options);
        try {
          const etag = (await request(s.port, "/mid.bin")).headers.etag;
          for (const scenario of SCENARIOS) await scenario(s.port, etag);
        } finally {
          await s.close();
        }
      }
      const before = await fdTable();
      const beforeCount = before.size;
      const s = await startServer(root, options);
      let port = 0;
      try {
        port = s.port;
        const first = await request(s.port, "/mid.bin");
        const etag = first.headers.etag;
        assert.ok(etag !== undefined);
        const sent = await drive(s.port, etag, 20_000, 100, 40_000);
        assert.ok(sent >= 20_000, `only ${sent} requests in 40 s`);
        // Still serving, and every aborted connection ends on the server.
        const res = await request(s.port, "/a.txt");
        assert.equal(res.text, FILES["a.txt"]);
        await until(
          () => s.server.connections === 0,
          "every connection to end",
          { ms: 10_000 },
        );
      } finally {
        await s.close();
      }
      assert.equal(s.server.connections, 0);
      // What the server can leak is a socket or a file under its root. Any
      // other extra descriptor is not the server's: under `deno task test
      // --parallel` other test modules run in this same process and hold
      // descriptors of their own (run alone, the count is back exactly).
      // Bounded poll for closes to settle.
      let after = await fdCount();
      let leaked = await leakedFds(before, root, port);
      for (
        let i = 0;
        i < 100 && (after > beforeCount || leaked.length > 0);
        i++
      ) {
        await sleep(50);
        after = await fdCount();
        leaked = await leakedFds(before, root, port);
      }
      console.log(`descriptors: ${beforeCount} before, ${after} after`);
      assert.deepEqual(
        leaked,
        [],
        `descriptors: ${beforeCount} before, ${after} after`,
      );
    } finally {
      await removeTree(root);
    }
  },
});

// --- 5. file-system faults -----------------------------------------------------

Deno.test({
  name: "Server.listen() survives a streamed file truncated while being sent",
  ...SANITIZE,
  async fn(): Promise<void> {
    const size = 32 * MiB;
    const { errors, onError } = errorLog();
    await withServer(
      { ...FILES, "big.bin": new Uint8Array(size).fill(0x74) },
      { handler: { maxCachedFile: 1024, onError }, server: { onError } },
      async (s, root) => {
        const conn = await connect(s.port);
        try {
          await writeAll(conn, bytes(get("/big.bin")));
          // The response has started (its head promises `size` bytes); the
          // client reads no more, so the server stalls on full socket buffers.
          const head = await withTimeout(readHead(conn), 5000, {
            label: "head",
          });
          assert.equal(head.status, STATUS_CODE.OK);
          assert.equal(head.headers["content-length"], String(size));
          await Deno.truncate(`${root}/big.bin`, MiB);
          // Content-Length cannot be kept: the connection must close early.
          const { total } = await waitClosed(conn, 10_000);
          const received = head.rest.length + total;
          assert.ok(received < size, `received ${received} of ${size} bytes`);
        } finally {
          closeQuietly(conn);
        }
        await until(
          () => errors.some((m) => m.includes("shrank")),
          "an onError message about the file shrinking",
        );
        assert.ok(
          errors.every((m) => !m.includes("\n")),
          "one-line messages",
        );
        await until(() => s.server.connections === 0, "the connection to end");
        // A new client is served, and the file as it is now.
        const res = await request(s.port, "/a.txt");
        assert.equal(res.text, FILES["a.txt"]);
        const conn2 = await connect(s.port);
        try {
          await writeAll(conn2, bytes(get("/big.bin")));
          const again = await withTimeout(
            new ResponseReader(conn2).read(),
            10_000,
            { label: "the truncated file" },
          );
          assert.equal(again.status, STATUS_CODE.OK);
          assert.equal(again.body.length, MiB);
        } finally {
          closeQuietly(conn2);
        }
      },
    );
  },
});

Deno.test({
  name: "Server.listen() survives a file deleted after being served (404)",
  ...SANITIZE,
  async fn(): Promise<void> {
    const { errors, onError } = errorLog();
    await withServer(
      FILES,
      { handler: { freshness: 50, onError }, server: { onError } },
      async (s, root) => {
        const first = await request(s.port, "/a.txt");
        assert.equal(first.status, STATUS_CODE.OK);
        await Deno.remove(`${root}/a.txt`);
        await until(
          async () =>
            (await request(s.port, "/a.txt")).status === STATUS_CODE.NotFound,
          "a 404 for the deleted file",
          { ms: 3000, step: 20 },
        );
        const other = await request(s.port, "/b.txt");
        assert.equal(other.text, FILES["b.txt"]);
        assert.deepEqual(errors, []);
      },
    );
  },
});

Deno.test({
  name: "Server.listen() survives a file replaced by a rename (new content)",
  ...SANITIZE,
  async fn(): Promise<void> {
    const fresh = "the replacement, longer than before\n";
    await withServer(FILES, { handler: { freshness: 50 } }, async (s, root) => {
      const first = await request(s.port, "/a.txt");
      assert.equal(first.text, FILES["a.txt"]);
      await Deno.writeTextFile(`${root}/a.txt.tmp`, fresh);
      await Deno.rename(`${root}/a.txt.tmp`, `${root}/a.txt`);
      await until(
        async () => (await request(s.port, "/a.txt")).text === fresh,
        "the new content",
        { ms: 3000, step: 20 },
      );
      const again = await request(s.port, "/a.txt");
      assert.equal(again.status, STATUS_CODE.OK);
      assert.equal(again.text, fresh);
      assert.equal(again.headers["content-length"], String(fresh.length));
    });
  },
});

Deno.test({
  name: "Server.listen() survives a file it may not read (403)",
  ...SANITIZE,
  async fn(): Promise<void> {
    // As root, chmod 000 denies nothing; the server then runs as a child
    // process of root without the capabilities that bypass file modes.
    const root = await makeTree({ ...FILES, "locked.txt": "locked\n" });
    await Deno.chmod(`${root}/locked.txt`, 0o000);
    const server = await startChild(root, {
      withoutDacOverride: Deno.uid() === 0,
    });
    try {
      const res = await request(server.port, "/locked.txt");
      assert.equal(res.status, STATUS_CODE.Forbidden);
      assert.ok(!res.text.includes("locked"), "the locked file leaked");
      const other = await request(server.port, "/a.txt");
      assert.equal(other.status, STATUS_CODE.OK);
      assert.equal((await server.stop()).code, 0);
    } finally {
      await server.stop();
      await removeTree(root);
    }
  },
});

Deno.test({
  name:
    "Server.listen() serves the original when its precompressed sidecar may not be read",
  ...SANITIZE,
  async fn(): Promise<void> {
    // A build step's umask, say: nginx's gzip_static sends the original then,
    // and a 403 would refuse the file to every browser.
    const script = "console.log('app');\n".repeat(40);
    const root = await makeTree({
      "app.js": script,
      "app.js.gz": gzipSync(bytes(script)),
      "lib.js": script,
      "lib.js.gz": gzipSync(bytes(script)),
    });
    await Deno.chmod(`${root}/app.js.gz`, 0o000);
    const server = await startChild(root, {
      withoutDacOverride: Deno.uid() === 0,
      args: ["--precompressed"],
    });
    try {
      for (let i = 0; i < 2; i++) {
        const res = await request(
          server.port,
          "/app.js",
          "Accept-Encoding: gzip\r\n",
        );
        assert.equal(res.status, STATUS_CODE.OK, `request ${i}`);
        assert.equal(res.headers["content-encoding"], undefined);
        assert.equal(res.headers["vary"], "Accept-Encoding");
        assert.equal(res.text, script, `request ${i}`);
      }
      // A readable sidecar is still sent.
      const lib = await request(
        server.port,
        "/lib.js",
        "Accept-Encoding: gzip\r\n",
      );
      assert.equal(lib.status, STATUS_CODE.OK);
      assert.equal(lib.headers["content-encoding"], "gzip");
      assert.equal((await server.stop()).code, 0);
      assert.match(
        await server.output,
        /Cannot serve "\/app\.js" as gzip: its sidecar is not readable/,
      );
    } finally {
      await server.stop();
      await removeTree(root);
    }
  },
});

Deno.test({
  name:
    "Server.listen() survives its root directory being removed while serving",
  ...SANITIZE,
  async fn(): Promise<void> {
    const { errors, onError } = errorLog();
    // A separate temp root of its own.
    await withServer(
      FILES,
      { handler: { freshness: 50, onError }, server: { onError } },
      async (s, root) => {
        const first = await request(s.port, "/a.txt");
        assert.equal(first.status, STATUS_CODE.OK);
        await Deno.remove(root, { recursive: true });
        await until(
          async () =>
            (await request(s.port, "/a.txt")).status === STATUS_CODE.NotFound,
          "a 404 once the root is gone",
          { ms: 3000, step: 20 },
        );
        for (const path of ["/b.txt", "/", "/nope/deeper.txt"]) {
          const res = await request(s.port, path);
          assert.equal(res.status, STATUS_CODE.NotFound, path);
        }
        assert.ok(
          errors.some((m) => m.includes("is gone")),
          `onError messages: ${JSON.stringify(errors)}`,
        );
        // Still answering.
        const options = await request(s.port, "*", "", "OPTIONS");
        assert.equal(options.status, STATUS_CODE.NoContent);
      },
    );
  },
});

// --- 6. memory -------------------------------------------------------------------

/** A main.ts child process serving `root` on a free port. */
async function startChild(
  root: string,
  options: { withoutDacOverride?: boolean; args?: string[] } = {},
): Promise<
  {
    child: Deno.ChildProcess;
    port: number;
    output: Promise<string>;
    stop: () => Promise<Deno.CommandStatus>;
  }
> {
  const args = serveArgs(root, ...(options.args ?? []));
  // Root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH obeys file modes.
  const child = new Deno.Command(
    options.withoutDacOverride ? "setpriv" : Deno.execPath(),
    {
      args: options.withoutDacOverride
        ? [
          "--bounding-set=-dac_override,-dac_read_search",
          Deno.execPath(),
          ...args,
        ]
        : args,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    },
  ).spawn();
  // Kills a child that is still there after 2 minutes (a hang fails, not hangs).
  const killer = killAfter(child, 120_000);
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let port = 0;
  for (let i = 0; i < 100 && port === 0; i++) {
    const { value, done } = await withTimeout(lines.read(), 30_000, {
      label: "banner",
    })
      .catch((error) => {
        child.kill("SIGKILL");
        throw error;
      });
    if (done) break;
    seen += value;
    port = Number(/http:\/\/127\.0\.0\.1:(\d+)\//.exec(seen)?.[1] ?? 0);
  }
  // Keep draining stdout until the child exits.
  const rest = (async (): Promise<string> => {
    for (let i = 0; i < 1_000_000; i++) {
      const { value, done } = await lines.read();
      if (done) break;
      seen += value;
    }
    return seen;
  })();
  const output = Promise.all([rest, stderr]).then(([o, e]) => o + e);
  const stop = async (): Promise<Deno.CommandStatus> => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    const status = await child.status;
    clearTimeout(killer);
    await output;
    return status;
  };
  if (port === 0) {
    await stop();
    throw new Error(`No banner from main.ts: ${await output}`);
  }
  return { child, port, output, stop };
}

/** `VmHWM` (peak resident set) of process `pid`, in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await procText(`/proc/${pid}/status`);
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  assert.ok(kb !== undefined, "VmHWM in /proc/PID/status");
  return Number(kb) * 1024;
}

/** Downloads `path` on a fresh connection, hashing the body as it arrives. */
async function downloadSha256(
  port: number,
  path: string,
): Promise<{ length: number; sha256: string }> {
  const conn = await connect(port);
  try {
    await writeAll(conn, bytes(get(path, "Connection: close\r\n")));
    const head = await readHead(conn);
    assert.equal(head.status, STATUS_CODE.OK);
    const length = Number(head.headers["content-length"]);
    const hash = createHash("sha256");
    hash.update(head.rest);
    let got = head.rest.length;
    const buf = new Uint8Array(256 * 1024);
    while (got < length) {
      const n = await conn.read(
        buf.subarray(0, Math.min(buf.length, length - got)),
      );
      if (n === null) throw new Error(`Ended after ${got} of ${length} bytes`);
      hash.update(buf.subarray(0, n));
      got += n;
    }
    return { length: got, sha256: hash.digest("hex") };
  } finally {
    closeQuietly(conn);
  }
}

Deno.test({
  name:
    "Server.listen() survives 20 parallel downloads of a 256 MiB file in bounded memory",
  ...SANITIZE,
  async fn(): Promise<void> {
    const size = 256 * MiB;
    const root = await Deno.makeTempDir({ prefix: "static-srv-mem-" });
    try {
      // 256 MiB of random-ish bytes, fast: one random 1 MiB block, numbered.
      const block = randomBytes(MiB);
      const hash = createHash("sha256");
      const file = await Deno.open(`${root}/big.bin`, {
        write: true,
        create: true,
      });
      try {
        for (let i = 0; i < size / MiB; i++) {
          new DataView(block.buffer).setUint32(0, i);
          hash.update(block);
          let at = 0;
          while (at < block.length) at += await file.write(block.subarray(at));
        }
      } finally {
        file.close();
      }
      const expected = hash.digest("hex");

      const server = await startChild(root);
      let peak = 0;
      try {
        const results = await withTimeout(
          Promise.all(
            Array.from(
              { length: 20 },
              () => downloadSha256(server.port, "/big.bin"),
            ),
          ),
          90_000,
          { label: "20 downloads" },
        );
        for (const r of results) {
          assert.equal(r.length, size);
          assert.equal(r.sha256, expected);
        }
        peak = await peakRss(server.child.pid);
      } finally {
        const status = await server.stop();
        assert.equal(status.code, 0, await server.output);
      }
      console.log(
        `peak RSS (VmHWM) of the server while serving 20 x 256 MiB: ${
          (peak / MiB).toFixed(1)
        } MiB`,
      );
      assert.ok(peak > 0);
      assert.ok(peak < 150 * MiB, `peak RSS ${(peak / MiB).toFixed(1)} MiB`);
    } finally {
      await removeTree(root);
    }
  },
});

// --- a body dripped byte by byte -------------------------------------------------

Deno.test({
  name:
    "Server.listen() survives a client that drips a request body (header timeout)",
  ...SANITIZE,
  async fn(): Promise<void> {
    const cases = [
      "POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
    ];
    await withServer(
      FILES,
      { server: { headerTimeout: 500, idleTimeout: 500 } },
      async (s) => {
        for (const head of cases) {
          const conn = await connect(s.port);
          try {
            await writeAll(conn, bytes(head));
            // Drip "1\r\na\r\n" (or any body bytes) one byte per 40 ms, far
            // more often than the idle timeout, until the server cuts us off.
            const drip = "1\r\na\r\n";
            let cut = false;
            for (let i = 0; i < 250 && !cut; i++) {
              try {
                await writeAll(conn, bytes(drip[i % drip.length]));
              } catch {
                cut = true;
              }
              await sleep(40);
              if (s.server.connections === 0) cut = true;
            }
            assert.ok(cut, `${head.split("\r\n")[0]}: still held after 10 s`);
          } finally {
            closeQuietly(conn);
          }
        }
      },
    );
  },
});
