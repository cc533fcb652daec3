import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { STATUS_CODE } from "../src/http/status.ts";
import type { FromWorker, ToWorker } from "../src/worker.ts";
import {
  exchange,
  get,
  makeTree,
  SANITIZE,
  serveConfig,
  withTimeout,
} from "./test_util.ts";

/** The worker thread of src/worker.ts, spoken to message by message. */
class WorkerThread {
  #worker = new Worker(new URL("../src/worker.ts", import.meta.url));
  #messages: FromWorker[] = [];
  #waiting: (() => void) | undefined;

  constructor() {
    this.#worker.on("message", (message: FromWorker) => {
      this.#messages.push(message);
      this.#waiting?.();
    });
  }

  /** Sends `message`. */
  send(message: ToWorker): void {
    this.#worker.postMessage(message);
  }

  /** The next message, within 10 s. */
  async next(): Promise<FromWorker> {
    while (this.#messages.length === 0) {
      await withTimeout(
        new Promise<void>((resolve) => this.#waiting = resolve),
        10_000,
        { label: "a message from the worker" },
      );
    }
    return this.#messages.shift()!;
  }

  /** Ends the thread. */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }
}

Deno.test({
  name: "worker.ts serves on start, answers pings and stops on stop",
  ...SANITIZE,
  async fn(): Promise<void> {
    const root = await makeTree({ "index.html": "<p>from a worker</p>\n" });
    const thread = new WorkerThread();
    try {
      thread.send({
        type: "start",
        config: serveConfig([root, "-p", "0", "--host", "127.0.0.1", "-q"]),
      });
      const ready = await thread.next();
      assert.equal(ready.type, "ready");
      if (ready.type !== "ready") return;
      assert.ok(ready.port > 0);
      assert.equal(ready.root, await Deno.realPath(root));
      assert.deepEqual(ready.urls, [`http://127.0.0.1:${ready.port}/`]);

      const { responses } = await exchange(ready.port, get("/"));
      assert.equal(responses[0].status, STATUS_CODE.OK);
      assert.equal(responses[0].text, "<p>from a worker</p>\n");

      thread.send({ type: "ping" });
      assert.deepEqual(await thread.next(), { type: "pong" });

      thread.send({ type: "stop" });
      assert.deepEqual(await thread.next(), { type: "stopped" });
      await assert.rejects(
        Deno.connect({ hostname: "127.0.0.1", port: ready.port }),
        Deno.errors.ConnectionRefused,
      );
    } finally {
      await thread.terminate();
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "worker.ts reports a start it cannot make as an error message",
  ...SANITIZE,
  async fn(): Promise<void> {
    const root = await makeTree({ "index.html": "x" });
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const thread = new WorkerThread();
    try {
      const port = taken.addr.port;
      thread.send({
        type: "start",
        config: serveConfig([
          root,
          "-p",
          `${port}`,
          "--host",
          "127.0.0.1",
          "-q",
        ]),
      });
      assert.deepEqual(await thread.next(), {
        type: "error",
        message: `Cannot listen on "127.0.0.1:${port}": address already in use`,
      });
    } finally {
      await thread.terminate();
      taken.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});
