/**
 * Request-target sanitising: pure string work, no file system. It turns the
 * path-and-query of a request into a normalised, decoded path. Containment
 * under the root (symlinks included) is the resolver's job, not this one's.
 *
 * @module
 */

import { hexValue } from "./http/chars.ts";
import { STATUS_CODE, type StatusCode } from "./http/status.ts";

/** A sanitised request path. */
export interface SanitizedTarget {
  /** Decoded path: starts with "/", no empty, "." or ".." segment, no trailing "/" (except "/" itself). */
  path: string;
  /** The decoded segments of `path` (none for "/"). */
  segments: string[];
  /** True when the target ended with "/" (or a dot segment), as a directory request. */
  directory: boolean;
  /** The query with its "?", or "" (the fragment is dropped). */
  query: string;
}

/** The answer of {@linkcode sanitizeTarget}. */
export type TargetResult =
  | { ok: true; target: SanitizedTarget }
  | { ok: false; status: StatusCode; reason: string };

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const NON_ASCII = /[\u0080-\uffff]/;

function bad(reason: string): TargetResult {
  return { ok: false, status: STATUS_CODE.BadRequest, reason };
}

/** Percent-decodes `raw` (a URI: ASCII) as UTF-8; undefined when it holds a character above U+007F, or an escape or the UTF-8 is invalid (overlong forms included). */
export function percentDecode(raw: string): string | undefined {
  if (!raw.includes("%")) return NON_ASCII.test(raw) ? undefined : raw;
  const bytes = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25) {
      const hi = hexValue(raw.charCodeAt(i + 1));
      const lo = hexValue(raw.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return undefined;
      bytes[n++] = hi * 16 + lo;
      i += 2;
    } else if (c > 0x7f) {
      return undefined;
    } else {
      bytes[n++] = c;
    }
  }
  try {
    return utf8.decode(bytes.subarray(0, n));
  } catch {
    return undefined;
  }
}

/**
 * Sanitises an origin-form path-and-query (`/a/b?q`): drops the query and
 * fragment, percent-decodes (bad escapes and invalid UTF-8 are 400), rejects
 * NUL, other control characters and backslashes (400), and resolves dot
 * segments without ever climbing above "/" (as RFC 3986 section 5.2.4 does).
 */
export function sanitizeTarget(pathAndQuery: string): TargetResult {
  if (pathAndQuery.charCodeAt(0) !== 0x2f) return bad("Path must start with /");
  let end = pathAndQuery.length;
  let query = "";
  const q = pathAndQuery.indexOf("?");
  const h = pathAndQuery.indexOf("#");
  if (h >= 0 && (q < 0 || h < q)) end = h;
  else if (q >= 0) {
    end = q;
    query = pathAndQuery.slice(q, h >= 0 ? h : pathAndQuery.length);
  }
  const decoded = percentDecode(pathAndQuery.slice(0, end));
  if (decoded === undefined) return bad("Invalid percent-encoding");
  for (let i = 0; i < decoded.length; i++) {
    const c = decoded.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return bad("Control character in path");
    if (c === 0x5c) return bad("Backslash in path");
  }

  const segments: string[] = [];
  let directory = false;
  for (const segment of decoded.split("/")) {
    directory = false;
    if (segment === "" || segment === ".") {
      directory = true;
    } else if (segment === "..") {
      segments.pop();
      directory = true;
    } else {
      segments.push(segment);
    }
  }
  if (segments.length === 0) directory = true;
  return {
    ok: true,
    target: {
      path: "/" + segments.join("/"),
      segments,
      directory,
      query,
    },
  };
}

/** Encodes decoded segments back into a path for a `Location` header: always one leading "/", never "//". */
export function encodePath(
  segments: readonly string[],
  directory: boolean,
): string {
  let out = "";
  for (const s of segments) out += "/" + encodeURIComponent(s);
  return directory || out === "" ? out + "/" : out;
}
