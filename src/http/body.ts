/**
 * Request body framing (RFC 9112 sections 6 and 7): a pure, incremental
 * decoder that walks a `chunked` body so the server can discard it and find
 * where the next request starts. A static server never uses a request body,
 * so the decoder keeps none of it.
 *
 * @module
 */

import { STATUS_CODE, type StatusCode } from "./status.ts";
import { FIELD_CHAR, hexValue, QDTEXT, TCHAR } from "./chars.ts";

/** Caller-set limits of the chunked decoder. */
export interface BodyLimits {
  /** Largest body, decoded; larger is 413. */
  maxBodySize: number;
  /** Longest chunk-size line with its extensions; longer is 400. */
  maxChunkLine: number;
  /** Largest trailer section; larger is 431. */
  maxTrailerSize: number;
  /** Most bytes of chunk extensions, and of leading zeros past a size's first digit, in one body; more is 413 (RFC 9112 section 7.1.1). */
  maxChunkExtensions: number;
}

/** Default body limits. */
export const BODY_LIMITS: Readonly<BodyLimits> = {
  maxBodySize: 1024 * 1024,
  maxChunkLine: 4096,
  maxTrailerSize: 16384,
  maxChunkExtensions: 16384,
};

/** The answer of {@linkcode ChunkedDecoder.feed}. */
export type ChunkedResult =
  | { kind: "done"; consumed: number }
  | { kind: "partial" }
  | { kind: "error"; status: StatusCode; reason: string };

const CR = 13;
const LF = 10;

const enum State {
  Size,
  /** In the chunk extensions; `#ext` says where. */
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerName,
  TrailerLine,
  TrailerLf,
  EndLf,
  Done,
}

/**
 * Where in `chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )` the
 * decoder is (RFC 9112 section 7.1.1); a value is a token or a quoted-string.
 */
