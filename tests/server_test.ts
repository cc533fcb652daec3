/**
 * Raw-socket integration tests of the server: listening, the connection
 * limit and graceful shutdown.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { AccessRecord } from "../src/connection.ts";
import { formatCommonLog } from "../src/log.ts";
import { Server } from "../src/server.ts";
import { STATUS_CODE } from "../src/http/status.ts";
import {
  assertClockFree,
  assertClockHeld,
  bytes,
  connect,
  exchange,
  get,
  getOn,
  openServed,
  randomBytes,
  readHead,
  readInto,
  ResponseReader,
  SANITIZE,
  sha256,
  sleep,
  until,
  waitClosed,
  withServer,
  withTimeout,
  writeAll,
} from "./test_util.ts";

const MiB = 1024 * 1024;
const BIG_SIZE = 20 * MiB;

const FILES: Record<string, string> = {
  "a.txt": "contents of a\n",
  "b.txt": "bee\n",
};

// --- listen ----------------------------------------------------------------

Deno.test({
  name: "Server.listen() on port 0 reports the chosen port in addr",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, {}, async (s) => {
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
  name:
    "Server.listen() holds the shared clock only while it has connections (an idle server never wakes)",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, {}, async (s) => {
      assertClockFree("the real clock before any connection");
      const conn = await connect(s.port);
      try {
        await writeAll(conn, bytes(get("/a.txt")));
        const res = await new ResponseReader(conn).read();
        assert.equal(res.status, STATUS_CODE.OK);
        // Kept alive: the connection is open.
        assertClockHeld("the shared value while a connection is open");
      } finally {
        conn.close();
      }
      await until(() => s.server.connections === 0, "the connection to end");
      assertClockFree("the real clock once the last connection ended");
    });
    assertClockFree("the real clock after shutdown");
  },
});

Deno.test({
  name: "Server.listen() on a port in use throws AddrInUse",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, {}, (s) => {
      assert.throws(
        () => Server.listen(s.handler, { hostname: "127.0.0.1", port: s.port }),
        Deno.errors.AddrInUse,
      );
      return Promise.resolve();
    });
  },
});

Deno.test({
  name:
    "Server.listen() with reusePort and exclusive fails on a port anyone listens on",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, {}, (s) => {
      for (const reusePort of [false, true]) {
        const other = Deno.listen({
          hostname: "127.0.0.1",
          port: 0,
          ...(reusePort ? { reusePort: true } : {}),
        } as Deno.TcpListenOptions);
        try {
          const port = (other.addr as Deno.NetAddr).port;
          assert.throws(
            () =>
              Server.listen(s.handler, {
                hostname: "127.0.0.1",
                port,
                reusePort: true,
                exclusive: true,
              }),
            Deno.errors.AddrInUse,
            `another listener with reusePort: ${reusePort}`,
          );
        } finally {
          other.close();
        }
      }
      return Promise.resolve();
    });
  },
});

Deno.test({
  name:
    "Server.listen() with reusePort and exclusive on port 0 picks a port that reusePort listeners can share",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, {}, async (s) => {
      const first = Server.listen(s.handler, {
        hostname: "127.0.0.1",
        port: 0,
        reusePort: true,
        exclusive: true,
      });
      try {
        const port = first.addr.port;
        assert.ok(port > 0);
        const second = Server.listen(s.handler, {
          hostname: "127.0.0.1",
          port,
          reusePort: true,
        });
        await second.shutdown();
        const { responses } = await exchange(port, get("/a.txt"));
        assert.equal(responses[0].text, FILES["a.txt"]);
      } finally {
        await first.shutdown();
      }
    });
  },
});

// --- maxConnections --------------------------------------------------------

Deno.test({
  name: "Server.listen() refuses connections past maxConnections with a 503",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, { server: { maxConnections: 2 } }, async (s) => {
      const first = await openServed(s.port, "/a.txt", {
        text: FILES["a.txt"],
      });
      let second: Deno.TcpConn | undefined;
      try {
        second = await openServed(s.port, "/a.txt", { text: FILES["a.txt"] });
        assert.equal(s.server.connections, 2);

        // A third is over the limit: 503, Connection: close, then closed.
        const third = await connect(s.port);
        try {
          const reader = new ResponseReader(third);
          const res = await withTimeout(reader.read(), 5000, { label: "503" });
          assert.equal(res.status, STATUS_CODE.ServiceUnavailable);
          assert.equal(res.headers.connection, "close");
          assert.equal(res.headers["retry-after"], "1");
          assert.equal(
            await withTimeout(reader.atEnd(), 5000, { label: "end" }),
            true,
          );
        } finally {
          third.close();
        }
        assert.equal(s.server.connections, 2);

        // The two kept connections still work.
        for (const conn of [first, second]) {
          const res = await getOn(conn, "/b.txt");
          assert.equal(res.text, FILES["b.txt"]);
        }

        // Once one closes, a new connection is served.
        second.close();
        second = undefined;
        await until(() => s.server.connections < 2, "a connection to end", {
          ms: 2000,
        });
        const { responses, closed } = await exchange(s.port, get("/a.txt"));
        assert.equal(responses[0].status, STATUS_CODE.OK);
        assert.equal(responses[0].text, FILES["a.txt"]);
        assert.equal(closed, false);
      } finally {
        first.close();
        second?.close();
      }
    });
  },
});

Deno.test({
  name:
    "Server.listen() counts connections that end out of order and keeps serving the rest",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, { server: { maxConnections: 6 } }, async (s) => {
      const open: (Deno.TcpConn | undefined)[] = [];
      try {
        for (let i = 0; i < 6; i++) {
          open.push(
            await openServed(s.port, "/a.txt", { text: FILES["a.txt"] }),
          );
        }
        assert.equal(s.server.connections, 6);
        // End three from the middle, the end and the start of the list.
        for (const i of [2, 5, 0]) {
          open[i]!.close();
          open[i] = undefined;
        }
        await until(() => s.server.connections === 3, "3 to end", { ms: 2000 });
        // The three left still work, and three new ones fit the limit again.
        for (const conn of open) {
          if (conn === undefined) continue;
          const res = await getOn(conn, "/b.txt");
          assert.equal(res.text, FILES["b.txt"]);
        }
        for (let i = 0; i < 3; i++) {
          open.push(
            await openServed(s.port, "/a.txt", { text: FILES["a.txt"] }),
          );
        }
        assert.equal(s.server.connections, 6);
        // A seventh is over the limit.
        const { responses } = await exchange(s.port, get("/a.txt"));
        assert.equal(responses[0].status, STATUS_CODE.ServiceUnavailable);
        // Shutdown reaches each of the six still open: every one is closed.
        const done = s.server.shutdown({ grace: 10_000 });
        for (const conn of open) {
          if (conn !== undefined) {
            assert.equal((await waitClosed(conn)).total, 0);
          }
        }
        await withTimeout(done, 5000, { label: "shutdown" });
        assert.equal(s.server.connections, 0);
      } finally {
        for (const conn of open) conn?.close();
      }
    });
  },
});

// --- deadlines -------------------------------------------------------------

Deno.test({
  name:
    "Server.listen() times connections out by the monotonic clock, whatever steps the system clock takes",
  ...SANITIZE,
  async fn(t): Promise<void> {
    const realNow = Date.now;
    /** The system clock as NTP or a resumed VM would step it. */
    const stepClock = (ms: number): void => {
      Date.now = () => realNow() + ms;
    };
    try {
      await t.step("a step forward ends no connection early", async () => {
        await withServer(FILES, {}, async ({ server, port }) => {
          const conn = await connect(port);
          try {
            // Accepted, with its header deadline (10 s) set.
            await until(() => server.connections === 1, "the connection");
            stepClock(3_600_000);
            await sleep(1200); // two sweeps of the deadlines (every 500 ms)
            Date.now = realNow;
            const res = await getOn(conn, "/a.txt");
            assert.equal(res.status, STATUS_CODE.OK);
          } finally {
            Date.now = realNow;
            conn.close();
          }
        });
      });
      await t.step("a step back extends no timeout", async () => {
        const options = { server: { headerTimeout: 300 } };
        await withServer(FILES, options, async ({ server, port }) => {
          const conn = await connect(port);
          try {
            await until(() => server.connections === 1, "the connection");
            stepClock(-3_600_000);
            assert.equal((await waitClosed(conn)).total, 0);
          } finally {
            Date.now = realNow;
            conn.close();
          }
        });
      });
    } finally {
      Date.now = realNow;
    }
  },
});

