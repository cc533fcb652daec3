/**
 * Serving from worker threads. static-srv always serves from `--workers N`
 * threads (default 1) while the main thread only supervises: it starts them,
 * restarts and logs one that dies, and drains them all on a stop. A worker
 * that dies is always restarted, after a pause that grows while it keeps
 * dying ({@linkcode RESTART_BACKOFF}): nothing a client makes it do may stop
 * the server. Only a worker that cannot start again (its root is gone, say)
 * is given up on. Several
 * threads share the port through `SO_REUSEPORT`, so the kernel spreads the
 * connections; unless `--reuse-port` was asked for, the first of them makes
 * sure that nobody else listens on the port first, so that a second
 * static-srv started by mistake fails as it does with one worker.
 *
 * Each thread's V8 heap is bounded by {@linkcode WORKER_LIMITS}. With V8's
 * defaults the young generation grows to 48 MiB under load and the old one
 * piles up garbage from short connections before collecting it: together
 * most of a static server's memory, for nothing (what survives a request is
 * a few KiB per connection). Only `node:worker_threads` can set these limits,
 * so the threads are made with it.
 *
 * @module
 */

import { type ResourceLimits, Worker } from "node:worker_threads";
import type { ServeConfig } from "./cli.ts";
import type { Running, ServeOptions } from "./serve.ts";
import type { FromWorker, Ready, ToWorker } from "./worker.ts";
import { logError, reason } from "./log.ts";

/** Pauses before restarting a worker, in ms. */
export interface RestartBackoff {
  /** The pause after the second death within {@linkcode RESTART_WINDOW} (the first restarts at once); it doubles with each further one. */
  first: number;
  /** The longest pause. */
  max: number;
}

/** Default {@linkcode RestartBackoff}: at once, then 250 ms doubling up to 5 s. */
export const RESTART_BACKOFF: Readonly<RestartBackoff> = {
  first: 250,
  max: 5_000,
};
/** Deaths of a worker further apart than this, in ms, do not add to its pause. */
export const RESTART_WINDOW = 60_000;

/** How the supervisor checks that each worker's event loop still turns, in ms. */
export interface Heartbeat {
  /** How often a worker is pinged. */
  interval: number;
  /** A worker that leaves this long's worth of pings in a row unanswered is ended, and the process exits (counted in pings, not by the clock). */
  timeout: number;
}

/** Default {@linkcode Heartbeat}: a ping every 5 s, given up on after 6 unanswered in a row (30 s). */
export const HEARTBEAT: Readonly<Heartbeat> = {
  interval: 5_000,
  timeout: 30_000,
};

/** Options of {@linkcode serveWorkers}. */
export interface WorkersOptions extends ServeOptions {
  /** Pauses before restarts (default {@linkcode RESTART_BACKOFF}). */
  restartBackoff?: RestartBackoff;
  /** The heartbeat (default {@linkcode HEARTBEAT}). */
  heartbeat?: Heartbeat;
}

/** The pause before a restart after `deaths` deaths within the window. */
function restartDelay(deaths: number, backoff: RestartBackoff): number {
  if (deaths <= 1) return 0;
  return Math.min(backoff.max, backoff.first * 2 ** (deaths - 2));
}
/** How long a stop waits for a worker to drain, in ms. */
const STOP_WAIT = 15_000;
/** Tries to rebind the port after a restart, 100 ms apart: a dead thread's listener can outlive `terminate()` for a moment. */
const REBIND = { attempts: 20, delay: 100 } as const;

/**
 * The V8 heap limits of each worker thread: an 8 MiB young generation and a
 * 128 MiB old one (9,000 open connections fit in it with room to spare). A
 * thread that still runs out is ended and restarted like one that crashed.
 */
export const WORKER_LIMITS: ResourceLimits = {
  maxYoungGenerationSizeMb: 8,
  maxOldGenerationSizeMb: 128,
};

/** A worker thread and its heap limits, as `node:worker_threads` makes them. */
export type { ResourceLimits, Worker };

interface Slot {
  worker: Worker;
  /** When it died, within the last {@linkcode RESTART_WINDOW}. */
  deaths: number[];
  /** Its worker is up (not exited, not yet restarted). */
  serving: boolean;
  /** Died for good: no longer restarted. */
  dead: boolean;
  /** The restart in progress, if any. */
  restarting?: Promise<void>;
  /** When its worker last answered a ping (or started). */
  answered: number;
  /** Pings sent since its worker last answered (or started). */
  unanswered: number;
}

/**
 * Starts a worker and resolves once it serves; rejects when it cannot, or
 * when `options.signal` aborts first (a stop must not wait for a start-up
 * that hangs, on a 404 page on a dead disk, say).
 */
