import assert from "node:assert/strict";
import {
  type CliCommand,
  CliError,
  HELP,
  parseCli,
  REPLACEABLE_FIELDS,
  RESPONSE_FIELDS,
  type ServeConfig,
  VERSION,
} from "../src/cli.ts";
import { SANITIZE } from "./test_util.ts";

type Options = Parameters<typeof parseCli>[1];

/** Parses `args`, which must ask to serve, and returns the configuration. */
function config(args: string[], options?: Options): ServeConfig {
  const command: CliCommand = parseCli(args, options);
  assert.equal(command.kind, "serve");
  if (command.kind !== "serve") throw new Error("Unreachable");
  return command.config;
}

/** Parses `args`, which must fail, and returns the CliError. */
function cliError(args: string[], options?: Options): CliError {
  try {
    parseCli(args, options);
  } catch (error) {
    assert.ok(
      error instanceof CliError,
      `expected a CliError, got ${String(error)}`,
    );
    return error;
  }
  throw new assert.AssertionError({
    message: `parseCli(${JSON.stringify(args)}) did not throw`,
  });
}

/** Every long flag parseCli accepts, with a valid value for those that take one. */
const FLAGS: { flag: string; value?: string }[] = [
  { flag: "--port", value: "8080" },
  { flag: "--host", value: "127.0.0.1" },
  { flag: "--header-timeout", value: "5" },
  { flag: "--idle-timeout", value: "5" },
  { flag: "--max-connections", value: "10" },
  { flag: "--cache-control", value: "no-cache" },
  { flag: "--header", value: "X-Test: 1" },
  { flag: "--cors" },
  { flag: "--spa" },
  { flag: "--404", value: "missing.html" },
  { flag: "--dir-listing" },
  { flag: "--dotfiles" },
  { flag: "--follow-symlinks" },
  { flag: "--compress" },
  { flag: "--precompressed" },
  { flag: "--cache-size", value: "8" },
  { flag: "--workers", value: "2" },
  { flag: "--reuse-port" },
  { flag: "--quiet" },
  { flag: "--help" },
  { flag: "--version" },
];

Deno.test({
  name: "parseCli() uses the defaults when given no arguments",
  ...SANITIZE,
  fn(): void {
    assert.deepEqual(config([]), {
      root: "./html",
      hostname: "0.0.0.0",
      port: 7890,
      headerTimeout: 10_000,
      idleTimeout: 15_000,
      quiet: false,
      maxConnections: 10_000,
      workers: 1,
      reusePort: false,
      handler: {
        cacheControl: undefined,
        headers: [],
        cors: false,
        spa: false,
        notFoundPage: undefined,
        dirListing: false,
        dotfiles: false,
        followSymlinks: false,
        compress: false,
        precompressed: false,
        cacheSize: undefined,
      },
    });
  },
});

Deno.test({
  name: "parseCli() takes the root from the one positional argument",
  ...SANITIZE,
  fn(): void {
    assert.equal(config(["public"]).root, "public");
    assert.equal(config(["--cors", "/srv/www", "-q"]).root, "/srv/www");
  },
});

Deno.test({
  name: "parseCli() reads the port from -p and --port",
  ...SANITIZE,
  fn(): void {
    const cases: [string[], number][] = [
      [["-p", "8080"], 8080],
      [["--port", "8081"], 8081],
      [["--port=8082"], 8082],
      [["-p", "0"], 0],
      [["--port", "65535"], 65535],
    ];
    for (const [args, port] of cases) {
      assert.equal(config(args).port, port, JSON.stringify(args));
    }
  },
});

Deno.test({
  name: "parseCli() uses PORT from the environment only without a port flag",
  ...SANITIZE,
  fn(): void {
    assert.equal(config([], { env: { PORT: "3000" } }).port, 3000);
    assert.equal(config([], { env: {} }).port, 7890);
    assert.equal(config(["-p", "4000"], { env: { PORT: "3000" } }).port, 4000);
    assert.equal(config(["-p", "0"], { env: { PORT: "3000" } }).port, 0);
    // An invalid PORT does not matter when a flag is given...
    assert.equal(config(["-p", "5000"], { env: { PORT: "nope" } }).port, 5000);
    // ...but is an error when it is used.
    const error = cliError([], { env: { PORT: "nope" } });
    assert.match(error.message, /"nope"/);
  },
});

