/**
 * Conditional requests (RFC 9110 section 13): strong ETags, HTTP-date parsing,
 * precondition evaluation for GET/HEAD and `If-Range`.
 *
 * Pure: no I/O. Times are milliseconds since the epoch; HTTP dates have
 * one-second precision, so modification times are floored to whole seconds
 * before they are compared with a date.
 *
 * @module
 */

import type { RequestFields } from "./http/request_parser.ts";

/** The validators of a selected representation. */
export interface Validators {
  /** A strong, quoted entity-tag, e.g. `"1a-18c2f"`. */
  etag: string;
  /** The modification time, in milliseconds since the epoch. */
  lastModified: number;
}

/** The outcome of evaluating the preconditions of a GET/HEAD request. */
export type Precondition = "proceed" | "not-modified" | "failed";

/** Options of {@linkcode makeEtag}. */
export interface MakeEtagOptions {
  /** A variant tag appended to the entity-tag, e.g. `"br"` or `"gz"`. */
  suffix?: string;
}

/** Options of {@linkcode parseHttpDate}. */
export interface ParseHttpDateOptions {
  /**
   * The current time in milliseconds since the epoch, used to resolve the
   * two-digit years of RFC 850 dates (default `Date.now()`).
   */
  now?: number;
}

const SP = 0x20;
const HTAB = 0x09;
const COMMA = 0x2c;

/** `[ W/ ] DQUOTE *etagc DQUOTE` (RFC 9110 section 8.8.3), matched in place. */
const ENTITY_TAG_RE = /(W\/)?"[\x21\x23-\x7e\x80-\xff]*"/y;
/** A whole field value that is one entity-tag. */
const SINGLE_ENTITY_TAG_RE = /^(W\/)?"[\x21\x23-\x7e\x80-\xff]*"$/;
/** Characters allowed in an ETag suffix (etagc without obs-text). */
const SUFFIX_RE = /^[\x21\x23-\x7e]+$/;

const DAY = "(Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const LONG_DAY = "(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)";
const MONTH = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";

/** `Sun, 06 Nov 1994 08:49:37 GMT`. */
const IMF_FIXDATE_RE = new RegExp(
  `^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`,
);
/** `Sunday, 06-Nov-94 08:49:37 GMT`. */
const RFC850_DATE_RE = new RegExp(
  `^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`,
);
/** `Sun Nov  6 08:49:37 1994`. */
const ASCTIME_DATE_RE = new RegExp(
  `^${DAY} ${MONTH} (\\d{2}| \\d) ${TIME} (\\d{4})$`,
);

const MONTHS: Readonly<Record<string, number>> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};

const DAYS_IN_MONTH: readonly number[] = [
  31,
  28,
  31,
  30,
  31,
  30,
  31,
  31,
  30,
  31,
  30,
  31,
];

const MS_PER_SECOND = 1000;
const FIFTY_YEARS_MS = 50 * 365.2425 * 24 * 60 * 60 * MS_PER_SECOND;

/** Returns a strong entity-tag for a file: `"<size hex>-<mtime ms hex>[-suffix]"`. */
export function makeEtag(
  size: number,
  mtime: number,
  options?: MakeEtagOptions,
): string {
  const suffix = options?.suffix;
  const base = `${size.toString(16)}-${Math.floor(mtime).toString(16)}`;
  if (suffix === undefined || suffix === "") return `"${base}"`;
  if (!SUFFIX_RE.test(suffix)) {
    throw new TypeError(`Invalid ETag suffix: ${JSON.stringify(suffix)}`);
  }
  return `"${base}-${suffix}"`;
}

/** Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since for GET/HEAD (RFC 9110 section 13.2.2). */
export function evaluatePreconditions(
  fields: RequestFields,
  validators: Validators,
): Precondition {
  // Step 1 and 2: If-Match, else If-Unmodified-Since.
  if (fields.ifMatch !== undefined) {
    if (!listMatches(fields.ifMatch, validators.etag, true)) return "failed";
  } else if (fields.ifUnmodifiedSince !== undefined) {
    const date = parseHttpDate(trimOws(fields.ifUnmodifiedSince));
    if (date !== undefined && floorSeconds(validators.lastModified) > date) {
      return "failed";
    }
  }
  // Step 3 and 4: If-None-Match, else If-Modified-Since.
  if (fields.ifNoneMatch !== undefined) {
    if (listMatches(fields.ifNoneMatch, validators.etag, false)) {
      return "not-modified";
    }
  } else if (fields.ifModifiedSince !== undefined) {
    const date = parseHttpDate(trimOws(fields.ifModifiedSince));
    if (date !== undefined && floorSeconds(validators.lastModified) <= date) {
      return "not-modified";
    }
  }
  return "proceed";
}

/**
 * Evaluates If-Match and If-None-Match for GET/HEAD of a representation that
 * has no validators (a directory listing): only `*` matches it; the date
 * conditions are ignored (RFC 9110 sections 13.1.1 to 13.1.4).
 */
