/**
 * Starting and stopping static-srv from a {@linkcode ServeConfig}: the
 * handler, the server, the access log and the start-up banner.
 *
 * @module
 */

import type { ServeConfig } from "./cli.ts";
import { Handler } from "./handler.ts";
import { Server } from "./server.ts";
import { AccessLog, errorQueue, logErrorLater } from "./log.ts";

/** A running static-srv. */
export interface Running {
  /** The URLs it answers on. */
  urls: string[];
  /** The port it listens on. */
  port: number;
  /** The real path of the root. */
  root: string;
  /** Starts a graceful stop (idempotent). */
  stop(): void;
  /** Resolves once stopped. */
  stopped: Promise<void>;
}

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** Prints the banner lines (default: stdout). */
  print?: (line: string) => void;
  /** Receives one-line error messages (default: stderr). */
  onError?: (message: string) => void;
  /** With `config.reusePort`: still fail when anyone already listens on the port (see `ServerOptions.exclusive`). */
  exclusive?: boolean;
}

function urlHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

/** The URLs to show for a listening address: every IPv4 interface when it is the wildcard. */
export function listenUrls(addr: Deno.NetAddr): string[] {
  const hosts: string[] = [];
  if (addr.hostname === "0.0.0.0" || addr.hostname === "::") {
    try {
      for (const i of Deno.networkInterfaces()) {
        if (i.family === "IPv4") hosts.push(i.address);
      }
    } catch {
      // no permission to list interfaces
    }
    if (hosts.length === 0) hosts.push("localhost");
  } else {
    hosts.push(addr.hostname);
  }
  return hosts.map((h) => `http://${urlHost(h)}:${addr.port}/`);
}

/** Starts serving; throws a one-line error when the root or the port cannot be used. */
export async function serve(
  config: ServeConfig,
  options: ServeOptions = {},
): Promise<Running> {
  const print = options.print ?? ((line: string) => console.log(line));
  // Error messages too are written without blocking the thread, at once,
  // and bounded: a stderr nobody reads (`2>&1 | less`) must not stall it.
  const errors = errorQueue();
  const say = (message: string): void =>
    errors.writeLine(`static-srv: ${message}`);
  const handler = await Handler.create(config.root, {
    ...config.handler,
    onError: say,
  });
  // Written asynchronously and bounded: a stdout nobody reads costs log
  // lines (counted and reported on stderr), never a stalled thread.
  const log = config.quiet ? undefined : new AccessLog({
    onDropped: (message) => logErrorLater(`static-srv: ${message}`),
  });
  let server: Server;
  try {
    server = Server.listen(handler, {
      hostname: config.hostname,
      port: config.port,
      reusePort: config.reusePort,
      exclusive: options.exclusive,
      headerTimeout: config.headerTimeout,
      idleTimeout: config.idleTimeout,
      maxConnections: config.maxConnections,
      log: log === undefined ? undefined : (record) => log.write(record),
      onError: say,
    });
  } catch (error) {
    const where = `${urlHost(config.hostname)}:${config.port}`;
    if (error instanceof Deno.errors.AddrInUse) {
      throw new Error(`Cannot listen on "${where}": address already in use`);
    }
    throw new Error(`Cannot listen on "${where}": ${(error as Error).message}`);
  }
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    say(`Unexpected error: ${event.reason}`);
  });
  const urls = listenUrls(server.addr);
  print(`static-srv ${handler.root}`);
  for (const url of urls) print(`  ${url}`);

  let stopping: Promise<void> | undefined;
  let done!: () => void;
  const stopped = new Promise<void>((resolve) => done = resolve);
  return {
    urls,
    port: server.addr.port,
    root: handler.root,
    stop(): void {
      stopping ??= server.shutdown()
        .finally(() => Promise.all([log?.close(), errors.close()]))
        .finally(done);
    },
    stopped,
  };
}
