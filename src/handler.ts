/**
 * The request handler: one linear path from a parsed request head to a reply.
 *
 *   method -> target -> resolve -> representation -> source -> conditionals
 *   -> range -> body
 *
 * Each step is a pure function from its own module; the handler only wires
 * them and keeps what it learnt about a path in a bounded cache, revalidated
 * at most `freshness` ms later (plus the shared clock's resolution while a
 * server holds it). It never touches sockets: it answers a
 * {@linkcode Reply} that the connection writes.
 *
 * @module
 */

import { now } from "./clock.ts";
import type { RequestFields, RequestHead } from "./http/request_parser.ts";
import { STATUS_CODE, type StatusCode } from "./http/status.ts";
import {
  buildErrorPages,
  encodeResponse,
  httpDate,
  SERVER_NAME,
} from "./http/response.ts";
import { encodePath, type SanitizedTarget, sanitizeTarget } from "./target.ts";
import {
  type FileStamp,
  type FoundFile,
  isMissing,
  isOutOfDescriptors,
  type ListedEntry,
  type OpenFile,
  readFileOnce,
  type Resolution,
  Resolver,
} from "./resolver.ts";
import { contentType, isCompressible } from "./media_types.ts";
import { BoundedCache } from "./file_cache.ts";
import {
  evaluatePreconditions,
  evaluateUnvalidated,
  ifRangeMatches,
  makeEtag,
  type Precondition,
} from "./conditional.ts";
import { type ByteRange, multipartLayout, parseRange } from "./range.ts";
import {
  CODING_SUFFIX,
  CONTENT_CODINGS,
  type ContentCoding,
  negotiateEncoding,
} from "./encoding.ts";
import { renderListingHtml, renderListingJson } from "./listing.ts";
import { compress } from "./compress.ts";

/** Options of {@linkcode Handler.create}. */
export interface HandlerOptions {
  /** Serve dotfiles (`.well-known/` is always served). */
  dotfiles?: boolean;
  /** Serve symlinks that point outside the root. */
  followSymlinks?: boolean;
  /** `Cache-Control` value for files (default: none sent). */
  cacheControl?: string;
  /** Extra header fields for every response (`-H`); one the server sends from its options or as a constant (`Server`, `Cache-Control`, the CORS fields) is replaced, not repeated. */
  headers?: readonly [string, string][];
  /** Send `Access-Control-Allow-Origin: *` and answer CORS preflights. */
  cors?: boolean;
  /** Serve `/index.html` for unknown extension-less paths that accept HTML. */
  spa?: boolean;
  /** A file whose contents are the 404 page. */
  notFoundPage?: string;
  /** HTML (or JSON) listings for directories without an index. */
  dirListing?: boolean;
  /** Compress compressible files on the fly (cached by ETag). */
  compress?: boolean;
  /** Serve `x.br` / `x.gz` beside `x` for `x` when the client accepts the coding (default false). */
  precompressed?: boolean;
  /** Bytes of file contents kept in memory (default 64 MiB). */
  cacheSize?: number;
  /** Largest file kept in memory (default 16 MiB). */
  maxCachedFile?: number;
  /** How long, in ms, what was learnt about a path is trusted before it is checked again (default 1000). */
  freshness?: number;
  /** Receives a one-line message when the file system fails in an unexpected way. */
  onError?: (message: string) => void;
}

/** A streamed slice of the open file: bytes [start, end). */
export interface FileSlice {
  /** First byte. */
  start: number;
  /** One past the last byte. */
  end: number;
}

/** A reply for the connection to write. */
export interface Reply {
  /** The status code (for the log). */
  status: StatusCode;
  /** The head, or the whole response when the body is in memory and small. */
  head: Uint8Array;
  /** Body parts to send after `head`: bytes in memory, or slices of `file`. */
  parts: (Uint8Array | FileSlice)[];
  /** The open file that the slices refer to; the connection closes it. */
  file: OpenFile | null;
  /** Body bytes sent (for the log). */
  length: number;
  /** Close the connection after this reply. */
  close: boolean;
  /** Counts this reply's send while it holds an in-memory body that others may share (null: nothing to count). */
  pin: Pin | null;
}

/**
 * Bytes of in-memory bodies (file contents, compressed copies, listing
 * pages) that responses being sent hold, each body counted once however
 * many send it. A body dropped from the cache lives on while a client that
 * stops reading holds its response: without this count, such clients would
 * make the server read the file again for each of them.
 */
export interface HeldBytes {
  /** The bytes held now. */
  bytes: number;
}

/** Counts the sends in progress of one in-memory body against a {@linkcode HeldBytes}. */
export class Pin {
  #size: number;
  #held: HeldBytes;
  #sends = 0;

  /** A pin for a body of `size` bytes, counted in `held`. */
  constructor(size: number, held: HeldBytes) {
    this.#size = size;
    this.#held = held;
  }

  /** A send of the body starts: its bytes count while any send is in progress. */
  hold(): void {
    if (this.#sends++ === 0) this.#held.bytes += this.#size;
  }

  /** A send of the body ended (sent whole or cut off). */
  release(): void {
    if (--this.#sends === 0) this.#held.bytes -= this.#size;
  }
}

/** Defaults of {@linkcode HandlerOptions}. */
export const HANDLER_DEFAULTS = {
  /** Bytes of file contents kept in memory (and, separately, of compressed copies). */
  cacheSize: 64 * 1024 * 1024,
  /** Largest file kept in memory; larger files are streamed from disk. */
  maxCachedFile: 16 * 1024 * 1024,
  /** How long what was learnt about a path is trusted, in ms. */
  freshness: 1000,
} as const;

/** The methods answered with something other than 405 or 501. */
export const SERVED_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
]);

/** The `Allow` value. */
export const ALLOWED_METHODS: string = [...SERVED_METHODS].join(", ");

/**
 * Methods that RFC 9110 and RFC 5789 define: one of these that a file does
 * not allow is 405; any other method (methods are case-sensitive) is 501,
 * not implemented (RFC 9110 section 9.1).
 */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "TRACE",
  "CONNECT",
]);

const MIN_COMPRESS_SIZE = 256;
const MAX_COMPRESS_SIZE = 8 * 1024 * 1024;
/**
 * Compressions in progress at once (each file and coding once, however many
 * requests wait for it): they take this thread's time between its other
 * requests (see `COMPRESS_SLICE`), and hold their input and output. A file
 * past it goes out as it is, and is compressed for a later request.
 */
export const MAX_COMPRESSING = 2;

