import assert from "node:assert/strict";
import {
  evaluatePreconditions,
  evaluateUnvalidated,
  ifRangeMatches,
  makeEtag,
  parseHttpDate,
  type Precondition,
  type Validators,
} from "../src/conditional.ts";
import type { RequestFields } from "../src/http/request_parser.ts";

/** Last modified at 1000.999 s: one-second precision makes it 1000 s. */
const VALIDATORS: Validators = { etag: '"abc"', lastModified: 1_000_999 };
const AT_1000 = new Date(1_000_000).toUTCString(); // Thu, 01 Jan 1970 00:16:40 GMT
const AT_999 = new Date(999_000).toUTCString();
const AT_1001 = new Date(1_001_000).toUTCString();

interface PreconditionCase {
  name: string;
  fields: RequestFields;
  expected: Precondition;
}

const PRECONDITION_CASES: PreconditionCase[] = [
  { name: "proceeds without conditions", fields: {}, expected: "proceed" },
  // If-Match (strong comparison).
  {
    name: "proceeds when If-Match matches strongly",
    fields: { ifMatch: '"abc"' },
    expected: "proceed",
  },
  {
    name: "proceeds when If-Match is *",
    fields: { ifMatch: "*" },
    expected: "proceed",
  },
  {
    name: "proceeds when If-Match lists a matching tag",
    fields: { ifMatch: '"x", "abc" ,"y"' },
    expected: "proceed",
  },
  {
    name: "fails when If-Match does not match",
    fields: { ifMatch: '"xyz"' },
    expected: "failed",
  },
  {
    name: "fails when If-Match has only a weak matching tag",
    fields: { ifMatch: 'W/"abc"' },
    expected: "failed",
  },
  {
    name: "fails when If-Match is empty",
    fields: { ifMatch: "" },
    expected: "failed",
  },
  {
    name: "fails when If-Match only has malformed members",
    fields: { ifMatch: 'abc, "abc"x, "ab' },
    expected: "failed",
  },
  {
    name: "skips malformed If-Match members",
    fields: { ifMatch: 'bogus, "abc"' },
    expected: "proceed",
  },
  {
    name: "parses commas inside If-Match entity-tags",
    fields: { ifMatch: '"a,b", "abc"' },
    expected: "proceed",
  },
  {
    name: "does not split entity-tags at inner commas",
    fields: { ifMatch: '"a,"abc",b"' },
    expected: "failed",
  },
  {
    name: "proceeds when If-Match is * between OWS",
    fields: { ifMatch: " *\t" },
    expected: "proceed",
  },
  {
    name: "fails when If-Match lists * after a tag that does not match",
    fields: { ifMatch: '"xyz", *' },
    expected: "failed",
  },
  {
    name: "fails when If-Match lists * before a tag that does not match",
    fields: { ifMatch: '*, "xyz"' },
    expected: "failed",
  },
  {
    name: "fails when If-Match lists * twice",
    fields: { ifMatch: "*, *" },
    expected: "failed",
  },
  {
    name: "proceeds when If-Match lists * beside the matching tag",
    fields: { ifMatch: '*, "abc"' },
    expected: "proceed",
  },
  // If-Unmodified-Since.
  {
    name: "fails when modified after If-Unmodified-Since",
    fields: { ifUnmodifiedSince: AT_999 },
    expected: "failed",
  },
  {
    name: "proceeds when If-Unmodified-Since equals mtime at second precision",
    fields: { ifUnmodifiedSince: AT_1000 },
    expected: "proceed",
  },
  {
    name: "proceeds when unmodified since a later date",
    fields: { ifUnmodifiedSince: AT_1001 },
    expected: "proceed",
  },
  {
    name: "ignores an invalid If-Unmodified-Since",
    fields: { ifUnmodifiedSince: "yesterday" },
    expected: "proceed",
  },
  {
    name: "ignores If-Unmodified-Since when If-Match is present",
    fields: { ifMatch: '"abc"', ifUnmodifiedSince: AT_999 },
    expected: "proceed",
  },
  {
    name: "fails on If-Match even when If-Unmodified-Since holds",
    fields: { ifMatch: '"xyz"', ifUnmodifiedSince: AT_1001 },
    expected: "failed",
  },
  // If-None-Match (weak comparison).
  {
    name: "is not modified when If-None-Match matches",
    fields: { ifNoneMatch: '"abc"' },
    expected: "not-modified",
  },
  {
    name: "is not modified when If-None-Match matches weakly",
    fields: { ifNoneMatch: 'W/"abc"' },
    expected: "not-modified",
  },
  {
    name: "is not modified when If-None-Match is *",
    fields: { ifNoneMatch: "*" },
    expected: "not-modified",
  },
  {
    name: "is not modified when If-None-Match lists a matching tag",
    fields: { ifNoneMatch: 'W/"a,b",\t"abc"' },
    expected: "not-modified",
  },
  {
    name: "proceeds when If-None-Match does not match",
    fields: { ifNoneMatch: '"x", W/"y"' },
    expected: "proceed",
  },
  {
    name: "compares the opaque tag exactly",
    fields: { ifNoneMatch: '"ABC", abc, "abc ' },
    expected: "proceed",
  },
  {
    name: "is not modified when If-None-Match is * between OWS",
    fields: { ifNoneMatch: "\t* " },
    expected: "not-modified",
  },
  {
    name: "proceeds when If-None-Match lists * after a tag that does not match",
    fields: { ifNoneMatch: '"x", *' },
    expected: "proceed",
  },
  {
    name:
      "proceeds when If-None-Match lists * before a tag that does not match",
    fields: { ifNoneMatch: '*, "x"' },
    expected: "proceed",
  },
  {
    name: "proceeds when If-None-Match lists * twice",
    fields: { ifNoneMatch: "*, *" },
    expected: "proceed",
  },
  {
    name: "is not modified when If-None-Match lists * beside the matching tag",
    fields: { ifNoneMatch: '"abc", *' },
    expected: "not-modified",
  },
  // If-Modified-Since.
  {
    name: "is not modified at one-second precision (1000.999 s vs 1000 s)",
    fields: { ifModifiedSince: AT_1000 },
    expected: "not-modified",
  },
  {
    name: "is not modified when If-Modified-Since is later",
    fields: { ifModifiedSince: AT_1001 },
    expected: "not-modified",
  },
  {
    name: "proceeds when modified since If-Modified-Since",
    fields: { ifModifiedSince: AT_999 },
    expected: "proceed",
  },
  {
    name: "ignores an invalid If-Modified-Since",
    fields: { ifModifiedSince: "Thu, 01 Jan 1970 00:16:40" },
    expected: "proceed",
  },
  {
    name: "ignores an If-Modified-Since with two members",
    fields: { ifModifiedSince: `${AT_1000}, ${AT_1000}` },
    expected: "proceed",
  },
  {
    name: "ignores If-Modified-Since when If-None-Match does not match",
    fields: { ifNoneMatch: '"xyz"', ifModifiedSince: AT_1001 },
    expected: "proceed",
  },
  {
    name: "uses If-None-Match when If-Modified-Since says modified",
    fields: { ifNoneMatch: '"abc"', ifModifiedSince: AT_999 },
    expected: "not-modified",
  },
  // Precedence across the two pairs.
  {
    name: "fails If-Match before evaluating If-None-Match",
    fields: { ifMatch: '"xyz"', ifNoneMatch: '"abc"' },
    expected: "failed",
  },
  {
    name: "fails If-Unmodified-Since before evaluating If-Modified-Since",
    fields: { ifUnmodifiedSince: AT_999, ifModifiedSince: AT_1001 },
    expected: "failed",
  },
  {
    name: "is not modified when If-Match and If-None-Match both match",
    fields: { ifMatch: '"abc"', ifNoneMatch: "*" },
    expected: "not-modified",
  },
  {
    name: "proceeds when all four conditions hold",
    fields: {
      ifMatch: '"abc"',
      ifUnmodifiedSince: AT_999,
      ifNoneMatch: '"other"',
      ifModifiedSince: AT_1001,
    },
    expected: "proceed",
  },
];

