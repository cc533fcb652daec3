/**
 * A pure, incremental HTTP/1.1 request-head parser (RFC 9112 sections 2-7).
 *
 * Bytes in, `complete` / `partial` / `error` out: no I/O, no buffering of its
 * own. The caller feeds the bytes it has so far (from the start of a request)
 * and calls again with more when the answer is `partial`. Byte classes come
 * from lookup tables; only the fields the server acts on are turned into
 * strings.
 *
 * Line endings: CRLF only. A bare LF or a bare CR anywhere in the head is a
 * 400 (RFC 9112 section 2.2 allows a recipient to accept bare LF; we do not,
 * because lenient line parsing is what request smuggling feeds on).
 *
 * @module
 */

import { STATUS_CODE, type StatusCode } from "./status.ts";
import {
  FIELD_CHAR,
  hexValue,
  HOST_CHAR,
  TARGET_CHAR,
  TCHAR,
} from "./chars.ts";

/** Caller-set limits of the parser. */
export interface ParseLimits {
  /** Longest request line, CRLF excluded; longer is 414. */
  maxRequestLine: number;
  /** Largest head (request line, fields and the final CRLF); larger is 431. */
  maxHeadSize: number;
  /** Most header field lines; more is 431. */
  maxHeaders: number;
  /** Longest method; longer is 501, as no method that long is implemented (RFC 9112 section 3). */
  maxMethod: number;
}

/** Default parser limits (nginx uses 8 KiB lines and 32 KiB heads; we are stricter). */
export const PARSE_LIMITS: Readonly<ParseLimits> = {
  maxRequestLine: 8192,
  maxHeadSize: 16384,
  maxHeaders: 100,
  maxMethod: 32,
};

/** The form of a request target (RFC 9112 section 3.2). */
export type TargetForm = "origin" | "absolute" | "authority" | "asterisk";

/** The header fields that the server acts on, as sent (repeated lines joined with ", "). */
export interface RequestFields {
  /** `Accept`. */
  accept?: string;
  /** `Accept-Encoding`. */
  acceptEncoding?: string;
  /** `Range`. */
  range?: string;
  /** `If-Range`. */
  ifRange?: string;
  /** `If-Match`. */
  ifMatch?: string;
  /** `If-None-Match`. */
  ifNoneMatch?: string;
  /** `If-Modified-Since`. */
  ifModifiedSince?: string;
  /** `If-Unmodified-Since`. */
  ifUnmodifiedSince?: string;
  /** `Origin`. */
  origin?: string;
  /** `Access-Control-Request-Method`. */
  accessControlRequestMethod?: string;
  /** `Expect`. */
  expect?: string;
}

/** A parsed request head. */
export interface RequestHead {
  /** The method token, case preserved. */
  method: string;
  /** The request target exactly as sent. */
  target: string;
  /** The form of the target. */
  form: TargetForm;
  /** Path and query: the target itself in origin-form, the part after the authority in absolute-form, else "". */
  path: string;
  /** HTTP minor version: 0 or 1 (one above 1 is read as 1, RFC 9110 section 2.5). */
  minor: number;
  /** HTTP minor version as sent, 0 to 9: what the access log shows. */
  sentMinor: number;
  /** The `Host` field value, "" when absent. */
  host: string;
  /** The `Content-Length` value, -1 when absent. */
  contentLength: number;
  /** True when the body is framed by `Transfer-Encoding: chunked`. */
  chunked: boolean;
  /** True when the connection may stay open after the response. */
  keepAlive: boolean;
  /** The header fields the server acts on. */
  fields: RequestFields;
}

/** The answer of {@linkcode parseRequestHead}. */
export type ParseResult =
  | { kind: "complete"; head: RequestHead; consumed: number }
  | { kind: "partial" }
  | ParseError;

/**
 * The `error` answer of {@linkcode parseRequestHead}. When the request line
 * was complete and valid and the error came after it (a field, a limit on the
 * head, a missing `Host`), `lineStart` and `lineEnd` say where that line lies
 * in `buf` (CRLF excluded), so that it can be logged.
 */