Deno.test({
  name: "parseCli() rejects invalid ports with a message quoting the value",
  ...SANITIZE,
  fn(): void {
    for (const value of ["-1", "65536", "abc", "1.5", "", " ", "1e3x", "0x"]) {
      const error = cliError([`--port=${value}`]);
      assert.match(error.message, /^[A-Z]/, error.message);
      assert.ok(
        error.message.includes(`"${value}"`),
        `${JSON.stringify(error.message)} does not quote ${
          JSON.stringify(value)
        }`,
      );
      assert.ok(error.message.includes("--port"), error.message);
      assert.ok(!error.message.includes("\n"), error.message);
    }
  },
});

Deno.test({
  name: "parseCli() reports a flag value that starts with a dash in one line",
  ...SANITIZE,
  fn(): void {
    for (const args of [["-p", "-1"], ["--port", "-1"]]) {
      const error = cliError(args);
      assert.match(error.message, /^[A-Z]/, error.message);
      assert.ok(
        !error.message.includes("\n"),
        `multi-line message for ${JSON.stringify(args)}: ${
          JSON.stringify(error.message)
        }`,
      );
    }
  },
});

Deno.test({
  name: "parseCli() rejects unknown flags, naming them",
  ...SANITIZE,
  fn(): void {
    for (const flag of ["--bogus", "--ports", "-x"]) {
      const error = cliError([flag]);
      assert.match(error.message, /^[A-Z]/, error.message);
      assert.ok(error.message.includes(flag), error.message);
      assert.ok(!error.message.includes("\n"), error.message);
    }
  },
});

Deno.test({
  name: "parseCli() rejects a missing or unexpected flag value",
  ...SANITIZE,
  fn(): void {
    const cases: [string[], string][] = [
      [["--port"], "--port"],
      [["--host"], "--host"],
      [["--cors=yes"], "--cors"],
    ];
    for (const [args, mention] of cases) {
      const error = cliError(args);
      assert.ok(error.message.includes(mention), error.message);
      assert.ok(!error.message.includes("\n"), error.message);
    }
  },
});

Deno.test({
  name: "parseCli() rejects two positional arguments",
  ...SANITIZE,
  fn(): void {
    const error = cliError(["one", "two"]);
    assert.match(error.message, /^[A-Z]/);
    assert.ok(error.message.includes("one two"), error.message);
  },
});

Deno.test({
  name: "parseCli() reads the timeouts in seconds into milliseconds",
  ...SANITIZE,
  fn(): void {
    const cases: [string[], number, number][] = [
      [["--header-timeout", "5"], 5_000, 15_000],
      [["--idle-timeout", "60"], 10_000, 60_000],
      [["--header-timeout", "1.5", "--idle-timeout", "0.25"], 1_500, 250],
      [["--header-timeout=0.001"], 1, 15_000],
      [["--idle-timeout=86400"], 10_000, 86_400_000],
    ];
    for (const [args, header, idle] of cases) {
      const c = config(args);
      assert.equal(c.headerTimeout, header, JSON.stringify(args));
      assert.equal(c.idleTimeout, idle, JSON.stringify(args));
    }
  },
});

Deno.test({
  name: "parseCli() rejects invalid timeouts",
  ...SANITIZE,
  fn(): void {
    for (const flag of ["--header-timeout", "--idle-timeout"]) {
      for (const value of ["0", "abc", "", "86401", "Infinity"]) {
        const error = cliError([`${flag}=${value}`]);
        assert.ok(error.message.includes(flag), error.message);
        assert.ok(error.message.includes(`"${value}"`), error.message);
      }
    }
  },
});

Deno.test({
  name: "parseCli() turns -q and --quiet into quiet",
  ...SANITIZE,
  fn(): void {
    assert.equal(config(["-q"]).quiet, true);
    assert.equal(config(["--quiet"]).quiet, true);
  },
});

Deno.test({
  name: "parseCli() returns help for -h and --help, even with other flags",
  ...SANITIZE,
  fn(): void {
    for (
      const args of [["-h"], ["--help"], ["-p", "80", "--help"], ["-V", "-h"]]
    ) {
      assert.deepEqual(parseCli(args), { kind: "help" }, JSON.stringify(args));
    }
  },
});

Deno.test({
  name: "parseCli() returns version for -V and --version",
  ...SANITIZE,
  fn(): void {
    for (const args of [["-V"], ["--version"], ["root", "--version"]]) {
      assert.deepEqual(
        parseCli(args),
        { kind: "version" },
        JSON.stringify(args),
      );
    }
  },
});

