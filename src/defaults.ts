/**
 * Default timeouts and server settings. A module of its own so that the
 * command line (parsed on the main thread) can show and apply them without
 * loading the server.
 *
 * @module
 */

/** Default timeouts in ms. */
export const TIMEOUTS = {
  /** From the first byte of a request (or the connection's start) to the end of its head. */
  header: 10_000,
  /** Between requests on a kept-alive connection. */
  idle: 15_000,
  /** Without progress while sending a response (or while the handler prepares it). */
  send: 30_000,
  /** How long a stop waits for a request head on its way (a connection accepted just before, or a head partly read). */
  headOnStop: 1_000,
} as const;

/** Default server settings. */
export const SERVER_DEFAULTS = {
  hostname: "0.0.0.0",
  port: 7890,
  maxConnections: 10_000,
  /** How long a shutdown waits for responses in flight, in ms. */
  shutdownGrace: 10_000,
  /** How often deadlines are checked, in ms. */
  sweepInterval: 500,
} as const;