export interface ParseError {
  /** The kind of answer. */
  kind: "error";
  /** The status to answer. */
  status: StatusCode;
  /** Why, in a few words. */
  reason: string;
  /** Where the request line starts in `buf`, when it was complete and valid. */
  lineStart?: number;
  /** Where the request line ends in `buf` (its CR), when it was complete and valid. */
  lineEnd?: number;
}

/** Options of {@linkcode parseRequestHead}. */
export interface ParseOptions {
  /** Limits; each defaults to {@linkcode PARSE_LIMITS}. */
  limits?: Partial<ParseLimits>;
  /** Where the request starts in `buf` (default 0); `consumed` counts from here. */
  start?: number;
  /** Where the bytes received so far end in `buf` (default its length). */
  end?: number;
}

const CR = 13;
const LF = 10;
const SP = 32;
const HT = 9;
const COLON = 58;

const enum Field {
  Other,
  Host,
  ContentLength,
  TransferEncoding,
  Connection,
  Accept,
  AcceptEncoding,
  Range,
  IfRange,
  IfMatch,
  IfNoneMatch,
  IfModifiedSince,
  IfUnmodifiedSince,
  Origin,
  AccessControlRequestMethod,
  Expect,
}

const FIELD_NAMES: [string, Field][] = [
  ["host", Field.Host],
  ["content-length", Field.ContentLength],
  ["transfer-encoding", Field.TransferEncoding],
  ["connection", Field.Connection],
  ["accept", Field.Accept],
  ["accept-encoding", Field.AcceptEncoding],
  ["range", Field.Range],
  ["if-range", Field.IfRange],
  ["if-match", Field.IfMatch],
  ["if-none-match", Field.IfNoneMatch],
  ["if-modified-since", Field.IfModifiedSince],
  ["if-unmodified-since", Field.IfUnmodifiedSince],
  ["origin", Field.Origin],
  ["access-control-request-method", Field.AccessControlRequestMethod],
  ["expect", Field.Expect],
];

const FIELD_KEYS: Partial<Record<Field, keyof RequestFields>> = {
  [Field.Accept]: "accept",
  [Field.AcceptEncoding]: "acceptEncoding",
  [Field.Range]: "range",
  [Field.IfRange]: "ifRange",
  [Field.IfMatch]: "ifMatch",
  [Field.IfNoneMatch]: "ifNoneMatch",
  [Field.IfModifiedSince]: "ifModifiedSince",
  [Field.IfUnmodifiedSince]: "ifUnmodifiedSince",
  [Field.Origin]: "origin",
  [Field.AccessControlRequestMethod]: "accessControlRequestMethod",
  [Field.Expect]: "expect",
};

/** Known field names grouped by length, as lowercase bytes. */
const FIELDS_BY_LENGTH: [Uint8Array, Field][][] = [];
for (const [name, id] of FIELD_NAMES) {
  (FIELDS_BY_LENGTH[name.length] ??= []).push([
    new TextEncoder().encode(name),
    id,
  ]);
}

const METHODS = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "OPTIONS",
  "PATCH",
  "CONNECT",
  "TRACE",
];

const PARTIAL: ParseResult = Object.freeze({ kind: "partial" });

/** The fields of every head that has none the server acts on (frozen: shared). */
const NO_FIELDS: RequestFields = Object.freeze({});

function fail(status: StatusCode, reason: string): ParseResult {
  return { kind: "error", status, reason };
}

/** An error found after a complete, valid request line at [lineStart, lineEnd). */
function failAfterLine(
  status: StatusCode,
  reason: string,
  lineStart: number,
  lineEnd: number,
): ParseResult {
  return { kind: "error", status, reason, lineStart, lineEnd };
}

const LINE_TOO_LONG: ParseResult = Object.freeze({
  kind: "error",
  status: STATUS_CODE.URITooLong,
  reason: "Request line too long",
});

