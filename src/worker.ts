/**
 * The entry of one worker thread (see `workers.ts`): it serves the root on
 * the port it is given until the main thread asks it to stop.
 *
 * @module
 */

import { parentPort } from "node:worker_threads";
import type { ServeConfig } from "./cli.ts";
import { type Running, serve } from "./serve.ts";

/** A message from the main thread. */
export type ToWorker =
  /** Serve `config`; `exclusive` as in `ServeOptions`. */
  | { type: "start"; config: ServeConfig; exclusive?: boolean }
  | { type: "stop" }
  /** The supervisor's heartbeat: answered with a pong while the thread's event loop turns. */
  | { type: "ping" }
  /** Fault injection for tests: die with an uncaught error. */
  | { type: "crash" }
  /** Fault injection for tests: hold the thread forever. */
  | { type: "hang" };

/** The message of a worker that serves: where, and the real root. */
export interface Ready {
  /** The message's kind. */
  type: "ready";
  /** The port it listens on. */
  port: number;
  /** The real path of the root. */
  root: string;
  /** The URLs it answers on. */
  urls: string[];
}

/** A message to the main thread. */
export type FromWorker =
  | Ready
  | { type: "error"; message: string }
  | { type: "pong" }
  | { type: "stopped" };

let running: Running | undefined;

function post(message: FromWorker): void {
  parentPort!.postMessage(message);
}

parentPort!.on("message", async (message: ToWorker) => {
  if (message.type === "start") {
    try {
      running = await serve(message.config, {
        print: () => {},
        exclusive: message.exclusive,
      });
      post({
        type: "ready",
        port: running.port,
        root: running.root,
        urls: running.urls,
      });
    } catch (error) {
      post({ type: "error", message: (error as Error).message });
    }
  } else if (message.type === "ping") {
    post({ type: "pong" });
  } else if (message.type === "hang") {
    for (;;) {
      // spin until terminated
    }
  } else if (message.type === "crash") {
    setTimeout(() => {
      throw new Error("Crash requested");
    });
  } else if (message.type === "stop") {
    running?.stop();
    await running?.stopped;
    post({ type: "stopped" });
  }
});
