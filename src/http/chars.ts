/**
 * Byte-class tables of HTTP/1.1 (RFC 9110 section 5.6, RFC 9112): one lookup
 * per byte, shared by the request parser and the body decoder.
 *
 * @module
 */

function table(pred: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = pred(c) ? 1 : 0;
  return t;
}

function isAlphaNumeric(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a);
}

/** The value of the hex digit `c` (either case), or -1 when `c` is not one. */
export function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** 1 for token characters (`tchar`, RFC 9110 section 5.6.2). */
export const TCHAR: Uint8Array = table((c) =>
  isAlphaNumeric(c) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c))
);

/** 1 for request-target characters: visible ASCII except `#` (a fragment is never sent). */
export const TARGET_CHAR: Uint8Array = table((c) =>
  c > 0x20 && c < 0x7f && c !== 0x23
);

/** 1 for field-value characters: VCHAR, obs-text, SP, HT. */
export const FIELD_CHAR: Uint8Array = table((c) =>
  c === 0x20 || c === 0x09 || (c > 0x20 && c !== 0x7f)
);

/** 1 for `Host` characters: reg-name, IP-literal and port. */
export const HOST_CHAR: Uint8Array = table((c) =>
  isAlphaNumeric(c) || "-._~!$&'()*+,;=:[]%".includes(String.fromCharCode(c))
);

/** 1 for quoted-string text: `qdtext` (HT, SP, VCHAR but `"` and `\`, obs-text). */
export const QDTEXT: Uint8Array = table((c) =>
  c === 0x09 || c === 0x20 || c === 0x21 || (c >= 0x23 && c <= 0x5b) ||
  (c >= 0x5d && c <= 0x7e) || c >= 0x80
);
