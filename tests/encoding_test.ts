import assert from "node:assert/strict";
import {
  CODING_SUFFIX,
  type ContentCoding,
  negotiateEncoding,
} from "../src/encoding.ts";

const BOTH: readonly ContentCoding[] = ["gzip", "br"];

interface Case {
  name: string;
  header: string | undefined;
  available?: readonly ContentCoding[];
  preferred?: readonly ContentCoding[];
  expected: ContentCoding | null;
}

const CASES: readonly Case[] = [
  { name: "missing header", header: undefined, expected: null },
  { name: "empty header", header: "", expected: null },
  { name: "only commas and spaces", header: " , ,", expected: null },
  { name: "gzip", header: "gzip", expected: "gzip" },
  { name: "br", header: "br", expected: "br" },
  { name: "gzip, br prefers br", header: "gzip, br", expected: "br" },
  { name: "higher q wins", header: "br;q=0.5, gzip", expected: "gzip" },
  { name: "equal q prefers br", header: "br;q=1, gzip;q=1", expected: "br" },
  // RFC 9110 section 12.4.2: a member without a weight has q=1.
  { name: "no q ties with q=1", header: "br;q=1, gzip", expected: "br" },
  {
    name: "no q on identity ties with q=1",
    header: "identity, gzip;q=1",
    available: ["gzip"],
    expected: "gzip",
  },
  {
    name: "equal q prefers br in any order",
    header: "gzip;q=0.7, br;q=0.7",
    available: ["gzip", "br"],
    expected: "br",
  },
  { name: "wildcard", header: "*", expected: "br" },
  { name: "wildcard q=0", header: "*;q=0", expected: null },
  { name: "br refused, wildcard", header: "br;q=0, *", expected: "gzip" },
  {
    name: "explicit q beats wildcard",
    header: "*;q=0.9, br;q=0.2",
    expected: "gzip",
  },
  { name: "identity only", header: "identity", expected: null },
  {
    name: "identity weighted above gzip",
    header: "identity;q=1, gzip;q=0.5",
    available: ["gzip"],
    expected: null,
  },
  {
    name: "identity weighted above both",
    header: "gzip;q=0.4, br;q=0.5, IDENTITY;q=0.6",
    expected: null,
  },
  {
    name: "identity weighted below br",
    header: "identity;q=0.5, br",
    expected: "br",
  },
  {
    name: "identity and gzip tied: the coding",
    header: "identity, gzip",
    available: ["gzip"],
    expected: "gzip",
  },
  {
    name: "identity refused",
    header: "identity;q=0, gzip;q=0.1",
    expected: "gzip",
  },
  { name: "unknown codings", header: "deflate, zstd", expected: null },
  { name: "upper case coding", header: "GZIP", expected: "gzip" },
  { name: "mixed case q", header: "Br;Q=0.5, gzip;q=0.4", expected: "br" },
  { name: "x-gzip", header: "x-gzip", expected: "gzip" },
  { name: "x-gzip refused", header: "x-gzip;q=0, *", expected: "br" },
  { name: "q above 1 is skipped", header: "br;q=2, gzip", expected: "gzip" },
  { name: "non-numeric q is skipped", header: "br;q=abc", expected: null },
  {
    name: "four decimals are skipped",
    header: "br;q=0.5000, gzip;q=0.1",
    expected: "gzip",
  },
  { name: "q=1.000 is valid", header: "br;q=1.000", expected: "br" },
  { name: "q=1.001 is skipped", header: "br;q=1.001", expected: null },
  { name: "q with no digits", header: "br;q=, gzip", expected: "gzip" },
  {
    name: "unknown parameter is skipped",
    header: "br;level=5, gzip",
    expected: "gzip",
  },
  {
    name: "br not available",
    header: "br",
    available: ["gzip"],
    expected: null,
  },
  {
    name: "only gzip available",
    header: "br, gzip;q=0.1",
    available: ["gzip"],
    expected: "gzip",
  },
  {
    name: "nothing available",
    header: "br, gzip",
    available: [],
    expected: null,
  },
  { name: "whitespace around ;", header: "gzip ; q=0.8", expected: "gzip" },
  {
    name: "tabs and spaces",
    header: "\tbr\t;\tq=0.3 ,  gzip;q=0.8\t",
    expected: "gzip",
  },
  {
    name: "q=0.001 beats q=0",
    header: "gzip;q=0.001, br;q=0",
    expected: "gzip",
  },
  { name: "q=0.000 refuses", header: "br;q=0.000, gzip;q=0", expected: null },
  {
    name: "a tie goes to the preferred",
    header: "gzip, deflate, br, zstd",
    preferred: ["gzip"],
    expected: "gzip",
  },
  {
    name: "a wildcard tie goes to the preferred",
    header: "*",
    preferred: ["gzip"],
    expected: "gzip",
  },
  {
    name: "a tie among the preferred goes to br",
    header: "gzip, br",
    preferred: ["gzip", "br"],
    expected: "br",
  },
  {
    name: "a higher q beats the preferred",
    header: "gzip;q=0.5, br",
    preferred: ["gzip"],
    expected: "br",
  },
  {
    name: "a refused preferred is not chosen",
    header: "gzip;q=0, br;q=0.1",
    preferred: ["gzip"],
    expected: "br",
  },
  {
    name: "the preferred refused, nothing else accepted",
    header: "gzip;q=0, br;q=0",
    preferred: ["gzip"],
    expected: null,
  },
  {
    name: "identity above the preferred",
    header: "gzip;q=0.5, identity",
    preferred: ["gzip"],
    expected: null,
  },
];

for (const c of CASES) {
  Deno.test({
    name: `negotiateEncoding() handles ${c.name}`,
    sanitizeOps: true,
    sanitizeResources: true,
    fn(): void {
      assert.equal(
        negotiateEncoding(c.header, c.available ?? BOTH, {
          preferred: c.preferred,
        }),
        c.expected,
        `header ${JSON.stringify(c.header)}`,
      );
    },
  });
}

Deno.test({
  name: "CODING_SUFFIX maps codings to sidecar suffixes",
  sanitizeOps: true,
  sanitizeResources: true,
  fn(): void {
    assert.deepEqual(CODING_SUFFIX, { br: ".br", gzip: ".gz" });
  },
});