Deno.test({
  name: "parseCli() parses repeated -H/--header into name/value pairs",
  ...SANITIZE,
  fn(): void {
    const c = config([
      "-H",
      "X-Frame-Options: DENY",
      "--header",
      "X-Two:  two words ",
      "-H",
      "X-Empty:",
      "-H",
      "X-Colon: a:b",
    ]);
    assert.deepEqual(c.handler.headers, [
      ["X-Frame-Options", "DENY"],
      ["X-Two", "two words"],
      ["X-Empty", ""],
      ["X-Colon", "a:b"],
    ]);
  },
});

Deno.test({
  name: "parseCli() rejects invalid -H values",
  ...SANITIZE,
  fn(): void {
    const cases: string[] = [
      "NoColon",
      ": value",
      "X Bad: value",
      "X-Cr: a\rb",
      "X-Lf: a\nb",
      "X-Nul: a\0b",
      "X-Utf8: caf\u00e9",
      "Content-Length: 5",
      "content-length: 5",
      "Transfer-Encoding: chunked",
      "Connection: close",
      "Date: now",
      "Content-Range: bytes 0-1/2",
    ];
    for (const name of RESPONSE_FIELDS) cases.push(`${name}: x`);
    for (const value of cases) {
      const error = cliError(["-H", value]);
      assert.match(error.message, /^[A-Z]/, error.message);
    }
    assert.match(cliError(["-H", "NoColon"]).message, /"NoColon"/);
    assert.match(
      cliError(["-H", "Content-Length: 5"]).message,
      /"Content-Length"/,
    );
  },
});

Deno.test({
  name:
    "parseCli() refuses -H for every field the server sets for each response",
  ...SANITIZE,
  fn(): void {
    const names = [
      "Content-Type",
      "Content-Length",
      "Content-Encoding",
      "Content-Range",
      "ETag",
      "Last-Modified",
      "Date",
      "Accept-Ranges",
      "Vary",
      "Transfer-Encoding",
      "Connection",
      "Location",
      "Allow",
      "Keep-Alive",
      "Retry-After",
    ];
    for (const name of names) {
      for (const spelt of [name, name.toUpperCase(), name.toLowerCase()]) {
        assert.equal(
          cliError(["-H", `${spelt}: x`]).message,
          `Cannot set "${spelt}" with --header: the server sets it for each ` +
            "response",
        );
      }
    }
  },
});

Deno.test({
  name:
    "parseCli() accepts -H for the fields the server sets from its options, to replace them",
  ...SANITIZE,
  fn(): void {
    for (const name of REPLACEABLE_FIELDS) {
      assert.deepEqual(
        config(["--cors", "-H", `${name}: v`]).handler.headers,
        [[name, "v"]],
      );
    }
    assert.deepEqual(
      config(["--cors", "-H", "Access-Control-Allow-Origin: https://x"])
        .handler.headers,
      [["Access-Control-Allow-Origin", "https://x"]],
    );
  },
});

Deno.test({
  name: "parseCli() refuses a field given twice, but for Set-Cookie",
  ...SANITIZE,
  fn(): void {
    for (
      const args of [
        ["-H", "X-A: 1", "-H", "X-A: 2"],
        ["-H", "X-A: 1", "--header", "x-a: 1"],
        ["-H", "Server: a", "-H", "SERVER: b"],
      ]
    ) {
      assert.match(
        cliError(args).message,
        /^Cannot set "[^"]+" twice with --header: give its values in one, separated by ", "$/,
        JSON.stringify(args),
      );
    }
    assert.deepEqual(
      config(["-H", "Set-Cookie: a=1", "-H", "set-cookie: b=2"]).handler
        .headers,
      [["Set-Cookie", "a=1"], ["set-cookie", "b=2"]],
    );
    assert.equal(
      cliError(["--cache-control", "no-cache", "-H", "cache-control: no-store"])
        .message,
      'Cannot set "Cache-Control" with both --cache-control and --header: ' +
        "give one",
    );
  },
});

Deno.test({
  name: "parseCli() maps the boolean handler flags into the configuration",
  ...SANITIZE,
  fn(): void {
    const cases: [string, keyof ServeConfig["handler"]][] = [
      ["--cors", "cors"],
      ["--spa", "spa"],
      ["--dir-listing", "dirListing"],
      ["--dotfiles", "dotfiles"],
      ["--follow-symlinks", "followSymlinks"],
      ["--compress", "compress"],
      ["--precompressed", "precompressed"],
    ];
    for (const [flag, key] of cases) {
      const handler = config([flag]).handler;
      assert.equal(handler[key], true, flag);
      for (const [, other] of cases) {
        if (other !== key) {
          assert.equal(handler[other], false, `${flag}: ${other}`);
        }
      }
    }
  },
});

