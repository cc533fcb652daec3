import assert from "node:assert/strict";
import {
  formatSize,
  type ListingEntry,
  renderListingHtml,
  renderListingJson,
  sortEntries,
} from "../src/listing.ts";

const MTIME = Date.UTC(2026, 10, 26, 19, 45, 30);

function file(name: string, size = 1): ListingEntry {
  return { name, directory: false, size, mtime: MTIME };
}

function dir(name: string): ListingEntry {
  return { name, directory: true, size: 4096, mtime: MTIME };
}

const ENTRIES: readonly ListingEntry[] = [
  file("b.txt"),
  dir("zeta"),
  file("B.txt"),
  dir("alpha"),
  file("a.txt"),
];

Deno.test({
  name: "sortEntries() puts directories first, then names in plain order",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const input = ENTRIES.slice();
    const sorted = sortEntries(input);
    assert.deepEqual(sorted.map((e) => e.name), [
      "alpha",
      "zeta",
      "B.txt",
      "a.txt",
      "b.txt",
    ]);
    assert.notEqual(sorted, input);
    assert.deepEqual(input, ENTRIES);
  },
});

const SIZES: ReadonlyArray<[number, string]> = [
  [0, "0 B"],
  [1, "1 B"],
  [999, "999 B"],
  [1023, "1023 B"],
  [1024, "1.0 KiB"],
  [1536, "1.5 KiB"],
  [1048575, "1.0 MiB"],
  [1048576, "1.0 MiB"],
  [1.5 * 1024 ** 2, "1.5 MiB"],
  [1024 ** 3 - 1, "1.0 GiB"],
  [2 * 1024 ** 3, "2.0 GiB"],
  [1024 ** 4, "1.0 TiB"],
  [-1, "-"],
  [Number.NaN, "-"],
];

for (const [bytes, expected] of SIZES) {
  Deno.test({
    name: `formatSize() formats ${bytes} as "${expected}"`,
    sanitizeOps: true,
    sanitizeResources: true,
    fn(): void {
      assert.equal(formatSize(bytes), expected);
    },
  });
}

const HOSTILE: readonly ListingEntry[] = [
  file("<script>alert(1)</script>.html"),
  file('a"b<c>.txt'),
  file("what?.txt"),
  file("#hash"),
  file("100%.txt"),
  file("with space.txt"),
  file("héllo wörld.txt"),
  file("it's.txt"),
  file("javascript:alert(1)"),
  file("//evil.example"),
  dir("<img src=x onerror=alert(1)>"),
];

const HREFS: ReadonlyArray<[string, string]> = [
  [
    "<script>alert(1)</script>.html",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E.html",
  ],
  ['a"b<c>.txt', "a%22b%3Cc%3E.txt"],
  ["what?.txt", "what%3F.txt"],
  ["#hash", "%23hash"],
  ["100%.txt", "100%25.txt"],
  ["with space.txt", "with%20space.txt"],
  ["héllo wörld.txt", "h%C3%A9llo%20w%C3%B6rld.txt"],
  ["it's.txt", "it&#39;s.txt"],
  ["javascript:alert(1)", "javascript%3Aalert(1)"],
  ["//evil.example", "%2F%2Fevil.example"],
  ["<img src=x onerror=alert(1)>", "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E/"],
];

const HREF = /href="([^"]*)"/g;
const SCHEME = /^[a-z][a-z0-9+.-]*:/i;
const UNSAFE_IN_ATTRIBUTE = /[<>"\s]/;

Deno.test({
  name: "renderListingHtml() escapes hostile names in text",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const html = renderListingHtml('/<script>"x"/', HOSTILE);
    assert.ok(!html.includes("<script>"));
    assert.ok(!html.includes("<img"));
    assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;.html"));
    assert.ok(html.includes("a&quot;b&lt;c&gt;.txt"));
    assert.ok(html.includes("&lt;img src=x onerror=alert(1)&gt;/</a>"));
    assert.ok(html.includes("héllo wörld.txt</a>"));
    assert.ok(
      html.includes("<title>Index of /&lt;script&gt;&quot;x&quot;/</title>"),
    );
  },
});

