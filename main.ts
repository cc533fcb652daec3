/**
 * static-srv: serve a directory over HTTP/1.1.
 *
 *   deno run -A main.ts [ROOT] [options]     (see --help)
 *
 * Parses the command line, starts the worker threads that serve and stops
 * them cleanly on SIGINT, SIGTERM or SIGHUP; a second one stops at once.
 *
 * @module
 */

// A leaf module: the signal handlers need it, and it loads in no time.
import { flushErrors, logError, reason } from "./src/log.ts";

/** The signals that stop static-srv (Windows delivers only SIGINT and SIGBREAK to Deno). */
const STOP_SIGNALS: readonly Deno.Signal[] = Deno.build.os === "windows"
  ? ["SIGINT", "SIGBREAK"]
  : ["SIGINT", "SIGTERM", "SIGHUP"];

/** The exit status after a second stop signal: 128 + its number, as shells report a process it ended. */
const SIGNAL_EXIT_STATUS: Readonly<Partial<Record<Deno.Signal, number>>> = {
  SIGHUP: 129,
  SIGINT: 130,
  SIGTERM: 143,
};

/**
 * A repeat of the first stop signal within this many ms is the same one: a
 * terminal's Ctrl-C reaches both `deno task` and static-srv, and `deno task`
 * passes it on (as it does a SIGTERM sent to the whole process group).
 */
const REPEAT_WINDOW_MS = 500;

/**
 * Listens for the stop signals: the first resolves the promise returned (a
 * graceful stop) and says so on stderr, a second exits at once.
 */
function stopSignal(): Promise<Deno.Signal> {
  let first: { signal: Deno.Signal; at: number } | undefined;
  return new Promise((resolve) => {
    for (const signal of STOP_SIGNALS) {
      Deno.addSignalListener(signal, () => {
        const at = performance.now();
        if (first !== undefined) {
          const repeat = signal === first.signal &&
            at - first.at < REPEAT_WINDOW_MS;
          if (repeat) return;
          Deno.exit(SIGNAL_EXIT_STATUS[signal] ?? 1);
        }
        first = { signal, at };
        // Queued, not written synchronously: on a full stderr, a blocking
        // write would hold the thread, and no further signal would be taken.
        logError(
          `static-srv: Stopping on ${signal}: finishing the responses in ` +
            "flight (a second signal stops at once)",
        );
        resolve(signal);
      });
    }
  });
}

async function main(args: string[]): Promise<number> {
  // First of all, before the modules load and the workers start (about half
  // a second): a stop signal during start-up still stops cleanly.
  const stop = stopSignal();
  const { CliError, HELP, parseCli, VERSION } = await import("./src/cli.ts");
  const { serveWorkers } = await import("./src/workers.ts");
  let command;
  try {
    command = parseCli(args, {
      // Read only when no --port is given, and only when permitted (without
      // --allow-env, --help must still work).
      env: {
        get PORT(): string | undefined {
          const env = { name: "env", variable: "PORT" } as const;
          return Deno.permissions.querySync(env).state === "granted"
            ? Deno.env.get("PORT")
            : undefined;
        },
      },
      cpus: navigator.hardwareConcurrency,
    });
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    logError(`static-srv: ${error.message} (see --help)`);
    return 2;
  }
  if (command.kind !== "serve") {
    try {
      console.log(command.kind === "help" ? HELP : `static-srv ${VERSION}`);
    } catch (error) {
      logError(`static-srv: Cannot write to stdout: ${reason(error)}`);
      return 1;
    }
    return 0;
  }
  try {
    const config = command.config;
    const running = await serveWorkers(config);
    stop.then(() => running.stop());
    await running.stopped;
    return running.failed() ? 1 : 0;
  } catch (error) {
    logError(`static-srv: ${(error as Error).message}`);
    return 1;
  }
}

if (import.meta.main) {
  const status = await main(Deno.args);
  await flushErrors(); // up to 2 s on a stderr nobody reads
  Deno.exit(status);
}
