import assert from "node:assert/strict";
import {
  encodePath,
  percentDecode,
  sanitizeTarget,
  type TargetResult,
} from "../src/target.ts";
import { STATUS_CODE, type StatusCode } from "../src/http/status.ts";

/** A target that sanitises to a path. */
interface AcceptedCase {
  name: string;
  input: string;
  path: string;
  segments: string[];
  directory: boolean;
  query?: string;
}

/** A target that is refused. */
interface RefusedCase {
  name: string;
  input: string;
  status: StatusCode;
}

type TargetCase = AcceptedCase | RefusedCase;

const LONG_SEGMENT = "a".repeat(4096);

const TARGET_CASES: TargetCase[] = [
  // Plain paths.
  {
    name: "root",
    input: "/",
    path: "/",
    segments: [],
    directory: true,
  },
  {
    name: "single file",
    input: "/index.html",
    path: "/index.html",
    segments: ["index.html"],
    directory: false,
  },
  {
    name: "nested file",
    input: "/a/b/c.txt",
    path: "/a/b/c.txt",
    segments: ["a", "b", "c.txt"],
    directory: false,
  },
  {
    name: "trailing slash sets directory",
    input: "/a/b/",
    path: "/a/b",
    segments: ["a", "b"],
    directory: true,
  },
  {
    name: "dotfile name passes (policy is the resolver's)",
    input: "/.hidden",
    path: "/.hidden",
    segments: [".hidden"],
    directory: false,
  },
  {
    name: "three dots are a literal name",
    input: "/...",
    path: "/...",
    segments: ["..."],
    directory: false,
  },
  {
    name: "trailing dot kept as a literal name",
    input: "/index.html.",
    path: "/index.html.",
    segments: ["index.html."],
    directory: false,
  },
  {
    name: "4 KiB segment passes through unchanged",
    input: "/" + LONG_SEGMENT,
    path: "/" + LONG_SEGMENT,
    segments: [LONG_SEGMENT],
    directory: false,
  },

  // Query and fragment.
  {
    name: "query kept with its ?",
    input: "/a?x=1&y=2",
    path: "/a",
    segments: ["a"],
    directory: false,
    query: "?x=1&y=2",
  },
  {
    name: "empty query kept as ?",
    input: "/a?",
    path: "/a",
    segments: ["a"],
    directory: false,
    query: "?",
  },
  {
    name: "query on root",
    input: "/?q",
    path: "/",
    segments: [],
    directory: true,
    query: "?q",
  },
  {
    name: "query then fragment: fragment dropped",
    input: "/a?x=1#frag",
    path: "/a",
    segments: ["a"],
    directory: false,
    query: "?x=1",
  },
  {
    name: "fragment dropped",
    input: "/a#frag",
    path: "/a",
    segments: ["a"],
    directory: false,
  },
  {
    name: "? after # belongs to the fragment",
    input: "/a#frag?notquery",
    path: "/a",
    segments: ["a"],
    directory: false,
  },
  {
    name: "query is not decoded nor validated",
    input: "/a?x=%zz%00",
    path: "/a",
    segments: ["a"],
    directory: false,
    query: "?x=%zz%00",
  },
  {
    name: "dot segments in the query are left alone",
    input: "/a?../../etc/passwd",
    path: "/a",
    segments: ["a"],
    directory: false,
    query: "?../../etc/passwd",
  },

  // Dot segments and traversal.
  {
    name: "/a/../b",
    input: "/a/../b",
    path: "/b",
    segments: ["b"],
    directory: false,
  },
  {
    name: "/../../etc/passwd clamped at /",
    input: "/../../etc/passwd",
    path: "/etc/passwd",
    segments: ["etc", "passwd"],
    directory: false,
  },
  {
    name: "/.. clamped at /",
    input: "/..",
    path: "/",
    segments: [],
    directory: true,
  },
  {
    name: "many .. then a name",
    input: "/a/b/../../../../../x",
    path: "/x",
    segments: ["x"],
    directory: false,
  },
  {
    name: "encoded dot segments",
    input: "/%2e%2e/%2e%2e/etc/passwd",
    path: "/etc/passwd",
    segments: ["etc", "passwd"],
    directory: false,
  },
  {
    name: "mixed-case encoded dot segments",
    input: "/%2E%2e/%2e%2E/etc/passwd",
    path: "/etc/passwd",
    segments: ["etc", "passwd"],
    directory: false,
  },
  {
    name: "half-encoded dot segment",
    input: "/a/.%2e/b",
    path: "/b",
    segments: ["b"],
    directory: false,
  },
  {
    name: "encoded single dot",
    input: "/a/%2e/b",
    path: "/a/b",
    segments: ["a", "b"],
    directory: false,
  },
  {
    name: "%2f decodes to a separator",
    input: "/a%2fb",
    path: "/a/b",
    segments: ["a", "b"],
    directory: false,
  },
  {
    name: "..%2f..%2fx",
    input: "/..%2f..%2fx",
    path: "/x",
    segments: ["x"],
    directory: false,
  },
  {
    name: "..%2F chain after a name",
    input: "/a/..%2F..%2F..%2Fetc/passwd",
    path: "/etc/passwd",
    segments: ["etc", "passwd"],
    directory: false,
  },
  {
    name: "no double decoding (%252e)",
    input: "/%252e%252e/x",
    path: "/%2e%2e/x",
    segments: ["%2e%2e", "x"],
    directory: false,
  },
  {
    name: "//host/x is a path, not an authority",
    input: "//host/x",
    path: "/host/x",
    segments: ["host", "x"],
    directory: false,
  },
  {
    name: "repeated slashes collapse",
    input: "///a//b",
    path: "/a/b",
    segments: ["a", "b"],
    directory: false,
  },
  {
    name: "/a/. is a directory request",
    input: "/a/.",
    path: "/a",
    segments: ["a"],
    directory: true,
  },
  {
    name: "/a/.. is a directory request for /",
    input: "/a/..",
    path: "/",
    segments: [],
    directory: true,
  },
  {
    name: "/a/b/.. is a directory request for /a",
    input: "/a/b/..",
    path: "/a",
    segments: ["a"],
    directory: true,
  },
  {
    name: "/a/./ is a directory request",
    input: "/a/./",
    path: "/a",
    segments: ["a"],
    directory: true,
  },

  // Decoding.
  {
    name: "valid UTF-8 euro sign",
    input: "/%e2%82%ac",
    path: "/€",
    segments: ["€"],
    directory: false,
  },
  {
    name: "valid UTF-8 upper-case escapes",
    input: "/caf%C3%A9.txt",
    path: "/café.txt",
    segments: ["café.txt"],
    directory: false,
  },
  {
    name: "encoded space",
    input: "/a%20b.txt",
    path: "/a b.txt",
    segments: ["a b.txt"],
    directory: false,
  },
  {
    name: "encoded ? and # are name characters",
    input: "/what%3F%23x",
    path: "/what?#x",
    segments: ["what?#x"],
    directory: false,
  },
  {
    name: "encoded percent",
    input: "/100%25",
    path: "/100%",
    segments: ["100%"],
    directory: false,
  },

  // Refused: not origin-form.
  { name: "empty target", input: "", status: STATUS_CODE.BadRequest },
  { name: "relative path", input: "a/b", status: STATUS_CODE.BadRequest },
  { name: "asterisk", input: "*", status: STATUS_CODE.BadRequest },
  {
    name: "absolute URI",
    input: "http://example.com/",
    status: STATUS_CODE.BadRequest,
  },
  { name: "query only", input: "?a", status: STATUS_CODE.BadRequest },

  // Refused: backslashes.
  { name: "%5c backslash", input: "/a%5cb", status: STATUS_CODE.BadRequest },
  { name: "%5C host", input: "/%5Chost", status: STATUS_CODE.BadRequest },
  {
    name: "..%5c traversal",
    input: "/..%5c..%5cetc%5cpasswd",
    status: STATUS_CODE.BadRequest,
  },
  { name: "raw backslash", input: "/\\host", status: STATUS_CODE.BadRequest },

  // Refused: NUL and other controls.
  { name: "NUL", input: "/a%00.html", status: STATUS_CODE.BadRequest },
  { name: "NUL alone", input: "/%00", status: STATUS_CODE.BadRequest },
  { name: "LF", input: "/a%0ab", status: STATUS_CODE.BadRequest },
  {
    name: "CRLF",
    input: "/a%0d%0aSet-Cookie:x",
    status: STATUS_CODE.BadRequest,
  },
  { name: "TAB", input: "/a%09b", status: STATUS_CODE.BadRequest },
  { name: "US (0x1f)", input: "/a%1fb", status: STATUS_CODE.BadRequest },
  { name: "DEL", input: "/a%7f", status: STATUS_CODE.BadRequest },
  { name: "raw DEL", input: "/a\x7f", status: STATUS_CODE.BadRequest },

  // Refused: bad escapes.
  { name: "lone %", input: "/%", status: STATUS_CODE.BadRequest },
  { name: "trailing %", input: "/a%", status: STATUS_CODE.BadRequest },
  { name: "%g0", input: "/%g0", status: STATUS_CODE.BadRequest },
  { name: "%0 at end", input: "/%0", status: STATUS_CODE.BadRequest },
  { name: "%0g", input: "/%0g", status: STATUS_CODE.BadRequest },
  { name: "%%30", input: "/%%30", status: STATUS_CODE.BadRequest },
  {
    name: "bad escape before the query",
    input: "/%zz?ok",
    status: STATUS_CODE.BadRequest,
  },

  // Refused: overlong and invalid UTF-8.
  {
    name: "overlong . (%c0%ae)",
    input: "/%c0%ae",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "overlong / (%c0%af)",
    input: "/%c0%af",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "overlong . (%e0%80%ae)",
    input: "/%e0%80%ae",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "overlong .. traversal",
    input: "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "overlong \\ (%c1%9c)",
    input: "/a%c1%9cb",
    status: STATUS_CODE.BadRequest,
  },
  { name: "invalid byte %ff", input: "/%ff", status: STATUS_CODE.BadRequest },
  {
    name: "lone continuation %80",
    input: "/a%80",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "truncated sequence",
    input: "/%e2%82",
    status: STATUS_CODE.BadRequest,
  },
  {
    name: "encoded surrogate",
    input: "/%ed%a0%80",
    status: STATUS_CODE.BadRequest,
  },
];