export function evaluateUnvalidated(fields: RequestFields): Precondition {
  if (fields.ifMatch !== undefined && !listMatches(fields.ifMatch, "", true)) {
    return "failed";
  }
  if (
    fields.ifNoneMatch !== undefined &&
    listMatches(fields.ifNoneMatch, "", false)
  ) return "not-modified";
  return "proceed";
}

/** Reports whether an `If-Range` value lets a range request be served as 206 (RFC 9110 section 13.1.5). */
export function ifRangeMatches(
  ifRange: string | undefined,
  validators: Validators,
): boolean {
  if (ifRange === undefined) return true;
  const value = trimOws(ifRange);
  const tag = SINGLE_ENTITY_TAG_RE.exec(value);
  if (tag !== null) {
    return tag[1] === undefined && !isWeak(validators.etag) &&
      value === validators.etag;
  }
  const date = parseHttpDate(value);
  return date !== undefined && date === floorSeconds(validators.lastModified);
}

/** Parses an HTTP-date (IMF-fixdate, RFC 850 or asctime) to milliseconds since the epoch, or `undefined` if invalid. */
export function parseHttpDate(
  value: string,
  options?: ParseHttpDateOptions,
): number | undefined {
  let m = IMF_FIXDATE_RE.exec(value);
  if (m !== null) {
    return toTime(+m[4], MONTHS[m[3]], +m[2], +m[5], +m[6], +m[7]);
  }
  m = RFC850_DATE_RE.exec(value);
  if (m !== null) {
    const month = MONTHS[m[3]];
    const day = +m[2];
    const hour = +m[5];
    const minute = +m[6];
    const second = +m[7];
    // RFC 9110 section 5.6.7: a two-digit year that appears to be more than
    // 50 years in the future is the most recent past year with those digits;
    // one more than 50 years in the past is taken from the next century.
    const now = options?.now ?? Date.now();
    const century = Math.floor(new Date(now).getUTCFullYear() / 100) * 100;
    const year = century + +m[4];
    const time = toTime(year, month, day, hour, minute, second);
    if (time === undefined) return undefined;
    if (time - now > FIFTY_YEARS_MS) {
      return toTime(year - 100, month, day, hour, minute, second);
    }
    if (now - time > FIFTY_YEARS_MS) {
      return toTime(year + 100, month, day, hour, minute, second);
    }
    return time;
  }
  m = ASCTIME_DATE_RE.exec(value);
  if (m !== null) {
    return toTime(
      +m[7],
      MONTHS[m[2]],
      +trimOws(m[3]),
      +m[4],
      +m[5],
      +m[6],
    );
  }
  return undefined;
}

/**
 * Reports whether an `If-Match` / `If-None-Match` value (`"*" /
 * #entity-tag`, RFC 9110 sections 13.1.1 and 13.1.2) matches `etag`, with
 * strong comparison (`strong`) or weak comparison. `*` matches only as the
 * whole value: it is not a member of the list, so one mixed with tags (or
 * given twice) is a malformed member, skipped like the others, as nginx
 * does.
 */
function listMatches(list: string, etag: string, strong: boolean): boolean {
  if (trimOws(list) === "*") return true;
  const etagWeak = isWeak(etag);
  const etagOpaque = etagWeak ? etag.slice(2) : etag;
  const n = list.length;
  let i = 0;
  while (i < n) {
    const c = list.charCodeAt(i);
    if (c === SP || c === HTAB || c === COMMA) {
      i++;
      continue;
    }
    let matched = false;
    let end = -1;
    ENTITY_TAG_RE.lastIndex = i;
    const tag = ENTITY_TAG_RE.exec(list);
    if (tag !== null) {
      end = ENTITY_TAG_RE.lastIndex;
      const weak = tag[1] !== undefined;
      const opaque = weak ? tag[0].slice(2) : tag[0];
      matched = opaque === etagOpaque && (!strong || (!weak && !etagWeak));
    }
    if (end !== -1) {
      // A member must be followed by OWS and then a comma or the end.
      i = end;
      while (i < n && isOws(list.charCodeAt(i))) i++;
      if (i === n || list.charCodeAt(i) === COMMA) {
        if (matched) return true;
        continue;
      }
    }
    // Malformed member: skip to the next comma.
    const comma = list.indexOf(",", i);
    if (comma === -1) return false;
    i = comma + 1;
  }
  return false;
}

function isWeak(etag: string): boolean {
  return etag.startsWith("W/");
}

function isOws(c: number): boolean {
  return c === SP || c === HTAB;
}

function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && isOws(value.charCodeAt(start))) start++;
  while (end > start && isOws(value.charCodeAt(end - 1))) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

function floorSeconds(ms: number): number {
  return Math.floor(ms / MS_PER_SECOND) * MS_PER_SECOND;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** Milliseconds since the epoch of a validated UTC date-time, or `undefined`. */
function toTime(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
): number | undefined {
  const days = month === 1 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month];
  if (
    day < 1 || day > days || hour > 23 || minute > 59 || second > 59
  ) {
    return undefined;
  }
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
  const date = new Date(Date.UTC(2000, month, day, hour, minute, second));
  date.setUTCFullYear(year);
  return date.getTime();
}
