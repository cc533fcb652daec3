/**
 * Media types by file extension, from mime-db (the database that
 * `@std/media-types` is built from).
 *
 * @module
 */

// The JSON itself, not the package entry: loading it as a CommonJS module
// costs several MiB of resident memory for nothing.
import db from "mime-db/db.json" with { type: "json" };

interface MimeEntry {
  source?: string;
  compressible?: boolean;
  extensions?: string[];
}

/** The type sent for files whose extension is unknown. */
export const DEFAULT_MEDIA_TYPE = "application/octet-stream";

/** Choices where mime-db's first candidate is not what browsers need. */
const OVERRIDES: Record<string, string> = {
  mp4: "video/mp4",
  ico: "image/x-icon",
};

const SOURCE_RANK: Record<string, number> = { iana: 3, apache: 1, nginx: 0 };

function rank(entry: MimeEntry): number {
  return entry.source === undefined ? 2 : SOURCE_RANK[entry.source] ?? 0;
}

function buildTable(): Map<string, string> {
  const best = new Map<string, [string, number]>();
  for (const [type, entry] of Object.entries(db as Record<string, MimeEntry>)) {
    for (const ext of entry.extensions ?? []) {
      const seen = best.get(ext);
      if (seen === undefined || rank(entry) > seen[1]) {
        best.set(ext, [type, rank(entry)]);
      }
    }
  }
  const table = new Map<string, string>();
  for (const [ext, [type]] of best) table.set(ext, type);
  for (const [ext, type] of Object.entries(OVERRIDES)) table.set(ext, type);
  return table;
}

const TYPES = buildTable();

/** Finds the media type of a file extension (without the dot, any case); undefined when unknown. */
export function typeByExtension(extension: string): string | undefined {
  return TYPES.get(extension.toLowerCase());
}

/**
 * The `Content-Type` value for a file name: the media type of its extension,
 * with `; charset=utf-8` on `text/*` types only.
 */
export function contentType(fileName: string): string {
  const dot = fileName.lastIndexOf(".");
  const slash = fileName.lastIndexOf("/");
  const type = dot > slash + 1
    ? typeByExtension(fileName.slice(dot + 1)) ?? DEFAULT_MEDIA_TYPE
    : DEFAULT_MEDIA_TYPE;
  return type.startsWith("text/") ? type + "; charset=utf-8" : type;
}

/** True when mime-db marks the type compressible (text, JSON, JS, SVG, wasm...); never for unknown bytes (`application/octet-stream`). */
export function isCompressible(type: string): boolean {
  const bare = type.split(";", 1)[0].trim().toLowerCase();
  if (bare === DEFAULT_MEDIA_TYPE) return false; // unknown bytes: likely binary
  const entry = (db as Record<string, MimeEntry>)[bare];
  return entry?.compressible ?? bare.startsWith("text/");
}
