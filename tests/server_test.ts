/**
 * Raw-socket integration tests of the server: listening, the connection
 * limit and graceful shutdown.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Server } from "../src/server.ts";
import { STATUS_CODE } from "../src/http/status.ts";
import {
  bytes,
  connect,
  exchange,
  makeTree,
  ResponseReader,
  SANITIZE,
  startServer,
  type TestServer,
  writeAll,
} from "./test_util.ts";

const MiB = 1024 * 1024;
const BIG_SIZE = 20 * MiB;

const FILES: Record<string, string> = {
  "a.txt": "contents of a\n",
  "b.txt": "bee\n",
};

function get(path: string, extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: example.test\r\n${extra}\r\n`;
}

/** Rejects with `label` when `promise` takes longer than `ms`; clears its timer. */
async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  label: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Timed out after ${ms} ms: ${label}`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads until the server closes (end or reset); answers the bytes read. Fails after `ms`. */
async function waitClosed(conn: Deno.Conn, ms = 5000): Promise<number> {
  const drain = async (): Promise<number> => {
    const buf = new Uint8Array(65536);
    let total = 0;
    for (let i = 0; i < 100_000; i++) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        return total;
      }
      if (n === null) return total;
      total += n;
    }
    throw new Error("The server kept sending");
  };
  return await withTimeout(drain(), ms, "waiting for the server to close");
}

/** Polls (bounded, 10 ms steps, up to 2 s) until `done()` holds. */
async function until(done: () => boolean, label: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (done()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`Timed out waiting for ${label}`);
}

function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) {
    crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  }
  return out;
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data);
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** Reads a response head; answers its status, fields and the body bytes read with it. */
async function readHead(
  conn: Deno.Conn,
): Promise<
  { status: number; headers: Record<string, string>; rest: Uint8Array }
> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(65536);
  for (let i = 0; i < 1000; i++) {
    const n = await conn.read(chunk);
    if (n === null) throw new Error("Connection ended before a response head");
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
    for (let k = 3; k < buf.length; k++) {
      if (
        buf[k] !== 10 || buf[k - 1] !== 13 || buf[k - 2] !== 10 ||
        buf[k - 3] !== 13
      ) continue;
      const lines = new TextDecoder().decode(buf.subarray(0, k - 3)).split(
        "\r\n",
      );
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":");
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1)
          .trim();
      }
      return {
        status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(lines[0])?.[1]),
        headers,
        rest: buf.subarray(k + 1),
      };
    }
  }
  throw new Error("No response head");
}

/** Reads into `body` from offset `got` until `until` bytes are there; answers `until`. */
async function readInto(
  conn: Deno.Conn,
  body: Uint8Array,
  got: number,
  until: number,
): Promise<number> {
  while (got < until) {
    const n = await conn.read(body.subarray(got, until));
    if (n === null) {
      throw new Error(`Connection ended after ${got} of ${until} body bytes`);
    }
    got += n;
  }
  return got;
}

/** Starts a server over a fresh tree, runs `fn`, and always cleans up. */
async function withServer(
  files: Record<string, string | Uint8Array>,
  fn: (s: TestServer) => Promise<void>,
  server: { maxConnections?: number } = {},
): Promise<void> {
  const root = await makeTree(files);
  try {
    const s = await startServer(root, { server });
    try {
      await fn(s);
    } finally {
      await s.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Opens a connection and completes one keep-alive request on it. */
async function openServed(port: number): Promise<Deno.TcpConn> {
  const conn = await connect(port);
  try {
    await writeAll(conn, bytes(get("/a.txt")));
    const res = await withTimeout(
      new ResponseReader(conn).read(),
      5000,
      "response",
    );
    assert.equal(res.status, STATUS_CODE.OK);
    assert.equal(res.text, FILES["a.txt"]);
    return conn;
  } catch (error) {
    conn.close();
    throw error;
  }
}

// --- listen ----------------------------------------------------------------

Deno.test({
  name: "Server.listen() on port 0 reports the chosen port in addr",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, async (s) => {
      const addr = s.server.addr;
      assert.equal(addr.transport, "tcp");
      assert.equal(addr.hostname, "127.0.0.1");
      assert.ok(addr.port > 0 && addr.port < 65536, `port ${addr.port}`);
      assert.equal(s.port, addr.port);
      const { responses } = await exchange(addr.port, get("/a.txt"));
      assert.equal(responses[0].status, STATUS_CODE.OK);
      assert.equal(responses[0].text, FILES["a.txt"]);
    });
  },
});

Deno.test({
  name: "Server.listen() on a port in use throws AddrInUse",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, (s) => {
      assert.throws(
        () => Server.listen(s.handler, { hostname: "127.0.0.1", port: s.port }),
        Deno.errors.AddrInUse,
      );
      return Promise.resolve();
    });
  },
});

// --- maxConnections --------------------------------------------------------

Deno.test({
  name: "Server refuses connections past maxConnections with a 503",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, async (s) => {
      const first = await openServed(s.port);
      let second: Deno.TcpConn | undefined;
      try {
        second = await openServed(s.port);
        assert.equal(s.server.connections, 2);

        // A third is over the limit: 503, Connection: close, then closed.
        const third = await connect(s.port);
        try {
          const reader = new ResponseReader(third);
          const res = await withTimeout(reader.read(), 5000, "503");
          assert.equal(res.status, STATUS_CODE.ServiceUnavailable);
          assert.equal(res.headers.connection, "close");
          assert.equal(res.headers["retry-after"], "1");
          assert.equal(await withTimeout(reader.atEnd(), 5000, "end"), true);
        } finally {
          third.close();
        }
        assert.equal(s.server.connections, 2);

        // The two kept connections still work.
        for (const conn of [first, second]) {
          await writeAll(conn, bytes(get("/b.txt")));
          const res = await withTimeout(
            new ResponseReader(conn).read(),
            5000,
            "b.txt",
          );
          assert.equal(res.text, FILES["b.txt"]);
        }

        // Once one closes, a new connection is served.
        second.close();
        second = undefined;
        await until(() => s.server.connections < 2, "a connection to end");
        const { responses, closed } = await exchange(s.port, get("/a.txt"));
        assert.equal(responses[0].status, STATUS_CODE.OK);
        assert.equal(responses[0].text, FILES["a.txt"]);
        assert.equal(closed, false);
      } finally {
        first.close();
        second?.close();
      }
    }, { maxConnections: 2 });
  },
});

// --- shutdown --------------------------------------------------------------

Deno.test({
  name: "Server.shutdown() stops accepting and closes idle connections",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, async (s) => {
      const idle = [await openServed(s.port), await openServed(s.port)];
      try {
        const fresh = await connect(s.port); // accepted, no request yet
        idle.push(fresh);
        await until(() => s.server.connections === 3, "3 connections");
        const start = Date.now();
        const done = s.server.shutdown({ grace: 10_000 });
        for (const conn of idle) assert.equal(await waitClosed(conn), 0);
        await withTimeout(done, 5000, "shutdown");
        assert.ok(Date.now() - start < 5000);
        assert.equal(s.server.connections, 0);
        await assert.rejects(async () => {
          const conn = await connect(s.port);
          conn.close();
        });
      } finally {
        for (const conn of idle) conn.close();
      }
    });
  },
});

Deno.test({
  name: "Server.shutdown() lets a response in flight finish",
  ...SANITIZE,
  async fn(): Promise<void> {
    const big = randomBytes(BIG_SIZE);
    const expected = await sha256(big);
    await withServer({ ...FILES, "big.bin": big }, async (s) => {
      const conn = await connect(s.port);
      try {
        await writeAll(conn, bytes(get("/big.bin")));
        // The response has started: its head is here.
        const head = await withTimeout(readHead(conn), 5000, "head");
        assert.equal(head.status, STATUS_CODE.OK);
        assert.equal(head.headers["content-length"], String(BIG_SIZE));

        let finished = false;
        const done = s.server.shutdown({ grace: 20_000 }).then(() =>
          finished = true
        );
        const body = new Uint8Array(BIG_SIZE);
        assert.ok(head.rest.length < 2 * MiB);
        body.set(head.rest);
        // Socket buffers hold far less than 18 MiB, so with only 2 MiB read
        // the server is still sending and the shutdown must still wait.
        let got = await withTimeout(
          readInto(conn, body, head.rest.length, 2 * MiB),
          20_000,
          "2 MiB of the body",
        );
        assert.equal(finished, false, "shutdown resolved mid-response");
        got = await withTimeout(
          readInto(conn, body, got, BIG_SIZE),
          20_000,
          "the rest of the body",
        );
        assert.equal(got, BIG_SIZE);
        assert.equal(await sha256(body), expected);
        // Then the server closes the connection, and the shutdown ends.
        assert.equal(await waitClosed(conn), 0);
        await withTimeout(done, 5000, "shutdown");
        assert.equal(finished, true);
        assert.equal(s.server.connections, 0);
      } finally {
        conn.close();
      }
    });
  },
});

Deno.test({
  name: "Server.shutdown() force-closes a stuck connection after the grace",
  ...SANITIZE,
  async fn(): Promise<void> {
    const root = await makeTree({
      ...FILES,
      "big.bin": new Uint8Array(BIG_SIZE),
    });
    try {
      const s = await startServer(root);
      const conn = await connect(s.port);
      try {
        await writeAll(conn, bytes(get("/big.bin")));
        // The response has started; now never read again, so the server's
        // writes stall once the socket buffers are full.
        const head = await withTimeout(readHead(conn), 5000, "head");
        assert.equal(head.status, STATUS_CODE.OK);

        const start = Date.now();
        await withTimeout(
          s.server.shutdown({ grace: 200 }),
          5000,
          "shutdown with a small grace",
        );
        const elapsed = Date.now() - start;
        assert.ok(elapsed >= 150, `resolved before the grace: ${elapsed} ms`);
        assert.equal(s.server.connections, 0);
        // The client gets less than the whole body, then the end.
        const received = head.rest.length + await waitClosed(conn);
        assert.ok(received < BIG_SIZE, `received ${received} bytes`);
      } finally {
        conn.close(); // unblocks a server stuck in a write, if any
        await s.close();
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