for (const [name, href] of HREFS) {
  Deno.test({
    name: `renderListingHtml() encodes the href of ${JSON.stringify(name)}`,
    sanitizeOps: true,
    sanitizeResources: true,
    fn(): void {
      const entry = HOSTILE.find((e) => e.name === name);
      assert.ok(entry !== undefined);
      const html = renderListingHtml("/docs/", [entry]);
      assert.ok(html.includes(`<a href="${href}">`), html);
    },
  });
}

Deno.test({
  name: "renderListingHtml() hrefs are relative and stay in the attribute",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const html = renderListingHtml("/docs/", HOSTILE);
    const hrefs = Array.from(html.matchAll(HREF), (m) => m[1]);
    assert.equal(hrefs.length, HOSTILE.length + 1);
    for (const href of hrefs) {
      assert.ok(!href.startsWith("//"), href);
      assert.ok(!SCHEME.test(href), href);
      assert.ok(!UNSAFE_IN_ATTRIBUTE.test(href), href);
    }
  },
});

Deno.test({
  name: "renderListingHtml() renders a valid page with a sorted table",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const html = renderListingHtml("/docs/", ENTRIES);
    assert.ok(html.startsWith("<!doctype html>\n"));
    assert.ok(html.includes('<meta charset="utf-8">'));
    assert.ok(html.includes("<title>Index of /docs/</title>"));
    assert.ok(html.includes("<th>Name</th><th>Size</th><th>Modified</th>"));
    assert.ok(html.includes(
      '<tr><td><a href="alpha/">alpha/</a></td><td>-</td>' +
        '<td><time datetime="2026-11-26T19:45:30.000Z">2026-11-26 19:45' +
        "</time></td></tr>",
    ));
    assert.ok(html.includes('<a href="a.txt">a.txt</a></td><td>1 B</td>'));
    const names = Array.from(html.matchAll(HREF), (m) => m[1]);
    assert.deepEqual(names, [
      "../",
      "alpha/",
      "zeta/",
      "B.txt",
      "a.txt",
      "b.txt",
    ]);
    assert.ok(html.trimEnd().endsWith("</html>"));
  },
});

Deno.test({
  name: "renderListingHtml() links the parent except at the root",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    assert.ok(
      renderListingHtml("/docs/", []).includes('<a href="../">../</a>'),
    );
    assert.ok(renderListingHtml("/a/b/", []).includes('<a href="../">'));
    assert.ok(!renderListingHtml("/", ENTRIES).includes('href="../"'));
  },
});

Deno.test({
  name: "renderListingHtml() does not throw on a lone surrogate",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const html = renderListingHtml("/", [file("bad\uD800.txt")]);
    assert.ok(html.includes('<a href="bad%EF%BF%BD.txt">'));
  },
});

Deno.test({
  name: "renderListingHtml() shows - for an invalid mtime",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const html = renderListingHtml("/", [
      { name: "x", directory: false, size: 2048, mtime: Number.NaN },
    ]);
    assert.ok(html.includes("<td>2.0 KiB</td><td>-</td>"));
  },
});

Deno.test({
  name: "renderListingJson() gives path and sorted entries",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const json = renderListingJson("/docs/", [
      file("b.txt", 10),
      dir("sub"),
      file('a"<b>.txt', 0),
    ]);
    assert.deepEqual(JSON.parse(json), {
      path: "/docs/",
      entries: [
        {
          name: "sub",
          type: "directory",
          size: 4096,
          mtime: "2026-11-26T19:45:30.000Z",
        },
        {
          name: 'a"<b>.txt',
          type: "file",
          size: 0,
          mtime: "2026-11-26T19:45:30.000Z",
        },
        {
          name: "b.txt",
          type: "file",
          size: 10,
          mtime: "2026-11-26T19:45:30.000Z",
        },
      ],
    });
    assert.deepEqual(Object.keys(JSON.parse(json).entries[0]), [
      "name",
      "type",
      "size",
      "mtime",
    ]);
  },
});

Deno.test({
  name: "renderListingJson() renders an empty directory",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    assert.equal(renderListingJson("/", []), '{"path":"/","entries":[]}');
  },
});