function isAccepted(c: TargetCase): c is AcceptedCase {
  return "path" in c;
}

Deno.test({
  name: "sanitizeTarget() normalises, decodes and refuses traversal tricks",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    for (const c of TARGET_CASES) {
      await t.step(c.name, () => {
        const result: TargetResult = sanitizeTarget(c.input);
        const label = `${c.name} (${JSON.stringify(c.input.slice(0, 60))})`;
        if (isAccepted(c)) {
          assert.deepEqual(
            result,
            {
              ok: true,
              target: {
                path: c.path,
                segments: c.segments,
                directory: c.directory,
                query: c.query ?? "",
              },
            },
            label,
          );
        } else {
          assert.equal(result.ok, false, label);
          if (result.ok) return;
          assert.equal(result.status, c.status, label);
          assert.ok(result.reason.length > 0, `${label}: reason`);
        }
      });
    }
  },
});

Deno.test({
  name: "sanitizeTarget() results never contain empty or dot segments",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    for (const c of TARGET_CASES) {
      const result = sanitizeTarget(c.input);
      if (!result.ok) continue;
      const { path, segments } = result.target;
      assert.equal(path, "/" + segments.join("/"), `${c.name}: path`);
      assert.ok(!path.startsWith("//"), `${c.name}: leading //`);
      for (const s of segments) {
        assert.ok(s !== "" && s !== "." && s !== "..", `${c.name}: "${s}"`);
        assert.ok(!s.includes("/"), `${c.name}: "/" in segment`);
        assert.ok(!s.includes("\\"), `${c.name}: "\\" in segment`);
        assert.ok(!s.includes("\0"), `${c.name}: NUL in segment`);
      }
    }
  },
});