function spawn(
  config: ServeConfig,
  options: { exclusive?: boolean; signal?: AbortSignal } = {},
): Promise<{ worker: Worker } & Ready> {
  const { exclusive = false, signal } = options;
  const worker = new Worker(new URL("./worker.ts", import.meta.url), {
    resourceLimits: WORKER_LIMITS,
  });
  return new Promise((resolve, reject) => {
    const settle = (): void => {
      worker.removeAllListeners();
      signal?.removeEventListener("abort", abort);
    };
    const fail = (message: string): void => {
      settle();
      worker.terminate().finally(() => reject(new Error(message)));
    };
    const abort = (): void => fail("Stopped while starting");
    if (signal?.aborted) return abort();
    signal?.addEventListener("abort", abort);
    worker.on("message", (message: FromWorker) => {
      if (message.type === "ready") {
        settle();
        resolve({ worker, ...message });
      } else if (message.type === "error") {
        fail(message.message);
      }
    });
    worker.once("error", (error: Error) => fail(error.message));
    worker.postMessage(
      { type: "start", config, exclusive } satisfies ToWorker,
    );
  });
}

/** A running set of workers. */
export interface RunningWorkers extends Running {
  /** The live workers, one per slot (a restarted worker replaces its slot's). */
  workers(): Worker[];
  /** True when every worker died for good: `stopped` has resolved and the process should exit non-zero. */
  failed(): boolean;
}

/** The soft limit on open files (`ulimit -n`) where the system tells it (Linux), else undefined. */
function openFilesLimit(): number | undefined {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const soft = /^Max open files\s+(\d+)/m.exec(limits);
    return soft === null ? undefined : Number(soft[1]);
  } catch {
    return undefined;
  }
}

/**
 * A warning when the connections allowed (`maxConnections` per worker) are
 * more than the open files limit lets in (as nginx warns), else undefined.
 */
export function openFilesWarning(
  config: Pick<ServeConfig, "maxConnections" | "workers">,
  limit: number | undefined,
): string | undefined {
  const allowed = config.maxConnections * config.workers;
  if (limit === undefined || allowed <= limit) return undefined;
  return `static-srv: Connections allowed (--max-connections ${config.maxConnections} x ${config.workers} workers) exceed the open files limit ${limit} (ulimit -n): past it, new connections wait unaccepted`;
}

/**
 * Starts `config.workers` worker threads on one port (several share it
 * through `SO_REUSEPORT`; other processes may join only with
 * `config.reusePort`); throws like `serve` when the first cannot start.
 */
