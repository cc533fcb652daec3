/**
 * One client connection: read into one bounded buffer, parse, answer, loop.
 *
 * Requests are answered in order; the replies to a batch of pipelined
 * requests go out in one write; a longer batch goes out as it is answered,
 * in writes of at most 64 KiB copied together. Bodies are skipped by their
 * framing so that no body byte is ever parsed as a request. Deadlines
 * (header, idle, send) are plain numbers on the monotonic clock that the
 * server's sweep compares with it, so the hot path sets no timers.
 *
 * @module
 */

import { monotonicNow, now } from "./clock.ts";
import type { AccessRecord } from "./log.ts";
import { concat } from "./bytes.ts";
import { TIMEOUTS } from "./defaults.ts";
import {
  latin1,
  PARSE_LIMITS,
  type ParseLimits,
  type ParseOptions,
  parseRequestHead,
  type RequestHead,
} from "./http/request_parser.ts";
import { BODY_LIMITS, type BodyLimits, ChunkedDecoder } from "./http/body.ts";
import { STATUS_CODE, type StatusCode } from "./http/status.ts";
import { CONTINUE_RESPONSE } from "./http/response.ts";
import { type Handler, type Reply, SERVED_METHODS } from "./handler.ts";
import type { OpenFile } from "./resolver.ts";

export { TIMEOUTS } from "./defaults.ts";

export type { AccessRecord };

/** Options of a {@linkcode Connection}. */
export interface ConnectionOptions {
  /** Parser limits. */
  limits?: Partial<ParseLimits>;
  /** Body limits. */
  bodyLimits?: Partial<BodyLimits>;
  /** Header timeout in ms. */
  headerTimeout?: number;
  /** Idle keep-alive timeout in ms. */
  idleTimeout?: number;
  /** Send timeout in ms. */
  sendTimeout?: number;
  /**
   * Bytes of request heads that may be held at once (over all connections of
   * this thread) while their bodies arrive, each counted as
   * {@linkcode PENDING_HEAD_COST} says; a request past it is answered at once
   * and its connection closed (default {@linkcode PENDING_HEADS}).
   */
  maxPendingHeads?: number;
  /** Receives one record per response. */
  log?: (record: AccessRecord) => void;
  /** Receives a one-line message when a file fails while being sent. */
  onError?: (message: string) => void;
}

/** Lingering close: how long, and how many bytes, to read after the last response. */
export const LINGER = { time: 2000, bytes: 1024 * 1024 } as const;

const INITIAL_BUFFER = 4096;
/**
 * Most bytes handed to one write. A write returns after what one system call
 * accepted (up to the socket's send buffer, 4 MiB on Linux by default), and
 * that copy runs on this thread: the cap bounds how long the other
 * connections wait for it.
 */
const WRITE_SLICE = 1024 * 1024;
/** Queued pieces up to this size are combined into one write. */
const COMBINE_LIMIT = 65536;
/**
 * Buffers for streaming files: 256 KiB while those in use stay under 64
 * MiB, else 16 KiB, so that many clients that stop reading cannot pin more.
 */
const CHUNK = { size: 256 * 1024, small: 16 * 1024, budget: 64 * 1024 * 1024 };
const POOLED_CHUNKS = 8;
const chunkPool: Uint8Array[] = [];
let chunkBytesOut = 0;

/** "HEAD " */
const HEAD_METHOD = [0x48, 0x45, 0x41, 0x44, 0x20];

/** True when the request at [start, end) begins `HEAD ` (after the empty lines a request may follow). */
function isHeadRequest(buf: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i + 1 < end && buf[i] === 0x0d && buf[i + 1] === 0x0a) i += 2;
  if (end - i < HEAD_METHOD.length) return false;
  for (let k = 0; k < HEAD_METHOD.length; k++) {
    if (buf[i + k] !== HEAD_METHOD[k]) return false;
  }
  return true;
}

function takeChunk(): Uint8Array {
  const chunk = chunkPool.pop() ??
    new Uint8Array(
      chunkBytesOut + CHUNK.size <= CHUNK.budget ? CHUNK.size : CHUNK.small,
    );
  chunkBytesOut += chunk.length;
  return chunk;
}

function giveChunk(chunk: Uint8Array): void {
  chunkBytesOut -= chunk.length;
  if (chunk.length === CHUNK.size && chunkPool.length < POOLED_CHUNKS) {
    chunkPool.push(chunk);
  }
}