/** `partial`, or `error` when a limit is already passed. */
function partialUnless(over: boolean, error: ParseResult): ParseResult {
  return over ? error : PARTIAL;
}

/** `partial`, or `431` (naming the request line) when the head is already too large. */
function partialUnlessTooLarge(
  over: boolean,
  lineStart: number,
  lineEnd: number,
): ParseResult {
  return over
    ? failAfterLine(
      STATUS_CODE.RequestHeaderFieldsTooLarge,
      "Head too large",
      lineStart,
      lineEnd,
    )
    : PARTIAL;
}

/** Slots of the cache of short decoded strings (a power of two). */
const INTERNED = 512;
/** Longest string the cache keeps. */
const INTERNED_LENGTH = 64;
const interned: string[] = new Array(INTERNED).fill("");
/** The bytes of each cached string, `INTERNED_LENGTH` per slot: comparing bytes with bytes is cheaper than with a string's characters. */
const internedBytes = new Uint8Array(INTERNED * INTERNED_LENGTH);

/**
 * Decodes bytes in [start, end) as Latin-1 (every byte one UTF-16 unit).
 * Short strings are remembered by a hash of their bytes: a client sends the
 * same path and `Host` again and again, and a hit allocates nothing.
 */
export function latin1(buf: Uint8Array, start: number, end: number): string {
  let h = 0;
  if (end - start <= INTERNED_LENGTH) {
    for (let k = start; k < end; k++) h = (Math.imul(h, 31) + buf[k]) | 0;
  }
  return latin1Hashed(buf, start, end, h);
}

/** Decodes a string too long for the cache (kept apart so that the cached path stays small enough to inline). */
function latin1Long(buf: Uint8Array, start: number, end: number): string {
  let s = "";
  while (start < end) {
    const stop = Math.min(end, start + 4096);
    s += String.fromCharCode.apply(
      null,
      buf.subarray(start, stop) as unknown as number[],
    );
    start = stop;
  }
  return s;
}

/**
 * {@linkcode latin1} for a caller that hashed the bytes while scanning them
 * (from 0, `h * 31 + byte` per byte, 32 bits): a string of at most
 * `INTERNED_LENGTH` bytes comes from the cache, or is decoded and cached.
 */
function latin1Hashed(
  buf: Uint8Array,
  start: number,
  end: number,
  h: number,
): string {
  if (end - start > INTERNED_LENGTH) return latin1Long(buf, start, end);
  const slot = h & (INTERNED - 1);
  const seen = interned[slot];
  const at = slot * INTERNED_LENGTH - start;
  if (seen.length === end - start) {
    let k = start;
    while (k < end && internedBytes[at + k] === buf[k]) k++;
    if (k === end) return seen;
  }
  let s = "";
  for (let k = start; k < end; k++) {
    internedBytes[at + k] = buf[k];
    s += String.fromCharCode(buf[k]);
  }
  interned[slot] = s;
  return s;
}

function fieldOf(buf: Uint8Array, start: number, end: number): Field {
  const candidates = FIELDS_BY_LENGTH[end - start];
  if (candidates === undefined) return Field.Other;
  outer: for (let c = 0; c < candidates.length; c++) {
    const name = candidates[c][0];
    for (let k = 0; k < name.length; k++) {
      // Only token bytes reach here; `| 0x20` lowercases letters and maps no
      // other token byte onto a letter, digit or "-".
      if ((buf[start + k] | 0x20) !== name[k]) continue outer;
    }
    return candidates[c][1];
  }
  return Field.Other;
}

function methodOf(buf: Uint8Array, start: number, end: number): string {
  if (
    end - start === 3 && buf[start] === 0x47 && buf[start + 1] === 0x45 &&
    buf[start + 2] === 0x54
  ) return "GET";
  for (const m of METHODS) {
    if (m.length !== end - start) continue;
    let k = 0;
    while (k < m.length && buf[start + k] === m.charCodeAt(k)) k++;
    if (k === m.length) return m;
  }
  return latin1(buf, start, end);
}