export async function serveWorkers(
  config: ServeConfig,
  options: WorkersOptions = {},
): Promise<RunningWorkers> {
  const backoff = options.restartBackoff ?? RESTART_BACKOFF;
  const print = options.print ?? ((line: string) => console.log(line));
  const onError = options.onError ?? logError;
  // The first worker picks the port when 0 was asked for; the rest share it.
  // Workers share the port through SO_REUSEPORT, which would also let them
  // join another process's listener: without --reuse-port the first one
  // binds without it first, to fail as a lone listener does.
  const several = config.workers > 1;
  const listen: ServeConfig = {
    ...config,
    reusePort: config.reusePort || several,
  };
  const first = await spawn(listen, {
    exclusive: several && !config.reusePort,
  });
  const shared: ServeConfig = { ...listen, port: first.port };
  const newSlot = (worker: Worker): Slot => ({
    worker,
    deaths: [],
    serving: true,
    dead: false,
    answered: Date.now(),
    unanswered: 0,
  });
  const slots: Slot[] = [];
  let stopping = false;
  let failed = false;
  let wakeOnStop = (): void => {};
  const stopWaiting = new Promise<void>((resolve) => wakeOnStop = resolve);
  // Ends a restart's start-up in progress on a stop.
  const stopStarting = new AbortController();
  stopWaiting.then(() => stopStarting.abort());
  let done!: () => void;
  const stopped = new Promise<void>((resolve) => done = resolve);

  const giveUp = (slot: Slot, message: string): void => {
    onError(message);
    slot.dead = true;
    if (stopping || slots.some((s) => !s.dead)) return;
    onError("static-srv: No worker left; exiting");
    stopping = failed = true;
    done();
  };
  const respawn = async (): Promise<Worker> => {
    for (let attempt = 1;; attempt++) {
      try {
        return (await spawn(shared, { signal: stopStarting.signal })).worker;
      } catch (error) {
        const busy = /address already in use/.test((error as Error).message);
        if (!busy || attempt >= REBIND.attempts || stopping) throw error;
        await new Promise((resolve) => setTimeout(resolve, REBIND.delay));
      }
    }
  };
  const restart = async (slot: Slot, index: number, why: string) => {
    // The dead thread's listener must be gone before a lone worker rebinds.
    await slot.worker.terminate();
    if (stopping) return;
    const now = Date.now();
    slot.deaths = slot.deaths.filter((t) => now - t < RESTART_WINDOW);
    slot.deaths.push(now);
    const delay = restartDelay(slot.deaths.length, backoff);
    onError(
      `static-srv: Worker ${index} died (${why}); restarting` +
        (delay > 0 ? ` in ${delay} ms` : ""),
    );
    if (delay > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise((resolve) => timer = setTimeout(resolve, delay)),
        stopWaiting,
      ]);
      clearTimeout(timer);
      if (stopping) return;
    }
    try {
      const worker = await respawn();
      if (stopping) {
        await worker.terminate(); // a stop came while it started
        return;
      }
      slot.worker = worker;
      slot.serving = true;
      watch(slot, index);
    } catch (error) {
      if (stopping) return;
      giveUp(
        slot,
        `static-srv: Cannot restart worker ${index}: ${
          (error as Error).message
        }`,
      );
    }
  };
  const watch = (slot: Slot, index: number): void => {
    let why = "exited";
    slot.answered = Date.now();
    slot.unanswered = 0;
    slot.worker.on("message", (message: FromWorker) => {
      if (message.type !== "pong") return;
      slot.answered = Date.now();
      slot.unanswered = 0;
    });
    slot.worker.once("error", (error: Error) => why = error.message);
    slot.worker.once("exit", () => {
      slot.serving = false;
      if (stopping) return;
      slot.restarting = restart(slot, index, why).finally(() =>
        slot.restarting = undefined
      );
    });
  };
  // Each worker is watched from the moment it serves: one that dies while
  // the next ones start is restarted like any other.
  const add = (worker: Worker): void => {
    const slot = newSlot(worker);
    slots.push(slot);
    watch(slot, slots.length - 1);
  };
  add(first.worker);
  try {
    for (let i = 1; i < config.workers && !stopping; i++) {
      add((await spawn(shared)).worker);
    }
  } catch (error) {
    stopping = true;
    wakeOnStop();
    await Promise.all(slots.map((slot) => slot.restarting));
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
    throw error;
  }
  const warning = openFilesWarning(config, openFilesLimit());
  if (warning !== undefined) onError(warning);

  // A worker whose event loop stops turning (a stall near its heap limit,
  // say) neither answers nor exits. Ending it does not free its listener
  // (the thread never gets back to its event loop), so no new worker could
  // take the port, and with several workers the kernel would go on handing
  // that listener connections nobody answers: the process exits instead
  // (status 1), for its supervisor to start it again.
  // Counted in pings rather than by the clock: when the whole process was
  // paused (SIGSTOP, a frozen container) or the clock jumped, no ping went
  // unanswered, and no worker is taken for dead.
  const heartbeat = options.heartbeat ?? HEARTBEAT;
  const missable = Math.ceil(heartbeat.timeout / heartbeat.interval);
  const beat = setInterval(() => {
    if (stopping) return;
    const time = Date.now();
    slots.forEach((slot, index) => {
      if (!slot.serving || stopping) return;
      if (slot.unanswered >= missable) {
        const silent = time - slot.answered;
        onError(
          `static-srv: Worker ${index} stopped answering (for ${silent} ms); ` +
            "exiting",
        );
        failed = true;
        slot.serving = false;
        slot.worker.terminate();
        running.stop();
        return;
      }
      slot.unanswered++;
      slot.worker.postMessage({ type: "ping" } satisfies ToWorker);
    });
  }, heartbeat.interval);
  stopped.then(() => clearInterval(beat));

  const urls = first.urls;
  try {
    print(
      config.workers > 1
        ? `static-srv ${first.root} (${config.workers} workers)`
        : `static-srv ${first.root}`,
    );
    for (const url of urls) print(`  ${url}`);
  } catch (error) {
    // stdout is full or closed: nobody would learn where we listen.
    stopping = true;
    clearInterval(beat);
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
    throw new Error(`Cannot write to stdout: ${reason(error)}`);
  }

  const running: RunningWorkers = {
    urls,
    port: first.port,
    root: first.root,
    workers: () => slots.map((slot) => slot.worker),
    failed: () => failed,
    stop(): void {
      if (stopping) return;
      stopping = true;
      wakeOnStop();
      Promise.all(
        slots.map((slot) =>
          slot.serving ? stopWorker(slot.worker) : slot.restarting
        ),
      ).then(() => done());
    },
    stopped,
  };
  return running;
}

function stopWorker(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    const end = (): void => {
      clearTimeout(timer);
      worker.removeAllListeners();
      worker.terminate().finally(resolve);
    };
    const timer = setTimeout(end, STOP_WAIT);
    worker.on("message", (message: FromWorker) => {
      if (message.type === "stopped") end();
    });
    worker.once("exit", end);
    worker.postMessage({ type: "stop" } satisfies ToWorker);
  });
}