for (const { name, fields, expected } of PRECONDITION_CASES) {
  Deno.test({
    name: `evaluatePreconditions() ${name}`,
    sanitizeOps: true,
    sanitizeResources: true,
    fn(): void {
      assert.equal(evaluatePreconditions(fields, VALIDATORS), expected);
    },
  });
}

/** Preconditions on a representation without validators (a listing). */
const UNVALIDATED_CASES: PreconditionCase[] = [
  { name: "proceeds without conditions", fields: {}, expected: "proceed" },
  {
    name: "proceeds when If-Match is *",
    fields: { ifMatch: "*" },
    expected: "proceed",
  },
  {
    name: "fails when If-Match names a tag",
    fields: { ifMatch: '"abc"' },
    expected: "failed",
  },
  {
    name: "fails when If-Match names the empty tag",
    fields: { ifMatch: '""' },
    expected: "failed",
  },
  {
    name: "is not modified when If-None-Match is *",
    fields: { ifNoneMatch: "*" },
    expected: "not-modified",
  },
  {
    name: "proceeds when If-None-Match names tags",
    fields: { ifNoneMatch: '"abc", W/"x", ""' },
    expected: "proceed",
  },
  {
    name: "ignores the date conditions",
    fields: { ifModifiedSince: AT_1001, ifUnmodifiedSince: AT_999 },
    expected: "proceed",
  },
  {
    name: "fails on If-Match before If-None-Match",
    fields: { ifMatch: '"abc"', ifNoneMatch: "*" },
    expected: "failed",
  },
  {
    name: "fails when If-Match lists * beside a tag",
    fields: { ifMatch: '"abc", *' },
    expected: "failed",
  },
  {
    name: "proceeds when If-None-Match lists * beside a tag",
    fields: { ifNoneMatch: '*, "abc"' },
    expected: "proceed",
  },
];

