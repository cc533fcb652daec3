/**
 * The command line: `static-srv [ROOT] [options]`, parsed with `node:util`'s
 * `parseArgs` into a plain configuration. No I/O beyond reading what it is
 * given.
 *
 * @module
 */

import { parseArgs } from "node:util";
import config from "../deno.json" with { type: "json" };
import { SERVER_DEFAULTS, TIMEOUTS } from "./defaults.ts";
import type { HandlerOptions } from "./handler.ts";

/** The program's version, from deno.json. */
export const VERSION: string = config.version;

/** The default root directory. */
export const DEFAULT_ROOT = "./html";

/** Everything needed to serve, as the command line asked for it. */
export interface ServeConfig {
  /** The directory to serve. */
  root: string;
  /** The address to listen on. */
  hostname: string;
  /** The port (0 picks a free one). */
  port: number;
  /** Header timeout in ms. */
  headerTimeout: number;
  /** Idle keep-alive timeout in ms. */
  idleTimeout: number;
  /** No access log. */
  quiet: boolean;
  /** Most open connections, per worker thread. */
  maxConnections: number;
  /** Worker threads, each with its own listener on the shared port (1: none). */
  workers: number;
  /** Share the port with other processes (`SO_REUSEPORT`); several workers share it among themselves regardless. */
  reusePort: boolean;
  /** What the handler needs. */
  handler: HandlerOptions;
}

/** What the command line asks for. */
export type CliCommand =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "serve"; config: ServeConfig };

/** A command-line mistake: its message is printed as is, without a stack. */
export class CliError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** The `--help` text. */
export const HELP = `static-srv ${VERSION}: a static HTTP/1.1 file server

Usage: static-srv [ROOT] [options]
       deno run -A main.ts [ROOT] [options]

ROOT is the directory to serve (default: ${DEFAULT_ROOT}).

Options:
  -p, --port N            Port to listen on; 0 picks a free one (default:
                          $PORT, else ${SERVER_DEFAULTS.port})
      --host ADDR         Address to listen on (default: ${SERVER_DEFAULTS.hostname})
      --header-timeout S  Seconds a client may take to send a request head
                          (default: ${TIMEOUTS.header / 1000})
      --idle-timeout S    Seconds an idle keep-alive connection stays open
                          (default: ${TIMEOUTS.idle / 1000})
      --max-connections N Open connections at most, per worker; past it: 503
                          (default: ${SERVER_DEFAULTS.maxConnections})
      --cache-control V   Cache-Control value for files (default: none)
  -H, --header "N: V"     Add a header to every response (repeatable); replaces
                          the server's Server, Cache-Control or CORS fields
      --cors              Access-Control-Allow-Origin: * and CORS preflights
      --spa               Serve /index.html for unknown extension-less paths
                          to requests whose Accept takes text/html
      --404 FILE          Use FILE as the 404 page
      --dir-listing       List directories that have no index.html
      --dotfiles          Serve dotfiles (.well-known/ is always served)
      --follow-symlinks   Serve symlinks that point outside ROOT
      --compress          Compress text-like files on the fly (gzip, brotli)
      --precompressed     Serve FILE.br / FILE.gz for FILE when accepted
      --cache-size MIB    Memory for cached file contents, MiB, per worker
                          (default: 64)
      --workers N|auto    Worker threads sharing the port, up to 256 (auto:
                          one per CPU; default: 1)
      --reuse-port        Let other processes listen on the same port
  -q, --quiet             No access log
  -h, --help              Show this help
  -V, --version           Show the version
`;

/** Plain decimal integers, and decimal fractions: no sign, exponent, hex, spaces or `Infinity`. */
const DECIMAL = {
  integer: /^[0-9]+$/,
  fraction: /^[0-9]+(\.[0-9]+)?$/,
} as const;

/** Quotes a value for a one-line message (JSON escapes, so a newline stays `\n`). */
function quote(value: string): string {
  return JSON.stringify(value);
}

