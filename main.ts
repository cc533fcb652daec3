/**
 * static-srv: serve a directory over HTTP/1.1.
 *
 *   deno run -A main.ts [ROOT] [options]     (see --help)
 *
 * Parses the command line, starts the worker threads that serve and stops
 * them cleanly on SIGINT / SIGTERM.
 *
 * @module
 */

import { CliError, HELP, parseCli, VERSION } from "./src/cli.ts";
import { serveWorkers } from "./src/workers.ts";
import { logError } from "./src/log.ts";

async function main(args: string[]): Promise<number> {
  let command;
  try {
    command = parseCli(args, {
      env: { PORT: Deno.env.get("PORT") },
      cpus: navigator.hardwareConcurrency,
    });
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    logError(`static-srv: ${error.message} (see --help)`);
    return 2;
  }
  if (command.kind === "help") {
    console.log(HELP);
    return 0;
  }
  if (command.kind === "version") {
    console.log(`static-srv ${VERSION}`);
    return 0;
  }
  try {
    const config = command.config;
    const running = await serveWorkers(config);
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(signal, () => running.stop());
    }
    await running.stopped;
    return running.failed() ? 1 : 0;
  } catch (error) {
    logError(`static-srv: ${(error as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