/** One representation of a file: the identity bytes or a compressed variant. */
interface Variant {
  found: FoundFile;
  coding: ContentCoding | null;
  etag: string;
  /** The `Last-Modified` time: the mtime, or the clock when the mtime was ahead of it. */
  lastModified: number;
  /**
   * True when the mtime was ahead of the clock, so `Last-Modified` says the
   * clock's time instead (RFC 9110 section 8.8.2.1): rebuilt at the next
   * check, by when it may say the mtime.
   */
  provisional: boolean;
  /**
   * True when `body` was read so soon after the file last changed that a
   * change in the same tick of the file system's clock (the change time
   * has whole seconds) would leave its stamp alone: read again at the next
   * check, as git treats "racily clean" files. Also set on a variant
   * streamed from disk that was stamped that soon after a change: the
   * copies compressed from its file are then made anew at the next check.
   */
  racy: boolean;
  /** Which read of the file `body` came from (a new number for every read); keys its compressed copies. */
  version: number;
  /** The `Content-Type` value. */
  type: string;
  /** Header lines for a 200 of this variant after `Content-Type`, `Content-Length` excluded. */
  rest: string;
  /** Header lines for a 200 of this variant (`Content-Type` and `rest`). */
  fields: string;
  /** The contents when small enough to keep in memory. */
  body?: Uint8Array;
  /** Counts the sends of `body` when it goes out apart from the head (over `COMBINE_LIMIT`). */
  pin?: Pin;
  /** Header lines of a 304 of this variant (its validators and `Vary`). */
  notModified: string;
  /**
   * Replies to a plain GET, rebuilt when the second (their `Date`) changes:
   * 200 then 304, each in the three forms of `replyForm()` (keep-alive,
   * close, HTTP/1.0 keep-alive, which says so).
   */
  ready: (Ready | undefined)[];
}

/** A compressed copy, and the pin its replies share. */
interface Compressed {
  bytes: Uint8Array;
  pin: Pin | undefined;
}

/** A listing being read (see `Handler.#listings`), and the pages made from it. */
interface Listing {
  entries: Promise<ListedEntry[]>;
  html?: Page;
  json?: Page;
}

/** A listing page, and the pin its replies share. */
interface Page {
  bytes: Uint8Array;
  pin: Pin | null;
}

/** A reply shared by every request of one second (only `Date` would differ). */
interface Ready {
  second: number;
  reply: Reply;
}

/** Bodies up to this size go out in the same buffer as the head. */
const COMBINE_LIMIT = 65536;

/** `Accept-Encoding` values whose negotiation is remembered, per offer of codings; past it, forgotten. */
const KNOWN_ACCEPT_ENCODINGS = 64;
/**
 * Longest `Accept-Encoding` value remembered (browsers send under 40
 * characters): the values are kept outside the cache's accounting, so
 * longer ones (a head may hold 16 KiB) are negotiated every time.
 */
const KNOWN_ACCEPT_ENCODING_LENGTH = 64;

/** How a reply ends its connection: it keeps it, closes it, or keeps an HTTP/1.0 one (saying `Connection: keep-alive`). */
const REPLY_FORM = { keep: 0, close: 1, keep10: 2 } as const;

/** The form of the reply to `head`, given whether it closes the connection. */
function replyForm(head: RequestHead, close: boolean): number {
  return close
    ? REPLY_FORM.close
    : head.minor === 0
    ? REPLY_FORM.keep10
    : REPLY_FORM.keep;
}

/**
 * What one cached path costs on the heap besides file contents, as
 * accounted against the cache: a fixed part and a part per character of the
 * path (the key, the decoded path and its segments). Measured: 1.1 KiB for a
 * short path, 51.5 KiB for an 8,160-character one of 4,080 segments.
 */
const ENTRY_COST = { fixed: 1024, perChar: 8 } as const;
/**
 * Paths longer than this are resolved on every request, never cached: with
 * at most 4,096 entries, what the path cache holds besides file contents
 * stays under 20 MiB however the paths are chosen.
 */
export const MAX_CACHED_PATH = 512;

/** A body read less than this many ms after the file's mtime or change time is racy (see `Variant.racy`). */
const RACY_MS = 2000;
/** What a ready reply's head may take besides the body, as accounted. */
const READY_HEAD_COST = 512;

/** What one variant with a body of `size` bytes in memory (0: none) is accounted, its ready replies included. */
function variantCost(size: number): number {
  // Up to six ready replies (200 and 304; keep-alive, close and HTTP/1.0
  // keep-alive); the first two 200s copy a body they combine with their
  // heads.
  return size + 6 * READY_HEAD_COST + (size <= COMBINE_LIMIT ? 2 * size : 0);
}

let versions = 0;

/** What the handler learnt about one request path. */
interface Entry {
  checked: number;
  target: SanitizedTarget;
  resolution: Resolution;
  identity?: Variant;
  sidecars: Partial<Record<ContentCoding, Variant>>;
  /** Variants compressed on the fly (`--compress`), made on first demand. */
  compressed: Partial<Record<ContentCoding, Variant>>;
  /** True when the path has, or may have, encoded variants (sends `Vary`). */
  varies: boolean;
  /** True when `--compress` compresses the file on the fly (its size and type allow). */
  onTheFly: boolean;
}

function replyOf(
  status: StatusCode,
  head: Uint8Array,
  close: boolean,
  length = 0,
): Reply {
  return { status, head, parts: [], file: null, length, close, pin: null };
}

function hasExtension(segments: readonly string[]): boolean {
  const last = segments[segments.length - 1] ?? "";
  return last.lastIndexOf(".") > 0;
}

/** A media range's weight: `;q=` with a qvalue (RFC 9110 section 12.4.2). */
const WEIGHT = /^[ \t]*[qQ]=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)[ \t]*$/;

/**
 * The weight `accept` gives the media type `type` (lower case), from its most
 * specific range that matches (RFC 9110 section 12.5.1: types are
 * case-insensitive, `q=0` means not acceptable), and how specific that range
 * is: 2 the type itself, 1 its `type/*`, 0 the full wildcard, -1 none
 * (weight 0). Members with a malformed weight are skipped.
 */
function acceptWeight(
  accept: string,
  type: string,
): { q: number; specificity: number } {
  const wildcard = type.slice(0, type.indexOf("/")) + "/*";
  let q = 0;
  let specificity = -1;
  for (const member of accept.split(",")) {
    const [range, ...params] = member.split(";");
    const name = range.trim().toLowerCase();
    const rank = ["*/*", wildcard, type].indexOf(name);
    if (rank < 0 || rank < specificity) continue;
    let weight = 1;
    let valid = true;
    for (const param of params) {
      if (!/^[ \t]*[qQ]=/.test(param)) continue;
      const match = WEIGHT.exec(param);
      if (match === null) valid = false;
      else weight = Number(match[1]);
    }
    if (!valid) continue;
    q = rank > specificity ? weight : Math.max(q, weight);
    specificity = rank;
  }
  return { q, specificity };
}

function acceptsHtml(accept: string | undefined): boolean {
  return accept !== undefined && acceptWeight(accept, "text/html").q > 0;
}

/** True when `accept` prefers JSON to HTML: a higher weight, or an equal one from a more specific range. */
function prefersJson(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  const json = acceptWeight(accept, "application/json");
  const html = acceptWeight(accept, "text/html");
  return json.q > 0 &&
    (json.q > html.q ||
      (json.q === html.q && json.specificity > html.specificity));
}

