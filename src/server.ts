/**
 * The server: listen, accept, enforce the connection limit and the
 * deadlines, and shut down gracefully.
 *
 * @module
 */

import { holdClock, now } from "./clock.ts";
import { SERVER_DEFAULTS } from "./defaults.ts";
import { Connection, type ConnectionOptions } from "./connection.ts";
import type { Handler } from "./handler.ts";
import { STATUS_CODE } from "./http/status.ts";

/** Options of {@linkcode Server.listen}. */
export interface ServerOptions extends ConnectionOptions {
  /** Address to listen on (default "0.0.0.0"). */
  hostname?: string;
  /** Port to listen on (default 7890; 0 picks a free one). */
  port?: number;
  /** Let several processes or workers listen on the same port (Linux `SO_REUSEPORT`). */
  reusePort?: boolean;
  /**
   * With `reusePort`: fail with `AddrInUse` when anyone already listens on
   * the port (as without `reusePort`), by binding it once without
   * `SO_REUSEPORT` and closing that listener just before the real bind. The
   * first of several workers that share the port among themselves only.
   */
  exclusive?: boolean;
  /** Most open connections; past it a new one gets a 503 and is closed (default 10000). */
  maxConnections?: number;
}

export { SERVER_DEFAULTS } from "./defaults.ts";

/**
 * The open connections, in an array with swap-removal.
 *
 * Not a `Set`: V8 rebuilds a set's table as entries come and go, and a
 * replaced table that had reached the old generation keeps every connection
 * it held alive until the next full collection. Under `Connection: close`
 * load that promoted about 1 KB per connection (340 KB per scavenge, a full
 * collection every 0.5 s); with this list, next to nothing.
 */
class ConnectionList {
  #items: Connection[] = [];

  get size(): number {
    return this.#items.length;
  }

  add(connection: Connection): void {
    connection.slot = this.#items.length;
    this.#items.push(connection);
  }

  delete(connection: Connection): void {
    const items = this.#items;
    const slot = connection.slot;
    if (slot < 0 || items[slot] !== connection) return;
    const last = items.pop()!;
    if (last !== connection) {
      items[slot] = last;
      last.slot = slot;
    }
    connection.slot = -1;
  }

  /** A copy, safe to walk while connections end. */
  all(): Connection[] {
    return this.#items.slice();
  }
}

/** At most one message per this many ms about accept failures. */
const ACCEPT_ERROR_WINDOW = 10_000;