for (const { name, fields, expected } of UNVALIDATED_CASES) {
  Deno.test({
    name: `evaluateUnvalidated() ${name}`,
    sanitizeOps: true,
    sanitizeResources: true,
    fn(): void {
      assert.equal(evaluateUnvalidated(fields), expected);
    },
  });
}

interface IfRangeCase {
  name: string;
  ifRange: string | undefined;
  expected: boolean;
}

const IF_RANGE_CASES: IfRangeCase[] = [
  { name: "matches when absent", ifRange: undefined, expected: true },
  { name: "matches a strong equal tag", ifRange: '"abc"', expected: true },
  { name: "ignores surrounding OWS", ifRange: ' "abc"\t', expected: true },
  { name: "ignores leading OWS alone", ifRange: ' "abc"', expected: true },
  { name: "ignores trailing OWS alone", ifRange: '"abc"\t', expected: true },
  { name: "rejects a different tag", ifRange: '"abd"', expected: false },
  { name: "rejects a weak tag", ifRange: 'W/"abc"', expected: false },
  { name: "rejects a tag list", ifRange: '"abc", "x"', expected: false },
  { name: "rejects *", ifRange: "*", expected: false },
  { name: "matches the exact date", ifRange: AT_1000, expected: true },
  { name: "rejects an earlier date", ifRange: AT_999, expected: false },
  { name: "rejects a later date", ifRange: AT_1001, expected: false },
  {
    name: "matches an exact asctime date",
    ifRange: "Thu Jan  1 00:16:40 1970",
    expected: true,
  },
  { name: "rejects garbage", ifRange: "garbage", expected: false },
  { name: "rejects an empty value", ifRange: "", expected: false },
];

for (const { name, ifRange, expected } of IF_RANGE_CASES) {
  Deno.test({
    name: `ifRangeMatches() ${name}`,
    sanitizeOps: true,
    sanitizeResources: true,
    fn(): void {
      assert.equal(ifRangeMatches(ifRange, VALIDATORS), expected);
    },
  });
}

Deno.test({
  name: "ifRangeMatches() never matches a weak validator",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const weak: Validators = { etag: 'W/"abc"', lastModified: 0 };
    assert.equal(ifRangeMatches('W/"abc"', weak), false);
    assert.equal(ifRangeMatches('"abc"', weak), false);
  },
});

const NOV_6_1994 = Date.UTC(1994, 10, 6, 8, 49, 37);
/** A fixed "now" for two-digit years: 2025-06-01. */
const NOW = Date.UTC(2025, 5, 1);

interface DateCase {
  name: string;
  value: string;
  expected: number | undefined;
}