/** Default of `ConnectionOptions.maxPendingHeads`: 8 MiB. */
export const PENDING_HEADS = 8 * 1024 * 1024;
/** What a head held while its body arrives is counted as: a fixed part and a part per byte of the head (the strings parsed from it). */
export const PENDING_HEAD_COST = { fixed: 1024, perByte: 2 } as const;
/** Bytes of heads held now over all connections of this thread. */
let pendingHeads = 0;

/**
 * Read buffers of ended connections, reused by new ones: under
 * `Connection: close` load a fresh buffer per connection is a steady stream
 * of short-lived backing stores outside the V8 heap.
 */
const POOLED_BUFFERS = 256;
const bufferPool: Uint8Array[] = [];

/** Serves the requests of one accepted connection. */
export class Connection {
  /** When the server's sweep should close this connection (ms on the monotonic clock, see `monotonicNow`). */
  deadline: number;
  /** Where the server keeps this connection in its list (-1: not listed); the server's to manage. */
  slot: number = -1;
  #conn: Deno.Conn;
  #handler: Handler;
  #options: ConnectionOptions;
  /** Reused for every parse: only `start` and `end` change. */
  #parseOptions: ParseOptions;
  #maxBuffer: number;
  #maxBody: number;
  #sendTimeout: number;
  #maxPendingHeads: number;
  #idle = false;
  /** The loop waits for a request: for its first byte on a new connection, the rest of its head, or the rest of its body. */
  #reading = false;
  /** A stop came while a request was coming: that request is waited for until `#stopBy` and answered. */
  #awaiting = false;
  /** When a stop stops waiting for a request that is coming (ms on the monotonic clock). */
  #stopBy = Infinity;
  #closed = false;
  #noDelay = false;
  #draining = false;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #records: AccessRecord[] = [];
  /** Where each record's response ends in the bytes of its batch (see `#sent`). */
  #ends: number[] = [];
  /**
   * Bytes of the current batch of responses that the socket accepted, for
   * the log of a response cut off. Counted by `#write` (a batch written by
   * the loop's one-write fast path is logged at once, so it needs none);
   * reset when the batch's records are logged.
   */
  #sent = 0;
  /** Closed by the server's sweep: its deadline passed. */
  #expired = false;
  #buf: Uint8Array = bufferPool.pop() ?? new Uint8Array(INITIAL_BUFFER);
  /** What this connection adds to `pendingHeads` now. */
  #heldHead = 0;

  /** Wraps an accepted connection. */
  constructor(
    conn: Deno.Conn,
    handler: Handler,
    options: ConnectionOptions = {},
  ) {
    this.#conn = conn;
    this.#handler = handler;
    this.#options = options;
    this.#parseOptions = { limits: options.limits, start: 0, end: 0 };
    this.#maxBuffer =
      (options.limits?.maxHeadSize ?? PARSE_LIMITS.maxHeadSize) +
      4096;
    this.#maxBody = options.bodyLimits?.maxBodySize ?? BODY_LIMITS.maxBodySize;
    this.#sendTimeout = options.sendTimeout ?? TIMEOUTS.send;
    this.#maxPendingHeads = options.maxPendingHeads ?? PENDING_HEADS;
    this.deadline = monotonicNow() + (options.headerTimeout ?? TIMEOUTS.header);
  }

  /**
   * Turns Nagle's algorithm off, once, before the first response after which
   * the connection stays open (as nginx's `tcp_nodelay` does): a later small
   * write must not wait for the client's delayed ACK. A connection that ends
   * with its first response never needs it (closing sends what is queued at
   * once), which spares a `Connection: close` request a call and a syscall.
   */
  #setNoDelay(): void {
    this.#noDelay = true;
    try {
      (this.#conn as Partial<Deno.TcpConn>).setNoDelay?.(true);
    } catch {
      // the peer is already gone
    }
  }

  /** True between requests: waiting for the first byte of a request after the first one. */
  get idle(): boolean {
    return this.#idle;
  }

  /** Closes the socket now; a pending read or write fails and `serve` returns. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed by the peer or the runtime
    }
  }

  /** Closes the socket because the deadline passed (the header, idle or send timeout). */
  expire(): void {
    this.#expired = true;
    this.close();
  }

