import assert from "node:assert/strict";
import {
  FIELD_CHAR,
  hexValue,
  HOST_CHAR,
  QDTEXT,
  TARGET_CHAR,
  TCHAR,
} from "../../src/http/chars.ts";
import { SANITIZE } from "../test_util.ts";

const DIGIT = "0123456789";
const ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function codes(text: string): number[] {
  return [...text].map((c) => c.charCodeAt(0));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/**
 * Each table against its grammar, written out here from the RFC text
 * rather than from the predicates in chars.ts.
 */
const TABLES: { name: string; table: Uint8Array; members: number[] }[] = [
  {
    // RFC 9110 section 5.6.2.
    name: "TCHAR",
    table: TCHAR,
    members: codes("!#$%&'*+-.^_`|~" + DIGIT + ALPHA),
  },
  {
    // Visible ASCII (RFC 5234 VCHAR) but "#": a fragment is never sent.
    name: "TARGET_CHAR",
    table: TARGET_CHAR,
    members: range(0x21, 0x7e).filter((c) => c !== 0x23),
  },
  {
    // RFC 9110 section 5.5: VCHAR, obs-text, SP, HTAB.
    name: "FIELD_CHAR",
    table: FIELD_CHAR,
    members: [0x09, 0x20, ...range(0x21, 0x7e), ...range(0x80, 0xff)],
  },
  {
    // RFC 3986: unreserved, sub-delims, ":" (port), "[" "]" (IP-literal),
    // "%" (pct-encoded).
    name: "HOST_CHAR",
    table: HOST_CHAR,
    members: codes(ALPHA + DIGIT + "-._~" + "!$&'()*+,;=" + ":[]%"),
  },
  {
    // RFC 9110 section 5.6.4: HTAB, SP, %x21, %x23-5B, %x5D-7E, obs-text.
    name: "QDTEXT",
    table: QDTEXT,
    members: [
      0x09,
      0x20,
      0x21,
      ...range(0x23, 0x5b),
      ...range(0x5d, 0x7e),
      ...range(0x80, 0xff),
    ],
  },
];

for (const { name, table, members } of TABLES) {
  Deno.test({
    name: `${name} holds exactly the bytes of its grammar`,
    ...SANITIZE,
    fn(): void {
      assert.equal(table.length, 256);
      const set = new Set(members);
      for (let c = 0; c < 256; c++) {
        assert.equal(table[c], set.has(c) ? 1 : 0, `byte 0x${c.toString(16)}`);
      }
    },
  });
}

Deno.test({
  name: "hexValue() reads every hex digit in either case and nothing else",
  ...SANITIZE,
  fn(): void {
    for (let c = 0; c < 256; c++) {
      const ch = String.fromCharCode(c);
      const expected = /^[0-9a-fA-F]$/.test(ch) ? parseInt(ch, 16) : -1;
      assert.equal(hexValue(c), expected, `byte 0x${c.toString(16)}`);
    }
  },
});