const DECODE_CASES: {
  name: string;
  raw: string;
  decoded: string | undefined;
}[] = [
  { name: "no escape", raw: "abc", decoded: "abc" },
  { name: "empty", raw: "", decoded: "" },
  { name: "ASCII escape", raw: "%41%62", decoded: "Ab" },
  { name: "escaped slash", raw: "a%2Fb", decoded: "a/b" },
  { name: "escaped percent is decoded once", raw: "%2541", decoded: "%41" },
  { name: "UTF-8 euro", raw: "%e2%82%ac", decoded: "€" },
  { name: "4-byte UTF-8", raw: "%F0%9F%98%80", decoded: "😀" },
  { name: "BOM is kept", raw: "%ef%bb%bfx", decoded: "\ufeffx" },
  // Escapes of controls decode: rejecting them is sanitizeTarget()'s job.
  { name: "escapes with a high digit 0", raw: "%0a%09", decoded: "\n\t" },
  // A URI is ASCII: a raw U+0080 must not complete an escaped lead byte.
  { name: "raw non-ASCII", raw: "%c2\u0080", decoded: undefined },
  {
    name: "raw non-ASCII without escapes",
    raw: "caf\u00e9",
    decoded: undefined,
  },
  { name: "lone %", raw: "%", decoded: undefined },
  { name: "short escape", raw: "%4", decoded: undefined },
  { name: "non-hex escape", raw: "%g0", decoded: undefined },
  { name: "overlong", raw: "%c0%ae", decoded: undefined },
  { name: "overlong 3-byte", raw: "%e0%80%ae", decoded: undefined },
  { name: "invalid byte", raw: "%ff", decoded: undefined },
  {
    name: "code point above U+10FFFF",
    raw: "%f4%90%80%80",
    decoded: undefined,
  },
];

