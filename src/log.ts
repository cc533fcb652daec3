/**
 * Logging: the access log in Common Log Format, written to stdout in batches,
 * and one-line messages on stderr.
 *
 * @module
 */

import type { AccessRecord } from "./connection.ts";

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

/** Options of {@linkcode AccessLog}. */
export interface AccessLogOptions {
  /** Where lines go (default: stdout). */
  writer?: { writeSync(p: Uint8Array): number };
  /** Buffered bytes that trigger a write (default 16 KiB). */
  flushBytes?: number;
  /** Longest time a line waits in the buffer, in ms (default 200). */
  flushInterval?: number;
}

/** A batched Common Log Format writer. */
export class AccessLog {
  #writer: { writeSync(p: Uint8Array): number };
  #lines: string[] = [];
  #bytes = 0;
  #flushBytes: number;
  #flushInterval: number;
  #timer = 0;
  #encoder = new TextEncoder();

  /** Creates a log writing to `options.writer` (default stdout). */
  constructor(options: AccessLogOptions = {}) {
    this.#writer = options.writer ?? Deno.stdout;
    this.#flushBytes = options.flushBytes ?? 16384;
    this.#flushInterval = options.flushInterval ?? 200;
  }

  /** Adds one record; it is written within `flushInterval` ms. */
  write(record: AccessRecord): void {
    const line = formatCommonLog(record) + "\n";
    this.#lines.push(line);
    this.#bytes += line.length;
    if (this.#bytes >= this.#flushBytes) this.flush();
    else if (this.#timer === 0) {
      this.#timer = setTimeout(
        () => this.flush(),
        this.#flushInterval,
      ) as unknown as number; // node:zlib's types retype timers elsewhere
      Deno.unrefTimer(this.#timer);
    }
  }

  /** Writes every buffered line now. */
  flush(): void {
    if (this.#timer !== 0) {
      clearTimeout(this.#timer);
      this.#timer = 0;
    }
    if (this.#lines.length === 0) return;
    const bytes = this.#encoder.encode(this.#lines.join(""));
    this.#lines = [];
    this.#bytes = 0;
    let at = 0;
    try {
      while (at < bytes.length) {
        at += this.#writer.writeSync(bytes.subarray(at));
      }
    } catch {
      // stdout closed (a pipe whose reader went away): drop the log
    }
  }
}

/** Prints one line on stderr. */
export function logError(message: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(message + "\n"));
  } catch {
    // stderr closed
  }
}