/** Answers requests from one root. */
export class Handler {
  #resolver: Resolver;
  #options: HandlerOptions;
  #pages: Map<StatusCode, Uint8Array>;
  #entries: BoundedCache<Entry>;
  #compressed: BoundedCache<Compressed>;
  #pending = new Map<string, Promise<Entry>>();
  /** Compressions in progress, by the key of `#compressed`. */
  #compressing = new Map<string, Promise<Compressed | undefined>>();
  /** The coding chosen for each `Accept-Encoding` value, by what a path offers (see `#coding`). */
  #codings: Map<string, ContentCoding | null>[] = [];
  /** Shared error replies of this second, by status (negated for HTTP/1.0 keep-alive). */
  #readyErrors = new Map<number, Ready>();
  #rootGone = false;
  /** When the root was last resolved again, and that check while it runs. */
  #rootChecked = 0;
  #rootCheck: Promise<void> | null = null;
  /** Counts the root's switches: what was resolved against an earlier root is not kept. */
  #rootGeneration = 0;
  #freshness: number;
  #maxCachedFile: number;
  /**
   * Bytes of file contents being read now, and the most allowed at once
   * together with the bodies that responses being sent hold (`#held`).
   */
  #loading = 0;
  #maxLoading: number;
  #held: HeldBytes = { bytes: 0 };
  /** Listings being read, by directory and the path shown: the requests that come meanwhile share the one reading and its pages. */
  #listings = new Map<string, Listing>();
  /** Header lines added to every response: CORS and `-H`. */
  #common: string;
  /** The `Server` value (`-H` may replace it). */
  #server: string;
  /** The `Cache-Control` of files and their 304s, unless `-H` sets it for every response. */
  #cacheControl: string | undefined;
  /** The `Cache-Control` line of listings, unless `-H` sets it for every response. */
  #listingCache: string;
  /** The fields of a CORS preflight's answer that `-H` does not replace. */
  #preflight: string;