Deno.test({
  name: "parseCli() maps --404, --cache-control and --cache-size",
  ...SANITIZE,
  fn(): void {
    assert.equal(
      config(["--404", "oops.html"]).handler.notFoundPage,
      "oops.html",
    );
    assert.equal(
      config(["--cache-control", "public, max-age=60"]).handler.cacheControl,
      "public, max-age=60",
    );
    const sizes: [string, number][] = [
      ["0", 0],
      ["1", 1024 * 1024],
      ["0.5", 512 * 1024],
      ["64", 64 * 1024 * 1024],
    ];
    for (const [value, bytes] of sizes) {
      assert.equal(
        config(["--cache-size", value]).handler.cacheSize,
        bytes,
        value,
      );
    }
    for (const value of ["-1", "abc", "", "65537"]) {
      assert.ok(
        cliError([`--cache-size=${value}`]).message.includes(`"${value}"`),
      );
    }
    assert.ok(cliError(["--cache-control", "a\rb"]) instanceof CliError);
  },
});

Deno.test({
  name: "parseCli() maps --max-connections and --host",
  ...SANITIZE,
  fn(): void {
    assert.equal(config(["--max-connections", "50"]).maxConnections, 50);
    for (const value of ["0", "1.5", "x"]) {
      assert.ok(
        cliError([`--max-connections=${value}`]).message.includes(`"${value}"`),
      );
    }
    assert.equal(config(["--host", "127.0.0.1"]).hostname, "127.0.0.1");
    assert.equal(config(["--host", "::1"]).hostname, "::1");
    assert.ok(cliError(["--host="]) instanceof CliError);
  },
});

Deno.test({
  name: "parseCli() maps --workers N and auto, and --reuse-port",
  ...SANITIZE,
  fn(): void {
    const cases: [string[], Options, number, boolean][] = [
      [[], {}, 1, false],
      [["--workers", "1"], {}, 1, false],
      // Workers share the port among themselves whatever reusePort says.
      [["--workers", "4"], {}, 4, false],
      [["--workers", "auto"], { cpus: 8 }, 8, false],
      [["--workers", "auto"], { cpus: 1 }, 1, false],
      [["--workers", "auto"], {}, 1, false],
      [["--workers", "auto"], { cpus: 256 }, 256, false],
      [["--workers", "auto"], { cpus: 512 }, 256, false],
      [["--reuse-port"], {}, 1, true],
      [["--reuse-port", "--workers", "2"], {}, 2, true],
    ];
    for (const [args, options, workers, reusePort] of cases) {
      const c = config(args, options);
      assert.equal(c.workers, workers, JSON.stringify(args));
      assert.equal(c.reusePort, reusePort, JSON.stringify(args));
    }
    for (const value of ["0", "257", "1.5", "many", ""]) {
      assert.ok(
        cliError([`--workers=${value}`]).message.includes(`"${value}"`),
      );
    }
  },
});

Deno.test({
  name: "parseCli() accepts every flag in the flag list",
  ...SANITIZE,
  fn(): void {
    for (const { flag, value } of FLAGS) {
      const args = value === undefined ? [flag] : [flag, value];
      assert.doesNotThrow(() => parseCli(args), JSON.stringify(args));
    }
    const shorts: string[][] = [["-p", "1"], ["-H", "X-A: b"], ["-q"], ["-h"], [
      "-V",
    ]];
    for (const args of shorts) {
      assert.doesNotThrow(() => parseCli(args), JSON.stringify(args));
    }
  },
});

Deno.test({
  name: "parseCli() accepts every long flag HELP mentions, and no other",
  ...SANITIZE,
  fn(): void {
    const inHelp = new Set(HELP.match(/--[0-9a-z][0-9a-z-]*/g) ?? []);
    assert.deepEqual(
      [...inHelp].sort(),
      FLAGS.map((f) => f.flag).sort(),
    );
    for (const short of ["-p", "-H", "-q", "-h", "-V"]) {
      assert.match(HELP, new RegExp(`(^|\\s)${short},`, "m"), short);
    }
    assert.ok(HELP.startsWith(`static-srv ${VERSION}`));
    assert.ok(HELP.includes("Usage: static-srv [ROOT] [options]"));
  },
});

Deno.test({
  name: "HELP says that --max-connections and --cache-size are per worker",
  ...SANITIZE,
  fn(): void {
    for (const flag of ["--max-connections", "--cache-size"]) {
      const at = HELP.indexOf(flag);
      const entry = HELP.slice(at, HELP.indexOf("\n      --", at + 1));
      assert.match(entry, /per worker/, flag);
    }
  },
});

