/**
 * Logging: the access log in Common Log Format, written to stdout in batches
 * that never block the thread, and one-line messages on stderr.
 *
 * @module
 */

import type { StatusCode } from "./http/status.ts";

/** One access-log record. */
export interface AccessRecord {
  /** The client's address. */
  remote: string;
  /** When the response was sent, ms since the epoch. */
  time: number;
  /** The request line, or "" when none could be parsed. */
  request: string;
  /** The status sent. */
  status: StatusCode;
  /** Body bytes sent. */
  length: number;
}

const MONTHS = [
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
];

let clfSecond = -1;
let clfValue = "";

function pad(n: number): string {
  return n < 10 ? "0" + n : String(n);
}

/** Formats a time as a CLF timestamp in UTC (`10/Oct/2000:13:55:36 +0000`), cached per second. */
export function clfTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== clfSecond) {
    const d = new Date(second * 1000);
    clfSecond = second;
    clfValue = `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/` +
      `${d.getUTCFullYear()}:${pad(d.getUTCHours())}:` +
      `${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
  }
  return clfValue;
}

/** Escapes a request line for the log: `"`, `\` and bytes outside printable ASCII become `\xHH`. */
export function escapeLogText(text: string): string {
  return text.replace(
    /[^\x20-\x7e]|["\\]/g,
    (c) => "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0"),
  );
}

/** Formats one record as a Common Log Format line (without the newline). */
export function formatCommonLog(record: AccessRecord): string {
  const request = record.request === "" ? "-" : escapeLogText(record.request);
  return `${record.remote} - - [${clfTime(record.time)}] "${request}" ` +
    `${record.status} ${record.length === 0 ? "-" : record.length}`;
}

/** Where the access log goes: `write` resolves with the bytes written, as `Deno.stdout.write` does. */
export interface LogWriter {
  /** Writes some of `p`; resolves with how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
}

/** Defaults of {@linkcode AccessLogOptions}. */
export const ACCESS_LOG_DEFAULTS = {
  /** Buffered bytes that trigger a write. */
  flushBytes: 16 * 1024,
  /** Longest time a line waits in the buffer, in ms. */
  flushInterval: 200,
  /** Most bytes of log text waiting or being written; past it lines are dropped and counted. */
  maxPending: 1024 * 1024,
  /** How long {@linkcode AccessLog.close} waits for the writes to end, in ms. */
  closeWait: 2000,
} as const;

/** Options of {@linkcode AccessLog}. */
export interface AccessLogOptions {
  /** Where lines go (default: stdout). */
  writer?: LogWriter;
  /** Buffered bytes that trigger a write (default 16 KiB). */
  flushBytes?: number;
  /** Longest time a line waits in the buffer, in ms (default 200). */
  flushInterval?: number;
  /** Most bytes of log text waiting or being written (default 1 MiB); past it lines are dropped and counted. */
  maxPending?: number;
  /** Receives the one-line message that says how many lines were dropped, once the writer has caught up (default: stderr, without waiting); {@linkcode AccessLog.close} waits for a promise it returns. */
  onDropped?: (message: string) => void | Promise<void>;
  /** Words that message (default {@linkcode droppedMessage}). */
  describeDropped?: (count: number) => string;
}

/** The message that reports `count` dropped lines. */
export function droppedMessage(count: number): string {
  return `Dropped ${count} access log ${
    count === 1 ? "line" : "lines"
  }: stdout is not being read`;
}

/** The message that reports `count` dropped error messages. */
export function droppedErrorsMessage(count: number): string {
  return `Dropped ${count} error ${
    count === 1 ? "message" : "messages"
  }: stderr is not being read`;
}

/**
 * A batched Common Log Format writer that never blocks its thread: lines are
 * written asynchronously, at most `maxPending` bytes of them wait, and lines
 * past that are dropped and counted (a reader that stopped reading must not
 * stall serving). Once the writer has caught up, one message says how many
 * were dropped. A writer that fails (a pipe whose reader went away) loses the
 * lines of that write, silently. The workers' error messages to stderr go
 * through one too, as plain lines ({@linkcode AccessLog.writeLine}).
 */
export class AccessLog {
  #writer: LogWriter;
  #lines: string[] = [];
  /** Bytes in `#lines`. */
  #bytes = 0;
  /** Bytes and lines of the write in progress. */
  #writingBytes = 0;
  #writingLines = 0;
  #busy = false;
  /** A flush was asked for while a write was in progress. */
  #again = false;
  #dropped = 0;
  #flushBytes: number;
  #flushInterval: number;
  #maxPending: number;
  #onDropped: (message: string) => void | Promise<void>;
  #describeDropped: (count: number) => string;
  #closing = false;
  #timer = 0;
  #idleWaiters: (() => void)[] = [];
  #encoder = new TextEncoder();

  /** Creates a log writing to `options.writer` (default stdout). */
  constructor(options: AccessLogOptions = {}) {
    this.#writer = options.writer ?? Deno.stdout;
    this.#flushBytes = options.flushBytes ?? ACCESS_LOG_DEFAULTS.flushBytes;
    this.#flushInterval = options.flushInterval ??
      ACCESS_LOG_DEFAULTS.flushInterval;
    this.#maxPending = options.maxPending ?? ACCESS_LOG_DEFAULTS.maxPending;
    this.#onDropped = options.onDropped ?? logErrorLater;
    this.#describeDropped = options.describeDropped ?? droppedMessage;
  }

  /** Lines dropped since the last report. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Adds one record; it is written within `flushInterval` ms, or dropped and counted when `maxPending` bytes already wait. */
  write(record: AccessRecord): void {
    if (this.#admits()) this.#add(formatCommonLog(record) + "\n");
  }

  /** Adds one line of text as it is (an error message, say), under the same bound as records. */
  writeLine(text: string): void {
    if (this.#admits()) this.#add(text + "\n");
  }

  /** True when a line fits under `maxPending`; else counts it as dropped (before it is formatted). */
  #admits(): boolean {
    if (this.#bytes + this.#writingBytes < this.#maxPending) return true;
    this.#dropped++;
    return false;
  }

  #add(line: string): void {
    this.#lines.push(line);
    this.#bytes += line.length;
    if (this.#bytes >= this.#flushBytes) this.flush();
    else if (this.#timer === 0) this.#arm();
  }

  #arm(): void {
    this.#timer = setTimeout(
      () => this.flush(),
      this.#flushInterval,
    ) as unknown as number; // node:zlib's types retype timers elsewhere
    Deno.unrefTimer(this.#timer);
  }

  /** Starts writing every buffered line now (after the write in progress, if any). */
  flush(): void {
    if (this.#timer !== 0) {
      clearTimeout(this.#timer);
      this.#timer = 0;
    }
    if (this.#lines.length === 0) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    this.#drain();
  }

  /** Writes batches until what is left waits for the timer; never rejects. */
  async #drain(): Promise<void> {
    do {
      this.#again = false;
      const text = this.#lines.join("");
      this.#writingBytes = this.#bytes;
      this.#writingLines = this.#lines.length;
      this.#lines = [];
      this.#bytes = 0;
      const bytes = this.#encoder.encode(text);
      try {
        let at = 0;
        while (at < bytes.length) {
          at += await this.#writer.write(bytes.subarray(at));
        }
      } catch {
        // stdout closed (a pipe whose reader went away): drop these lines
      }
      this.#writingBytes = 0;
      this.#writingLines = 0;
    } while (
      this.#lines.length > 0 &&
      (this.#again || this.#closing || this.#bytes >= this.#flushBytes)
    );
    this.#busy = false;
    if (this.#lines.length > 0 && this.#timer === 0) this.#arm();
    this.#report();
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  #report(): void | Promise<void> {
    if (this.#dropped === 0) return;
    const message = this.#describeDropped(this.#dropped);
    this.#dropped = 0;
    return this.#onDropped(message);
  }

  /**
   * Writes every buffered line and waits up to `options.wait` ms (default
   * {@linkcode ACCESS_LOG_DEFAULTS}`.closeWait`) for the writes to end; lines
   * still unwritten then count as dropped. Reports what was dropped.
   */
  async close(options: { wait?: number } = {}): Promise<void> {
    const deadline = Date.now() +
      (options.wait ?? ACCESS_LOG_DEFAULTS.closeWait);
    this.#closing = true;
    this.flush();
    if (this.#busy) {
      await within(
        new Promise<void>((resolve) => this.#idleWaiters.push(resolve)),
        deadline - Date.now(),
      );
    }
    if (this.#busy) {
      // The writer is stuck: give up on what it holds and what waits.
      this.#dropped += this.#writingLines + this.#lines.length;
      this.#writingLines = 0;
      this.#lines = [];
      this.#bytes = 0;
    }
    if (this.#timer !== 0) {
      clearTimeout(this.#timer);
      this.#timer = 0;
    }
    const reported = this.#report();
    if (reported !== undefined) {
      await within(reported, Math.max(0, deadline - Date.now()));
    }
  }
}

/** Resolves when `promise` settles or after `ms`, whichever is first; clears its timer. */
async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer = 0;
  try {
    await Promise.race([
      promise.catch(() => {}),
      new Promise<void>((resolve) =>
        timer = setTimeout(resolve, ms) as unknown as number
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Most bytes of error messages waiting for stderr, per thread; past it they are dropped and counted. */
export const ERRORS_PENDING = 64 * 1024;

/**
 * A queue of one-line messages for stderr: each is written at once, in
 * order, without blocking the thread; at most {@linkcode ERRORS_PENDING}
 * bytes wait (a stderr nobody reads, `2>&1 | less`), later ones are dropped
 * and counted once it catches up.
 */
export function errorQueue(): AccessLog {
  return new AccessLog({
    writer: Deno.stderr,
    flushBytes: 1,
    maxPending: ERRORS_PENDING,
    describeDropped: droppedErrorsMessage,
    onDropped: (message) => logErrorLater(`static-srv: ${message}`),
  });
}

/** The {@linkcode errorQueue} of {@linkcode logError}, made on its first message. */
let errors: AccessLog | undefined;

/**
 * Prints one line on stderr without blocking the thread (a full stderr must
 * not stop the main thread from taking signals), through one
 * {@linkcode errorQueue}; {@linkcode flushErrors} waits for it.
 */
export function logError(message: string): void {
  (errors ??= errorQueue()).writeLine(message);
}

/** Waits until the lines of {@linkcode logError} are written, up to 2 s (`AccessLog.close`): before the process exits. */
export async function flushErrors(): Promise<void> {
  await errors?.close();
}

/** Prints one line on stderr without blocking the thread (a serving thread must never wait on a full pipe); resolves once written. */
export async function logErrorLater(message: string): Promise<void> {
  const bytes = new TextEncoder().encode(message + "\n");
  try {
    for (let at = 0; at < bytes.length;) {
      at += await Deno.stderr.write(bytes.subarray(at));
    }
  } catch {
    // stderr closed
  }
}

/** The reasons one-line messages give for the common file system errors, by Deno's error class (the same words on every system). */
const REASONS: readonly (readonly [new () => Error, string])[] = [
  [Deno.errors.NotFound, "no such file"],
  [Deno.errors.IsADirectory, "is a directory"],
  [Deno.errors.NotADirectory, "not a directory"],
  [Deno.errors.PermissionDenied, "permission denied"],
];

/**
 * An error's reason for a one-line message, in lower case and without a
 * final period: a fixed one for the common file system errors, else the
 * system's text without what Deno appends to it (` (os error 5)`, the
 * operation and the paths, quoted as they are, quotes included:
 * `: readfile '/x'`, `: rename '/it's' -> '/y'`).
 */
export function reason(error: unknown): string {
  for (const [type, text] of REASONS) {
    if (error instanceof type) return text;
  }
  const message = (error instanceof Error ? error.message : String(error))
    .replace(/: [a-z_]+ '.*'$/s, "")
    .replace(/\.? \(os error -?\d+\)$/, "")
    .replace(/\.$/, "");
  // "Input/output error" -> "input/output error"; an acronym stays ("EOF").
  return /^[A-Z][a-z]/.test(message)
    ? message[0].toLowerCase() + message.slice(1)
    : message;
}
