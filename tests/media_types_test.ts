import assert from "node:assert/strict";
import {
  contentType,
  DEFAULT_MEDIA_TYPE,
  isCompressible,
  typeByExtension,
} from "../src/media_types.ts";
import { MEDIA_TYPES_DB, renderMediaTypesDb } from "./gen_media_types.ts";

const CONTENT_TYPE_CASES: { name: string; file: string; type: string }[] = [
  // Text types get a charset.
  { name: ".html", file: "index.html", type: "text/html; charset=utf-8" },
  { name: ".htm", file: "old.htm", type: "text/html; charset=utf-8" },
  { name: ".css", file: "style.css", type: "text/css; charset=utf-8" },
  { name: ".js", file: "app.js", type: "text/javascript; charset=utf-8" },
  { name: ".mjs", file: "mod.mjs", type: "text/javascript; charset=utf-8" },
  { name: ".txt", file: "notes.txt", type: "text/plain; charset=utf-8" },
  { name: ".md", file: "README.md", type: "text/markdown; charset=utf-8" },
  { name: ".csv", file: "data.csv", type: "text/csv; charset=utf-8" },
  {
    name: "upper-case .HTML",
    file: "INDEX.HTML",
    type: "text/html; charset=utf-8",
  },
  {
    name: "path with directories",
    file: "a/b.c/page.html",
    type: "text/html; charset=utf-8",
  },

  // Non-text types get none.
  { name: ".json", file: "data.json", type: "application/json" },
  { name: ".wasm", file: "app.wasm", type: "application/wasm" },
  { name: ".svg", file: "logo.svg", type: "image/svg+xml" },
  { name: ".png", file: "a.png", type: "image/png" },
  { name: ".jpg", file: "a.jpg", type: "image/jpeg" },
  { name: ".JPG (case-insensitive)", file: "PHOTO.JPG", type: "image/jpeg" },
  { name: ".jpeg", file: "a.jpeg", type: "image/jpeg" },
  { name: ".gif", file: "a.gif", type: "image/gif" },
  { name: ".webp", file: "a.webp", type: "image/webp" },
  { name: ".ico", file: "favicon.ico", type: "image/x-icon" },
  { name: ".mp4", file: "clip.mp4", type: "video/mp4" },
  { name: ".MP4", file: "CLIP.MP4", type: "video/mp4" },
  { name: ".woff2", file: "font.woff2", type: "font/woff2" },
  { name: ".woff", file: "font.woff", type: "font/woff" },
  { name: ".pdf", file: "doc.pdf", type: "application/pdf" },
  { name: ".zip", file: "a.zip", type: "application/zip" },
  {
    name: ".tar.gz uses the last extension",
    file: "a.tar.gz",
    type: "application/gzip",
  },
  {
    name: "dotfile with an extension",
    file: ".eslintrc.json",
    type: "application/json",
  },

  // Unknown: the default type.
  { name: "no extension", file: "Makefile", type: DEFAULT_MEDIA_TYPE },
  { name: "dotfile name", file: ".bashrc", type: DEFAULT_MEDIA_TYPE },
  { name: "dotfile in a path", file: "home/.bashrc", type: DEFAULT_MEDIA_TYPE },
  { name: "unknown extension", file: "a.unknownext", type: DEFAULT_MEDIA_TYPE },
  { name: "trailing dot", file: "index.html.", type: DEFAULT_MEDIA_TYPE },
  {
    name: "dot only in a directory name",
    file: "dir.html/README",
    type: DEFAULT_MEDIA_TYPE,
  },
  { name: "empty name", file: "", type: DEFAULT_MEDIA_TYPE },
];

Deno.test({
  name: "contentType() picks the media type and charset by extension",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    for (const c of CONTENT_TYPE_CASES) {
      await t.step(c.name, () => {
        assert.equal(contentType(c.file), c.type, `${c.name} (${c.file})`);
      });
    }
  },
});

Deno.test({
  name: "contentType() adds a charset to text/* types only",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    for (const c of CONTENT_TYPE_CASES) {
      const type = contentType(c.file);
      const charsets = type.split("; charset=").length - 1;
      assert.equal(
        charsets,
        type.startsWith("text/") ? 1 : 0,
        `${c.name} (${c.file}): ${type}`,
      );
    }
  },
});

Deno.test({
  name: "typeByExtension() looks up extensions without the dot",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const cases: { name: string; ext: string; type: string | undefined }[] = [
      { name: "html", ext: "html", type: "text/html" },
      { name: "upper case", ext: "HTML", type: "text/html" },
      { name: "mixed case", ext: "Json", type: "application/json" },
      { name: "mp4 override", ext: "mp4", type: "video/mp4" },
      { name: "ico override", ext: "ico", type: "image/x-icon" },
      { name: "js", ext: "js", type: "text/javascript" },
      { name: "unknown", ext: "unknownext", type: undefined },
      { name: "empty", ext: "", type: undefined },
      { name: "with the dot", ext: ".html", type: undefined },
    ];
    for (const c of cases) {
      assert.equal(typeByExtension(c.ext), c.type, c.name);
    }
  },
});

Deno.test({
  name: "isCompressible() follows mime-db",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const cases: { type: string; compressible: boolean }[] = [
      { type: "text/html", compressible: true },
      { type: "text/html; charset=utf-8", compressible: true },
      { type: "TEXT/HTML", compressible: true },
      { type: "text/css", compressible: true },
      { type: "text/javascript; charset=utf-8", compressible: true },
      { type: "text/x-not-in-mime-db", compressible: true },
      { type: "application/json", compressible: true },
      { type: "image/svg+xml", compressible: true },
      { type: "application/wasm", compressible: true },
      { type: "image/png", compressible: false },
      { type: "image/jpeg", compressible: false },
      { type: "application/zip", compressible: false },
      { type: "application/gzip", compressible: false },
      { type: "video/mp4", compressible: false },
      { type: "font/woff2", compressible: false },
      // mime-db marks application/octet-stream compressible; unknown bytes
      // are likely binary, so isCompressible() says no.
      { type: DEFAULT_MEDIA_TYPE, compressible: false },
      { type: "", compressible: false },
    ];
    for (const c of cases) {
      assert.equal(isCompressible(c.type), c.compressible, c.type || "(empty)");
    }
  },
});

Deno.test({
  name: "media_types_db.ts is what deno task media-types makes from mime-db",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(): Promise<void> {
    const current = await Deno.readTextFile(MEDIA_TYPES_DB);
    // A mismatch means mime-db (deno.json) changed: run `deno task media-types`.
    assert.equal(current, renderMediaTypesDb());
  },
});