const DATE_CASES: DateCase[] = [
  {
    name: "parses IMF-fixdate",
    value: "Sun, 06 Nov 1994 08:49:37 GMT",
    expected: NOV_6_1994,
  },
  {
    name: "parses RFC 850 dates",
    value: "Sunday, 06-Nov-94 08:49:37 GMT",
    expected: NOV_6_1994,
  },
  {
    name: "parses asctime dates",
    value: "Sun Nov  6 08:49:37 1994",
    expected: NOV_6_1994,
  },
  {
    name: "parses asctime dates with a two-digit day",
    value: "Wed Nov 16 08:49:37 1994",
    expected: Date.UTC(1994, 10, 16, 8, 49, 37),
  },
  {
    name: "parses the epoch",
    value: "Thu, 01 Jan 1970 00:00:00 GMT",
    expected: 0,
  },
  {
    name: "parses a leap day",
    value: "Thu, 29 Feb 2024 23:59:59 GMT",
    expected: Date.UTC(2024, 1, 29, 23, 59, 59),
  },
  {
    name: "parses an IMF-fixdate year below 100",
    value: "Mon, 01 Jan 0001 00:00:00 GMT",
    expected: -62135596800000,
  },
  {
    name: "resolves RFC 850 years within 50 years of now",
    value: "Monday, 01-Jan-74 00:00:00 GMT",
    expected: Date.UTC(2074, 0, 1),
  },
  {
    name: "resolves RFC 850 years less than 50 years ahead to the future",
    value: "Tuesday, 01-Jan-75 00:00:00 GMT",
    expected: Date.UTC(2075, 0, 1),
  },
  {
    name: "resolves RFC 850 years more than 50 years ahead to the past",
    value: "Monday, 01-Jan-76 00:00:00 GMT",
    expected: Date.UTC(1976, 0, 1),
  },
  { name: "rejects an empty string", value: "", expected: undefined },
  { name: "rejects garbage", value: "not a date", expected: undefined },
  {
    name: "rejects lenient Date.parse input",
    value: "1994-11-06T08:49:37Z",
    expected: undefined,
  },
  {
    name: "rejects a missing GMT",
    value: "Sun, 06 Nov 1994 08:49:37",
    expected: undefined,
  },
  {
    name: "rejects another zone",
    value: "Sun, 06 Nov 1994 08:49:37 UTC",
    expected: undefined,
  },
  {
    name: "rejects lowercase names",
    value: "sun, 06 nov 1994 08:49:37 GMT",
    expected: undefined,
  },
  {
    name: "rejects a one-digit IMF-fixdate day",
    value: "Sun, 6 Nov 1994 08:49:37 GMT",
    expected: undefined,
  },
  {
    name: "rejects a long day name in IMF-fixdate",
    value: "Sunday, 06 Nov 1994 08:49:37 GMT",
    expected: undefined,
  },
  {
    name: "rejects surrounding whitespace",
    value: " Sun, 06 Nov 1994 08:49:37 GMT",
    expected: undefined,
  },
  {
    name: "rejects February 30",
    value: "Sun, 30 Feb 1994 08:49:37 GMT",
    expected: undefined,
  },
  {
    name: "rejects February 29 in a common year",
    value: "Tue, 29 Feb 2100 00:00:00 GMT",
    expected: undefined,
  },
  {
    name: "rejects day 00",
    value: "Sun, 00 Nov 1994 08:49:37 GMT",
    expected: undefined,
  },
  {
    name: "rejects hour 24",
    value: "Sun, 06 Nov 1994 24:00:00 GMT",
    expected: undefined,
  },
  {
    name: "rejects minute 60",
    value: "Sun, 06 Nov 1994 08:60:00 GMT",
    expected: undefined,
  },
  {
    name: "rejects second 60",
    value: "Sun, 06 Nov 1994 08:49:60 GMT",
    expected: undefined,
  },
  {
    name: "rejects a four-digit RFC 850 year",
    value: "Sunday, 06-Nov-1994 08:49:37 GMT",
    expected: undefined,
  },
  {
    // RFC 9110 section 5.6.7: date3 = month SP ( 2DIGIT / ( SP DIGIT ) ).
    name: "parses asctime with a zero-padded day",
    value: "Sun Nov 06 08:49:37 1994",
    expected: NOV_6_1994,
  },
  {
    name: "rejects asctime with a zone",
    value: "Sun Nov  6 08:49:37 1994 GMT",
    expected: undefined,
  },
  {
    name: "rejects two members",
    value: "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
    expected: undefined,
  },
];