  /**
   * Finishes the response in progress, if any, then closes. A request whose
   * head is coming (on a connection accepted just before, or part of it
   * here) gets a short while to arrive and is answered (nginx waits for it
   * too), not its whole header timeout; so does the rest of a body that is
   * coming.
   */
  drain(): void {
    this.#draining = true;
    if (this.#idle) this.close();
    else if (this.#reading) {
      this.#awaitRequest();
      this.deadline = Math.min(this.deadline, this.#stopBy);
    }
  }

  /** A stop waits for the request that is coming (its head, or the rest of its body) a short while only. */
  #awaitRequest(): void {
    this.#awaiting = true;
    this.#stopBy = monotonicNow() + TIMEOUTS.headOnStop;
  }

  /** Serves requests until the peer closes, an error, a timeout or a drain. Never rejects. */
  async serve(): Promise<void> {
    try {
      if (!(await this.#loop())) await this.#linger();
    } catch {
      // reset, broken pipe, or closed by the sweep: only this connection ends
      this.#cutOff();
    } finally {
      this.#releaseHead();
      this.#flushLog();
      this.close();
      // No read is pending once the loop has ended: the buffer is free.
      const buf = this.#buf;
      if (buf.length === INITIAL_BUFFER && bufferPool.length < POOLED_BUFFERS) {
        bufferPool.push(buf);
      }
    }
  }

  #releaseHead(): void {
    pendingHeads -= this.#heldHead;
    this.#heldHead = 0;
  }

  /** Serves requests; true when the client ended (or asked to end) the connection, false when the server decided to. */
  async #loop(): Promise<boolean> {
    const options = this.#options;
    const headerTimeout = options.headerTimeout ?? TIMEOUTS.header;
    const idleTimeout = options.idleTimeout ?? TIMEOUTS.idle;
    let buf = this.#buf;
    let start = 0;
    let end = 0;
    let bodyLeft = 0;
    let chunked: ChunkedDecoder | null = null;
    /** The request whose body is arriving; answered once it is whole. */
    let waiting: RequestHead | null = null;
    // A body must arrive within the header timeout of its head, counted from
    // the head's first byte: trickling it cannot hold the connection.
    let headDeadline = this.deadline;
    let headStarted = true; // a new connection is held to the header timeout
    /** A request was answered since the last read. */
    let answered = false;

    for (;;) {
      // Answer every complete request in the buffer. A request with a body
      // is answered once its body (discarded) has arrived whole: one that
      // cannot be framed or is too large gets its 400 or 413 instead.
      while (start < end) {
        let head: RequestHead;
        let bodyUnread = false;
        if (waiting !== null) {
          if (bodyLeft > 0) {
            const take = Math.min(bodyLeft, end - start);
            bodyLeft -= take;
            start += take;
            if (bodyLeft > 0) continue;
          } else {
            const result = chunked!.feed(buf, start, end);
            if (result.kind === "partial") {
              start = end;
              break;
            }
            if (result.kind === "error") {
              this.#releaseHead();
              await this.#fail(result.status, waiting);
              return false;
            }
            start += result.consumed;
            chunked = null;
          }
          head = waiting;
          waiting = null;
          this.#releaseHead();
        } else {
          const parseOptions = this.#parseOptions;
          parseOptions.start = start;
          parseOptions.end = end;
          const result = parseRequestHead(buf, parseOptions);
          if (result.kind === "partial") break;
          if (result.kind === "error") {
            // The request line is logged when it was whole and valid.
            const lineEnd = result.lineEnd;
            await this.#fail(
              result.status,
              isHeadRequest(buf, start, end),
              lineEnd === undefined || options.log === undefined
                ? ""
                : latin1(buf, result.lineStart!, lineEnd),
            );
            return false;
          }
          start += result.consumed;
          headStarted = false;
          head = result.head;
          if (head.contentLength > this.#maxBody) {
            await this.#fail(STATUS_CODE.ContentTooLarge, head);
            return false;
          }
          if (head.contentLength > 0 || head.chunked) {
            const cost = PENDING_HEAD_COST.fixed +
              PENDING_HEAD_COST.perByte * result.consumed;
            // Answered now, the body drained by the lingering close: past
            // the bound of heads held, or when the client waits for leave to
            // send a body that could not change the answer (its method is
            // refused whatever it sends), as RFC 9110 section 10.1.1 prefers.
            const waitsInVain = start === end && head.minor === 1 &&
              !SERVED_METHODS.has(head.method) && expectsContinue(head);
            // A stop waits for no body (and sends no 100 Continue): the
            // request is answered now, the body drained by the lingering close.
            if (
              pendingHeads + cost > this.#maxPendingHeads || waitsInVain ||
              this.#draining
            ) {
              bodyUnread = true;
            } else {
              bodyLeft = Math.max(head.contentLength, 0);
              if (head.chunked) {
                chunked = new ChunkedDecoder(options.bodyLimits);
              }
              this.#heldHead = cost;
              pendingHeads += cost;
              waiting = head;
              // A client that waits for leave to send the body gets it
              // (RFC 9110 section 10.1.1), unless the body is already coming.
              if (start === end && head.minor === 1 && expectsContinue(head)) {
                this.#queue(CONTINUE_RESPONSE);
              }
              continue;
            }
          }
        }
        // A client that asked to close sends nothing more: no lingering.
        const clientCloses = !head.keepAlive && !bodyUnread;
        if (this.#draining || bodyUnread) head.keepAlive = false;
        const answer = this.#answer(head);
        let reply: Reply;
        if (answer instanceof Promise) {
          // The request is whole: the header timeout no longer applies while
          // the handler works (a file read from disk, say); the send timeout
          // bounds it.
          this.deadline = monotonicNow() + this.#sendTimeout;
          reply = await answer;
        } else reply = answer;
        if (!reply.close && !this.#noDelay) this.#setNoDelay();
        if (reply.file === null && reply.pin === null) this.#queueReply(reply);
        else await this.#sendFile(reply, head);
        if (this.#options.log !== undefined) {
          this.#record(requestLine(head), reply.status, reply.length);
        }
        answered = true;
        if (reply.close) {
          await this.#flush();
          // Unread bytes (a pipeline past the close) would turn the close
          // into a reset that can destroy the responses in flight: linger.
          return clientCloses && start === end;
        }
        // A long pipelined batch goes out as it is answered: the replies held
        // at once stay near 64 KiB (a reply may be a copy of its own, to
        // a range say), however many requests a few KiB of input hold. The
        // last request of a batch leaves it to the write below.
        if (start < end && this.#pendingBytes > COMBINE_LIMIT) {
          await this.#flush();
        }
      }
      const pending = this.#pending;
      if (pending.length === 1 && this.#pendingBytes <= WRITE_SLICE) {
        // The common case, one response of one piece: written here, without
        // an async frame of #flush's or #write's; #write sends any rest.
        const only = pending[0];
        pending.length = 0;
        this.#pendingBytes = 0;
        this.deadline = monotonicNow() + this.#sendTimeout;
        const n = await this.#conn.write(only);
        if (n < only.length) {
          this.#sent += n;
          await this.#write(only.subarray(n));
        }
      } else if (pending.length > 0) await this.#flush();
      // Every response of the batch is out: log them.
      this.#flushLog();
      // A stop ends the connection here, unless a request is coming: its
      // head partly read (in pieces, or pipelined behind the responses just
      // sent) or its body. That request is waited for, briefly.
      if (this.#draining && !this.#awaiting) {
        if (waiting === null && start === end) return false;
        this.#awaitRequest();
      }

      // Make room, then read more.
      if (start === end) {
        start = end = 0;
      } else if (start > 0) {
        buf.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
      if (end === buf.length) {
        if (buf.length >= this.#maxBuffer) {
          await this.#fail(
            STATUS_CODE.RequestHeaderFieldsTooLarge,
            isHeadRequest(buf, start, end),
          );
          return false;
        }
        const bigger = new Uint8Array(
          Math.min(buf.length * 4, this.#maxBuffer),
        );
        bigger.set(buf.subarray(0, end));
        buf = this.#buf = bigger;
      }
      const time = monotonicNow();
      const empty = end === 0 && waiting === null;
      // Between requests: not before the first one, nor within one.
      this.#idle = empty && !headStarted;
      this.#reading = !this.#idle;
      if (waiting !== null) {
        // A body pipelined behind responses just sent counts from now, as a
        // head does: the time spent on them is not the client's (one waiting
        // for 100 Continue could not send its body before).
        if (answered) headDeadline = time + headerTimeout;
        this.deadline = headDeadline;
      } else if (empty && !headStarted) {
        this.deadline = time + idleTimeout;
      } else if (!headStarted) {
        headStarted = true;
        this.deadline = headDeadline = time + headerTimeout;
      } // else a head (or a new connection) is in progress: keep its deadline
      if (this.deadline > this.#stopBy) this.deadline = this.#stopBy;
      answered = false;
      let n: number | null;
      try {
        n = await this.#conn.read(end === 0 ? buf : buf.subarray(end));
      } catch (error) {
        if (!empty) this.#timedOut(waiting);
        throw error;
      }
      if (n === null) {
        if (!empty) this.#timedOut(waiting);
        return true;
      }
      this.#idle = false;
      this.#reading = false;
      if (empty && !headStarted) {
        headStarted = true;
        this.deadline = headDeadline = monotonicNow() + headerTimeout;
      }
      end += n;
    }
  }

  /**
   * Lingering close: after the last response, end our side (FIN) and read
   * what the client still sends for a short while before closing. Closing
   * with unread bytes would make the kernel send a reset, which can destroy
   * the responses still in flight to the client (a long pipeline cut by an
   * error, say).
   */
  async #linger(): Promise<void> {
    try {
      await this.#conn.closeWrite();
    } catch {
      return; // already gone
    }
    this.#idle = false;
    this.deadline = monotonicNow() + LINGER.time;
    const sink = new Uint8Array(16384);
    for (let total = 0; total < LINGER.bytes;) {
      const n = await this.#conn.read(sink);
      if (n === null) return;
      total += n;
    }
  }

  /**
   * Logs a 408 for a request the header timeout cut off after some of it had
   * arrived (as nginx does): its request line when its head was whole (its
   * body was late), else "-". Idle connections are not logged.
   */
  #timedOut(waiting: RequestHead | null): void {
    if (!this.#expired) return;
    this.#record(
      waiting === null ? "" : requestLine(waiting),
      STATUS_CODE.RequestTimeout,
      0,
    );
  }

  /** Streams a reply with file parts (or writes one that holds a shared body); a response cut off (the client left, the shutdown grace ended, the file failed) is logged with the body bytes sent. */
  async #sendFile(reply: Reply, head: RequestHead): Promise<void> {
    const end = this.#sent + this.#pendingBytes + reply.head.length +
      reply.length;
    try {
      await this.#send(reply, head);
    } catch (error) {
      this.#record(requestLine(head), reply.status, reply.length, end);
      throw error;
    }
  }

  /** Asks the handler; an unexpected failure there is a 500 and a close. */
  #answer(head: RequestHead): Reply | Promise<Reply> {
    try {
      const answer = this.#handler.handle(head);
      return answer instanceof Promise
        ? answer.catch(() => this.#failed(head))
        : answer;
    } catch {
      return this.#failed(head);
    }
  }

  #failed(head: RequestHead): Reply {
    return this.#handler.error(STATUS_CODE.InternalServerError, {
      close: true,
      head,
    });
  }

  /**
   * Answers an error and closes: `request` is the parsed head, or whether the
   * unparsable request began as a `HEAD` (answered without a body, RFC 9110
   * section 9.3.2); `line` is the request line to log for an unparsable
   * request ("" when it could not be parsed either).
   */
  async #fail(
    status: StatusCode,
    request: RequestHead | boolean,
    line = "",
  ): Promise<void> {
    const parsed = typeof request === "boolean" ? undefined : request;
    const reply = this.#handler.error(status, {
      close: true,
      headOnly: parsed === undefined ? request === true : undefined,
      head: parsed,
    });
    await this.#send(reply);
    this.#record(
      parsed === undefined ? line : requestLine(parsed),
      status,
      reply.length,
    );
    await this.#flush();
  }

  /** Queues a reply whose body is all in memory. */
  #queueReply(reply: Reply): void {
    this.#queue(reply.head);
    for (const part of reply.parts) this.#queue(part as Uint8Array);
  }

  /**
   * Queues a reply; streams its file parts (flushing what is queued first).
   * A reply that holds a shared in-memory body (its `pin`) is written before
   * this returns, its body counted as held meanwhile.
   */
  async #send(reply: Reply, head?: RequestHead): Promise<void> {
    this.#queue(reply.head);
    const file = reply.file;
    const pin = reply.pin;
    pin?.hold();
    try {
      for (const part of reply.parts) {
        if (part instanceof Uint8Array) {
          this.#queue(part);
          continue;
        }
        await this.#flush();
        await this.#stream(file!, part, head);
      }
      if (pin !== null) await this.#flush();
    } finally {
      pin?.release();
      file?.close();
    }
  }

  #queue(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
  }

  /** Writes what is queued: runs of small pieces combined into one write, large pieces as they are. */
  #flush(): Promise<void> {
    const pending = this.#pending;
    const total = this.#pendingBytes;
    this.#pendingBytes = 0;
    if (pending.length === 1) {
      // The common case, without an async frame of its own: keep the array
      // (nothing is queued during a flush).
      const only = pending[0];
      pending.length = 0;
      return this.#write(only);
    }
    this.#pending = [];
    if (total <= COMBINE_LIMIT) return this.#write(concat(pending, total));
    return this.#flushRuns(pending);
  }

  /**
   * Writes `pending`: runs of small pieces combined, up to `COMBINE_LIMIT`
   * bytes per copy, large pieces as they are. The pieces are shared (cached
   * bodies): a copy of a whole run would let a few KiB of pipelined requests
   * pin megabytes for as long as the client does not read.
   */
  async #flushRuns(pending: Uint8Array[]): Promise<void> {
    let run: Uint8Array[] = [];
    let runBytes = 0;
    for (const piece of pending) {
      if (piece.length <= COMBINE_LIMIT) {
        if (runBytes + piece.length > COMBINE_LIMIT) {
          await this.#write(run.length === 1 ? run[0] : concat(run, runBytes));
          run = [];
          runBytes = 0;
        }
        run.push(piece);
        runBytes += piece.length;
        continue;
      }
      if (run.length > 0) {
        await this.#write(run.length === 1 ? run[0] : concat(run, runBytes));
      }
      run = [];
      runBytes = 0;
      await this.#write(piece);
    }
    if (run.length > 0) {
      await this.#write(run.length === 1 ? run[0] : concat(run, runBytes));
    }
  }

  async #write(bytes: Uint8Array): Promise<void> {
    const sendTimeout = this.#sendTimeout;
    let at = 0;
    while (at < bytes.length) {
      this.deadline = monotonicNow() + sendTimeout;
      const end = Math.min(bytes.length, at + WRITE_SLICE);
      const n = await this.#conn.write(
        at === 0 && end === bytes.length ? bytes : bytes.subarray(at, end),
      );
      at += n;
      this.#sent += n;
    }
  }

  /**
   * Streams bytes [start, end) of `file` in bounded chunks. A file that fails
   * or shrinks while being sent is logged and closes the connection: the
   * promised `Content-Length` cannot be kept.
   */
  async #stream(
    file: OpenFile,
    slice: { start: number; end: number },
    head?: RequestHead,
  ): Promise<void> {
    const chunk = takeChunk();
    try {
      let at = slice.start;
      while (at < slice.end) {
        let n: number;
        try {
          n = await file.read(
            chunk.subarray(0, Math.min(slice.end - at, chunk.length)),
            at,
          );
        } catch (error) {
          throw this.#fileFailed(head, (error as Error).message);
        }
        if (n === 0) {
          throw this.#fileFailed(
            head,
            `file shrank while sending (${slice.end - at} bytes missing)`,
          );
        }
        await this.#write(chunk.subarray(0, n));
        at += n;
      }
    } finally {
      giveChunk(chunk);
    }
  }

  #fileFailed(head: RequestHead | undefined, reason: string): Error {
    const request = head === undefined ? "" : requestLine(head);
    const message = `Cannot send "${request}": ${reason}`;
    this.#options.onError?.(message);
    return new Error(message);
  }

  /** Keeps a record for the log; `end` is where its response ends in the batch's bytes (by default: after what is queued now). */
  #record(
    request: string,
    status: StatusCode,
    length: number,
    end: number = this.#sent + this.#pendingBytes,
  ): void {
    if (this.#options.log === undefined) return;
    this.#records.push({
      remote: (this.#conn.remoteAddr as Deno.NetAddr).hostname ?? "-",
      time: now(),
      request,
      status,
      length,
    });
    this.#ends.push(end);
  }

  /**
   * After a failed write: each response of the batch that did not go out
   * whole is logged with the body bytes that did (a body ends its response,
   * so the bytes missing are the body's last ones).
   */
  #cutOff(): void {
    const records = this.#records;
    const sent = this.#sent;
    for (let i = 0; i < records.length; i++) {
      const missing = this.#ends[i] - sent;
      if (missing > 0) {
        records[i].length = Math.max(0, records[i].length - missing);
      }
    }
  }

  #flushLog(): void {
    const log = this.#options.log;
    if (log === undefined) return;
    this.#sent = 0;
    if (this.#records.length === 0) return;
    for (const record of this.#records) log(record);
    this.#records = [];
    this.#ends.length = 0;
  }
}

/** True when `head` carries the `100-continue` expectation (case-insensitive, in a list or alone). */
function expectsContinue(head: RequestHead): boolean {
  const expect = head.fields.expect;
  if (expect === undefined) return false;
  return expect.split(",").some((member) =>
    member.trim().toLowerCase() === "100-continue"
  );
}

function requestLine(head: RequestHead): string {
  return `${head.method} ${head.target} HTTP/1.${head.sentMinor}`;
}