function lowerEquals(
  buf: Uint8Array,
  start: number,
  end: number,
  word: string,
): boolean {
  if (end - start !== word.length) return false;
  for (let k = 0; k < word.length; k++) {
    if ((buf[start + k] | 0x20) !== word.charCodeAt(k)) return false;
  }
  return true;
}

/** Transfer-Encoding state gathered over all its lines. */
interface TransferCodings {
  chunkedCount: number;
  lastIsChunked: boolean;
  other: boolean;
}

/**
 * Walks a comma-separated list of tokens in [start, end), calling `each` with
 * each element's bounds; empty elements are skipped (RFC 9110 section 5.6.1).
 * Returns false when an element is not a token.
 */
function eachToken(
  buf: Uint8Array,
  start: number,
  end: number,
  each: (s: number, e: number) => void,
): boolean {
  let i = start;
  while (i < end) {
    while (i < end && (buf[i] === SP || buf[i] === HT || buf[i] === 0x2c)) i++;
    if (i === end) break;
    const s = i;
    while (i < end && TCHAR[buf[i]] === 1) i++;
    const e = i;
    while (i < end && (buf[i] === SP || buf[i] === HT)) i++;
    if (e === s || (i < end && buf[i] !== 0x2c)) return false;
    each(s, e);
  }
  return true;
}

/**
 * Parses one request head from the start of `buf` (or from `options.start`,
 * without copying or viewing the bytes).
 *
 * Answers `partial` while the head is a valid prefix, `complete` with the
 * bytes consumed (the body, if any, follows), or `error` with the status to
 * send (after which the connection must close).
 */