Deno.test({
  name: "parseCli() accepts only plain decimal numbers in numeric flags",
  ...SANITIZE,
  fn(): void {
    const integers: [string, string][] = [
      ["--port", "0 to 65535"],
      ["--max-connections", "1 to 1000000"],
      ["--workers", "1 to 256"],
    ];
    const fractions: [string, string][] = [
      ["--header-timeout", "0.001 to 86400"],
      ["--idle-timeout", "0.001 to 86400"],
      ["--cache-size", "0 to 65536"],
    ];
    const bad = [
      "0x4a5f",
      "1e4",
      " 80",
      "80 ",
      "\t80",
      "+80",
      "1_000",
      "0b1",
      "0o7",
      "Infinity",
      "NaN",
      ".5",
      "5.",
      "1,5",
    ];
    for (const [flag, range] of integers) {
      for (const value of [...bad, "19100.0", "1.5"]) {
        assert.equal(
          cliError([`${flag}=${value}`]).message,
          `Invalid ${flag} ${
            JSON.stringify(value)
          }: expected a decimal integer from ${range}`,
        );
      }
    }
    for (const [flag, range] of fractions) {
      for (const value of bad) {
        assert.equal(
          cliError([`${flag}=${value}`]).message,
          `Invalid ${flag} ${
            JSON.stringify(value)
          }: expected a decimal number from ${range}`,
        );
      }
    }
    assert.equal(
      cliError([], { env: { PORT: "0x50" } }).message,
      'Invalid PORT (from the environment) "0x50": expected a decimal ' +
        "integer from 0 to 65535",
    );
    assert.equal(config(["--port", "080"]).port, 80);
    assert.equal(config(["--workers", "2"]).workers, 2);
    assert.equal(config(["--idle-timeout", "1.25"]).idleTimeout, 1250);
  },
});

Deno.test({
  name:
    "parseCli() reports mistakes in one line, naming the flag and quoting the value",
  ...SANITIZE,
  fn(): void {
    const cases: [string[], string][] = [
      [
        ["--port", "-1"],
        'Invalid --port "-1": expected a decimal integer from 0 to 65535',
      ],
      [
        ["-p", "-1"],
        'Invalid --port "-1": expected a decimal integer from 0 to 65535',
      ],
      [
        ["--port=-1"],
        'Invalid --port "-1": expected a decimal integer from 0 to 65535',
      ],
      [
        ["--host", "-x"],
        'Invalid --host "-x": expected an IP address or a host name (the port goes in --port)',
      ],
      [["-H", "-x"], 'Invalid --header "-x": expected "Name: value" in ASCII'],
      [
        ["--cache-control", "a\rb"],
        'Invalid --cache-control "a\\rb": expected printable ASCII',
      ],
      [
        ["--cache-control", "a\nb"],
        'Invalid --cache-control "a\\nb": expected printable ASCII',
      ],
      [
        ["--cache-control", ""],
        'Invalid --cache-control "": expected directives such as "max-age=3600"',
      ],
      [
        ["--cache-control", " "],
        'Invalid --cache-control " ": expected directives such as "max-age=3600"',
      ],
      [
        ["-H", "X-A: a\nb"],
        'Invalid --header "X-A: a\\nb": expected "Name: value" in ASCII',
      ],
      [
        ["--host", " "],
        'Invalid --host " ": expected an IP address or a host name (the port goes in --port)',
      ],
      [
        ["--host="],
        'Invalid --host "": expected an IP address or a host name (the port goes in --port)',
      ],
      [
        ["--host", "127.0.0.1:80"],
        'Invalid --host "127.0.0.1:80": expected an IP address or a host name (the port goes in --port)',
      ],
      [
        ["--host", "[::1]"],
        'Invalid --host "[::1]": expected an IP address or a host name (the port goes in --port)',
      ],
      [
        ["--port", "8\n0"],
        'Invalid --port "8\\n0": expected a decimal integer from 0 to 65535',
      ],
      [["a\nb", "c"], 'Too many arguments: "a\\nb c" (one ROOT at most)'],
    ];
    for (const [args, message] of cases) {
      const error = cliError(args);
      assert.equal(error.message, message, JSON.stringify(args));
      assert.ok(!error.message.includes("\n"), error.message);
    }
    for (
      const host of [
        "127.0.0.1",
        "::1",
        "::",
        "0.0.0.0",
        "localhost",
        "example.com",
        "fe80::1",
      ]
    ) {
      assert.equal(config(["--host", host]).hostname, host);
    }
    assert.equal(
      config(["--cache-control", " no-cache "]).handler.cacheControl,
      "no-cache",
    );
  },
});
