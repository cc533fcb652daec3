import assert from "node:assert/strict";
import { parseCli, type ServeConfig } from "../src/cli.ts";
import { serveWorkers } from "../src/workers.ts";
import { exchange, makeTree, SANITIZE, until } from "./test_util.ts";

function config(root: string, workers: number): ServeConfig {
  const command = parseCli([
    root,
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    "-q",
    "--workers",
    String(workers),
  ]);
  assert.equal(command.kind, "serve");
  return command.kind === "serve" ? command.config : undefined!;
}

Deno.test({
  name: "serveWorkers() serves one port from several workers and stops cleanly",
  ...SANITIZE,
  async fn(): Promise<void> {
    const root = await makeTree({ "index.html": "from a worker" });
    const running = await serveWorkers(config(root, 2), { print: () => {} });
    try {
      assert.equal(running.workers().length, 2);
      // Fresh connections are spread by the kernel; every one is answered.
      for (let i = 0; i < 20; i++) {
        const { responses } = await exchange(
          running.port,
          "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert.equal(responses[0].status, 200);
        assert.equal(responses[0].text, "from a worker");
      }
    } finally {
      running.stop();
      await running.stopped;
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "serveWorkers() restarts a worker that dies and logs it",
  ...SANITIZE,
  async fn(): Promise<void> {
    const root = await makeTree({ "index.html": "still here" });
    const errors: string[] = [];
    const running = await serveWorkers(config(root, 2), {
      print: () => {},
      onError: (message) => errors.push(message),
    });
    try {
      const dying = running.workers()[0];
      dying.postMessage({ type: "crash" });
      await until(
        () => running.workers()[0] !== dying,
        "the restart",
        5000,
        25,
      );
      assert.equal(running.workers().length, 2);
      assert.ok(
        errors.some((m) => /worker 0 died .*restarting/.test(m)),
        `no restart logged: ${JSON.stringify(errors)}`,
      );
      for (let i = 0; i < 20; i++) {
        const { responses } = await exchange(
          running.port,
          "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert.equal(responses[0].text, "still here");
      }
    } finally {
      running.stop();
      await running.stopped;
      await Deno.remove(root, { recursive: true });
    }
  },
});