// --- shutdown --------------------------------------------------------------

Deno.test({
  name: "Server.shutdown() stops accepting and closes idle connections",
  ...SANITIZE,
  async fn(): Promise<void> {
    await withServer(FILES, {}, async (s) => {
      const idle = [
        await openServed(s.port, "/a.txt", { text: FILES["a.txt"] }),
        await openServed(s.port, "/a.txt", { text: FILES["a.txt"] }),
      ];
      try {
        const fresh = await connect(s.port); // accepted, no request yet
        idle.push(fresh);
        await until(() => s.server.connections === 3, "3 connections", {
          ms: 2000,
        });
        const start = Date.now();
        const done = s.server.shutdown({ grace: 10_000 });
        for (const conn of idle) {
          assert.equal((await waitClosed(conn)).total, 0);
        }
        await withTimeout(done, 5000, { label: "shutdown" });
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
  name:
    "Server.shutdown() answers the first request of a connection accepted just before it, then closes",
  ...SANITIZE,
  async fn(): Promise<void> {
    // A header timeout far past the test's waits: a fresh connection that
    // sends nothing must still not hold the stop for it.
    const options = { server: { headerTimeout: 120_000 } };
    await withServer(FILES, options, async (s) => {
      const early = await connect(s.port); // accepted, request still to come
      const body = await connect(s.port); // the same, with a body announced
      const silent = await connect(s.port); // accepted, sends nothing
      try {
        await until(() => s.server.connections === 3, "3 connections", {
          ms: 2000,
        });
        const done = s.server.shutdown({ grace: 120_000 });
        await writeAll(early, bytes(get("/a.txt")));
        // A stop waits for no body: answered at once, no 100 Continue.
        await writeAll(
          body,
          bytes(
            "GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n" +
              "Expect: 100-continue\r\n\r\n",
          ),
        );
        for (const conn of [early, body]) {
          const res = await withTimeout(new ResponseReader(conn).read(), 5000, {
            label: "the response",
          });
          assert.equal(res.status, STATUS_CODE.OK);
          assert.equal(res.headers["connection"], "close");
          assert.equal(res.text, FILES["a.txt"]);
          assert.equal((await waitClosed(conn)).total, 0);
        }
        assert.equal((await waitClosed(silent)).total, 0);
        await withTimeout(done, 10_000, { label: "shutdown" });
        assert.equal(s.server.connections, 0);
      } finally {
        early.close();
        body.close();
        silent.close();
      }
    });
  },
});

Deno.test({
  name:
    "Server.shutdown() waits for a body on its way as briefly as for a head, not its header timeout",
  ...SANITIZE,
  async fn(): Promise<void> {
    // A header timeout and a grace far past the test's waits: a body that
    // does not come must not hold the stop for either.
    const records: AccessRecord[] = [];
    const log = (record: AccessRecord): void => void records.push(record);
    const options = { server: { headerTimeout: 120_000, log } };
    await withServer(FILES, options, async (s) => {
      const conn = await connect(s.port);
      try {
        await writeAll(
          conn,
          bytes(
            "GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n" +
              "Expect: 100-continue\r\n\r\n",
          ),
        );
        // The server has the head and waits for the body.
        const reader = new ResponseReader(conn);
        const interim = await withTimeout(reader.read(), 5000, {
          label: "100 Continue",
        });
        assert.equal(interim.statusLine, "HTTP/1.1 100 Continue");
        await writeAll(conn, bytes("ab"));
        const start = Date.now();
        await withTimeout(s.server.shutdown({ grace: 120_000 }), 5000, {
          label: "shutdown",
        });
        const elapsed = Date.now() - start;
        assert.ok(elapsed >= 800, `closed too early: ${elapsed} ms`);
        assert.equal(s.server.connections, 0);
        assert.equal((await waitClosed(conn)).total, 0);
        assert.deepEqual(
          records.map((r) => `${r.request} ${r.status}`),
          ["GET /a.txt HTTP/1.1 408"],
        );
      } finally {
        conn.close();
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
    await withServer({ ...FILES, "big.bin": big }, {}, async (s) => {
      const conn = await connect(s.port);
      try {
        await writeAll(conn, bytes(get("/big.bin")));
        // The response has started: its head is here.
        const head = await withTimeout(readHead(conn), 5000, { label: "head" });
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
          readInto(conn, body, { got: head.rest.length, end: 2 * MiB }),
          20_000,
          { label: "2 MiB of the body" },
        );
        assert.equal(finished, false, "shutdown resolved mid-response");
        got = await withTimeout(
          readInto(conn, body, { got, end: BIG_SIZE }),
          20_000,
          { label: "the rest of the body" },
        );
        assert.equal(got, BIG_SIZE);
        assert.equal(await sha256(body), expected);
        // Then the server closes the connection, and the shutdown ends.
        assert.equal((await waitClosed(conn)).total, 0);
        await withTimeout(done, 5000, { label: "shutdown" });
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
    const files = { ...FILES, "big.bin": new Uint8Array(BIG_SIZE) };
    await withServer(files, {}, async (s) => {
      const conn = await connect(s.port);
      try {
        await writeAll(conn, bytes(get("/big.bin")));
        // The response has started; now never read again, so the server's
        // writes stall once the socket buffers are full.
        const head = await withTimeout(readHead(conn), 5000, { label: "head" });
        assert.equal(head.status, STATUS_CODE.OK);

        const start = Date.now();
        await withTimeout(s.server.shutdown({ grace: 200 }), 5000, {
          label: "shutdown with a small grace",
        });
        const elapsed = Date.now() - start;
        assert.ok(elapsed >= 150, `resolved before the grace: ${elapsed} ms`);
        assert.equal(s.server.connections, 0);
        // The client gets less than the whole body, then the end.
        const received = head.rest.length + (await waitClosed(conn)).total;
        assert.ok(received < BIG_SIZE, `received ${received} bytes`);
      } finally {
        conn.close(); // unblocks a server stuck in a write, if any
      }
    });
  },
});

// --- access log ------------------------------------------------------------

Deno.test({
  name:
    "Server.listen() logs connections refused past maxConnections as 503 with request -",
  ...SANITIZE,
  async fn(): Promise<void> {
    const records: AccessRecord[] = [];
    const log = (record: AccessRecord): void => void records.push(record);
    await withServer(
      FILES,
      { server: { maxConnections: 1, log } },
      async (s) => {
        const first = await openServed(s.port, "/a.txt", {
          text: FILES["a.txt"],
        });
        try {
          const refused = await connect(s.port);
          let body = 0;
          try {
            const reader = new ResponseReader(refused);
            const res = await withTimeout(reader.read(), 5000, {
              label: "503",
            });
            assert.equal(res.status, STATUS_CODE.ServiceUnavailable);
            body = res.body.length;
            assert.equal(
              await withTimeout(reader.atEnd(), 5000, { label: "end" }),
              true,
            );
          } finally {
            refused.close();
          }
          await until(
            () =>
              records.some((r) => r.status === STATUS_CODE.ServiceUnavailable),
            "the 503's record",
          );
          const record = records.find((r) =>
            r.status === STATUS_CODE.ServiceUnavailable
          )!;
          assert.equal(record.request, "");
          assert.equal(record.remote, "127.0.0.1");
          assert.equal(record.length, body);
          assert.match(formatCommonLog(record), / "-" 503 \d+$/);
        } finally {
          first.close();
        }
      },
    );
  },
});

Deno.test({
  name:
    "Server.shutdown() logs a response cut off by the grace with the body bytes sent",
  ...SANITIZE,
  async fn(): Promise<void> {
    const records: AccessRecord[] = [];
    const log = (record: AccessRecord): void => void records.push(record);
    const files = { ...FILES, "big.bin": new Uint8Array(BIG_SIZE) };
    await withServer(files, { server: { log } }, async (s) => {
      const conn = await connect(s.port);
      try {
        await writeAll(conn, bytes(get("/big.bin")));
        // The response has started; now never read again, so the server's
        // writes stall once the socket buffers are full.
        const head = await withTimeout(readHead(conn), 5000, { label: "head" });
        assert.equal(head.status, STATUS_CODE.OK);
        await withTimeout(s.server.shutdown({ grace: 200 }), 5000, {
          label: "shutdown",
        });
        const received = head.rest.length + (await waitClosed(conn)).total;
        assert.equal(records.length, 1);
        assert.equal(records[0].request, "GET /big.bin HTTP/1.1");
        assert.equal(records[0].status, STATUS_CODE.OK);
        assert.ok(
          records[0].length >= received && records[0].length < BIG_SIZE,
          `logged ${records[0].length}, received ${received}`,
        );
      } finally {
        conn.close();
      }
    });
  },
});
