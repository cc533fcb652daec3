import assert from "node:assert/strict";
import { parseCli, type ServeConfig } from "../src/cli.ts";
import { type ResourceLimits, Worker } from "node:worker_threads";
import { MAX_RESTARTS, serveWorkers, WORKER_LIMITS } from "../src/workers.ts";
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

Deno.test({
  name: "serveWorkers() restarts a lone worker on the same port",
  ...SANITIZE,
  async fn(): Promise<void> {
    const root = await makeTree({ "index.html": "back again" });
    const errors: string[] = [];
    const one = config(root, 1);
    assert.equal(one.reusePort, false); // the restart must rebind the port itself
    const running = await serveWorkers(one, {
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
      assert.deepEqual(
        errors.filter((m) => !/worker 0 died .*restarting/.test(m)),
        [],
      );
      const { responses } = await exchange(
        running.port,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      );
      assert.equal(responses[0].text, "back again");
    } finally {
      running.stop();
      await running.stopped;
      await Deno.remove(root, { recursive: true });
    }
  },
});

async function newSpaceAfterChurn(limits?: ResourceLimits): Promise<number> {
  const worker = new Worker(
    new URL("./fixtures/churn_worker.ts", import.meta.url),
    { resourceLimits: limits },
  );
  try {
    return await new Promise<number>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
  } finally {
    await worker.terminate();
  }
}

Deno.test({
  name: "serveWorkers() threads cap V8's young generation",
  ...SANITIZE,
  async fn(): Promise<void> {
    const mib = 1024 * 1024;
    const cap = WORKER_LIMITS.maxYoungGenerationSizeMb!;
    // Without the limit the same churn grows the new space past the cap,
    // so the capped figure below is the limit at work.
    const unlimited = await newSpaceAfterChurn();
    assert.ok(unlimited > cap * mib, `default new space: ${unlimited}`);
    const capped = await newSpaceAfterChurn(WORKER_LIMITS);
    assert.ok(capped <= cap * mib, `capped new space: ${capped}`);
  },
});

Deno.test({
  name:
    "serveWorkers() gives up on a worker that keeps dying and fails when none is left",
  ...SANITIZE,
  async fn(): Promise<void> {
    const root = await makeTree({ "index.html": "doomed" });
    const errors: string[] = [];
    const running = await serveWorkers(config(root, 1), {
      print: () => {},
      onError: (message) => errors.push(message),
    });
    try {
      for (let i = 0; i < MAX_RESTARTS; i++) {
        const dying = running.workers()[0];
        dying.postMessage({ type: "crash" });
        await until(() => running.workers()[0] !== dying, "a restart", 5000);
      }
      assert.equal(running.failed(), false);
      running.workers()[0].postMessage({ type: "crash" });
      await running.stopped;
      assert.equal(running.failed(), true);
      assert.equal(
        errors.filter((m) => /worker 0 died \(.*\); restarting$/.test(m))
          .length,
        MAX_RESTARTS,
      );
      assert.match(errors.at(-2)!, /worker 0 died again .*not restarting/);
      assert.match(errors.at(-1)!, /no worker left/);
    } finally {
      running.stop();
      await running.stopped;
      await Deno.remove(root, { recursive: true });
    }
  },
});
