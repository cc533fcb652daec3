/**
 * Byte range requests (RFC 9110 section 14): `Range` header parsing with an
 * amplification guard, and the layout of `multipart/byteranges` bodies.
 *
 * Pure: no I/O. A malformed or abusive `Range` header yields `none`, so that
 * the server sends the whole representation with 200, as RFC 9110 section
 * 14.2 allows.
 *
 * @module
 */

/** An inclusive byte range, clamped to the representation. */
export interface ByteRange {
  /** The first byte offset. */
  start: number;
  /** The last byte offset (inclusive). */
  end: number;
}

/** The outcome of parsing a `Range` header. */
export type RangeResult =
  | { kind: "none" }
  | { kind: "ranges"; ranges: ByteRange[] }
  | { kind: "unsatisfiable" };

/** Options of {@linkcode parseRange}. */
export interface RangeOptions {
  /** The most range specs accepted; more yields `none` (default {@linkcode RANGE_LIMITS}). */
  maxRanges?: number;
}

/** Default limits of {@linkcode parseRange}. */
export const RANGE_LIMITS: Readonly<Required<RangeOptions>> = {
  maxRanges: 16,
};

/** One part of a `multipart/byteranges` body: its head, then the range bytes. */
export interface MultipartPart {
  /** The delimiter and part header fields, sent before the range bytes. */
  head: Uint8Array;
  /** The range whose bytes follow the head. */
  range: ByteRange;
}

/** The layout of a `multipart/byteranges` body (RFC 9110 section 14.6). */
export interface MultipartLayout {
  /** The parts, in order. */
  parts: MultipartPart[];
  /** The close delimiter, sent after the last part. */
  tail: Uint8Array;
  /** The body length in bytes: heads, range bytes and tail. */
  length: number;
  /** The `Content-Type` of the whole body. */
  contentType: string;
}

/** Options of {@linkcode multipartLayout}. */
export interface MultipartOptions {
  /** The `Content-Type` of the selected representation, sent in each part. */
  contentType: string;
  /** The boundary: 1 to 70 characters from `0-9A-Za-z'+_.-`. */
  boundary: string;
}

/** A range spec: `first-last`, `first-` or `-suffix`. */
const RANGE_SPEC_RE = /^(?:(\d+)-(\d+)?|-(\d+))$/;
/** A boundary that is both a token and made of RFC 2046 bchars. */
const BOUNDARY_RE = /^[0-9A-Za-z'+_.-]{1,70}$/;
/** Visible ASCII, SP and HTAB: no CR, LF or other controls. */
const FIELD_VALUE_RE = /^[\t\x20-\x7e]+$/;

const encoder = new TextEncoder();

/** Parses a `Range` header against a representation of `size` bytes. */
export function parseRange(
  header: string | undefined,
  size: number,
  options?: RangeOptions,
): RangeResult {
  const maxRanges = options?.maxRanges ?? RANGE_LIMITS.maxRanges;
  if (!(maxRanges >= 1)) {
    throw new RangeError(
      `Invalid maxRanges "${maxRanges}": expected 1 or more`,
    );
  }
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(
      `Invalid size "${size}": expected a non-negative integer`,
    );
  }
  if (header === undefined || size === 0) return NONE;
  const eq = header.indexOf("=");
  if (eq === -1 || header.slice(0, eq).toLowerCase() !== "bytes") return NONE;

  const ranges: ByteRange[] = [];
  let count = 0;
  let pos = eq + 1;
  while (pos <= header.length) {
    let comma = header.indexOf(",", pos);
    if (comma === -1) comma = header.length;
    const spec = trimOws(header.slice(pos, comma));
    pos = comma + 1;
    if (spec === "") continue;
    if (++count > maxRanges) return NONE;
    const m = RANGE_SPEC_RE.exec(spec);
    if (m === null) return NONE;
    if (m[3] !== undefined) {
      const suffix = +m[3];
      if (suffix > 0) {
        ranges.push({ start: Math.max(0, size - suffix), end: size - 1 });
      }
      continue;
    }
    // Past 2^53 a number loses precision but still exceeds any size; the
    // order of first and last is decided on the digits.
    const start = +m[1];
    const last = m[2] === undefined ? Infinity : +m[2];
    if (m[2] !== undefined && digitsLess(m[2], m[1])) return NONE;
    if (start < size) ranges.push({ start, end: Math.min(last, size - 1) });
  }
  if (count === 0) return NONE;
  if (ranges.length === 0) return UNSATISFIABLE;
  if (overlaps(ranges)) return NONE;
  return { kind: "ranges", ranges };
}

/** True when the decimal `a` is less than the decimal `b` (any length, leading zeros allowed). */
function digitsLess(a: string, b: string): boolean {
  a = a.replace(/^0+(?=\d)/, "");
  b = b.replace(/^0+(?=\d)/, "");
  return a.length !== b.length ? a.length < b.length : a < b;
}

/** Lays out a `multipart/byteranges` body for `ranges` of a representation of `size` bytes. */
export function multipartLayout(
  ranges: readonly ByteRange[],
  size: number,
  options: MultipartOptions,
): MultipartLayout {
  const { contentType, boundary } = options;
  if (!BOUNDARY_RE.test(boundary)) {
    throw new TypeError(
      `Invalid multipart boundary: ${JSON.stringify(boundary)}`,
    );
  }
  if (!FIELD_VALUE_RE.test(contentType)) {
    throw new TypeError(`Invalid content type: ${JSON.stringify(contentType)}`);
  }
  const parts: MultipartPart[] = [];
  let length = 0;
  for (const range of ranges) {
    const { start, end } = range;
    if (
      !Number.isSafeInteger(start) || !Number.isSafeInteger(end) ||
      start < 0 || start > end || end >= size
    ) {
      throw new RangeError(`Invalid byte range "${start}-${end}/${size}"`);
    }
    const head = encoder.encode(
      `\r\n--${boundary}\r\nContent-Type: ${contentType}\r\n` +
        `Content-Range: bytes ${start}-${end}/${size}\r\n\r\n`,
    );
    parts.push({ head, range: { start, end } });
    length += head.byteLength + end - start + 1;
  }
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  length += tail.byteLength;
  return {
    parts,
    tail,
    length,
    contentType: `multipart/byteranges; boundary=${boundary}`,
  };
}

const NONE: RangeResult = Object.freeze({ kind: "none" });
const UNSATISFIABLE: RangeResult = Object.freeze({ kind: "unsatisfiable" });

/** Reports whether any two ranges share a byte. */
function overlaps(ranges: readonly ByteRange[]): boolean {
  if (ranges.length < 2) return false;
  const sorted = ranges.toSorted((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].start <= sorted[i - 1].end) return true;
  }
  return false;
}

function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && isOws(value.charCodeAt(start))) start++;
  while (end > start && isOws(value.charCodeAt(end - 1))) end--;
  return value.slice(start, end);
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