function number(
  name: string,
  value: string,
  options: { min: number; max: number; integer?: boolean },
): number {
  const n = Number(value);
  const form = options.integer ? DECIMAL.integer : DECIMAL.fraction;
  if (!form.test(value) || n < options.min || n > options.max) {
    throw new CliError(
      `Invalid ${name} ${quote(value)}: expected ${
        options.integer ? "a decimal integer" : "a decimal number"
      } from ${options.min} to ${options.max}`,
    );
  }
  return n;
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE = /^[\x20-\x7e\t]*$/;
/** The most worker threads, `--workers N` or `auto` on a machine with more CPUs. */
const MAX_WORKERS = 256;
/**
 * Fields the server sets for each response, from the file or the protocol
 * (framing, connection management, validators, negotiation, redirects):
 * `-H` cannot set them.
 */
export const RESPONSE_FIELDS: ReadonlySet<string> = new Set([
  "accept-ranges",
  "allow",
  "connection",
  "content-encoding",
  "content-length",
  "content-range",
  "content-type",
  "date",
  "etag",
  "keep-alive",
  "last-modified",
  "location",
  "proxy-connection",
  "retry-after",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "vary",
]);

/**
 * Fields the server sets from its options or as a constant: one given with
 * `-H` replaces the server's (as Caddy's `header` directive does).
 */
export const REPLACEABLE_FIELDS: ReadonlySet<string> = new Set([
  "access-control-allow-headers",
  "access-control-allow-methods",
  "access-control-allow-origin",
  "access-control-expose-headers",
  "access-control-max-age",
  "cache-control",
  "server",
]);

/** Fields `-H` may give more than once: `Set-Cookie` values cannot be joined into one line (RFC 9110 section 5.3). */
const REPEATABLE_FIELDS: ReadonlySet<string> = new Set(["set-cookie"]);

function header(value: string): [string, string] {
  const colon = value.indexOf(":");
  const name = colon < 0 ? "" : value.slice(0, colon).trim();
  const field = colon < 0 ? "" : value.slice(colon + 1).trim();
  if (!HEADER_NAME.test(name) || !HEADER_VALUE.test(field)) {
    throw new CliError(
      `Invalid --header ${quote(value)}: expected "Name: value" in ASCII`,
    );
  }
  if (RESPONSE_FIELDS.has(name.toLowerCase())) {
    throw new CliError(
      `Cannot set "${name}" with --header: the server sets it for each response`,
    );
  }
  return [name, field];
}

/** Parses every `-H`: a name given twice is an error, but for `Set-Cookie`. */
function headers(values: string[]): [string, string][] {
  const seen = new Set<string>();
  return values.map((value) => {
    const [name, field] = header(value);
    const lower = name.toLowerCase();
    if (seen.has(lower) && !REPEATABLE_FIELDS.has(lower)) {
      throw new CliError(
        `Cannot set "${name}" twice with --header: give its values in one, ` +
          `separated by ", "`,
      );
    }
    seen.add(lower);
    return [name, field];
  });
}

/** The short flags that take a value, and their long names. */
const SHORT_VALUE_FLAGS: Readonly<Record<string, string>> = {
  "-p": "port",
  "-H": "header",
};

/**
 * The error for `--name -x` (a value that starts with a dash, which parseArgs
 * calls ambiguous): the value's own error as `--name=-x` (say, a port out of
 * range), else how to write it.
 */
function dashValue(
  args: string[],
  name: string,
  options: { env?: { PORT?: string }; cpus?: number },
): CliError {
  const at = args.findIndex((arg, i) =>
    (arg === `--${name}` || SHORT_VALUE_FLAGS[arg] === name) &&
    args[i + 1]?.startsWith("-")
  );
  if (at < 0) return new CliError(`Invalid --${name}: missing value`);
  const value = args[at + 1];
  const joined = [
    ...args.slice(0, at),
    `--${name}=${value}`,
    ...args.slice(at + 2),
  ];
  try {
    parseCli(joined, options);
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  return new CliError(
    `Invalid --${name} ${quote(value)}: a value that starts with "-" must ` +
      `be written --${name}=${value}`,
  );
}

/** An IP address (v4, or v6 without brackets) or a host name: no port, no spaces. */
function isHost(value: string): boolean {
  if (
    /^[0-9A-Za-z]([0-9A-Za-z-]*[0-9A-Za-z])?(\.[0-9A-Za-z]([0-9A-Za-z-]*[0-9A-Za-z])?)*\.?$/
      .test(value)
  ) {
    return true;
  }
  if (!value.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(value)) return false;
  return URL.canParse(`http://[${value}]/`);
}

/**
 * Parses the arguments (without the program name). `env.PORT` is used when
 * no `--port` is given. Throws {@linkcode CliError} on any mistake.
 */
export function parseCli(
  args: string[],
  options: { env?: { PORT?: string }; cpus?: number } = {},
): CliCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        port: { type: "string", short: "p" },
        host: { type: "string" },
        "header-timeout": { type: "string" },
        "idle-timeout": { type: "string" },
        "max-connections": { type: "string" },
        "cache-control": { type: "string" },
        header: { type: "string", short: "H", multiple: true },
        cors: { type: "boolean" },
        spa: { type: "boolean" },
        "404": { type: "string" },
        "dir-listing": { type: "boolean" },
        dotfiles: { type: "boolean" },
        "follow-symlinks": { type: "boolean" },
        compress: { type: "boolean" },
        precompressed: { type: "boolean" },
        "cache-size": { type: "string" },
        workers: { type: "string" },
        "reuse-port": { type: "boolean" },
        quiet: { type: "boolean", short: "q" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    });
  } catch (error) {
    const ambiguous = /argument is ambiguous[^]*use '--([0-9a-z-]+)=-XYZ'/.exec(
      (error as Error).message,
    );
    if (ambiguous !== null) throw dashValue(args, ambiguous[1], options);
    const message = (error as Error).message
      .split("\n", 1)[0]
      .replace(/'([^']*)'/g, '"$1"')
      .replace(/\.? To specify a positional.*$/s, "")
      .replace(/\.$/, "");
    throw new CliError(message);
  }
  const v = parsed.values;
  if (v.help) return { kind: "help" };
  if (v.version) return { kind: "version" };
  if (parsed.positionals.length > 1) {
    throw new CliError(
      `Too many arguments: ${
        quote(parsed.positionals.join(" "))
      } (one ROOT at most)`,
    );
  }
  const portText = v.port ?? options.env?.PORT;
  const port = portText === undefined ? SERVER_DEFAULTS.port : number(
    v.port === undefined ? "PORT (from the environment)" : "--port",
    portText,
    {
      min: 0,
      max: 65535,
      integer: true,
    },
  );
  const seconds = (name: string, value: string | undefined, fallback: number) =>
    value === undefined
      ? fallback
      : number(`--${name}`, value, { min: 0.001, max: 86400 }) * 1000;
  const cpus = options.cpus ?? 1;
  const workers = v.workers === undefined
    ? 1
    : v.workers === "auto"
    ? Math.min(cpus, MAX_WORKERS)
    : number("--workers", v.workers, {
      min: 1,
      max: MAX_WORKERS,
      integer: true,
    });
  const hostname = v.host ?? SERVER_DEFAULTS.hostname;
  if (!isHost(hostname)) {
    throw new CliError(
      `Invalid --host ${quote(hostname)}: expected an IP address or a host ` +
        "name (the port goes in --port)",
    );
  }
  const cacheControl = v["cache-control"];
  if (cacheControl !== undefined && !HEADER_VALUE.test(cacheControl.trim())) {
    throw new CliError(
      `Invalid --cache-control ${
        quote(cacheControl)
      }: expected printable ASCII`,
    );
  }
  if (cacheControl !== undefined && cacheControl.trim() === "") {
    throw new CliError(
      `Invalid --cache-control ${
        quote(cacheControl)
      }: expected directives such as "max-age=3600"`,
    );
  }
  const fields = headers(v.header ?? []);
  if (
    cacheControl !== undefined &&
    fields.some(([name]) => name.toLowerCase() === "cache-control")
  ) {
    throw new CliError(
      'Cannot set "Cache-Control" with both --cache-control and --header: ' +
        "give one",
    );
  }

  return {
    kind: "serve",
    config: {
      root: parsed.positionals[0] ?? DEFAULT_ROOT,
      hostname,
      port,
      headerTimeout: seconds(
        "header-timeout",
        v["header-timeout"],
        TIMEOUTS.header,
      ),
      idleTimeout: seconds("idle-timeout", v["idle-timeout"], TIMEOUTS.idle),
      quiet: v.quiet ?? false,
      maxConnections: v["max-connections"] === undefined
        ? SERVER_DEFAULTS.maxConnections
        : number("--max-connections", v["max-connections"], {
          min: 1,
          max: 1_000_000,
          integer: true,
        }),
      workers,
      reusePort: v["reuse-port"] ?? false,
      handler: {
        cacheControl: cacheControl?.trim(),
        headers: fields,
        cors: v.cors ?? false,
        spa: v.spa ?? false,
        notFoundPage: v["404"],
        dirListing: v["dir-listing"] ?? false,
        dotfiles: v.dotfiles ?? false,
        followSymlinks: v["follow-symlinks"] ?? false,
        compress: v.compress ?? false,
        precompressed: v.precompressed ?? false,
        cacheSize: v["cache-size"] === undefined ? undefined : Math.round(
          number("--cache-size", v["cache-size"], { min: 0, max: 65536 }) *
            1024 * 1024,
        ),
      },
    },
  };
}
