/**
 * The entry of one worker thread of `--workers N`: it serves the same root on
 * the shared port (`SO_REUSEPORT`) until the main thread asks it to stop.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import type { ServeConfig } from "./cli.ts";
import { type Running, serve } from "./serve.ts";

/** A message from the main thread. */
export type ToWorker =
  | { type: "start"; config: ServeConfig }
  | { type: "stop" }
  /** Fault injection for tests: die with an uncaught error. */
  | { type: "crash" };

/** A message to the main thread. */
export type FromWorker =
  | { type: "ready"; port: number; root: string }
  | { type: "error"; message: string }
  | { type: "stopped" };

let running: Running | undefined;

function post(message: FromWorker): void {
  self.postMessage(message);
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === "start") {
    try {
      running = await serve(message.config, { print: () => {} });
      post({ type: "ready", port: running.port, root: running.root });
    } catch (error) {
      post({ type: "error", message: (error as Error).message });
    }
  } else if (message.type === "crash") {
    setTimeout(() => {
      throw new Error("Crash requested");
    });
  } else if (message.type === "stop") {
    running?.stop();
    await running?.stopped;
    post({ type: "stopped" });
    self.close();
  }
};
