/**
 * main.ts as a child process: help, version, one-line errors, serving, the
 * access log and a clean stop on SIGTERM.
 */

import assert from "node:assert/strict";
import {
  closeSync,
  constants as fsConstants,
  openSync,
  writeSync,
} from "node:fs";
import denoJson from "../deno.json" with { type: "json" };
import { STATUS_CODE } from "../src/http/status.ts";
import {
  bytes,
  closeQuietly,
  connect,
  getAndClose,
  killAfter,
  MAIN,
  makeTree,
  type ProcessOutput,
  PROJECT,
  readHead,
  ResponseReader,
  runWithin,
  SANITIZE,
  until,
  withTimeout,
  writeAll,
} from "./test_util.ts";

/** Kills a child that has not exited by then (a hung test fails instead of hanging). */
const CHILD_LIMIT_MS = 60_000;

const CLF_LINE =
  /^127\.0\.0\.1 - - \[\d{2}\/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET \/ HTTP\/1\.1" 200 (\d+)$/;

function command(
  args: string[],
  options: { cwd?: string } = {},
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: options.cwd,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs main.ts to its exit (killed after CHILD_LIMIT_MS). */
function run(
  args: string[],
  options: { cwd?: string } = {},
): Promise<ProcessOutput> {
  return runWithin(command(args, options), CHILD_LIMIT_MS);
}

/** Asserts `text` is exactly one line (with its newline) and no stack trace. */
function assertOneLine(text: string): string {
  assert.ok(text.endsWith("\n"), JSON.stringify(text));
  const lines = text.slice(0, -1).split("\n");
  assert.equal(
    lines.length,
    1,
    `expected one line, got ${JSON.stringify(text)}`,
  );
  assert.doesNotMatch(text, /^\s+at /m);
  assert.doesNotMatch(text, /\berror: Uncaught\b/i);
  return lines[0];
}

/** A child's output stream, read line by line: on demand, or all of it in the background. */
class LineStream {
  readonly lines: string[] = [];
  #reader: ReadableStreamDefaultReader<string>;
  #partial = "";
  #done = false;
  /** The one read in flight, shared by whoever waits for more. */
  #reading: Promise<boolean> | null = null;
  #draining?: Promise<string[]>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Everything read so far. */
  get text(): string {
    return this.lines.map((line) => line + "\n").join("") + this.#partial;
  }

  /** Reads one chunk into `lines`; false at the end. */
  #more(): Promise<boolean> {
    return this.#reading ??= this.#read().finally(() => this.#reading = null);
  }

  async #read(): Promise<boolean> {
    if (this.#done) return false;
    const { value, done } = await this.#reader.read();
    if (done) {
      this.#done = true;
      if (this.#partial !== "") this.lines.push(this.#partial);
      this.#partial = "";
      this.#reader.releaseLock();
      return false;
    }
    const parts = (this.#partial + value).split("\n");
    this.#partial = parts.pop()!;
    this.lines.push(...parts);
    return true;
  }

  /** Reads until a line matches; throws at the end of the stream. */
  async waitFor(match: (line: string) => boolean): Promise<string> {
    for (let seen = 0;;) {
      for (; seen < this.lines.length; seen++) {
        if (match(this.lines[seen])) return this.lines[seen];
      }
      if (!await this.#more()) {
        throw new Error(
          `output ended without the expected line: ${
            JSON.stringify(this.lines)
          }`,
        );
      }
    }
  }

  /** Reads to the end; answers every line. */
  async rest(): Promise<string[]> {
    while (await this.#more()) {
      // reading
    }
    return this.lines;
  }

  /** Keeps reading in the background until the end (the child never blocks on it). */
  drain(): void {
    this.#draining ??= this.rest();
  }
}

/**
 * A main.ts that serves until stopped. Its stderr is read as it comes; its
 * stdout only when asked (`waitForLine`, `readStdout`): a test may leave it
 * unread.
 */
class ServerProcess {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  readonly out: LineStream;
  readonly err: LineStream;
  #timer: ReturnType<typeof setTimeout>;
  #stopped?: Promise<{ code: number; stdout: string[]; stderr: string }>;

  private constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.#timer = killAfter(child, CHILD_LIMIT_MS);
    this.out = new LineStream(child.stdout);
    this.err = new LineStream(child.stderr);
    this.err.drain();
    this.port = 0;
  }

  /** What it wrote on stderr so far. */
  get stderr(): string {
    return this.err.text;
  }

  /** Reads the rest of stdout into `lines` in the background, until it ends. */
  readStdout(): void {
    this.out.drain();
  }

  /** Takes over a child started otherwise (through a shell, say). */
  static adopt(child: Deno.ChildProcess): ServerProcess {
    return new ServerProcess(child);
  }

  /** Starts main.ts without waiting for anything. */
  static spawn(args: string[], options: { cwd?: string } = {}): ServerProcess {
    return new ServerProcess(command(args, options).spawn());
  }

  /** Starts main.ts and waits for the banner's URL; always cleans up on failure. */
  static async start(
    args: string[],
    options: { cwd?: string } = {},
  ): Promise<ServerProcess> {
    const server = ServerProcess.spawn(args, options);
    try {
      const line = await server.waitForLine((l) =>
        /^\s+http:\/\/127\.0\.0\.1:\d+\/$/.test(l)
      );
      (server as { port: number }).port = Number(/:(\d+)\/$/.exec(line)![1]);
      return server;
    } catch (error) {
      const { stderr } = await server.stop("SIGKILL");
      throw new Error(`${(error as Error).message}; stderr: ${stderr}`);
    }
  }

  /** The stdout lines read so far. */
  get lines(): string[] {
    return this.out.lines;
  }

  /** Reads stdout until a line matches; throws at the end of stdout. */
  waitForLine(match: (line: string) => boolean): Promise<string> {
    return this.out.waitFor(match);
  }

  /**
   * Sends `signal` (none for `null`), then reads the rest of stdout and
   * stderr and the exit status. Once stopped, later calls return the same
   * result and send nothing.
   */
  stop(
    signal: Deno.Signal | null = "SIGTERM",
  ): Promise<{ code: number; stdout: string[]; stderr: string }> {
    return this.#stopped ??= this.#stop(signal);
  }

  async #stop(
    signal: Deno.Signal | null,
  ): Promise<{ code: number; stdout: string[]; stderr: string }> {
    try {
      if (signal !== null) this.child.kill(signal);
    } catch {
      // already exited
    }
    try {
      const status = await this.child.status;
      const [stdout, stderr] = await Promise.all([
        this.out.rest(),
        this.err.rest(),
      ]);
      return {
        code: status.code,
        stdout,
        stderr: stderr.map((line) => line + "\n").join(""),
      };
    } finally {
      clearTimeout(this.#timer);
    }
  }
}

/** The line main.ts prints on stderr when a signal starts a graceful stop. */
function stoppingLine(signal: Deno.Signal): string {
  return `static-srv: Stopping on ${signal}: finishing the responses in ` +
    "flight (a second signal stops at once)\n";
}

Deno.test({
  name: "main.ts --help exits 0 and prints the usage",
  ...SANITIZE,
  async fn(): Promise<void> {
    for (const flag of ["--help", "-h"]) {
      const { code, stdout, stderr } = await run([flag]);
      assert.equal(code, 0, stderr);
      assert.ok(stdout.includes("Usage: static-srv [ROOT] [options]"), stdout);
      assert.ok(stdout.includes("--port"), stdout);
      assert.equal(stderr, "");
    }
  },
});

Deno.test({
  name: "main.ts --version prints the version from deno.json",
  ...SANITIZE,
  async fn(): Promise<void> {
    for (const flag of ["--version", "-V"]) {
      const { code, stdout, stderr } = await run([flag]);
      assert.equal(code, 0, stderr);
      assert.equal(stdout, `static-srv ${denoJson.version}\n`);
      assert.equal(stderr, "");
    }
  },
});

const BAD_ARGS: [string, string[], string][] = [
  ["an unknown flag", ["--bogus"], "--bogus"],
  ["an invalid port", ["--port", "abc"], '"abc"'],
  ["a negative port", ["--port", "-1"], "--port"],
  ["a missing flag value", ["--host"], "--host"],
  ["two roots", ["a", "b"], '"a b"'],
  ["an invalid header", ["-H", "Content-Length: 1"], "Content-Length"],
];

for (const [what, args, mention] of BAD_ARGS) {
  Deno.test({
    name: `main.ts reports ${what} in one line on stderr`,
    ...SANITIZE,
    async fn(): Promise<void> {
      const { code, stdout, stderr } = await run(args);
      assert.notEqual(code, 0);
      assert.equal(stdout, "");
      const line = assertOneLine(stderr);
      assert.ok(line.startsWith("static-srv: "), line);
      assert.ok(line.includes(mention), line);
    },
  });
}

/** Where a mistake's arguments name the test's directory (a tree with index.html). */
const DIR = "<dir>";

/** Mistakes and the exact line and status main.ts answers them with. */
const MISTAKES: [string, string[], number, (dir: string) => string][] = [
  [
    "a host with a port",
    ["--host", "127.0.0.1:80"],
    2,
    () =>
      'static-srv: Invalid --host "127.0.0.1:80": expected an IP address or a ' +
      "host name (the port goes in --port) (see --help)",
  ],
  [
    "a negative port",
    ["--port", "-1"],
    2,
    () =>
      'static-srv: Invalid --port "-1": expected a decimal integer from 0 to ' +
      "65535 (see --help)",
  ],
  [
    "a missing --404 file",
    ["--404", `${DIR}/missing.html`],
    1,
    (dir) => `static-srv: Cannot read "${dir}/missing.html": no such file`,
  ],
  [
    "a --404 that is a directory",
    ["--404", DIR],
    1,
    (dir) => `static-srv: Cannot read "${dir}": is a directory`,
  ],
  [
    "a --404 below a regular file",
    ["--404", `${DIR}/index.html/404.html`],
    1,
    (dir) =>
      `static-srv: Cannot read "${dir}/index.html/404.html": not a directory`,
  ],
];

for (const [what, args, status, line] of MISTAKES) {
  Deno.test({
    name: `main.ts reports ${what} in one line, with status ${status}`,
    ...SANITIZE,
    async fn(): Promise<void> {
      const dir = await makeTree({ "index.html": "hi" });
      try {
        const { code, stdout, stderr } = await run([
          dir,
          "--port",
          "0",
          ...args.map((arg) => arg.replace(DIR, dir)),
        ]);
        assert.equal(code, status, stderr);
        assert.equal(stdout, "");
        assert.equal(assertOneLine(stderr), line(dir));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "main.ts --help works without env permission",
  ...SANITIZE,
  async fn(): Promise<void> {
    const { code, stdout, stderr } = await runWithin(
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-prompt", MAIN, "--help"],
        env: { NO_COLOR: "1", PORT: "1234" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }),
      CHILD_LIMIT_MS,
    );
    assert.equal(code, 0, stderr);
    assert.equal(stderr, "");
    assert.ok(stdout.includes("Usage: static-srv [ROOT] [options]"), stdout);
  },
});

Deno.test({
  name: "main.ts exits 1 with one line when stdout cannot be written",
  ignore: Deno.build.os !== "linux",
  ...SANITIZE,
  async fn(): Promise<void> {
    const dir = await makeTree({ "index.html": "hi" });
    try {
      for (
        const args of [[dir, "--port", "0", "--host", "127.0.0.1"], ["--help"]]
      ) {
        const { code, stderr } = await runWithin(
          new Deno.Command("sh", {
            args: [
              "-c",
              'exec "$0" run -A "$@" > /dev/full',
              Deno.execPath(),
              MAIN,
              ...args,
            ],
            env: { NO_COLOR: "1" },
            stdin: "null",
            stdout: "piped",
            stderr: "piped",
          }),
          CHILD_LIMIT_MS,
        );
        assert.equal(code, 1, stderr);
        assert.equal(
          assertOneLine(stderr),
          "static-srv: Cannot write to stdout: no space left on device",
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "main.ts exits 1 with one line when the root cannot be served",
  ...SANITIZE,
  async fn(t): Promise<void> {
    const cases = [
      { name: "a root that does not exist", root: "missing" },
      { name: "a root that is a regular file", root: "file.txt" },
    ];
    const dir = await makeTree({ "file.txt": "not a directory" });
    try {
      for (const c of cases) {
        await t.step(c.name, async () => {
          const root = `${dir}/${c.root}`;
          const { code, stdout, stderr } = await run([
            root,
            "--port",
            "0",
            "--host",
            "127.0.0.1",
          ]);
          assert.equal(code, 1);
          assert.equal(stdout, "");
          const line = assertOneLine(stderr);
          assert.ok(line.includes(root), line);
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "main.ts exits 1 with one line when the port is in use",
  ...SANITIZE,
  async fn(): Promise<void> {
    const dir = await makeTree({ "index.html": "hi" });
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = (listener.addr as Deno.NetAddr).port;
      const { code, stdout, stderr } = await run([
        dir,
        "--port",
        String(port),
        "--host",
        "127.0.0.1",
      ]);
      assert.equal(code, 1);
      assert.equal(stdout, "");
      const line = assertOneLine(stderr);
      assert.ok(line.includes(`127.0.0.1:${port}`), line);
      assert.match(line, /address already in use/i);
    } finally {
      listener.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "main.ts --workers 2 exits 1 with one line when the port is in use, shared or not",
  ...SANITIZE,
  async fn(t): Promise<void> {
    const dir = await makeTree({ "index.html": "hi" });
    try {
      for (const reusePort of [false, true]) {
        await t.step(`a listener with reusePort: ${reusePort}`, async () => {
          const listener = Deno.listen({
            hostname: "127.0.0.1",
            port: 0,
            ...(reusePort ? { reusePort: true } : {}),
          } as Deno.TcpListenOptions);
          try {
            const port = (listener.addr as Deno.NetAddr).port;
            const { code, stdout, stderr } = await run([
              dir,
              "--workers",
              "2",
              "--port",
              String(port),
              "--host",
              "127.0.0.1",
            ]);
            assert.equal(code, 1, stderr);
            assert.equal(stdout, "");
            assert.equal(
              assertOneLine(stderr),
              `static-srv: Cannot listen on "127.0.0.1:${port}": ` +
                "address already in use",
            );
          } finally {
            listener.close();
          }
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "main.ts --workers 2 --reuse-port joins a reusePort listener",
  ...SANITIZE,
  async fn(): Promise<void> {
    const dir = await makeTree({ "index.html": "hi" });
    const listener = Deno.listen({
      hostname: "127.0.0.1",
      port: 0,
      reusePort: true,
    } as Deno.TcpListenOptions);
    try {
      const port = (listener.addr as Deno.NetAddr).port;
      const server = await ServerProcess.start([
        dir,
        "--workers",
        "2",
        "--reuse-port",
        "--port",
        String(port),
        "--host",
        "127.0.0.1",
      ]);
      try {
        assert.equal(server.port, port);
        const { code, stderr } = await server.stop("SIGTERM");
        assert.equal(code, 0, stderr);
      } finally {
        await server.stop("SIGKILL"); // no-op once stopped
      }
    } finally {
      listener.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "main.ts serves, logs in Common Log Format and stops on SIGTERM",
  ...SANITIZE,
  async fn(): Promise<void> {
    const content = "<h1>hello from main_test</h1>\n";
    const dir = await makeTree({ "index.html": content });
    try {
      const server = await ServerProcess.start([
        dir,
        "--port",
        "0",
        "--host",
        "127.0.0.1",
      ]);
      try {
        assert.ok(server.port > 0);
        assert.ok(
          server.lines.some((l) => l.startsWith("static-srv ")),
          JSON.stringify(server.lines),
        );
        const response = await getAndClose(server.port);
        assert.equal(response.status, STATUS_CODE.OK);
        assert.equal(response.text, content);
        const line = await server.waitForLine((l) => CLF_LINE.test(l));
        assert.equal(Number(CLF_LINE.exec(line)![2]), response.body.length);
        const { code, stderr } = await server.stop("SIGTERM");
        assert.equal(code, 0, stderr);
        assert.equal(stderr, stoppingLine("SIGTERM"));
      } finally {
        await server.stop("SIGKILL"); // no-op once stopped
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "main.ts --cors -H sends the given Access-Control-Allow-Origin and Server once",
  ...SANITIZE,
  async fn(): Promise<void> {
    const dir = await makeTree({ "index.html": "cors" });
    try {
      const server = await ServerProcess.start([
        dir,
        "--quiet",
        "--cors",
        "-H",
        "Access-Control-Allow-Origin: https://x.example",
        "-H",
        "Server: mine",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
      ]);
      try {
        const conn = await Deno.connect({
          hostname: "127.0.0.1",
          port: server.port,
        });
        let text = "";
        try {
          await conn.write(
            new TextEncoder().encode(
              "GET / HTTP/1.1\r\nHost: x\r\nOrigin: https://x.example\r\n" +
                "Connection: close\r\n\r\n",
            ),
          );
          const chunk = new Uint8Array(65536);
          for (let i = 0; i < 1000; i++) {
            const n = await conn.read(chunk);
            if (n === null) break;
            text += new TextDecoder().decode(chunk.subarray(0, n));
          }
        } finally {
          conn.close();
        }
        const head = text.slice(0, text.indexOf("\r\n\r\n"));
        assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
        const origins = head.match(/^access-control-allow-origin:.*$/gim);
        assert.deepEqual(origins, [
          "Access-Control-Allow-Origin: https://x.example",
        ]);
        assert.deepEqual(head.match(/^server:.*$/gim), ["Server: mine"]);
        const { code, stderr } = await server.stop("SIGTERM");
        assert.equal(code, 0, stderr);
      } finally {
        await server.stop("SIGKILL"); // no-op once stopped
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "main.ts --quiet writes no access log",
  ...SANITIZE,
  async fn(): Promise<void> {
    const dir = await makeTree({ "index.html": "quiet" });
    try {
      const server = await ServerProcess.start([
        dir,
        "--quiet",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
      ]);
      try {
        const response = await getAndClose(server.port);
        assert.equal(response.status, STATUS_CODE.OK);
        assert.equal(response.text, "quiet");
        // The log is flushed on stop, so every line is in by the exit.
        const { code, stdout, stderr } = await server.stop("SIGTERM");
        assert.equal(code, 0, stderr);
        assert.ok(
          !stdout.some((l) => l.includes('"GET / HTTP/1.1"')),
          JSON.stringify(stdout),
        );
      } finally {
        await server.stop("SIGKILL"); // no-op once stopped
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "main.ts serves ./html from the working directory by default",
  ...SANITIZE,
  async fn(): Promise<void> {
    const expected = await Deno.readFile(`${PROJECT}/html/index.html`);
    const server = await ServerProcess.start(
      ["--port", "0", "--host", "127.0.0.1", "--quiet"],
      { cwd: PROJECT },
    );
    try {
      assert.ok(
        server.lines.includes(
          `static-srv ${await Deno.realPath(`${PROJECT}/html`)}`,
        ),
        JSON.stringify(server.lines),
      );
      const response = await getAndClose(server.port);
      assert.equal(response.status, STATUS_CODE.OK);
      assert.deepEqual(response.body, expected);
      const { code, stderr } = await server.stop("SIGTERM");
      assert.equal(code, 0, stderr);
    } finally {
      await server.stop("SIGKILL"); // no-op once stopped
    }
  },
});

Deno.test({
  name: "main.ts --reuse-port lets two processes share a port",
  ...SANITIZE,
  async fn(): Promise<void> {
    const root = await makeTree({ "index.html": "shared" });
    const first = await ServerProcess.start([
      root,
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--reuse-port",
    ]);
    let second: ServerProcess | undefined;
    try {
      second = await ServerProcess.start([
        root,
        "--port",
        String(first.port),
        "--host",
        "127.0.0.1",
        "--reuse-port",
      ]);
      assert.equal(second.port, first.port);
      // The kernel spreads new connections by their address hash: 40 of
      // them all landing on one process would be a 2^-39 event.
      for (let i = 0; i < 40; i++) {
        assert.equal((await getAndClose(first.port)).text, "shared");
      }
      const served = [0, 0];
      const results = [await first.stop(), await second.stop()];
      results.forEach((result, i) => {
        assert.equal(result.code, 0);
        served[i] = result.stdout.filter((l) => CLF_LINE.test(l)).length;
      });
      assert.equal(served[0] + served[1], 40);
      assert.ok(served[0] > 0 && served[1] > 0, `served ${served}`);
    } finally {
      await second?.stop("SIGKILL"); // no-op once stopped
      await first.stop("SIGKILL");
      await Deno.remove(root, { recursive: true });
    }
  },
});

/** Requests of the unread-stdout test: on each of 4 connections, 20 batches of 25 pipelined GETs. */
const UNREAD = { connections: 4, batches: 20, batch: 25 } as const;
const UNREAD_TOTAL = UNREAD.connections * UNREAD.batches * UNREAD.batch;
/** A query of 2 KiB makes each log line about 2 KiB: 4 MiB in all, well past the log's 1 MiB bound and a pipe's 64 KiB. */
const UNREAD_PATH = `/index.html?${"q".repeat(2048)}`;
const DROPPED_LINE =
  /^static-srv: Dropped (\d+) access log lines?: stdout is not being read$/;

/** Sends UNREAD's requests on one keep-alive connection and reads every answer; answers how many were 200 with `body`. */
async function sendUnread(port: number, body: string): Promise<number> {
  const conn = await connect(port);
  try {
    const reader = new ResponseReader(conn);
    const batch = bytes(
      `GET ${UNREAD_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`.repeat(
        UNREAD.batch,
      ),
    );
    let ok = 0;
    for (let b = 0; b < UNREAD.batches; b++) {
      await writeAll(conn, batch);
      for (let i = 0; i < UNREAD.batch; i++) {
        const res = await reader.read();
        if (res.status === STATUS_CODE.OK && res.text === body) ok++;
      }
    }
    return ok;
  } finally {
    closeQuietly(conn);
  }
}

Deno.test({
  name:
    "main.ts keeps serving when stdout is not read, and reports the access log lines it dropped",
  ...SANITIZE,
  async fn(): Promise<void> {
    const content = "unread\n";
    const dir = await makeTree({ "index.html": content });
    try {
      const server = await ServerProcess.start([
        dir,
        "--port",
        "0",
        "--host",
        "127.0.0.1",
      ]);
      try {
        // Nobody reads stdout from here on: its pipe fills up, then the
        // log's queue. Every request must still be answered.
        const answered = await withTimeout(
          Promise.all(
            Array.from(
              { length: UNREAD.connections },
              () => sendUnread(server.port, content),
            ),
          ),
          30_000,
          { label: `${UNREAD_TOTAL} requests with stdout unread` },
        );
        assert.equal(answered.reduce((a, b) => a + b, 0), UNREAD_TOTAL);
        // The writer has not caught up, so nothing is reported yet.
        assert.equal(server.stderr, "");

        // Once stdout is read, the writer catches up and says how many
        // lines it dropped.
        server.readStdout();
        await until(
          () => server.stderr.includes("\n"),
          "the dropped-lines message",
          { ms: 20_000 },
        );
        const { code, stdout, stderr } = await server.stop("SIGTERM");
        assert.equal(code, 0, stderr);
        const reports = stderr.replace(stoppingLine("SIGTERM"), "")
          .slice(0, -1).split("\n");
        let dropped = 0;
        for (const report of reports) {
          const match = DROPPED_LINE.exec(report);
          assert.ok(match !== null, JSON.stringify(stderr));
          dropped += Number(match[1]);
        }
        assert.ok(dropped > 0, `dropped ${dropped}`);
        // Every line was either written whole or counted as dropped.
        const logged = stdout.filter((l) =>
          l.includes(`"GET ${UNREAD_PATH} HTTP/1.1" 200 ${content.length}`)
        ).length;
        assert.equal(logged + dropped, UNREAD_TOTAL);
      } finally {
        await server.stop("SIGKILL"); // no-op once stopped
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "main.ts stops cleanly on a SIGTERM that comes during start-up, before the banner",
  ignore: Deno.build.os !== "linux",
  ...SANITIZE,
  async fn(): Promise<void> {
    const dir = await makeTree({ "index.html": "early" });
    // The 404 page is a FIFO: reading it holds the start-up (before the
    // banner) until the test writes it.
    const fifo = `${dir}/404.fifo`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(made.success, "mkfifo");
    const server = ServerProcess.spawn([
      dir,
      "--404",
      fifo,
      "--port",
      "0",
      "--host",
      "127.0.0.1",
    ]);
    let writer = -1;
    try {
      // The start-up has opened the FIFO (so main.ts, which installs its
      // signal handlers before loading the server, has them): a writer that
      // does not wait can open it now. SigCgt cannot tell: Deno's runtime
      // catches SIGTERM before main.ts runs.
      await until(
        () => {
          try {
            writer = openSync(
              fifo,
              fsConstants.O_WRONLY | fsConstants.O_NONBLOCK,
            );
            return true;
          } catch {
            return false; // ENXIO: no reader yet
          }
        },
        "the start-up to open the 404 page",
        { ms: 30_000, step: 5 },
      );
      assert.deepEqual(server.lines, [], "no banner yet");
      server.child.kill("SIGTERM");
      await server.err.waitFor((line) =>
        line + "\n" === stoppingLine("SIGTERM")
      );
      // Let the start-up finish: it stops at once, cleanly.
      writeSync(writer, "<p>not here</p>");
      closeSync(writer);
      writer = -1;
      const { code, stderr } = await server.stop(null);
      assert.equal(code, 0, stderr);
      assert.equal(stderr, stoppingLine("SIGTERM"));
    } finally {
      if (writer >= 0) closeSync(writer);
      await server.stop("SIGKILL"); // no-op once stopped
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * Starts `deno task start ARGS` as a terminal would, in a process group of
 * its own (whose id is its pid), and waits for the banner's URL.
 */
async function startTask(args: string[]): Promise<ServerProcess> {
  const child = new Deno.Command("setsid", {
    args: [Deno.execPath(), "task", "start", ...args],
    cwd: PROJECT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const server = ServerProcess.adopt(child);
  try {
    const line = await server.waitForLine((l) =>
      /^\s+http:\/\/127\.0\.0\.1:\d+\/$/.test(l)
    );
    (server as { port: number }).port = Number(/:(\d+)\/$/.exec(line)![1]);
    return server;
  } catch (error) {
    killGroup(child.pid);
    const { stderr } = await server.stop(null);
    throw new Error(`${(error as Error).message}; stderr: ${stderr}`);
  }
}

/** Kills a process group started by `startTask` (no-op once it is gone). */
function killGroup(pid: number): void {
  try {
    Deno.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Reads a download in flight to its end (at most `size` bytes in all, `got` already here); how many bytes arrived. */
async function downloaded(
  conn: Deno.Conn,
  got: number,
  size: number,
): Promise<number> {
  const chunk = new Uint8Array(1024 * 1024);
  for (let i = 0; i < 100_000 && got < size; i++) {
    const n = await conn.read(chunk);
    if (n === null) break;
    got += n;
  }
  return got;
}

/**
 * Serves a 64 MiB file (from main.ts, or with `options.task` through `deno
 * task start`) and starts a download that the test does not read: the
 * response stays in flight.
 */
async function startDownload(options: { task?: boolean } = {}): Promise<{
  server: ServerProcess;
  conn: Deno.TcpConn;
  size: number;
  rest: Uint8Array;
  dir: string;
}> {
  const size = 64 * 1024 * 1024;
  const dir = await makeTree({ "big.bin": new Uint8Array(size) });
  const args = [dir, "--quiet", "--port", "0", "--host", "127.0.0.1"];
  const server =
    await (options.task ? startTask(args) : ServerProcess.start(args));
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await conn.write(
    new TextEncoder().encode("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"),
  );
  const head = await readHead(conn);
  assert.equal(head.status, STATUS_CODE.OK);
  assert.equal(Number(head.headers["content-length"]), size);
  return { server, conn, size, rest: head.rest, dir };
}

Deno.test({
  name: "main.ts exits at once on a second SIGTERM during a slow download",
  ignore: Deno.build.os === "windows",
  ...SANITIZE,
  async fn(): Promise<void> {
    const { server, conn, dir } = await startDownload();
    try {
      server.child.kill("SIGTERM");
      await server.err.waitFor((line) =>
        line + "\n" === stoppingLine("SIGTERM")
      );
      // The download is still in flight (nobody reads it): without a
      // second signal the stop would wait for it. A repeat within half a
      // second counts as the same signal (see the next test): send it until
      // it is taken for a second one.
      let exited = false;
      server.child.status.then(() => exited = true);
      await until(
        () => {
          try {
            if (!exited) server.child.kill("SIGTERM");
          } catch {
            // exited meanwhile
          }
          return exited;
        },
        "a second SIGTERM to end it",
        { ms: 10_000, step: 50 },
      );
      const { code, stderr } = await server.stop(null);
      assert.equal(code, 143, stderr);
      assert.equal(stderr, stoppingLine("SIGTERM"));
    } finally {
      conn.close();
      await server.stop("SIGKILL"); // no-op once stopped
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "main.ts takes the same stop signal again at once for the first one: the download in flight ends whole",
  ignore: Deno.build.os === "windows",
  ...SANITIZE,
  async fn(): Promise<void> {
    const { server, conn, size, rest, dir } = await startDownload();
    try {
      // As deno task passes on a Ctrl-C that static-srv got too: the same
      // signal again, as soon as the first one is taken.
      server.child.kill("SIGINT");
      await server.err.waitFor((line) =>
        line + "\n" === stoppingLine("SIGINT")
      );
      server.child.kill("SIGINT");
      assert.equal(await downloaded(conn, rest.length, size), size);
      const { code, stderr } = await server.stop(null);
      assert.equal(code, 0, stderr);
      assert.equal(stderr, stoppingLine("SIGINT"));
    } finally {
      conn.close();
      await server.stop("SIGKILL"); // no-op once stopped
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "main.ts under deno task start drains on a Ctrl-C: the download in flight ends whole",
  ignore: Deno.build.os !== "linux",
  ...SANITIZE,
  async fn(): Promise<void> {
    const { server, conn, size, rest, dir } = await startDownload({
      task: true,
    });
    try {
      // A terminal's Ctrl-C is a SIGINT to the whole process group: deno
      // task gets it too and passes it on, so static-srv gets two.
      Deno.kill(-server.child.pid, "SIGINT");
      assert.equal(await downloaded(conn, rest.length, size), size);
      const { code, stderr } = await server.stop(null);
      assert.equal(code, 0, stderr);
      assert.ok(stderr.endsWith(stoppingLine("SIGINT")), stderr);
    } finally {
      conn.close();
      killGroup(server.child.pid);
      await server.stop(null);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "main.ts drains on SIGHUP as on SIGTERM: the download in flight ends whole",
  ignore: Deno.build.os === "windows",
  ...SANITIZE,
  async fn(): Promise<void> {
    const { server, conn, size, rest, dir } = await startDownload();
    try {
      server.child.kill("SIGHUP");
      await server.err.waitFor((line) =>
        line + "\n" === stoppingLine("SIGHUP")
      );
      assert.equal(await downloaded(conn, rest.length, size), size);
      const { code, stderr } = await server.stop(null);
      assert.equal(code, 0, stderr);
      assert.equal(stderr, stoppingLine("SIGHUP"));
    } finally {
      conn.close();
      await server.stop("SIGKILL"); // no-op once stopped
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Starts main.ts serving `dir` on a free port with `ulimit -n` set to `limit` (quiet, `args` added). */
function startUnderUlimit(
  limit: number,
  dir: string,
  args: string[] = [],
): ServerProcess {
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n ${limit} && exec "$0" run -A "$1" "$2" --port 0 ` +
      '--host 127.0.0.1 --quiet "${@:3}"',
      Deno.execPath(),
      MAIN,
      dir,
      ...args,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return ServerProcess.adopt(child);
}

/** The port `server` prints once it listens. */
async function listeningPort(server: ServerProcess): Promise<number> {
  await server.waitForLine((l) => /^\s+http:\/\/127\.0\.0\.1:\d+\/$/.test(l));
  return Number(/:(\d+)\/$/.exec(server.lines.at(-1)!)![1]);
}

Deno.test({
  name:
    "main.ts answers 503, not 404, for a file it cannot open for want of descriptors",
  ignore: Deno.build.os !== "linux",
  ...SANITIZE,
  async fn(): Promise<void> {
    const dir = await makeTree({
      "index.html": "fd\n",
      "other.txt": "other\n",
      "listed/a.txt": "a\n",
    });
    const server = startUnderUlimit(80, dir, ["--dir-listing"]);
    const conns: Deno.Conn[] = [];
    try {
      const port = await listeningPort(server);
      const keeper = await connect(port);
      conns.push(keeper);
      const reader = new ResponseReader(keeper);
      const ask = async (path: string) => {
        await writeAll(
          keeper,
          bytes(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`),
        );
        return await withTimeout(reader.read(), 5000, { label: path });
      };
      assert.equal((await ask("/index.html")).status, STATUS_CODE.OK);
      // Idle connections take every descriptor left.
      for (let i = 0; i < 100; i++) conns.push(await connect(port));
      await until(
        () => server.stderr.includes("Too many open files"),
        "the server to run out of descriptors",
      );
      // Before: 404, which clients may cache, and nothing said.
      const busy = await ask("/other.txt");
      assert.equal(busy.status, STATUS_CODE.ServiceUnavailable);
      assert.equal(busy.headers["retry-after"], "1");
      // A listing too: the directory cannot be read now, it is not forbidden.
      const listing = await ask("/listed/");
      assert.equal(listing.status, STATUS_CODE.ServiceUnavailable);
      assert.equal(listing.headers["retry-after"], "1");
      for (const conn of conns.splice(1)) conn.close();
      await until(
        async () => (await ask("/other.txt")).status === STATUS_CODE.OK,
        "the file to be served once descriptors are free",
        { step: 100 },
      );
    } finally {
      for (const conn of conns) conn.close();
      await server.stop("SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** How long the descriptor test keeps the server out of descriptors. */
const EXHAUSTED_MS = 2500;
/** How many connections the descriptor test then closes one at a time. */
const TRICKLED = 20;

Deno.test({
  name:
    "main.ts warns when ulimit -n is below its connection limit, and says once that it runs out of descriptors",
  ignore: Deno.build.os !== "linux",
  ...SANITIZE,
  async fn(): Promise<void> {
    const dir = await makeTree({ "index.html": "fd\n" });
    // A shell lowers the open files limit, then becomes main.ts.
    const server = startUnderUlimit(200, dir);
    const conns: Deno.Conn[] = [];
    try {
      const port = await listeningPort(server);
      (server as { port: number }).port = port;
      // More connections than descriptors: the kernel completes them, the
      // server cannot accept the rest and retries every 50 ms.
      for (let i = 0; i < 300; i++) {
        conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      }
      const first = await until(
        () => server.stderr.includes("Too many open files"),
        "the first accept failure to be said",
      );
      const start = Date.now() - first;
      // Keep it out of descriptors for a while: it fails about 20 times a
      // second meanwhile. Then free descriptors one at a time: accepts fail
      // and succeed in turn, and neither may say more than once per 10 s.
      await new Promise((resolve) => setTimeout(resolve, EXHAUSTED_MS));
      for (let i = 0; i < TRICKLED; i++) {
        conns.shift()!.close();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const elapsed = Date.now() - start;
      const count = (text: string): number =>
        server.stderr.split("\n").filter((l) => l.includes(text)).length;
      const said = count("Cannot accept a connection");
      const recoveries = count("Accepting connections again");
      // Once at first, then at most once per 10 s.
      assert.ok(said >= 1, server.stderr);
      assert.ok(
        said + recoveries <= 1 + Math.floor(elapsed / 10_000),
        `${said} + ${recoveries} messages in ${elapsed} ms: ${server.stderr}`,
      );
      const warnings = server.stderr.split("\n")
        .filter((l) =>
          l.includes("exceed the open files limit 200 (ulimit -n)")
        );
      assert.equal(warnings.length, 1, server.stderr);
      // Descriptors freed, the server accepts again and, once the 10 s since
      // its last message are over, says how many failures it did not report.
      for (const conn of conns.splice(0)) conn.close();
      await until(
        () => server.stderr.includes("Accepting connections again"),
        "the server to say it accepts again",
        { ms: 15_000, step: 50 },
      );
      const recovered =
        /Accepting connections again \((\d+) more failures since \d+ s ago\)/
          .exec(server.stderr);
      assert.ok(recovered !== null, server.stderr);
      assert.ok(Number(recovered[1]) >= 1, recovered[0]);
      assert.equal(count("Accepting connections again"), 1, server.stderr);
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(
          new TextEncoder().encode(
            "GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
          ),
        );
        const reply = new TextDecoder().decode(
          await new Response(conn.readable).bytes(),
        );
        assert.match(reply, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nfd\n$/);
      } catch (error) {
        conn.close();
        throw error;
      }
    } finally {
      for (const conn of conns) conn.close();
      await server.stop("SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * Starts main.ts (`--quiet`) through a shell that first fills its stderr
 * pipe (64 KiB, the Linux default), which the test then never reads; waits
 * for the banner's URL.
 */
async function startWithFullStderr(
  root: string,
): Promise<{ child: Deno.ChildProcess; port: number }> {
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      'head -c 65536 /dev/zero >&2; exec "$0" run -A "$1" "$2" --port 0 --host 127.0.0.1 --quiet',
      Deno.execPath(),
      MAIN,
      root,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = new LineStream(child.stdout);
  try {
    const line = await withTimeout(
      out.waitFor((l) => /^\s+http:\/\/127\.0\.0\.1:\d+\/$/.test(l)),
      CHILD_LIMIT_MS,
      { label: "the banner" },
    );
    out.drain();
    return { child, port: Number(/:(\d+)\/$/.exec(line)![1]) };
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    await child.stderr.cancel();
    await out.rest();
    throw error;
  }
}

/** Its exit status, or null when it has not exited within `ms` (then it is killed). */
async function exitWithin(
  child: Deno.ChildProcess,
  ms: number,
): Promise<number | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) =>
    timer = setTimeout(() => resolve(null), ms)
  );
  try {
    const status = await Promise.race([child.status, late]);
    if (status !== null) return status.code;
    child.kill("SIGKILL");
    await child.status;
    return null;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name:
    "main.ts stops on a signal, and exits at once on a second, when nobody reads its full stderr",
  ignore: Deno.build.os !== "linux",
  ...SANITIZE,
  async fn(t): Promise<void> {
    const dir = await makeTree({ "big.bin": new Uint8Array(64 * 1024 * 1024) });
    try {
      await t.step("one SIGTERM: a graceful stop, status 0", async () => {
        const { child, port } = await startWithFullStderr(dir);
        try {
          const reply = await getAndClose(port, "/missing");
          assert.equal(reply.status, STATUS_CODE.NotFound);
          child.kill("SIGTERM");
          // The stop line cannot be written: the stop still ends, once the
          // wait for stderr (2 s) is over.
          assert.equal(await exitWithin(child, 15_000), 0);
        } finally {
          await exitWithin(child, 0);
          await child.stderr.cancel();
        }
      });
      await t.step("a download in flight, then a second signal", async () => {
        const { child, port } = await startWithFullStderr(dir);
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          await writeAll(
            conn,
            bytes("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"),
          );
          assert.equal((await readHead(conn)).status, STATUS_CODE.OK);
          child.kill("SIGTERM");
          // Past the window where a repeat counts as the same signal.
          await new Promise((resolve) => setTimeout(resolve, 1000));
          child.kill("SIGINT");
          assert.equal(await exitWithin(child, 10_000), 130);
        } finally {
          conn.close();
          await exitWithin(child, 0);
          await child.stderr.cancel();
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
