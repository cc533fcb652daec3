/**
 * Response bytes: the `Date` value (formatted once a second), response heads
 * encoded straight to bytes, HTML escaping and the error pages that are built
 * once at start-up.
 *
 * @module
 */

import { now } from "../clock.ts";
import { STATUS_CODE, STATUS_TEXT, type StatusCode } from "./status.ts";

/** The `Server` header value. */
export const SERVER_NAME = "static-srv";

/** The interim response that invites a client to send the content it holds back (`Expect: 100-continue`). */
export const CONTINUE_RESPONSE: Uint8Array = new TextEncoder().encode(
  "HTTP/1.1 100 Continue\r\n\r\n",
);

let dateSecond = -1;
let dateValue = "";

/** Formats `ms` (default: now) as an IMF-fixdate, cached for the current second. */
export function httpDate(ms: number = now()): string {
  const second = Math.floor(ms / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(second * 1000).toUTCString();
  }
  return dateValue;
}

/** Options of {@linkcode encodeResponse}. */
export interface ResponseOptions {
  /** Body bytes to send after the head (leave out for HEAD and streamed bodies). */
  body?: Uint8Array;
  /** `Content-Length` to announce; defaults to the body's length; `null` sends none (204, 304). */
  contentLength?: number | null;
  /** Send `Connection: close`. */
  close?: boolean;
  /** Send `Connection: keep-alive` (an HTTP/1.0 client that asked for it). */
  keepAlive?: boolean;
  /** Current time in ms for `Date` (tests). */
  now?: number;
  /** The `Server` value (default {@linkcode SERVER_NAME}). */
  server?: string;
}

const encoder = new TextEncoder();

/**
 * Encodes a response head, and the body when given, into one buffer.
 *
 * `fields` holds ready header lines, each ending in CRLF (ASCII only); `Date`,
 * `Server`, `Content-Length` and `Connection` are added here.
 */
export function encodeResponse(
  status: StatusCode,
  fields: string,
  options: ResponseOptions = {},
): Uint8Array {
  const body = options.body;
  const length = options.contentLength === undefined
    ? (body?.length ?? 0)
    : options.contentLength;
  let head = "HTTP/1.1 " + status + " " + STATUS_TEXT[status] +
    "\r\nDate: " + httpDate(options.now) + "\r\nServer: " +
    (options.server ?? SERVER_NAME) +
    "\r\n" + fields;
  if (length !== null) head += "Content-Length: " + length + "\r\n";
  if (options.close) head += "Connection: close\r\n";
  else if (options.keepAlive) head += "Connection: keep-alive\r\n";
  head += "\r\n";
  const out = new Uint8Array(head.length + (body?.length ?? 0));
  const { read, written } = encoder.encodeInto(head, out);
  if (read !== head.length || written !== head.length) {
    throw new TypeError(`Cannot encode non-ASCII header: "${head}"`);
  }
  if (body !== undefined) out.set(body, head.length);
  return out;
}

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/** The error statuses that get a page. */
export const ERROR_STATUSES: readonly StatusCode[] = [
  STATUS_CODE.BadRequest,
  STATUS_CODE.Forbidden,
  STATUS_CODE.NotFound,
  STATUS_CODE.MethodNotAllowed,
  STATUS_CODE.RequestTimeout,
  STATUS_CODE.PreconditionFailed,
  STATUS_CODE.ContentTooLarge,
  STATUS_CODE.URITooLong,
  STATUS_CODE.RangeNotSatisfiable,
  STATUS_CODE.RequestHeaderFieldsTooLarge,
  STATUS_CODE.InternalServerError,
  STATUS_CODE.NotImplemented,
  STATUS_CODE.ServiceUnavailable,
  STATUS_CODE.HTTPVersionNotSupported,
];

/** A small HTML page for `status`: fixed text only, never anything from the request. */
export function errorPage(status: StatusCode): Uint8Array {
  const title = escapeHtml(`${status} ${STATUS_TEXT[status]}`);
  return encoder.encode(
    `<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">` +
      `<title>${title}</title></head>\n<body>\n<h1>${title}</h1>\n` +
      `<hr><p>${SERVER_NAME}</p>\n</body>\n</html>\n`,
  );
}

/** Builds the page of every error status; `notFound` replaces the generated 404 page. */
export function buildErrorPages(
  notFound?: Uint8Array,
): Map<StatusCode, Uint8Array> {
  const pages = new Map<StatusCode, Uint8Array>();
  for (const status of ERROR_STATUSES) pages.set(status, errorPage(status));
  if (notFound !== undefined) pages.set(STATUS_CODE.NotFound, notFound);
  return pages;
}