  private constructor(
    resolver: Resolver,
    pages: Map<StatusCode, Uint8Array>,
    options: HandlerOptions,
  ) {
    this.#resolver = resolver;
    this.#options = options;
    this.#pages = pages;
    const cacheSize = options.cacheSize ?? HANDLER_DEFAULTS.cacheSize;
    this.#entries = new BoundedCache({ maxBytes: cacheSize });
    this.#compressed = new BoundedCache({ maxBytes: cacheSize });
    this.#freshness = options.freshness ?? HANDLER_DEFAULTS.freshness;
    this.#maxCachedFile = Math.min(
      options.maxCachedFile ?? HANDLER_DEFAULTS.maxCachedFile,
      cacheSize,
    );
    this.#maxLoading = cacheSize;
    // A field given with -H replaces the one the server would send, so that
    // no response carries it twice (two Access-Control-Allow-Origin values
    // are rejected by browsers, say). Built once: no per-request cost.
    const headers = options.headers ?? [];
    const given = new Set(headers.map(([name]) => name.toLowerCase()));
    const unless = (name: string, line: string): string =>
      given.has(name.toLowerCase()) ? "" : line;
    // Scripts of other origins may also read the validators and range
    // fields (the CORS-safelisted ones are readable anyway).
    let common = options.cors
      ? unless(
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Origin: *\r\n",
      ) +
        unless(
          "Access-Control-Expose-Headers",
          "Access-Control-Expose-Headers: Accept-Ranges, Content-Encoding, " +
            "Content-Range, ETag\r\n",
        )
      : "";
    let server = SERVER_NAME;
    for (const [name, value] of headers) {
      if (name.toLowerCase() === "server") server = value;
      else common += `${name}: ${value}\r\n`;
    }
    this.#common = common;
    this.#server = server;
    this.#cacheControl = given.has("cache-control")
      ? undefined
      : options.cacheControl;
    this.#listingCache = unless("Cache-Control", "Cache-Control: no-cache\r\n");
    this.#preflight = unless(
      "Access-Control-Allow-Methods",
      `Access-Control-Allow-Methods: ${ALLOWED_METHODS}\r\n`,
    ) +
      unless(
        "Access-Control-Allow-Headers",
        "Access-Control-Allow-Headers: Range, If-Match, If-None-Match, " +
          "If-Modified-Since, If-Unmodified-Since, If-Range\r\n",
      ) +
      unless("Access-Control-Max-Age", "Access-Control-Max-Age: 86400\r\n");
  }

  /**
   * Opens the root and builds the error pages once: the `notFoundPage` file,
   * else the root's own `404.html`, else the built-in `html/404.html`.
   */
  static async create(
    root: string,
    options: HandlerOptions = {},
  ): Promise<Handler> {
    const resolver = await Resolver.create(root, options);
    const pages = await errorPages(resolver, options.notFoundPage);
    return new Handler(resolver, pages, options);
  }

  /** The real path of the root. */
  get root(): string {
    return this.#resolver.root;
  }

  /** How many request paths the handler holds, the bytes accounted for them (contents and bookkeeping), and the bytes of compressed copies. */
  get cached(): { paths: number; bytes: number; compressed: number } {
    return {
      paths: this.#entries.size,
      bytes: this.#entries.bytes,
      compressed: this.#compressed.bytes,
    };
  }

  /** Bytes of in-memory bodies that responses being sent hold now (see {@linkcode HeldBytes}). */
  get held(): number {
    return this.#held.bytes;
  }

  /**
   * True when a file of `size` bytes may be kept in memory: small enough,
   * and its entry (for the longest path held) within the cache size, so
   * that the cache takes it. A file read into an entry the cache refuses
   * would be read again, and its path resolved again, on every request.
   */
  #fits(size: number): boolean {
    return size <= this.#maxCachedFile &&
      ENTRY_COST.fixed + ENTRY_COST.perChar * MAX_CACHED_PATH +
            variantCost(size) <= this.#maxLoading;
  }

  /** True when a body of `size` bytes may be read into memory now: what is being read and what responses hold leave room for it. */
  #mayLoad(size: number): boolean {
    return this.#loading + this.#held.bytes + size <= this.#maxLoading;
  }

  /** A pin for `body` when it goes out apart from its head. */
  #pinFor(body: Uint8Array): Pin | undefined {
    return body.length > COMBINE_LIMIT
      ? new Pin(body.length, this.#held)
      : undefined;
  }

  /** A reply carrying the error page of `status`. */
  error(
    status: StatusCode,
    options: {
      close?: boolean;
      head?: RequestHead;
      fields?: string;
      /** No body: for a `HEAD` request that could not be parsed (no `head`). */
      headOnly?: boolean;
    } = {},
  ): Reply {
    const page = this.#pages.get(status) ?? new Uint8Array();
    const head = options.head;
    const close = options.close ?? (head === undefined || !head.keepAlive);
    const isHead = head?.method === "HEAD" || options.headOnly === true;
    const plain = !close && !isHead && head !== undefined &&
      options.fields === undefined;
    const second = plain ? Math.floor(now() / 1000) : 0;
    // HTTP/1.0 keep-alive replies say so: kept under the negated status.
    const key = head?.minor === 0 ? -status : status;
    if (plain) {
      const ready = this.#readyErrors.get(key);
      if (ready?.second === second) return ready.reply;
    }
    const fields = "Content-Type: text/html; charset=utf-8\r\n" +
      (options.fields ?? "") + this.#common;
    const bytes = encodeResponse(status, fields, {
      server: this.#server,
      body: isHead ? undefined : page,
      contentLength: page.length,
      close,
      keepAlive: !close && head?.minor === 0,
    });
    const reply = replyOf(status, bytes, close, isHead ? 0 : page.length);
    if (plain) this.#readyErrors.set(key, { second, reply });
    return reply;
  }

  /**
   * Answers one request. The common cases (a plain GET of a file held in
   * memory, or of a path known missing, known fresh) are answered
   * synchronously with a reply shared for the current second; everything
   * else takes the linear steps.
   */
  handle(head: RequestHead): Reply | Promise<Reply> {
    return this.#fast(head) ?? this.#serve(head, "");
  }

  /** The common case of {@linkcode handle}, or undefined when any step has work to do. */
  #fast(head: RequestHead): Reply | undefined {
    if (head.method !== "GET") return;
    const f = head.fields;
    if (f.range !== undefined) return;
    const q = head.path.indexOf("?");
    const entry = this.#entries.get(q < 0 ? head.path : head.path.slice(0, q));
    if (entry === undefined || now() - entry.checked >= this.#freshness) {
      return;
    }
    const kind = entry.resolution.kind;
    if (kind === "not-found") {
      // The 404 page built at start-up (with --spa the answer depends on Accept).
      return this.#options.spa === true
        ? undefined
        : this.error(STATUS_CODE.NotFound, { head });
    }
    if (kind !== "file") return;
    let variant = entry.identity!;
    if (entry.varies && f.acceptEncoding !== undefined) {
      // As step 4 of `#serve` chooses, when the variant is made.
      const coding = this.#coding(entry, f);
      if (coding !== null) {
        const made = entry.sidecars[coding] ?? entry.compressed[coding];
        if (made === undefined) return;
        variant = made;
      }
    }
    // A file not held in memory is opened first, so that its own validators
    // decide (the cached ones may be a second old).
    if (variant.body === undefined) return;
    if (
      f.ifNoneMatch !== undefined || f.ifModifiedSince !== undefined ||
      f.ifMatch !== undefined || f.ifUnmodifiedSince !== undefined
    ) {
      // Revalidation: answered here only when it ends in 304.
      return evaluatePreconditions(f, variant) === "not-modified"
        ? this.#ready(variant, STATUS_CODE.NotModified, head)
        : undefined;
    }
    return this.#ready(variant, STATUS_CODE.OK, head);
  }

  /**
   * The shared 200 (of an in-memory variant) or 304 reply to `head` for this
   * second. An HTTP/1.0 keep-alive 200 sends the body apart from its head
   * rather than keep a third copy of it.
   */
  #ready(
    variant: Variant,
    status: typeof STATUS_CODE.OK | typeof STATUS_CODE.NotModified,
    head: RequestHead,
  ): Reply {
    const second = Math.floor(now() / 1000);
    const close = !head.keepAlive;
    const form = replyForm(head, close);
    const index = (status === STATUS_CODE.OK ? 0 : 3) + form;
    const ready = variant.ready[index];
    if (ready?.second === second) return ready.reply;
    const keepAlive = form === REPLY_FORM.keep10;
    let reply: Reply;
    if (status === STATUS_CODE.NotModified) {
      reply = replyOf(
        status,
        encodeResponse(status, variant.notModified, {
          server: this.#server,
          contentLength: null,
          close,
          keepAlive,
        }),
        close,
      );
    } else {
      const body = variant.body!;
      const combine = body.length <= COMBINE_LIMIT && !keepAlive;
      reply = replyOf(
        status,
        encodeResponse(status, variant.fields, {
          server: this.#server,
          body: combine ? body : undefined,
          contentLength: body.length,
          close,
          keepAlive,
        }),
        close,
        body.length,
      );
      if (!combine) {
        reply.parts = [body];
        reply.pin = body.length > COMBINE_LIMIT ? variant.pin ?? null : null;
      }
    }
    variant.ready[index] = { second, reply };
    return reply;
  }

  /** The linear steps; `extra` holds header lines added to a file response (the SPA fallback's `Vary`); `again` when a sidecar gone since the check sent them back. */
  async #serve(
    head: RequestHead,
    extra: string,
    again = false,
  ): Promise<Reply> {
    const close = !head.keepAlive;
    const keepAlive = !close && head.minor === 0;

    // 1. Method.
    if (head.method === "OPTIONS") {
      // Its preconditions are ignored: OPTIONS selects no representation
      // (RFC 9110 section 13.2.1 says a server MUST ignore them).
      // For a path, the path must be one that could be served.
      const q = head.path.indexOf("?");
      const path = q < 0 ? head.path : head.path.slice(0, q);
      if (head.form !== "asterisk" && !sanitizeTarget(path).ok) {
        return this.error(STATUS_CODE.BadRequest, { head, close: true });
      }
      return this.#optionsReply(head);
    }
    if (!KNOWN_METHODS.has(head.method)) {
      return this.error(STATUS_CODE.NotImplemented, { head });
    }
    if (head.method !== "GET" && head.method !== "HEAD") {
      return this.error(STATUS_CODE.MethodNotAllowed, {
        head,
        fields: `Allow: ${ALLOWED_METHODS}\r\n`,
      });
    }
    if (head.form !== "origin" && head.form !== "absolute") {
      return this.error(STATUS_CODE.BadRequest, { head, close: true });
    }

    // 2. Target and 3. resolve (cached for `freshness` ms).
    const q = head.path.indexOf("?");
    const rawPath = q < 0 ? head.path : head.path.slice(0, q);
    const entry = await this.#lookup(rawPath);
    if (entry === undefined) {
      return this.error(STATUS_CODE.BadRequest, { head, close: true });
    }
    const resolution = entry.resolution;
    switch (resolution.kind) {
      case "file":
        break;
      case "redirect": {
        const location = encodePath(entry.target.segments, true) +
          (q < 0 ? "" : head.path.slice(q)); // visible ASCII, checked by the parser
        const bytes = encodeResponse(
          STATUS_CODE.MovedPermanently,
          `Location: ${location}\r\n${this.#common}`,
          { server: this.#server, contentLength: 0, close, keepAlive },
        );
        return replyOf(STATUS_CODE.MovedPermanently, bytes, close);
      }
      case "directory":
        if (this.#options.dirListing) {
          const listed = await this.#listing(
            head,
            entry.target,
            resolution.path,
            again,
          );
          if (listed !== null) return listed;
          // Removed, or replaced (by a symlink to a new version, say), since
          // the check: checked again, the path may be listed (once).
          this.#entries.delete(rawPath);
          return await this.#serve(head, extra, true);
        }
        return await this.#notFound(head, entry.target);
      case "not-found":
        return await this.#notFound(head, entry.target);
      case "forbidden":
        return this.error(STATUS_CODE.Forbidden, { head });
      case "error":
        return this.#cannotServe(head, entry.target, resolution.message);
      case "busy":
        return this.#busy(head);
    }

    // 4. Representation: a precompressed sidecar, a compressed copy, or identity.
    const fields = head.fields;
    let variant = entry.identity!;
    // Ranges are for GET only (RFC 9110 section 14.2), served from the
    // identity bytes: one that will be honoured rules compression out; one
    // that will be ignored (malformed, or If-Range not matching) does not.
    const rangeRequested = fields.range !== undefined &&
      head.method === "GET" &&
      parseRange(fields.range, variant.found.size).kind !== "none" &&
      ifRangeMatches(fields.ifRange, variant);
    const coding = rangeRequested ? null : this.#coding(entry, fields);
    if (coding !== null) {
      const made = entry.sidecars[coding] ?? entry.compressed[coding];
      if (made !== undefined) variant = made;
      else {
        // Not compressed yet. Its validators come from the file's stamp
        // alone, so a revalidation (a browser's after a restart, say) is
        // answered 304 or 412 without compressing anything.
        const unmade = this.#variant(variant.found, coding, true);
        const precondition = evaluatePreconditions(fields, unmade);
        if (precondition !== "proceed") {
          return this.#preconditionReply(precondition, head, unmade, extra);
        }
        variant = await this.#compressedVariant(rawPath, entry, coding) ??
          variant;
      }
    }

    // 5. Source: the bytes in memory, or the file opened now, so that the
    //    conditionals and the headers describe what would be sent.
    let body = variant.body;
    let file: OpenFile | null = null;
    let size: number;
    let validators: Variant = variant;
    if (body !== undefined) {
      size = body.length;
    } else {
      // Decided before the open: a request failing at the same time may
      // leave the sidecar out meanwhile.
      const sidecar = coding !== null && variant === entry.sidecars[coding];
      const opened = await this.#resolver.open(variant.found);
      if (!("file" in opened)) {
        if (
          sidecar && (opened.kind === "forbidden" || opened.kind === "error")
        ) {
          // A sidecar that cannot be read (its mode, say) says nothing of its
          // original: left out until the path's next check, and the request
          // served without it, as nginx's gzip_static does.
          if (entry.sidecars[coding] === variant) {
            this.#options.onError?.(
              `Cannot serve "${entry.target.path}" as ${coding}: ` +
                (opened.kind === "error"
                  ? opened.message
                  : "its sidecar is not readable"),
            );
            delete entry.sidecars[coding];
          }
          return await this.#serve(head, extra, again);
        }
        this.#entries.delete(rawPath);
        // A file gone since the check (replaced by a rename under the open,
        // a symlink switched) says nothing of the path, nor a sidecar gone
        // of its original: checked again, the path may be served (once).
        if (opened.kind === "not-found" && !again) {
          return await this.#serve(head, extra, true);
        }
        // Out of descriptors, or failing: not a missing file (a 404 there
        // would be cached by clients and said nowhere).
        if (opened.kind === "busy") return this.#busy(head);
        if (opened.kind === "error") {
          return this.#cannotServe(head, entry.target, opened.message);
        }
        return opened.kind === "forbidden"
          ? this.error(STATUS_CODE.Forbidden, { head })
          : await this.#notFound(head, entry.target);
      }
      file = opened.file;
      size = opened.size;
      if (
        size !== variant.found.size || opened.mtime !== variant.found.mtime
      ) {
        // Changed since it was resolved: describe the file that is open.
        validators = this.#variant(
          stamped(variant.found, opened),
          variant.coding,
          entry.varies,
        );
      }
    }

    // 6. Conditionals (RFC 9110 section 13.2.2).
    const precondition = evaluatePreconditions(fields, validators);
    if (precondition !== "proceed") {
      file?.close();
      if (
        precondition === "not-modified" && extra === "" &&
        validators === variant
      ) return this.#ready(variant, STATUS_CODE.NotModified, head);
      return this.#preconditionReply(precondition, head, validators, extra);
    }
    const isHead = head.method === "HEAD";
    const okFields = validators.fields + extra;

    // 7. Range (identity only; RFC 9110 section 14).
    if (rangeRequested && validators.coding === null && size > 0) {
      const ranges = ifRangeMatches(fields.ifRange, validators)
        ? parseRange(fields.range, size)
        : { kind: "none" as const };
      if (ranges.kind === "unsatisfiable") {
        file?.close();
        return this.error(STATUS_CODE.RangeNotSatisfiable, {
          head,
          fields: `Content-Range: bytes */${size}\r\n`,
        });
      }
      if (ranges.kind === "ranges") {
        return this.#partial(head, validators, extra, ranges.ranges, {
          size,
          body,
          file,
        });
      }
    }

    // 8. The whole representation.
    if (
      !isHead && extra === "" && body !== undefined &&
      body === variant.body
    ) return this.#ready(variant, STATUS_CODE.OK, head);
    if (isHead) {
      file?.close();
      body = undefined;
      file = null;
    }
    const bytes = encodeResponse(STATUS_CODE.OK, okFields, {
      server: this.#server,
      body: file === null && body !== undefined &&
          body.length <= COMBINE_LIMIT
        ? body
        : undefined,
      contentLength: size,
      close,
      keepAlive,
    });
    const reply = replyOf(STATUS_CODE.OK, bytes, close, isHead ? 0 : size);
    if (file !== null) {
      reply.file = file;
      reply.parts.push({ start: 0, end: size });
    } else if (body !== undefined && body.length > COMBINE_LIMIT) {
      reply.parts.push(body);
      reply.pin = variant.pin ?? null;
    }
    return reply;
  }

  /** A 500 for a file the file system fails to give, said with `message`. */
  #cannotServe(
    head: RequestHead,
    target: SanitizedTarget,
    message: string,
  ): Reply {
    this.#options.onError?.(`Cannot serve "${target.path}": ${message}`);
    return this.error(STATUS_CODE.InternalServerError, { head });
  }

  /** A 503 while the process is out of file descriptors: the request may be tried again soon. */
  #busy(head: RequestHead): Reply {
    return this.error(STATUS_CODE.ServiceUnavailable, {
      head,
      fields: "Retry-After: 1\r\n",
    });
  }

  /** The 412 or 304 (built now, with `validators`' fields and `extra`) for a precondition that did not proceed. */
  #preconditionReply(
    precondition: Exclude<Precondition, "proceed">,
    head: RequestHead,
    validators: Variant,
    extra: string,
  ): Reply {
    if (precondition === "failed") {
      return this.error(STATUS_CODE.PreconditionFailed, { head });
    }
    const close = !head.keepAlive;
    const bytes = encodeResponse(
      STATUS_CODE.NotModified,
      validators.notModified + extra,
      {
        server: this.#server,
        contentLength: null,
        close,
        keepAlive: !close && head.minor === 0,
      },
    );
    return replyOf(STATUS_CODE.NotModified, bytes, close);
  }

  /** `OPTIONS`: 204 with `Allow`, plus the CORS preflight answer when enabled. */
  #optionsReply(head: RequestHead): Reply {
    const close = !head.keepAlive;
    let fields = `Allow: ${ALLOWED_METHODS}\r\n`;
    if (
      this.#options.cors &&
      head.fields.origin !== undefined &&
      head.fields.accessControlRequestMethod !== undefined
    ) {
      fields += this.#preflight;
    }
    const bytes = encodeResponse(STATUS_CODE.NoContent, fields + this.#common, {
      server: this.#server,
      contentLength: null,
      close,
      keepAlive: !close && head.minor === 0,
    });
    return replyOf(STATUS_CODE.NoContent, bytes, close);
  }

  /**
   * The coding to send this path in, or null for identity: among its
   * sidecars and, when `--compress` applies, both codings on the fly; a
   * sidecar wins a tie.
   */
  #coding(entry: Entry, fields: RequestFields): ContentCoding | null {
    const accept = fields.acceptEncoding;
    if (accept === undefined) return null;
    // The answer depends on the value and on what the path offers: kept
    // per offer, since clients send the same few values again and again.
    let offer = entry.onTheFly ? 1 : 0;
    for (let i = 0; i < CONTENT_CODINGS.length; i++) {
      if (entry.sidecars[CONTENT_CODINGS[i]] !== undefined) offer |= 2 << i;
    }
    const known = this.#codings[offer] ??= new Map();
    let coding = known.get(accept);
    if (coding === undefined) {
      const sidecars = CONTENT_CODINGS.filter((c) =>
        entry.sidecars[c] !== undefined
      );
      coding = negotiateEncoding(
        accept,
        entry.onTheFly ? CONTENT_CODINGS : sidecars,
        { preferred: sidecars },
      );
      if (accept.length <= KNOWN_ACCEPT_ENCODING_LENGTH) {
        if (known.size >= KNOWN_ACCEPT_ENCODINGS) known.clear();
        known.set(accept, coding);
      }
    }
    return coding;
  }

  /** The compressed bytes of `variant` in `coding`, compressed once per read of the file; undefined when it cannot be read, or `MAX_COMPRESSING` compressions are in progress. */
  async #compress(
    variant: Variant,
    coding: ContentCoding,
  ): Promise<Compressed | undefined> {
    // Keyed by the file's stamp, so that every path to the file, and every
    // request for a path that is not held (longer than MAX_CACHED_PATH),
    // shares one copy; a change that keeps the size and mtime changes the
    // inode or the change time. Bytes read within RACY_MS of the file's
    // last change may differ under the same stamp: those are keyed by the
    // read they come from.
    const found = variant.found;
    const racy = variant.racy || changedLately(found);
    const key = racy
      ? `${found.path}\0${variant.version}\0${coding}`
      : `${found.path}\0${found.size}\0${found.mtime}\0${found.ino}\0${found.ctime}\0${coding}`;
    const cached = this.#compressed.get(key);
    if (cached !== undefined) return cached;
    // Requests that arrive while it is made share the one compression.
    let pending = this.#compressing.get(key);
    if (pending === undefined) {
      if (this.#compressing.size >= MAX_COMPRESSING) return undefined;
      pending = this.#compressOnce(variant, coding, key);
      this.#compressing.set(key, pending);
      pending.finally(() => this.#compressing.delete(key)).catch(() => {});
    }
    return await pending;
  }

  /** Reads (when not in memory) and compresses `variant` in `coding`, kept under `key`. */
  async #compressOnce(
    variant: Variant,
    coding: ContentCoding,
    key: string,
  ): Promise<Compressed | undefined> {
    let source = variant.body;
    if (source === undefined) {
      const size = variant.found.size;
      if (!this.#mayLoad(size)) return undefined;
      this.#loading += size;
      try {
        const read = await this.#resolver.read(variant.found);
        // Changed since it was resolved: the bytes are not the ETag's.
        if (!("bytes" in read) || !sameStamp(read, variant.found)) return;
        source = read.bytes;
      } finally {
        this.#loading -= size;
      }
    }
    const bytes = await compress(source, coding);
    const made = { bytes, pin: this.#pinFor(bytes) };
    this.#compressed.set(key, made, { bytes: bytes.length });
    return made;
  }

  /** The entry's file compressed in `coding` on the fly, kept on the entry; undefined when it cannot be read, or is not compressed now (see `MAX_COMPRESSING`). */
  async #compressedVariant(
    rawPath: string,
    entry: Entry,
    coding: ContentCoding,
  ): Promise<Variant | undefined> {
    const made = entry.compressed[coding];
    if (made !== undefined) return made;
    const identity = entry.identity!;
    const copy = await this.#compress(identity, coding);
    if (copy === undefined) return undefined;
    const variant = {
      ...this.#variant(identity.found, coding, true),
      body: copy.bytes,
      pin: copy.pin,
    };
    entry.compressed[coding] = variant;
    // Account it (and the ready replies it may get) while the entry is held.
    if (this.#entries.get(rawPath) === entry) this.#store(rawPath, entry);
    return variant;
  }

  /** Holds `entry` for `rawPath`, accounting what it keeps in memory; paths over `MAX_CACHED_PATH` are never held. */
  #store(rawPath: string, entry: Entry): void {
    if (rawPath.length > MAX_CACHED_PATH) return;
    let bytes = ENTRY_COST.fixed + ENTRY_COST.perChar * rawPath.length;
    const variants = [
      entry.identity,
      ...Object.values(entry.sidecars),
      ...Object.values(entry.compressed),
    ];
    for (const variant of variants) {
      if (variant !== undefined) {
        bytes += variantCost(variant.body?.length ?? 0);
      }
    }
    this.#entries.set(rawPath, entry, { bytes });
  }

  /** What is learnt about `rawPath` (the target's path, query dropped), from the cache while fresh. */
  async #lookup(rawPath: string): Promise<Entry | undefined> {
    const time = now();
    const cached = this.#entries.get(rawPath);
    if (cached !== undefined && time - cached.checked < this.#freshness) {
      return cached;
    }
    // The root is checked again once per `freshness`; while a check runs,
    // nothing is resolved against a root that may be on its way out.
    if (time - this.#rootChecked >= this.#freshness) {
      await this.#checkRoot(time);
    } else if (this.#rootCheck !== null) await this.#rootCheck;
    const sanitized = sanitizeTarget(rawPath);
    if (!sanitized.ok) return undefined;
    let pending = this.#pending.get(rawPath);
    if (pending === undefined) {
      const previous = this.#entries.get(rawPath); // none after a switch
      const started = this.#revalidate(
        rawPath,
        sanitized.target,
        previous,
        time,
      );
      this.#pending.set(rawPath, started);
      started.finally(() => {
        if (this.#pending.get(rawPath) === started) {
          this.#pending.delete(rawPath);
        }
      }).catch(() => {});
      pending = started;
    }
    return await pending;
  }

  /**
   * Resolves the root again, at most once per `freshness` (the one check
   * shared by the requests that arrive meanwhile). When it leads elsewhere
   * (a deploy switched the symlink), everything learnt is dropped and the
   * 404 page is built again from the new root.
   */
  #checkRoot(time: number): Promise<void> {
    this.#rootChecked = time;
    this.#rootCheck ??= (async () => {
      if (!(await this.#resolver.refreshRoot())) return;
      this.#rootGeneration++;
      this.#entries.clear();
      this.#pending.clear();
      if (this.#options.notFoundPage === undefined) {
        this.#pages = await errorPages(this.#resolver, undefined);
        this.#readyErrors.clear();
      }
    })().catch(() => {}).finally(() => this.#rootCheck = null);
    return this.#rootCheck;
  }

  async #revalidate(
    rawPath: string,
    target: SanitizedTarget,
    previous: Entry | undefined,
    now: number,
  ): Promise<Entry> {
    const generation = this.#rootGeneration;
    const resolution = await this.#resolver.resolve(target.segments, {
      directory: target.directory,
    });
    const entry: Entry = {
      checked: now,
      target,
      resolution,
      sidecars: {},
      compressed: {},
      varies: false,
      onTheFly: false,
    };
    if (resolution.kind === "not-found") {
      let gone = !(await this.#resolver.rootExists());
      if (gone) {
        // A deploy may have switched the root's symlink and deleted the old
        // tree: look at the root again now rather than answer 404 from it.
        await this.#checkRoot(now);
        if (this.#rootGeneration !== generation) {
          return this.#revalidate(rawPath, target, undefined, now);
        }
        gone = !(await this.#resolver.rootExists());
      }
      // Said once when the root goes, again only after it came back and went.
      if (gone && !this.#rootGone) {
        this.#options.onError?.(`Root "${this.#resolver.root}" is gone`);
      }
      this.#rootGone = gone;
    } else if (resolution.kind === "file") this.#rootGone = false;
    // Contents are kept only for a path that will be held.
    const keep = rawPath.length <= MAX_CACHED_PATH;
    if (resolution.kind === "file") {
      const sidecars = await this.#resolver.sidecars(resolution);
      // Vary only when a coding can really be chosen: a sidecar, or a file
      // of a size and type that `--compress` compresses.
      entry.onTheFly = this.#options.compress === true &&
        resolution.size >= MIN_COMPRESS_SIZE &&
        resolution.size <= MAX_COMPRESS_SIZE &&
        isCompressible(contentType(resolution.name));
      entry.varies = sidecars.br !== undefined || sidecars.gzip !== undefined ||
        entry.onTheFly;
      const old = previous?.varies === entry.varies
        ? previous.identity
        : undefined;
      entry.identity = await this.#reuse(old, resolution, null, {
        varies: entry.varies,
        keep,
      });
      // A copy of its own: one that a compression in progress adds to the
      // previous entry is not counted for this one.
      if (entry.identity === old) {
        entry.compressed = { ...previous!.compressed };
      }
      for (const coding of CONTENT_CODINGS) {
        const found = sidecars[coding];
        if (found === undefined) continue;
        entry.sidecars[coding] = await this.#reuse(
          previous?.sidecars[coding],
          found,
          coding,
          { varies: true, keep },
        );
      }
    }
    // Out of descriptors now says nothing of the path a second from now.
    if (generation === this.#rootGeneration && resolution.kind !== "busy") {
      this.#store(rawPath, entry);
    }
    return entry;
  }

  /**
   * `old` when it still describes `found` (the same stamp, read long enough
   * after the file's last change), its bytes with headers made anew when its
   * `Last-Modified` was provisional, else a new variant. A file left on
   * disk only because memory was short when it was seen (clients that stop
   * reading held it) is read now that there is room: it would otherwise be
   * read from disk on every request for as long as it does not change.
   */
  async #reuse(
    old: Variant | undefined,
    found: FoundFile,
    coding: ContentCoding | null,
    options: { varies: boolean; keep: boolean },
  ): Promise<Variant> {
    if (
      old === undefined || old.racy || !sameFile(old.found, found) ||
      (old.body === undefined && options.keep &&
        this.#fits(found.size) && this.#mayLoad(found.size))
    ) {
      return await this.#load(found, coding, options);
    }
    if (!old.provisional) return old;
    const remade = this.#variant(old.found, coding, options.varies);
    return old.body === undefined
      ? remade
      : { ...remade, body: old.body, pin: old.pin, version: old.version };
  }

  /**
   * A variant for `found`, with its contents read when it is small, its
   * path held (`keep`), and the reads in progress leave room for it (they
   * are bounded by the cache size: past that it is streamed instead).
   */
  async #load(
    found: FoundFile,
    coding: ContentCoding | null,
    options: { varies: boolean; keep: boolean },
  ): Promise<Variant> {
    const { varies, keep } = options;
    const size = found.size;
    // Streamed: a copy compressed from the file before the next check may
    // come from a change that left the stamp alone, and is kept on the
    // entry with this variant; a racy one is made anew at the next check.
    const streamed = (): Variant => {
      const variant = this.#variant(found, coding, varies);
      variant.racy = changedLately(found);
      return variant;
    };
    if (!keep || !this.#fits(size) || !this.#mayLoad(size)) {
      return streamed();
    }
    this.#loading += size;
    let read;
    try {
      read = await this.#resolver.read(found);
    } finally {
      this.#loading -= size;
    }
    if (!("bytes" in read)) return streamed();
    const variant = this.#variant(stamped(found, read), coding, varies);
    variant.body = read.bytes;
    variant.pin = this.#pinFor(read.bytes);
    variant.racy = changedLately(read);
    return variant;
  }

  #variant(
    found: FoundFile,
    coding: ContentCoding | null,
    varies: boolean,
  ): Variant {
    const suffix = coding === null ? undefined : CODING_SUFFIX[coding].slice(1);
    const etag = makeEtag(found.size, found.mtime, { suffix });
    // Never later than the `Date` of any response that carries it.
    const lastModified = Math.min(found.mtime, now());
    const type = contentType(found.name);
    const cacheControl = this.#cacheControl;
    const notModified = `ETag: ${etag}\r\n` +
      `Last-Modified: ${httpDate(lastModified)}\r\n` +
      (cacheControl === undefined ? "" : `Cache-Control: ${cacheControl}\r\n`) +
      (varies ? "Vary: Accept-Encoding\r\n" : "") + this.#common;
    // Ranges are served from the identity bytes only, so only it offers them.
    const rest =
      (coding === null
        ? "Accept-Ranges: bytes\r\n"
        : `Content-Encoding: ${coding}\r\n`) + notModified;
    return {
      found,
      coding,
      etag,
      lastModified,
      provisional: lastModified < found.mtime,
      racy: false,
      version: ++versions,
      type,
      rest,
      fields: `Content-Type: ${type}\r\n${rest}`,
      notModified,
      ready: [],
    };
  }

  /** 206: one range, or several as `multipart/byteranges`. */
  #partial(
    head: RequestHead,
    variant: Variant,
    extra: string,
    ranges: ByteRange[],
    source: { size: number; body?: Uint8Array; file: OpenFile | null },
  ): Reply {
    const { size, body, file } = source;
    let fields: string;
    const close = !head.keepAlive;
    const keepAlive = !close && head.minor === 0;
    const isHead = head.method === "HEAD";
    const slice = (r: ByteRange): Uint8Array | FileSlice =>
      body !== undefined
        ? body.subarray(r.start, r.end + 1)
        : { start: r.start, end: r.end + 1 };
    const parts: (Uint8Array | FileSlice)[] = [];
    let length: number;
    if (ranges.length === 1) {
      const r = ranges[0];
      length = r.end - r.start + 1;
      fields = variant.fields + extra +
        `Content-Range: bytes ${r.start}-${r.end}/${size}\r\n`;
      parts.push(slice(r));
    } else {
      const layout = multipartLayout(ranges, size, {
        contentType: variant.type,
        boundary: newBoundary(),
      });
      fields = `Content-Type: ${layout.contentType}\r\n${variant.rest}${extra}`;
      length = layout.length;
      for (const part of layout.parts) parts.push(part.head, slice(part.range));
      parts.push(layout.tail);
    }
    const bytes = encodeResponse(STATUS_CODE.PartialContent, fields, {
      server: this.#server,
      contentLength: length,
      close,
      keepAlive,
    });
    const reply = replyOf(STATUS_CODE.PartialContent, bytes, close, length);
    if (isHead) {
      file?.close();
      reply.length = 0;
      return reply;
    }
    reply.parts = parts;
    reply.file = file;
    if (body !== undefined) reply.pin = variant.pin ?? null;
    return reply;
  }

  /** 404, or with `--spa` the root's `/index.html` for page navigations. */
  async #notFound(head: RequestHead, target: SanitizedTarget): Promise<Reply> {
    // With --spa the answer for an extension-less path depends on Accept.
    const spa = this.#options.spa === true && !hasExtension(target.segments) &&
      target.path !== "/index.html";
    if (spa && acceptsHtml(head.fields.accept)) {
      const index = await this.#lookup("/index.html");
      if (index?.resolution.kind === "file") {
        return await this.#serve(
          { ...head, path: "/index.html" },
          "Vary: Accept\r\n",
        );
      }
    }
    return this.error(STATUS_CODE.NotFound, {
      head,
      fields: spa ? "Vary: Accept\r\n" : undefined,
    });
  }

  /**
   * A directory listing, as HTML or (for `Accept: application/json`) JSON.
   * Requests for one directory while it is read share the reading and the
   * page; a new reading waits (503) while responses hold more in-memory
   * bodies than the cache size (a page of a large directory is megabytes).
   * Null when the directory is gone or replaced since it was resolved and
   * not `again`: the caller resolves the path again.
   */
  async #listing(
    head: RequestHead,
    target: SanitizedTarget,
    directory: string,
    again: boolean,
  ): Promise<Reply | null> {
    const close = !head.keepAlive;
    const path = encodePathForDisplay(target);
    const key = `${directory}\0${path}`;
    let listing = this.#listings.get(key);
    if (listing === undefined) {
      if (!this.#mayLoad(0)) {
        return this.error(STATUS_CODE.ServiceUnavailable, {
          head,
          fields: "Retry-After: 1\r\n",
        });
      }
      const started: Listing = { entries: this.#resolver.list(directory) };
      this.#listings.set(key, started);
      started.entries.finally(() => {
        if (this.#listings.get(key) === started) this.#listings.delete(key);
      }).catch(() => {});
      listing = started;
    }
    let entries;
    try {
      entries = await listing.entries;
    } catch (error) {
      // Out of descriptors says nothing of the directory: try again soon.
      if (isOutOfDescriptors(error)) return this.#busy(head);
      if (isMissing(error)) {
        return again ? await this.#notFound(head, target) : null;
      }
      return this.error(STATUS_CODE.Forbidden, { head });
    }
    const fields = "Vary: Accept\r\n" + this.#listingCache + this.#common;
    // A listing has no validators: only `*` matches it.
    const precondition = evaluateUnvalidated(head.fields);
    if (precondition === "failed") {
      return this.error(STATUS_CODE.PreconditionFailed, { head });
    }
    if (precondition === "not-modified") {
      const bytes = encodeResponse(STATUS_CODE.NotModified, fields, {
        server: this.#server,
        contentLength: null,
        close,
        keepAlive: !close && head.minor === 0,
      });
      return replyOf(STATUS_CODE.NotModified, bytes, close);
    }
    const json = prefersJson(head.fields.accept);
    const page = json
      ? listing.json ??= this.#page(renderListingJson(path, entries))
      : listing.html ??= this.#page(renderListingHtml(path, entries));
    const type = json ? "application/json" : "text/html; charset=utf-8";
    const isHead = head.method === "HEAD";
    const length = page.bytes.length;
    const apart = page.pin !== null;
    const bytes = encodeResponse(
      STATUS_CODE.OK,
      `Content-Type: ${type}\r\n${fields}`,
      {
        server: this.#server,
        body: isHead || apart ? undefined : page.bytes,
        contentLength: length,
        close,
        keepAlive: !close && head.minor === 0,
      },
    );
    const reply = replyOf(STATUS_CODE.OK, bytes, close, isHead ? 0 : length);
    if (!isHead && apart) {
      reply.parts = [page.bytes];
      reply.pin = page.pin;
    }
    return reply;
  }

  /** A listing page's bytes, with a pin when they go out apart from the head. */
  #page(text: string): Page {
    const bytes = new TextEncoder().encode(text);
    return { bytes, pin: this.#pinFor(bytes) ?? null };
  }
}

function encodePathForDisplay(target: SanitizedTarget): string {
  return target.segments.length === 0
    ? "/"
    : "/" + target.segments.join("/") + "/";
}

/** True when `a` and `b` are the same version of the same file under the same name. */
function sameFile(a: FoundFile, b: FoundFile): boolean {
  return a.path === b.path && a.name === b.name && sameStamp(a, b);
}

/** True when the file changed within `RACY_MS`: bytes read now may differ under the same stamp. */
function changedLately(stamp: FileStamp): boolean {
  return now() - Math.max(stamp.mtime, stamp.ctime) < RACY_MS;
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtime === b.mtime && a.ino === b.ino &&
    a.ctime === b.ctime;
}

/**
 * The error pages: the `notFoundPage` file, else the root's own `404.html`,
 * else the built-in `html/404.html`.
 */
async function errorPages(
  resolver: Resolver,
  notFoundPage: string | undefined,
): Promise<Map<StatusCode, Uint8Array>> {
  const notFound = notFoundPage !== undefined
    ? await readFileOnce(notFoundPage)
    : await resolver.readOptional("404.html") ??
      await readFileOnce(new URL("../html/404.html", import.meta.url));
  return buildErrorPages(notFound);
}

/** `found` with the stamp of what was actually opened. */
function stamped(found: FoundFile, stamp: FileStamp): FoundFile {
  return {
    ...found,
    size: stamp.size,
    mtime: stamp.mtime,
    ino: stamp.ino,
    ctime: stamp.ctime,
  };
}

/**
 * A fresh `multipart/byteranges` boundary: 128 random bits, so that no file
 * can be made to contain the delimiter of a response it is sent in.
 */
function newBoundary(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let hex = "";
  for (const b of bytes) hex += (b < 16 ? "0" : "") + b.toString(16);
  return "static-srv-" + hex;
}
