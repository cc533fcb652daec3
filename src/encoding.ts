/**
 * `Accept-Encoding` negotiation (RFC 9110, section 12.5.3) between the
 * codings a client accepts and those the server can send: precompressed
 * sidecar files on disk, compression on the fly.
 *
 * @module
 */

/** A content coding served from a precompressed sidecar file. */
export type ContentCoding = "br" | "gzip";

/** The file name suffix of each coding's sidecar file. */
export const CODING_SUFFIX: Readonly<Record<ContentCoding, string>> = {
  br: ".br",
  gzip: ".gz",
};

/** Every content coding the server sends, in order of preference when their weights are equal. */
export const CONTENT_CODINGS: readonly ContentCoding[] = ["br", "gzip"];

/** Header names (lower case) that stand for each coding. */
const ALIASES: Readonly<Record<string, ContentCoding>> = {
  br: "br",
  gzip: "gzip",
  "x-gzip": "gzip",
};

/**
 * One list member: `coding [OWS ";" OWS "q=" qvalue]` with OWS around it;
 * qvalue is `0[.ddd]` or `1[.000]`.
 */
const MEMBER =
  /^[ \t]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*(?:;[ \t]*[qQ]=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)[ \t]*)?$/;

/** Options of {@linkcode negotiateEncoding}. */
export interface NegotiateOptions {
  /** Codings of `available` that win a tie against the others (sidecars against on-the-fly compression, say). */
  preferred?: readonly ContentCoding[];
}

/**
 * Picks the coding of `available` the client accepts with the highest weight
 * (on a tie, `preferred` ones first, then br before gzip), or null for
 * identity: when nothing is accepted, or when `identity` is weighted above
 * every coding offered.
 */
export function negotiateEncoding(
  acceptEncoding: string | undefined,
  available: readonly ContentCoding[],
  options: NegotiateOptions = {},
): ContentCoding | null {
  if (acceptEncoding === undefined || available.length === 0) return null;
  const explicit: Partial<Record<ContentCoding, number>> = {};
  let wildcard = -1;
  let identity = -1;
  for (const member of acceptEncoding.split(",")) {
    const match = MEMBER.exec(member);
    if (match === null) continue; // empty or malformed member
    const q = match[2] === undefined ? 1 : Number(match[2]);
    const name = match[1].toLowerCase();
    if (name === "*") {
      wildcard = Math.max(wildcard, q);
      continue;
    }
    if (name === "identity") {
      identity = Math.max(identity, q);
      continue;
    }
    const coding = ALIASES[name];
    if (coding !== undefined) {
      explicit[coding] = Math.max(explicit[coding] ?? -1, q);
    }
  }
  const preferred = options.preferred ?? [];
  let best: ContentCoding | null = null;
  let bestQ = 0;
  let bestPreferred = false;
  for (const coding of CONTENT_CODINGS) {
    if (!available.includes(coding)) continue;
    const q = explicit[coding] ?? wildcard;
    const isPreferred = preferred.includes(coding);
    if (q > bestQ || (q === bestQ && q > 0 && isPreferred && !bestPreferred)) {
      best = coding;
      bestQ = q;
      bestPreferred = isPreferred;
    }
  }
  // Identity, when weighted explicitly, competes as one more coding (RFC
  // 9110 section 12.5.3); a tie goes to the smaller coded form.
  return identity > bestQ ? null : best;
}