/** A listening server. */
export class Server {
  #listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  #handler: Handler;
  #options: ServerOptions;
  #connections = new ConnectionList();
  /** The sweep of expired connections and the shared clock: only while there are connections (an idle server wakes for nothing). */
  #sweep = 0;
  #releaseClock: (() => void) | null = null;
  #accepting: Promise<void>;
  #closing = false;
  #idleWaiters: (() => void)[] = [];
  /**
   * Accept failures: when one was last said, how many since were not and
   * when the first of those came, whether the last accept failed, and the
   * timer that says a recovery at the end of the window.
   */
  #acceptErrors = {
    said: -Infinity,
    unsaid: 0,
    firstUnsaid: 0,
    failing: false,
    timer: 0,
  };

  private constructor(
    listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
    handler: Handler,
    options: ServerOptions,
  ) {
    this.#listener = listener;
    this.#handler = handler;
    this.#options = options;
    this.#accepting = this.#acceptLoop();
  }

  /** Listens and starts accepting; throws (e.g. `Deno.errors.AddrInUse`) when it cannot listen. */
  static listen(handler: Handler, options: ServerOptions = {}): Server {
    const listenOptions: Deno.TcpListenOptions & { reusePort?: boolean } = {
      hostname: options.hostname ?? SERVER_DEFAULTS.hostname,
      port: options.port ?? SERVER_DEFAULTS.port,
    };
    if (options.reusePort) {
      if (options.exclusive) {
        // Without SO_REUSEPORT the bind fails when anyone listens on the
        // port, whether with SO_REUSEPORT or not. Both calls are synchronous,
        // so nothing of this process runs between the close and the bind.
        const probe = Deno.listen({ ...listenOptions, transport: "tcp" });
        listenOptions.port = probe.addr.port;
        probe.close();
      }
      listenOptions.reusePort = true;
    }
    const listener = Deno.listen({ ...listenOptions, transport: "tcp" });
    return new Server(listener, handler, options);
  }

  /** The address actually listened on (the chosen port when 0 was asked for). */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /** The number of open connections. */
  get connections(): number {
    return this.#connections.size;
  }

  async #acceptLoop(): Promise<void> {
    const max = this.#options.maxConnections ?? SERVER_DEFAULTS.maxConnections;
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closing) return;
        if (error instanceof Deno.errors.BadResource) return;
        this.#acceptFailed((error as Error).message);
        // Out of descriptors (EMFILE) and the like: back off a little.
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      if (this.#acceptErrors.failing) this.#acceptRecovered();
      if (this.#closing) {
        conn.close();
        continue;
      }
      if (this.#connections.size >= max) {
        this.#refuse(conn);
        continue;
      }
      if (this.#connections.size === 0) this.#wake();
      const connection = new Connection(conn, this.#handler, this.#options);
      this.#connections.add(connection);
      connection.serve().finally(() => {
        this.#connections.delete(connection);
        if (this.#connections.size === 0) {
          this.#rest();
          for (const wake of this.#idleWaiters.splice(0)) wake();
        }
      });
    }
  }

  /** Answers 503 to a connection over the limit, logs it (request "-") and closes it. */
  #refuse(conn: Deno.TcpConn): void {
    const reply = this.#handler.error(STATUS_CODE.ServiceUnavailable, {
      close: true,
      fields: "Retry-After: 1\r\n",
    });
    // The reply is one piece, its body last.
    conn.write(reply.head).catch(() => 0).then((n) => {
      const log = this.#options.log;
      if (log !== undefined) {
        log({
          remote: conn.remoteAddr.hostname ?? "-",
          time: now(),
          request: "",
          status: reply.status,
          length: Math.max(0, reply.length - (reply.head.length - n)),
        });
      }
      try {
        conn.close();
      } catch {
        // already closed
      }
    });
  }

  /** The first connection: hold the shared clock and sweep for expired connections. */
  #wake(): void {
    if (this.#releaseClock !== null) return;
    this.#releaseClock = holdClock();
    this.#sweep = setInterval(
      () => this.#expire(),
      SERVER_DEFAULTS.sweepInterval,
    ) as unknown as number;
  }

  /** No connection left: nothing to sweep, and no clock to keep. */
  #rest(): void {
    if (this.#releaseClock === null) return;
    clearInterval(this.#sweep);
    this.#releaseClock();
    this.#releaseClock = null;
  }

  /**
   * Says that accepting failed: the first time at once, then at most once
   * per `ACCEPT_ERROR_WINDOW`, with how many failures were not said (out of
   * descriptors, a listener fails on every try).
   */
  #acceptFailed(message: string): void {
    const errors = this.#acceptErrors;
    const time = Date.now();
    errors.failing = true;
    if (time - errors.said < ACCEPT_ERROR_WINDOW) {
      if (errors.unsaid++ === 0) errors.firstUnsaid = time;
      return;
    }
    const more = errors.unsaid === 0 ? "" : ` (${this.#takeUnsaid(time)})`;
    this.#options.onError?.(`Cannot accept a connection: ${message}${more}`);
    errors.said = time;
  }

  /**
   * Accepting works again: says how many failures were not said, within the
   * same one message per `ACCEPT_ERROR_WINDOW` (descriptors that free up one
   * at a time make accepts fail and succeed in turn).
   */
  #acceptRecovered(): void {
    const errors = this.#acceptErrors;
    errors.failing = false;
    if (errors.unsaid === 0 || errors.timer !== 0) return;
    const wait = errors.said + ACCEPT_ERROR_WINDOW - Date.now();
    if (wait <= 0) return this.#sayRecovered();
    errors.timer = setTimeout(() => {
      errors.timer = 0;
      // Still failing: the next failure says the count.
      if (!errors.failing && errors.unsaid > 0) this.#sayRecovered();
    }, wait) as unknown as number;
    Deno.unrefTimer(errors.timer);
  }

  #sayRecovered(): void {
    const time = Date.now();
    this.#options.onError?.(
      `Accepting connections again (${this.#takeUnsaid(time)})`,
    );
    this.#acceptErrors.said = time;
  }

  /** How many accept failures were not said and since when; counts them as said. */
  #takeUnsaid(time: number): string {
    const errors = this.#acceptErrors;
    const seconds = Math.round((time - errors.firstUnsaid) / 1000);
    const text = `${errors.unsaid} more failures since ${seconds} s ago`;
    errors.unsaid = 0;
    return text;
  }

  /** Closes every connection whose deadline has passed. */
  #expire(): void {
    const time = performance.now();
    for (const connection of this.#connections.all()) {
      if (connection.deadline < time) connection.expire();
    }
  }

  /**
   * Stops accepting, lets responses in flight finish, closes idle
   * connections, and after `grace` ms closes whatever is left.
   */
  async shutdown(options: { grace?: number } = {}): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      try {
        this.#listener.close();
      } catch {
        // already closed
      }
    }
    await this.#accepting;
    clearTimeout(this.#acceptErrors.timer);
    this.#acceptErrors.timer = 0;
    for (const connection of this.#connections.all()) connection.drain();
    if (this.#connections.size > 0) {
      const grace = options.grace ?? SERVER_DEFAULTS.shutdownGrace;
      let timer = 0;
      await Promise.race([
        new Promise<void>((resolve) => this.#idleWaiters.push(resolve)),
        new Promise<void>((resolve) =>
          timer = setTimeout(resolve, grace) as unknown as number
        ),
      ]);
      clearTimeout(timer);
      for (const connection of this.#connections.all()) connection.close();
      if (this.#connections.size > 0) {
        await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      }
    }
    this.#rest();
  }
}
