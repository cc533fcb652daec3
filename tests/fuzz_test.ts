import assert from "node:assert/strict";
import { STATUS_CODE } from "../src/http/status.ts";
import { checkResponses, mutate, runFuzz } from "./fuzz.ts";
import { prng, SANITIZE, startServer } from "./test_util.ts";

const encoder = new TextEncoder();

Deno.test({
  name: "mutate() is deterministic for a seed",
  ...SANITIZE,
  fn(): void {
    const a = prng(42);
    const b = prng(42);
    for (let i = 0; i < 50; i++) assert.deepEqual(mutate(a), mutate(b));
  },
});

Deno.test({
  name:
    "checkResponses() accepts well-formed responses and rejects broken ones",
  ...SANITIZE,
  fn(): void {
    const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi" +
      'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n';
    assert.deepEqual(checkResponses(encoder.encode(ok)), [
      STATUS_CODE.OK,
      STATUS_CODE.NotModified,
    ]);
    const cases = [
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi",
      "HTTP/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",
      "garbage",
    ];
    for (const text of cases) {
      assert.equal(
        typeof checkResponses(encoder.encode(text)),
        "string",
        JSON.stringify(text),
      );
    }
  },
});

Deno.test({
  name: "runFuzz() finds no malformed answer, hang or lost server (fixed seed)",
  ...SANITIZE,
  async fn(): Promise<void> {
    const root = new URL("../html", import.meta.url).pathname;
    const server = await startServer(root, {
      server: { headerTimeout: 1000, idleTimeout: 1000 },
    });
    try {
      const stats = await runFuzz({
        port: server.port,
        count: 1500,
        seconds: 30,
        seed: 20261126,
        concurrency: 8,
      });
      assert.deepEqual(stats.failures, []);
      assert.equal(stats.cases, 1500);
      assert.ok(stats.healthChecks > 0);
      assert.ok(stats.responses > 0);
    } finally {
      await server.close();
    }
  },
});
