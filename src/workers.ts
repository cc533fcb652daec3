/**
 * `--workers N`: N worker threads, each with its own listener on the same
 * port (`SO_REUSEPORT`, so the kernel spreads connections). A worker that
 * dies is restarted and logged; a stop drains every worker.
 *
 * @module
 */

import type { ServeConfig } from "./cli.ts";
import { listenUrls, type Running, type ServeOptions } from "./serve.ts";
import type { FromWorker, ToWorker } from "./worker.ts";
import { logError } from "./log.ts";

/** Restarts allowed within {@linkcode RESTART_WINDOW} ms before giving up on a worker slot. */
export const MAX_RESTARTS = 5;
/** The window of {@linkcode MAX_RESTARTS}, in ms. */
export const RESTART_WINDOW = 60_000;
/** How long a stop waits for a worker to drain, in ms. */
const STOP_WAIT = 15_000;

interface Slot {
  worker: Worker;
  restarts: number[];
}

function spawn(
  config: ServeConfig,
): Promise<{ worker: Worker; port: number; root: string }> {
  const worker = new Worker(new URL("./worker.ts", import.meta.url).href, {
    type: "module",
  });
  return new Promise((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      if (message.type === "ready") {
        resolve({ worker, port: message.port, root: message.root });
      } else if (message.type === "error") {
        worker.terminate();
        reject(new Error(message.message));
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      worker.terminate();
      reject(new Error(event.message));
    };
    worker.postMessage({ type: "start", config } satisfies ToWorker);
  });
}

/** A running set of workers. */
export interface RunningWorkers extends Running {
  /** The live workers, one per slot (a restarted worker replaces its slot's). */
  workers(): Worker[];
}

/** Starts `config.workers` worker threads on one port; throws like `serve` when the first cannot start. */
export async function serveWorkers(
  config: ServeConfig,
  options: ServeOptions = {},
): Promise<RunningWorkers> {
  const print = options.print ?? ((line: string) => console.log(line));
  const onError = options.onError ?? logError;
  // The first worker picks the port when 0 was asked for; the rest share it.
  const first = await spawn({ ...config, reusePort: true });
  const shared: ServeConfig = { ...config, reusePort: true, port: first.port };
  const slots: Slot[] = [{ worker: first.worker, restarts: [] }];
  try {
    for (let i = 1; i < config.workers; i++) {
      slots.push({ worker: (await spawn(shared)).worker, restarts: [] });
    }
  } catch (error) {
    for (const slot of slots) slot.worker.terminate();
    throw error;
  }
  let stopping = false;

  const watch = (slot: Slot, index: number): void => {
    slot.worker.onerror = (event) => {
      event.preventDefault();
      slot.worker.terminate();
      if (stopping) return;
      const now = Date.now();
      slot.restarts = slot.restarts.filter((t) => now - t < RESTART_WINDOW);
      if (slot.restarts.length >= MAX_RESTARTS) {
        onError(
          `static-srv: worker ${index} died again (${event.message}); not restarting`,
        );
        return;
      }
      slot.restarts.push(now);
      onError(
        `static-srv: worker ${index} died (${event.message}); restarting`,
      );
      spawn(shared).then(({ worker }) => {
        slot.worker = worker;
        watch(slot, index);
      }).catch((error) =>
        onError(`static-srv: cannot restart worker ${index}: ${error.message}`)
      );
    };
  };
  slots.forEach(watch);

  const urls = listenUrls({
    transport: "tcp",
    hostname: config.hostname,
    port: first.port,
  });
  print(`static-srv ${first.root} (${config.workers} workers)`);
  for (const url of urls) print(`  ${url}`);

  let done!: () => void;
  const stopped = new Promise<void>((resolve) => done = resolve);
  return {
    urls,
    port: first.port,
    root: first.root,
    workers: () => slots.map((slot) => slot.worker),
    stop(): void {
      if (stopping) return;
      stopping = true;
      Promise.all(slots.map((slot) => stopWorker(slot.worker))).then(() =>
        done()
      );
    },
    stopped,
  };
}

function stopWorker(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      worker.terminate();
      resolve();
    }, STOP_WAIT);
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      if (event.data.type !== "stopped") return;
      clearTimeout(timer);
      worker.terminate();
      resolve();
    };
    worker.postMessage({ type: "stop" } satisfies ToWorker);
  });
}