for (const { name, value, expected } of DATE_CASES) {
  Deno.test({
    name: `parseHttpDate() ${name}`,
    sanitizeOps: true,
    sanitizeResources: true,
    fn(): void {
      assert.equal(parseHttpDate(value, { now: NOW }), expected);
    },
  });
}

Deno.test({
  name:
    "parseHttpDate() resolves RFC 850 years more than 50 years back to the next century",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const now = Date.UTC(2090, 5, 1);
    // 2040 is 50.4 years back, 2140 49.6 years ahead; 2041 is 49.4 years back.
    assert.equal(
      parseHttpDate("Sunday, 01-Jan-40 00:00:00 GMT", { now }),
      Date.UTC(2140, 0, 1),
    );
    assert.equal(
      parseHttpDate("Tuesday, 01-Jan-41 00:00:00 GMT", { now }),
      Date.UTC(2041, 0, 1),
    );
  },
});

Deno.test({
  name: "parseHttpDate() knows the name and the last day of every month",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const names = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(" ");
    for (const year of [2023, 2024]) {
      for (let month = 0; month < 12; month++) {
        const last = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
        const ms = Date.UTC(year, month, last, 12);
        assert.equal(parseHttpDate(new Date(ms).toUTCString()), ms);
        const next = `Mon, ${last + 1} ${names[month]} ${year} 12:00:00 GMT`;
        assert.equal(parseHttpDate(next), undefined, next);
      }
    }
  },
});

Deno.test({
  name: "parseHttpDate() round-trips Date.prototype.toUTCString()",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    for (const ms of [0, 784111777000, 1_700_000_000_000, 4_102_444_800_000]) {
      assert.equal(parseHttpDate(new Date(ms).toUTCString()), ms);
    }
  },
});

interface EtagCase {
  name: string;
  size: number;
  mtime: number;
  suffix?: string;
  expected: string;
}

const ETAG_CASES: EtagCase[] = [
  {
    name: "formats size and mtime in hex",
    size: 26,
    mtime: 99_375,
    expected: '"1a-1842f"',
  },
  {
    name: "floors fractional mtimes",
    size: 26,
    mtime: 99_375.9,
    expected: '"1a-1842f"',
  },
  { name: "formats an empty file", size: 0, mtime: 0, expected: '"0-0"' },
  {
    name: "formats real timestamps",
    size: 1_048_576,
    mtime: 1_700_000_000_123,
    expected: '"100000-18bcfe5687b"',
  },
  {
    name: "appends a variant suffix",
    size: 26,
    mtime: 99_375,
    suffix: "br",
    expected: '"1a-1842f-br"',
  },
  {
    name: "appends a gzip suffix",
    size: 26,
    mtime: 99_375,
    suffix: "gz",
    expected: '"1a-1842f-gz"',
  },
  {
    name: "ignores an empty suffix",
    size: 26,
    mtime: 99_375,
    suffix: "",
    expected: '"1a-1842f"',
  },
];

for (const { name, size, mtime, suffix, expected } of ETAG_CASES) {
  Deno.test({
    name: `makeEtag() ${name}`,
    sanitizeOps: true,
    sanitizeResources: true,
    fn(): void {
      const etag = suffix === undefined
        ? makeEtag(size, mtime)
        : makeEtag(size, mtime, { suffix });
      assert.equal(etag, expected);
    },
  });
}

Deno.test({
  name: "makeEtag() makes tags that match themselves strongly",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    const etag = makeEtag(26, 99_375, { suffix: "br" });
    const validators: Validators = { etag, lastModified: 99_375 };
    assert.equal(
      evaluatePreconditions({ ifMatch: etag }, validators),
      "proceed",
    );
    assert.equal(ifRangeMatches(etag, validators), true);
    assert.equal(
      evaluatePreconditions({ ifNoneMatch: makeEtag(26, 99_375) }, validators),
      "proceed",
    );
  },
});

Deno.test({
  name: "makeEtag() throws on a suffix that would break the tag",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    assert.throws(() => makeEtag(1, 1, { suffix: 'a"b' }), TypeError);
    assert.throws(() => makeEtag(1, 1, { suffix: "a b" }), TypeError);
  },
});