const enum Ext {
  /** Before a ";" (right after the size or a value: the line may end). */
  BeforeSemi,
  /** Whitespace before a ";": BWS must be followed by ";", not end the line. */
  SpaceBeforeSemi,
  /** After ";": whitespace, then a name. */
  NameStart,
  Name,
  /** After a name: whitespace, "=", ";" or the end. */
  AfterName,
  /** After "=": whitespace, then a value. */
  ValueStart,
  Token,
  Quoted,
  QuotedEscape,
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** The next extension state for byte `c`, or -1 when `c` cannot come there. */
function nextExt(state: Ext, c: number): Ext | -1 {
  switch (state) {
    case Ext.BeforeSemi:
    case Ext.SpaceBeforeSemi:
      return isSpace(c) ? Ext.SpaceBeforeSemi : c === 0x3b ? Ext.NameStart : -1;
    case Ext.NameStart:
      return isSpace(c) ? Ext.NameStart : TCHAR[c] === 1 ? Ext.Name : -1;
    case Ext.Name:
    case Ext.AfterName:
      if (state === Ext.Name && TCHAR[c] === 1) return Ext.Name;
      return isSpace(c)
        ? Ext.AfterName
        : c === 0x3d
        ? Ext.ValueStart
        : c === 0x3b
        ? Ext.NameStart
        : -1;
    case Ext.ValueStart:
      return isSpace(c)
        ? Ext.ValueStart
        : c === 0x22
        ? Ext.Quoted
        : TCHAR[c] === 1
        ? Ext.Token
        : -1;
    case Ext.Token:
      return TCHAR[c] === 1
        ? Ext.Token
        : isSpace(c)
        ? Ext.SpaceBeforeSemi
        : c === 0x3b
        ? Ext.NameStart
        : -1;
    case Ext.Quoted:
      return c === 0x22
        ? Ext.BeforeSemi
        : c === 0x5c
        ? Ext.QuotedEscape
        : QDTEXT[c] === 1
        ? Ext.Quoted
        : -1;
    case Ext.QuotedEscape:
      return isSpace(c) || (c > 0x20 && c !== 0x7f) ? Ext.Quoted : -1;
  }
}

/** True when the extensions may end (CRLF) in `state`: not after whitespace, which the grammar allows only before ";" or "=". */
function extMayEnd(state: Ext): boolean {
  return state === Ext.BeforeSemi || state === Ext.Name ||
    state === Ext.Token;
}

const PARTIAL: ChunkedResult = Object.freeze({ kind: "partial" });

/**
 * Walks a chunked body fed in pieces. Each {@linkcode feed} consumes the whole
 * slice it is given unless the body ends inside it, in which case it answers
 * `done` with the bytes consumed from that slice.
 */
export class ChunkedDecoder {
  #limits: BodyLimits;
  #state = State.Size;
  #ext = Ext.BeforeSemi;
  #size = 0;
  #digits = 0;
  /** Digits of the chunk size after its leading zeros. */
  #significant = 0;
  #remaining = 0;
  #total = 0;
  #lineLength = 0;
  #trailerSize = 0;
  /** Bytes of extensions and extra leading zeros so far: what only costs. */
  #extensions = 0;

  /** Creates a decoder with the given limits (defaults: {@linkcode BODY_LIMITS}). */
  constructor(limits: Partial<BodyLimits> = {}) {
    this.#limits = { ...BODY_LIMITS, ...limits };
  }

  /** Feeds bytes [start, end) of `buf`; see the class description. */
  feed(buf: Uint8Array, start = 0, end: number = buf.length): ChunkedResult {
    const limits = this.#limits;
    let i = start;
    while (i < end) {
      const c = buf[i];
      switch (this.#state) {
        case State.Size: {
          const v = hexValue(c);
          if (v >= 0) {
            // Leading zeros count only toward the chunk line's length.
            if (++this.#digits > limits.maxChunkLine) {
              return this.#fail("Chunk line too long");
            }
            if (this.#size > 0 || v > 0) {
              if (++this.#significant > 15) {
                return this.#fail("Chunk size too long");
              }
            } else if (this.#digits > 1 && this.#extensionsGrow()) {
              return this.#tooManyExtensions();
            }
            this.#size = this.#size * 16 + v;
            if (this.#total + this.#size > limits.maxBodySize) {
              return this.#fail("Body too large", STATUS_CODE.ContentTooLarge);
            }
          } else if (this.#digits === 0) {
            return this.#fail("Invalid chunk size");
          } else if (c === CR) {
            this.#state = State.SizeLf;
          } else if (c === 0x3b || isSpace(c)) {
            this.#state = State.Ext;
            this.#ext = c === 0x3b ? Ext.NameStart : Ext.SpaceBeforeSemi;
            this.#lineLength = this.#digits + 1;
            if (this.#extensionsGrow()) return this.#tooManyExtensions();
          } else {
            return this.#fail("Invalid chunk size");
          }
          i++;
          break;
        }
        case State.Ext: {
          if (c === CR) {
            if (!extMayEnd(this.#ext)) {
              return this.#fail("Invalid chunk extension");
            }
            this.#state = State.SizeLf;
          } else {
            const next = nextExt(this.#ext, c);
            if (next === -1) return this.#fail("Invalid chunk extension");
            this.#ext = next;
            if (++this.#lineLength > limits.maxChunkLine) {
              return this.#fail("Chunk line too long");
            }
            if (this.#extensionsGrow()) return this.#tooManyExtensions();
          }
          i++;
          break;
        }
        case State.SizeLf: {
          if (c !== LF) return this.#fail("Bare CR in chunk line");
          i++;
          this.#total += this.#size;
          this.#remaining = this.#size;
          this.#state = this.#size === 0 ? State.TrailerStart : State.Data;
          this.#size = 0;
          this.#digits = 0;
          this.#significant = 0;
          break;
        }
        case State.Data: {
          const take = Math.min(this.#remaining, end - i);
          this.#remaining -= take;
          i += take;
          if (this.#remaining === 0) this.#state = State.DataCr;
          break;
        }
        case State.DataCr: {
          if (c !== CR) return this.#fail("Missing CRLF after chunk data");
          this.#state = State.DataLf;
          i++;
          break;
        }
        case State.DataLf: {
          if (c !== LF) return this.#fail("Missing CRLF after chunk data");
          this.#state = State.Size;
          i++;
          break;
        }
        case State.TrailerStart: {
          // The empty line that ends the trailer section is not part of it.
          if (c === CR) this.#state = State.EndLf;
          else if (TCHAR[c] !== 1) return this.#fail("Invalid trailer line");
          else {
            this.#state = State.TrailerName;
            if (this.#trailerGrows()) return this.#tooLarge();
          }
          i++;
          break;
        }
        case State.TrailerName: {
          // field-name ":" (no whitespace before the colon)
          if (c === 0x3a) this.#state = State.TrailerLine;
          else if (TCHAR[c] !== 1) return this.#fail("Invalid trailer line");
          if (this.#trailerGrows()) return this.#tooLarge();
          i++;
          break;
        }
        case State.TrailerLine: {
          if (c === CR) this.#state = State.TrailerLf;
          else if (FIELD_CHAR[c] !== 1) {
            return this.#fail("Invalid trailer line");
          }
          if (this.#trailerGrows()) return this.#tooLarge();
          i++;
          break;
        }
        case State.TrailerLf: {
          if (c !== LF) return this.#fail("Bare CR in trailer");
          this.#state = State.TrailerStart;
          if (this.#trailerGrows()) return this.#tooLarge();
          i++;
          break;
        }
        case State.EndLf: {
          if (c !== LF) return this.#fail("Bare CR after trailers");
          this.#state = State.Done;
          return { kind: "done", consumed: i + 1 - start };
        }
        case State.Done:
          return { kind: "done", consumed: i - start };
      }
    }
    return PARTIAL;
  }

  #extensionsGrow(): boolean {
    return ++this.#extensions > this.#limits.maxChunkExtensions;
  }

  #tooManyExtensions(): ChunkedResult {
    return this.#fail(
      "Chunk extensions too large",
      STATUS_CODE.ContentTooLarge,
    );
  }

  #trailerGrows(): boolean {
    return ++this.#trailerSize > this.#limits.maxTrailerSize;
  }

  #tooLarge(): ChunkedResult {
    return this.#fail(
      "Trailer section too large",
      STATUS_CODE.RequestHeaderFieldsTooLarge,
    );
  }

  #fail(
    reason: string,
    status: StatusCode = STATUS_CODE.BadRequest,
  ): ChunkedResult {
    return { kind: "error", status, reason };
  }
}
