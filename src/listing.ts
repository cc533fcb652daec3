/**
 * Directory listing pages, as HTML or JSON, built from entries the caller
 * has already read and filtered (dotfiles and sidecars hidden).
 *
 * @module
 */

import { escapeHtml } from "./http/response.ts";

/** One entry of a directory listing. */
export interface ListingEntry {
  /** The file name (one path segment, not encoded). */
  name: string;
  /** Whether the entry is a directory. */
  directory: boolean;
  /** Size in bytes. */
  size: number;
  /** Modification time in ms since the epoch. */
  mtime: number;
}

/** Units above bytes, 1024 apart. */
const UNITS: readonly string[] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/** The inline style sheet of the HTML page. */
const STYLE = "body{font:14px/1.4 system-ui,sans-serif;margin:2em}" +
  "table{border-collapse:collapse}th,td{padding:.2em 1em;text-align:left}" +
  "td+td{text-align:right;white-space:nowrap}th{border-bottom:1px solid #ccc}" +
  "a{text-decoration:none}a:hover{text-decoration:underline}";

function compareEntries(a: ListingEntry, b: ListingEntry): number {
  if (a.directory !== b.directory) return a.directory ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Returns a sorted copy: directories first, then by name (plain string comparison). */
export function sortEntries(entries: readonly ListingEntry[]): ListingEntry[] {
  return entries.slice().sort(compareEntries);
}

/** Formats a byte count: "999 B", "1.0 KiB", "1.5 MiB" (1024-based); "-" when invalid. */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "-";
  if (bytes < 1024) return `${Math.floor(bytes)} B`;
  let value = bytes / 1024;
  let unit = 0;
  // Move up while one decimal would round to 1024.0 or more.
  while (Math.round(value * 10) >= 10240 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** The full ISO 8601 string of `ms`, or null when it is no valid time. */
function isoTime(ms: number): string | null {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** The link target of an entry: its encoded name, relative to the listing. */
function entryHref(entry: ListingEntry): string {
  // encodeURIComponent encodes "/", ":", "?", "#", "%" and quotes-breaking
  // characters, so the result is one relative segment; escapeHtml covers "'".
  const href = encodeURIComponent(entry.name.toWellFormed());
  return escapeHtml(entry.directory ? href + "/" : href);
}

function renderRow(entry: ListingEntry): string {
  const suffix = entry.directory ? "/" : "";
  const iso = isoTime(entry.mtime);
  const modified = iso === null
    ? "-"
    : `<time datetime="${iso}">${iso.slice(0, 10)} ${iso.slice(11, 16)}</time>`;
  return `<tr><td><a href="${entryHref(entry)}">` +
    `${escapeHtml(entry.name + suffix)}</a></td>` +
    `<td>${entry.directory ? "-" : formatSize(entry.size)}</td>` +
    `<td>${modified}</td></tr>\n`;
}

/** Renders the HTML5 listing page of the directory at URL path `path` (ending in "/"). */
export function renderListingHtml(
  path: string,
  entries: readonly ListingEntry[],
): string {
  const title = escapeHtml(`Index of ${path}`);
  let rows = path === "/"
    ? ""
    : '<tr><td><a href="../">../</a></td><td>-</td><td></td></tr>\n';
  for (const entry of sortEntries(entries)) rows += renderRow(entry);
  return `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n` +
    `<meta name="viewport" content="width=device-width,initial-scale=1">\n` +
    `<title>${title}</title>\n<style>${STYLE}</style>\n</head>\n<body>\n` +
    `<h1>${title}</h1>\n<table>\n<thead><tr><th>Name</th><th>Size</th>` +
    `<th>Modified</th></tr></thead>\n<tbody>\n${rows}</tbody>\n</table>\n` +
    `</body>\n</html>\n`;
}

/**
 * Renders the JSON listing of the directory at URL path `path`:
 * `{"path", "entries": [{"name", "type", "size", "mtime"}]}`.
 */
export function renderListingJson(
  path: string,
  entries: readonly ListingEntry[],
): string {
  return JSON.stringify({
    path,
    entries: sortEntries(entries).map((entry) => ({
      name: entry.name,
      type: entry.directory ? "directory" : "file",
      size: entry.size,
      mtime: isoTime(entry.mtime),
    })),
  });
}