export function parseRequestHead(
  buf: Uint8Array,
  options: ParseOptions = {},
): ParseResult {
  const limits = options.limits;
  const maxRequestLine = limits?.maxRequestLine ?? PARSE_LIMITS.maxRequestLine;
  const maxHeadSize = limits?.maxHeadSize ?? PARSE_LIMITS.maxHeadSize;
  const maxHeaders = limits?.maxHeaders ?? PARSE_LIMITS.maxHeaders;
  const maxMethod = limits?.maxMethod ?? PARSE_LIMITS.maxMethod;
  const start = options.start ?? 0;
  const len = options.end ?? buf.length;
  let i = start;

  // RFC 9112 section 2.2: ignore empty lines before the request line.
  while (i < start + 8 && i + 1 < len && buf[i] === CR && buf[i + 1] === LF) {
    i += 2;
  }
  if (i + 1 === len && buf[i] === CR) return PARTIAL;
  const lineStart = i;

  // method SP
  while (i < len && TCHAR[buf[i]] === 1) i++;
  if (i - lineStart > maxMethod) {
    return fail(STATUS_CODE.NotImplemented, "Method too long");
  }
  if (i === len) {
    return partialUnless(i - lineStart > maxRequestLine, LINE_TOO_LONG);
  }
  if (buf[i] !== SP || i === lineStart) {
    return fail(STATUS_CODE.BadRequest, "Invalid method");
  }
  const method = methodOf(buf, lineStart, i);
  i++;

  // request-target SP
  const targetStart = i;
  let targetHash = 0; // as latin1() hashes, computed while scanning
  while (i < len && TARGET_CHAR[buf[i]] === 1) {
    targetHash = (Math.imul(targetHash, 31) + buf[i]) | 0;
    i++;
  }
  if (i === len) {
    return partialUnless(i - lineStart > maxRequestLine, LINE_TOO_LONG);
  }
  if (buf[i] !== SP || i === targetStart) {
    return fail(STATUS_CODE.BadRequest, "Invalid request target");
  }
  const targetEnd = i;
  i++;

  // HTTP-version CRLF: "HTTP/" DIGIT "." DIGIT
  const versionStart = i;
  const PREFIX = "HTTP/";
  if (
    i + 10 <= len && buf[i] === 0x48 && buf[i + 1] === 0x54 &&
    buf[i + 2] === 0x54 && buf[i + 3] === 0x50 && buf[i + 4] === 0x2f &&
    buf[i + 5] === 0x31 && buf[i + 6] === 0x2e && buf[i + 7] === 0x31 &&
    buf[i + 8] === CR && buf[i + 9] === LF
  ) {
    i += 10; // "HTTP/1.1" CRLF: the common case, checked in one go
  } else {
    for (let k = 0; k < 10; k++, i++) {
      if (i === len) {
        return partialUnless(
          Math.min(i, versionStart + 8) - lineStart > maxRequestLine,
          LINE_TOO_LONG,
        ); // CRLF is not counted
      }
      const c = buf[i];
      const ok = k < 5
        ? c === PREFIX.charCodeAt(k)
        : k === 6
        ? c === 0x2e
        : k === 5 || k === 7
        ? c >= 0x30 && c <= 0x39
        : k === 8
        ? c === CR
        : c === LF;
      if (!ok) return fail(STATUS_CODE.BadRequest, "Invalid HTTP version");
    }
  }
  if (i - 2 - lineStart > maxRequestLine) {
    return partialUnless(i - 2 - lineStart > maxRequestLine, LINE_TOO_LONG);
  }
  const major = buf[versionStart + 5] - 0x30;
  // RFC 9110 section 2.5: a minor version above ours is read as ours.
  const sentMinor = buf[versionStart + 7] - 0x30;
  const minor = Math.min(sentMinor, 1);
  if (major !== 1) {
    return fail(
      STATUS_CODE.HTTPVersionNotSupported,
      "Unsupported HTTP version",
    );
  }

  // The target and its form (RFC 9112 section 3.2).
  const target = latin1Hashed(buf, targetStart, targetEnd, targetHash);
  let form: TargetForm;
  let path = "";
  // Set by "Connection: close", and by CONNECT: what follows its head may be
  // tunnel data (RFC 9110 section 9.3.6), never read as a request.
  let connectionClose = false;
  if (method === "CONNECT") {
    // Authority-form only: `uri-host ":" port` (RFC 9112 section 3.2.3).
    if (!isAuthorityForm(buf, targetStart, targetEnd)) {
      return fail(STATUS_CODE.BadRequest, "Invalid authority");
    }
    form = "authority";
    connectionClose = true;
  } else if (buf[targetStart] === 0x2f) {
    form = "origin";
    path = target;
  } else if (target === "*") {
    if (method !== "OPTIONS") {
      return fail(STATUS_CODE.BadRequest, "Asterisk target without OPTIONS");
    }
    form = "asterisk";
  } else {
    const scheme = /^https?:\/\//i.exec(target);
    if (scheme === null) {
      return fail(STATUS_CODE.BadRequest, "Invalid request target");
    }
    form = "absolute";
    const rest = target.slice(scheme[0].length);
    const cut = rest.search(/[/?#]/);
    if (cut === 0 || rest === "") {
      return fail(STATUS_CODE.BadRequest, "Empty authority");
    }
    // Its authority is a Host value: no userinfo (RFC 9110 section 4.2.4).
    const authority = targetStart + scheme[0].length;
    const authorityEnd = cut < 0 ? targetEnd : authority + cut;
    for (let k = authority; k < authorityEnd; k++) {
      if (HOST_CHAR[buf[k]] !== 1) {
        return fail(STATUS_CODE.BadRequest, "Invalid authority");
      }
    }
    if (!isHost(buf, authority, authorityEnd)) {
      return fail(STATUS_CODE.BadRequest, "Invalid authority");
    }
    path = cut < 0
      ? "/"
      : rest[cut] === "/"
      ? rest.slice(cut)
      : "/" + rest.slice(cut);
  }

  // From here on the request line is complete and valid: errors say where
  // it lies.
  const lineEnd = versionStart + 8;

  // Field lines.
  let host: string | undefined;
  let contentLength = -1;
  let connectionKeepAlive = false;
  let te: TransferCodings | undefined;
  let fields: RequestFields | undefined;
  let count = 0;

  for (;;) {
    if (i === len) {
      return partialUnlessTooLarge(
        i - lineStart > maxHeadSize,
        lineStart,
        lineEnd,
      );
    }
    const first = buf[i];
    if (first === CR) {
      if (i + 1 === len) return PARTIAL;
      if (buf[i + 1] !== LF) {
        return failAfterLine(
          STATUS_CODE.BadRequest,
          "Bare CR",
          lineStart,
          lineEnd,
        );
      }
      i += 2;
      break;
    }
    if (first === SP || first === HT) {
      return failAfterLine(
        STATUS_CODE.BadRequest,
        "Obsolete line folding",
        lineStart,
        lineEnd,
      );
    }
    // field-name ":"
    const nameStart = i;
    while (i < len && TCHAR[buf[i]] === 1) i++;
    if (i === len) {
      return partialUnlessTooLarge(
        i - lineStart > maxHeadSize,
        lineStart,
        lineEnd,
      );
    }
    if (buf[i] !== COLON || i === nameStart) {
      return failAfterLine(
        STATUS_CODE.BadRequest,
        "Invalid field name",
        lineStart,
        lineEnd,
      );
    }
    const nameEnd = i;
    i++;
    // OWS field-value OWS CRLF
    while (i < len && (buf[i] === SP || buf[i] === HT)) i++;
    const valueStart = i;
    while (i < len && FIELD_CHAR[buf[i]] === 1) i++;
    // Trailing OWS is not part of the value (trimmed once the line is read).
    let valueEnd = i;
    while (
      valueEnd > valueStart &&
      (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HT)
    ) valueEnd--;
    if (i === len || (buf[i] === CR && i + 1 === len)) {
      return partialUnlessTooLarge(
        i - lineStart > maxHeadSize,
        lineStart,
        lineEnd,
      );
    }
    if (buf[i] !== CR) {
      return failAfterLine(
        STATUS_CODE.BadRequest,
        buf[i] === LF ? "Bare LF" : "Invalid character in field value",
        lineStart,
        lineEnd,
      );
    }
    if (buf[i + 1] !== LF) {
      return failAfterLine(
        STATUS_CODE.BadRequest,
        "Bare CR",
        lineStart,
        lineEnd,
      );
    }
    i += 2;
    if (++count > maxHeaders) {
      return failAfterLine(
        STATUS_CODE.RequestHeaderFieldsTooLarge,
        "Too many fields",
        lineStart,
        lineEnd,
      );
    }

    const field = fieldOf(buf, nameStart, nameEnd);
    switch (field) {
      case Field.Other:
        break;
      case Field.Host: {
        if (host !== undefined) {
          return failAfterLine(
            STATUS_CODE.BadRequest,
            "Repeated Host",
            lineStart,
            lineEnd,
          );
        }
        // Checked and hashed (as latin1() would) in one pass.
        let h = 0;
        for (let k = valueStart; k < valueEnd; k++) {
          const c = buf[k];
          if (HOST_CHAR[c] !== 1) {
            return failAfterLine(
              STATUS_CODE.BadRequest,
              "Invalid Host",
              lineStart,
              lineEnd,
            );
          }
          h = (Math.imul(h, 31) + c) | 0;
        }
        if (!isHost(buf, valueStart, valueEnd)) {
          return failAfterLine(
            STATUS_CODE.BadRequest,
            "Invalid Host",
            lineStart,
            lineEnd,
          );
        }
        host = latin1Hashed(buf, valueStart, valueEnd, h);
        break;
      }
      case Field.ContentLength: {
        if (contentLength !== -1) {
          return failAfterLine(
            STATUS_CODE.BadRequest,
            "Repeated Content-Length",
            lineStart,
            lineEnd,
          );
        }
        if (valueEnd === valueStart) {
          return failAfterLine(
            STATUS_CODE.BadRequest,
            "Invalid Content-Length",
            lineStart,
            lineEnd,
          );
        }
        let n = 0;
        let digits = 0; // significant ones: leading zeros are valid and free
        for (let k = valueStart; k < valueEnd; k++) {
          const d = buf[k] - 0x30;
          if (d < 0 || d > 9) {
            return failAfterLine(
              STATUS_CODE.BadRequest,
              "Invalid Content-Length",
              lineStart,
              lineEnd,
            );
          }
          if (d !== 0 || digits !== 0) digits++;
          n = n * 10 + d;
        }
        // A valid length past any body limit (and past exact integers).
        if (digits > 15) {
          return failAfterLine(
            STATUS_CODE.ContentTooLarge,
            "Content-Length too large",
            lineStart,
            lineEnd,
          );
        }
        contentLength = n;
        break;
      }
      case Field.TransferEncoding: {
        const codings: TransferCodings = te ??= {
          chunkedCount: 0,
          lastIsChunked: false,
          other: false,
        };
        const ok = eachToken(buf, valueStart, valueEnd, (s, e) => {
          if (lowerEquals(buf, s, e, "chunked")) {
            codings.chunkedCount++;
            codings.lastIsChunked = true;
          } else {
            codings.other = true;
            codings.lastIsChunked = false;
          }
        });
        if (!ok) {
          return failAfterLine(
            STATUS_CODE.BadRequest,
            "Invalid Transfer-Encoding",
            lineStart,
            lineEnd,
          );
        }
        break;
      }
      case Field.Connection: {
        const ok = eachToken(buf, valueStart, valueEnd, (s, e) => {
          if (lowerEquals(buf, s, e, "close")) connectionClose = true;
          else if (lowerEquals(buf, s, e, "keep-alive")) {
            connectionKeepAlive = true;
          }
        });
        if (!ok) {
          return failAfterLine(
            STATUS_CODE.BadRequest,
            "Invalid Connection",
            lineStart,
            lineEnd,
          );
        }
        break;
      }
      default: {
        const key = FIELD_KEYS[field]!;
        const value = latin1(buf, valueStart, valueEnd);
        fields ??= {};
        const prior = fields[key];
        fields[key] = prior === undefined ? value : prior + ", " + value;
      }
    }
  }

  if (i - lineStart > maxHeadSize) {
    return failAfterLine(
      STATUS_CODE.RequestHeaderFieldsTooLarge,
      "Head too large",
      lineStart,
      lineEnd,
    );
  }
  if (minor === 1 && host === undefined) {
    return failAfterLine(
      STATUS_CODE.BadRequest,
      "Missing Host",
      lineStart,
      lineEnd,
    );
  }

  // Message framing (RFC 9112 section 6).
  let chunked = false;
  if (te !== undefined) {
    if (contentLength !== -1) {
      return failAfterLine(
        STATUS_CODE.BadRequest,
        "Transfer-Encoding with Content-Length",
        lineStart,
        lineEnd,
      );
    }
    if (minor === 0) {
      return failAfterLine(
        STATUS_CODE.BadRequest,
        "Transfer-Encoding in HTTP/1.0",
        lineStart,
        lineEnd,
      );
    }
    if (te.chunkedCount !== 1 || !te.lastIsChunked) {
      return failAfterLine(
        STATUS_CODE.BadRequest,
        "Chunked is not the final coding",
        lineStart,
        lineEnd,
      );
    }
    if (te.other) {
      return failAfterLine(
        STATUS_CODE.NotImplemented,
        "Unsupported transfer coding",
        lineStart,
        lineEnd,
      );
    }
    chunked = true;
  }

  return {
    kind: "complete",
    consumed: i - start,
    head: {
      method,
      target,
      form,
      path,
      minor,
      sentMinor,
      host: host ?? "",
      contentLength,
      chunked,
      keepAlive: minor === 1
        ? !connectionClose
        : connectionKeepAlive && !connectionClose,
      fields: fields ?? NO_FIELDS,
    },
  };
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * True when bytes [start, end) are a `Host` value: `uri-host [ ":" port ]`
 * (RFC 9112 section 3.2, RFC 3986 section 3.2.2), the characters already
 * checked against `HOST_CHAR`. An empty value is valid (RFC 9110 section
 * 7.2); a port without a host is not.
 */
function isHost(buf: Uint8Array, start: number, end: number): boolean {
  let i = start;
  if (i < end && buf[i] === 0x5b) { // "["
    let close = i + 1;
    while (close < end && buf[close] !== 0x5d) close++;
    if (close === end || !isIpLiteral(buf, i + 1, close)) return false;
    i = close + 1;
  } else {
    // reg-name (an IPv4 address is one too): no brackets, whole escapes.
    for (; i < end; i++) {
      const c = buf[i];
      if (c === 0x3a) break; // ":"
      if (c === 0x5b || c === 0x5d) return false;
      if (c === 0x25) { // "%"
        if (
          i + 2 >= end || hexValue(buf[i + 1]) < 0 || hexValue(buf[i + 2]) < 0
        ) {
          return false;
        }
        i += 2;
      }
    }
  }
  if (i === end) return true;
  if (buf[i] !== 0x3a || i === start) return false;
  for (i++; i < end; i++) if (!isDigit(buf[i])) return false;
  return true;
}

/**
 * True when bytes [start, end) are an authority-form target: `uri-host ":"
 * port` (RFC 9112 section 3.2.3), a `Host` value whose port is not optional.
 */
function isAuthorityForm(buf: Uint8Array, start: number, end: number): boolean {
  let colon = end - 1;
  while (colon > start && isDigit(buf[colon])) colon--;
  if (colon <= start || buf[colon] !== 0x3a) return false;
  for (let k = start; k < end; k++) if (HOST_CHAR[buf[k]] !== 1) return false;
  return isHost(buf, start, end);
}

/** True when bytes [start, end) are the inside of an IP-literal: an IPv6 address or IPvFuture. */
function isIpLiteral(buf: Uint8Array, start: number, end: number): boolean {
  if (start === end) return false;
  if ((buf[start] | 0x20) === 0x76) { // "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
    let i = start + 1;
    while (i < end && hexValue(buf[i]) >= 0) i++;
    if (i === start + 1 || i + 1 >= end || buf[i] !== 0x2e) return false;
    // unreserved / sub-delims / ":": no "%", no "[" (the first "]" ended it)
    for (i++; i < end; i++) {
      if (buf[i] === 0x25 || buf[i] === 0x5b) return false;
    }
    return true;
  }
  let groups = 0;
  let elided = false;
  let i = start;
  if (buf[i] === 0x3a) {
    if (end - i < 2 || buf[i + 1] !== 0x3a) return false;
    elided = true;
    i += 2;
  }
  while (i < end) {
    let j = i;
    while (j < end && hexValue(buf[j]) >= 0) j++;
    if (j < end && buf[j] === 0x2e) { // a dotted IPv4 tail
      if (!isIpv4(buf, i, end)) return false;
      groups += 2;
      i = end;
      break;
    }
    if (j === i || j - i > 4) return false;
    groups++;
    i = j;
    if (i === end) break;
    if (buf[i] !== 0x3a || ++i === end) return false;
    if (buf[i] === 0x3a) {
      if (elided) return false;
      elided = true;
      i++;
    }
  }
  return elided ? groups <= 7 : groups === 8;
}

/** True when bytes [start, end) are a dotted IPv4 address (RFC 3986 dec-octets). */
function isIpv4(buf: Uint8Array, start: number, end: number): boolean {
  let i = start;
  for (let octet = 0; octet < 4; octet++) {
    if (octet > 0) {
      if (i === end || buf[i] !== 0x2e) return false;
      i++;
    }
    let value = 0;
    const first = i;
    while (i < end && isDigit(buf[i]) && i - first < 3) {
      value = value * 10 + buf[i] - 0x30;
      i++;
    }
    const digits = i - first;
    if (digits === 0 || value > 255 || (digits > 1 && buf[first] === 0x30)) {
      return false;
    }
  }
  return i === end;
}
