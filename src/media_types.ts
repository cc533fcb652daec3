/**
 * Media types by file extension, from mime-db (the database that
 * `@std/media-types` is built from).
 *
 * @module
 */

// A compact table generated from mime-db (tests/gen_media_types.ts): the
// JSON itself would cost about 6 MiB of memory in every thread.
import {
  COMPRESSIBLE_TYPES,
  EXTENSION_TYPES,
  INCOMPRESSIBLE_TYPES,
} from "./media_types_db.ts";

/** The type sent for files whose extension is unknown. */
export const DEFAULT_MEDIA_TYPE = "application/octet-stream";

/** Choices where mime-db's first candidate is not what browsers need. */
const OVERRIDES: Record<string, string> = {
  mp4: "video/mp4",
  ico: "image/x-icon",
};

function buildTable(): Map<string, string> {
  const table = new Map<string, string>();
  for (const pair of EXTENSION_TYPES) {
    const space = pair.indexOf(" ");
    table.set(pair.slice(0, space), pair.slice(space + 1));
  }
  for (const [ext, type] of Object.entries(OVERRIDES)) table.set(ext, type);
  return table;
}

const TYPES = buildTable();
const COMPRESSIBLE = new Set(COMPRESSIBLE_TYPES);
const INCOMPRESSIBLE = new Set(INCOMPRESSIBLE_TYPES);

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
  if (COMPRESSIBLE.has(bare)) return true;
  if (INCOMPRESSIBLE.has(bare)) return false;
  return bare.startsWith("text/");
}