Deno.test({
  name: "percentDecode() decodes UTF-8 and refuses bad escapes",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    for (const c of DECODE_CASES) {
      assert.equal(percentDecode(c.raw), c.decoded, c.name);
    }
  },
});

const ENCODE_CASES: {
  name: string;
  segments: string[];
  directory: boolean;
  encoded: string;
}[] = [
  { name: "root", segments: [], directory: false, encoded: "/" },
  { name: "root as directory", segments: [], directory: true, encoded: "/" },
  { name: "file", segments: ["a.txt"], directory: false, encoded: "/a.txt" },
  {
    name: "directory gets a trailing /",
    segments: ["a", "b"],
    directory: true,
    encoded: "/a/b/",
  },
  { name: "space", segments: ["a b"], directory: false, encoded: "/a%20b" },
  { name: "?", segments: ["what?"], directory: false, encoded: "/what%3F" },
  { name: "#", segments: ["x#y"], directory: false, encoded: "/x%23y" },
  { name: "%", segments: ["100%"], directory: false, encoded: "/100%25" },
  {
    name: "slash in a name",
    segments: ["a/b"],
    directory: false,
    encoded: "/a%2Fb",
  },
  {
    name: "backslash in a name",
    segments: ["a\\b"],
    directory: false,
    encoded: "/a%5Cb",
  },
  { name: "UTF-8", segments: ["€"], directory: true, encoded: "/%E2%82%AC/" },
];

Deno.test({
  name: "encodePath() encodes names and appends / for directories",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    for (const c of ENCODE_CASES) {
      assert.equal(encodePath(c.segments, c.directory), c.encoded, c.name);
    }
  },
});

const ROUND_TRIP_CASES: { input: string; encoded: string }[] = [
  { input: "//evil.example/..", encoded: "/" },
  { input: "//evil.example", encoded: "/evil.example" },
  { input: "/%2f%2fevil.example", encoded: "/evil.example" },
  { input: "/%2F/evil.example/", encoded: "/evil.example/" },
  { input: "/..%2f..%2f%2fx", encoded: "/x" },
  { input: "/./", encoded: "/" },
  { input: "/a%20b/", encoded: "/a%20b/" },
  { input: "/what%3f%23x", encoded: "/what%3F%23x" },
  { input: "/%e2%82%ac", encoded: "/%E2%82%AC" },
  { input: "/a/b/..", encoded: "/a/" },
  { input: "/sub?x=1", encoded: "/sub" },
];

Deno.test({
  name: "encodePath() round trips sanitizeTarget() without a leading //",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    for (const c of ROUND_TRIP_CASES) {
      const first = sanitizeTarget(c.input);
      assert.ok(first.ok, `${c.input}: sanitised`);
      const encoded = encodePath(first.target.segments, first.target.directory);
      assert.equal(encoded, c.encoded, `${c.input}: encoded`);
      assert.ok(encoded.startsWith("/"), `${c.input}: leading /`);
      assert.ok(!encoded.startsWith("//"), `${c.input}: leading //`);
      assert.match(encoded, /^[\x21-\x7e]+$/, `${c.input}: visible ASCII`);
      const again = sanitizeTarget(encoded);
      assert.ok(again.ok, `${c.input}: re-sanitised`);
      assert.deepEqual(
        again.target.segments,
        first.target.segments,
        `${c.input}: segments`,
      );
      assert.equal(
        again.target.directory,
        first.target.directory,
        `${c.input}: directory`,
      );
    }
  },
});
