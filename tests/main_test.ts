/**
 * main.ts as a child process: help, version, one-line errors, serving, the
 * access log and a clean stop on SIGTERM.
 */

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
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

/**
 * A main.ts that serves until stopped, with its stdout read line by line
 * (only when asked: a test may leave it unread) and its stderr read as it
 * comes.
 */
class ServerProcess {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  readonly lines: string[];
  #reader: ReadableStreamDefaultReader<string>;
  #partial = "";
  #stderrText = "";
  #stderr: Promise<void>;
  #pump?: Promise<void>;
  #timer: ReturnType<typeof setTimeout>;
  #stopped?: Promise<{ code: number; stdout: string[]; stderr: string }>;

  private constructor(
    child: Deno.ChildProcess,
    reader: ReadableStreamDefaultReader<string>,
    timer: ReturnType<typeof setTimeout>,
  ) {
    this.child = child;
    this.#reader = reader;
    this.#timer = timer;
    this.port = 0;
    this.lines = [];
    this.#stderr = (async () => {
      const stderr = child.stderr.pipeThrough(new TextDecoderStream())
        .getReader();
      for (;;) {
        const { value, done } = await stderr.read();
        if (done) break;
        this.#stderrText += value;
      }
    })();
  }

  /** What it wrote on stderr so far. */
  get stderr(): string {
    return this.#stderrText;
  }

  /** Reads the rest of stdout into `lines` in the background, until it ends. */
  readStdout(): void {
    this.#pump ??= this.#readRest();
  }

  async #readRest(): Promise<void> {
    for (;;) {
      const { value, done } = await this.#reader.read();
      if (done) break;
      const parts = (this.#partial + value).split("\n");
      this.#partial = parts.pop()!;
      this.lines.push(...parts);
    }
    if (this.#partial !== "") this.lines.push(this.#partial);
    this.#partial = "";
  }

  /** Starts main.ts and waits for the banner's URL; always cleans up on failure. */
  static async start(
    args: string[],
    options: { cwd?: string } = {},
  ): Promise<ServerProcess> {
    const child = command(args, options).spawn();
    const timer = killAfter(child, CHILD_LIMIT_MS);
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    const server = new ServerProcess(child, reader, timer);
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

  /** Reads stdout until a line matches; throws at the end of stdout. */
  async waitForLine(match: (line: string) => boolean): Promise<string> {
    for (const line of this.lines) if (match(line)) return line;
    for (;;) {
      const { value, done } = await this.#reader.read();
      if (done) {
        throw new Error(
          `stdout ended without the expected line: ${
            JSON.stringify(this.lines)
          }`,
        );
      }
      const parts = (this.#partial + value).split("\n");
      this.#partial = parts.pop()!;
      for (const line of parts) {
        this.lines.push(line);
        if (match(line)) return line;
      }
    }
  }

  /**
   * Sends `signal`, then reads the rest of stdout and stderr and the exit
   * status. Once stopped, later calls return the same result and send nothing.
   */
  stop(
    signal: Deno.Signal = "SIGTERM",
  ): Promise<{ code: number; stdout: string[]; stderr: string }> {
    return this.#stopped ??= this.#stop(signal);
  }

  async #stop(
    signal: Deno.Signal,
  ): Promise<{ code: number; stdout: string[]; stderr: string }> {
    try {
      this.child.kill(signal);
    } catch {
      // already exited
    }
    try {
      const status = await this.child.status;
      this.readStdout();
      await this.#pump;
      await this.#stderr;
      return {
        code: status.code,
        stdout: this.lines,
        stderr: this.#stderrText,
      };
    } finally {
      clearTimeout(this.#timer);
      this.#reader.releaseLock();
    }
  }
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
        assert.equal(response.status, 200);
        assert.equal(response.text, content);
        const line = await server.waitForLine((l) => CLF_LINE.test(l));
        assert.equal(Number(CLF_LINE.exec(line)![2]), response.body.length);
        const { code, stderr } = await server.stop("SIGTERM");
        assert.equal(code, 0, stderr);
        assert.equal(stderr, "");
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
        assert.equal(response.status, 200);
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
      assert.equal(response.status, 200);
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
        if (res.status === 200 && res.text === body) ok++;
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
          `${UNREAD_TOTAL} requests with stdout unread`,
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
          20_000,
        );
        const { code, stdout, stderr } = await server.stop("SIGTERM");
        assert.equal(code, 0, stderr);
        const reports = stderr.slice(0, -1).split("\n");
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
