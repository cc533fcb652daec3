import assert from "node:assert/strict";
import {
  AccessLog,
  clfTime,
  droppedErrorsMessage,
  droppedMessage,
  escapeLogText,
  formatCommonLog,
  reason,
} from "../src/log.ts";
import type { AccessRecord } from "../src/connection.ts";
import { STATUS_CODE } from "../src/http/status.ts";
import { SANITIZE, until } from "./test_util.ts";

const decoder = new TextDecoder();

/** 10 Oct 2000 13:55:36 UTC, the Apache documentation's example. */
const APACHE_TIME = Date.UTC(2000, 9, 10, 13, 55, 36);

function record(overrides: Partial<AccessRecord> = {}): AccessRecord {
  return {
    remote: "127.0.0.1",
    time: APACHE_TIME,
    request: "GET /apache_pb.gif HTTP/1.0",
    status: STATUS_CODE.OK,
    length: 2326,
    ...overrides,
  };
}

/**
 * A writer that keeps what it is given, `max` bytes per call at most. While
 * `stuck`, a write waits until `release()` (as on a pipe nobody reads).
 */
class FakeWriter {
  chunks: Uint8Array[] = [];
  calls = 0;
  stuck = false;
  #waiting: (() => void)[] = [];
  constructor(readonly max = Infinity) {}
  async write(p: Uint8Array): Promise<number> {
    this.calls++;
    if (this.stuck) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    const n = Math.min(p.length, this.max);
    this.chunks.push(p.slice(0, n));
    return n;
  }
  /** Lets the waiting writes (and every later one) through. */
  release(): void {
    this.stuck = false;
    for (const wake of this.#waiting.splice(0)) wake();
  }
  get text(): string {
    return this.chunks.map((c) => decoder.decode(c)).join("");
  }
}

/** Errors as Deno throws them, and the reason a one-line message gives. */
const REASON_CASES: { name: string; error: unknown; expected: string }[] = [
  {
    name: "a missing file",
    error: new Deno.errors.NotFound(
      "No such file or directory (os error 2): readfile '/x'",
    ),
    expected: "no such file",
  },
  {
    name: "a directory read as a file",
    error: new Deno.errors.IsADirectory(
      "Is a directory (os error 21): readfile '/x'",
    ),
    expected: "is a directory",
  },
  {
    name: "a path through a regular file",
    error: new Deno.errors.NotADirectory(
      "Not a directory (os error 20): readfile '/x/y'",
    ),
    expected: "not a directory",
  },
  {
    name: "a file it may not read",
    error: new Deno.errors.PermissionDenied(
      "Permission denied (os error 13): readfile '/x'",
    ),
    expected: "permission denied",
  },
  {
    name: "another error of the system",
    error: new Error("Input/output error (os error 5): readfile '/x'"),
    expected: "input/output error",
  },
  {
    name: "a system text with a final period",
    error: new Error("Access is denied. (os error 5)"),
    expected: "access is denied",
  },
  {
    name: "a text that starts with an acronym",
    error: new Error("EOF reached"),
    expected: "EOF reached",
  },
  { name: "a thrown string", error: "gone", expected: "gone" },
  {
    name: "a path with a quote",
    error: new Deno.errors.FilesystemLoop(
      "Too many levels of symbolic links (os error 40): realpath '/srv/it's'",
    ),
    expected: "too many levels of symbolic links",
  },
  {
    name: "two paths with quotes",
    error: new Error(
      "Input/output error (os error 5): rename '/a'b' -> '/c'd'",
    ),
    expected: "input/output error",
  },
  {
    name: "a path with a line break",
    error: new Error("Input/output error (os error 5): readfile '/a\nb'"),
    expected: "input/output error",
  },
];

for (const { name, error, expected } of REASON_CASES) {
  Deno.test({
    name: `reason() gives a human reason for ${name}`,
    ...SANITIZE,
    fn(): void {
      assert.equal(reason(error), expected);
    },
  });
}

Deno.test({
  name: "formatCommonLog() formats a record as one Common Log Format line",
  ...SANITIZE,
  fn(): void {
    const cases: [Partial<AccessRecord>, string][] = [
      [
        {},
        '127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /apache_pb.gif HTTP/1.0" 200 2326',
      ],
      [
        { length: 0, status: STATUS_CODE.NotModified },
        '127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /apache_pb.gif HTTP/1.0" 304 -',
      ],
      [
        { request: "", status: STATUS_CODE.BadRequest, length: 157 },
        '127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "-" 400 157',
      ],
      [
        {
          remote: "::1",
          request: 'GET /"a"\\b HTTP/1.1',
          status: STATUS_CODE.NotFound,
        },
        '::1 - - [10/Oct/2000:13:55:36 +0000] "GET /\\x22a\\x22\\x5cb HTTP/1.1" 404 2326',
      ],
      [
        { request: "GET /\x1b[31m HTTP/1.1" },
        '127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /\\x1b[31m HTTP/1.1" 200 2326',
      ],
    ];
    for (const [overrides, line] of cases) {
      assert.equal(formatCommonLog(record(overrides)), line);
    }
  },
});

Deno.test({
  name: "clfTime() formats UTC times as dd/Mon/yyyy:hh:mm:ss +0000",
  ...SANITIZE,
  fn(): void {
    const cases: [number, string][] = [
      [0, "01/Jan/1970:00:00:00 +0000"],
      [APACHE_TIME, "10/Oct/2000:13:55:36 +0000"],
      [APACHE_TIME + 999, "10/Oct/2000:13:55:36 +0000"],
      [APACHE_TIME + 1000, "10/Oct/2000:13:55:37 +0000"],
      [Date.UTC(2024, 1, 29, 23, 59, 59), "29/Feb/2024:23:59:59 +0000"],
      [Date.UTC(2021, 2, 5, 4, 3, 2), "05/Mar/2021:04:03:02 +0000"],
      [Date.UTC(1999, 11, 31, 9, 0, 0), "31/Dec/1999:09:00:00 +0000"],
    ];
    const months = [
      "Jan",
      "Feb",
      "Mar",
      "Apr",
      "May",
      "Jun",
      "Jul",
      "Aug",
      "Sep",
      "Oct",
      "Nov",
      "Dec",
    ];
    months.forEach((month, i) => {
      cases.push([
        Date.UTC(2023, i, 1, 12, 0, 0),
        `01/${month}/2023:12:00:00 +0000`,
      ]);
    });
    for (const [ms, text] of cases) {
      assert.equal(clfTime(ms), text, String(ms));
    }
    // The per-second cache follows the argument back and forth.
    assert.equal(clfTime(0), "01/Jan/1970:00:00:00 +0000");
    assert.equal(clfTime(APACHE_TIME), "10/Oct/2000:13:55:36 +0000");
  },
});

Deno.test({
  name: "escapeLogText() escapes quotes, backslashes, controls and non-ASCII",
  ...SANITIZE,
  fn(): void {
    const cases: [string, string][] = [
      ["GET / HTTP/1.1", "GET / HTTP/1.1"],
      ["", ""],
      ['"', "\\x22"],
      ["\\", "\\x5c"],
      ["\x00", "\\x00"],
      ["\t", "\\x09"],
      ["\r\n", "\\x0d\\x0a"],
      ["\x1b", "\\x1b"],
      ["\x7f", "\\x7f"],
      ["\x80", "\\x80"],
      ["caf\xe9", "caf\\xe9"],
      ["\xff", "\\xff"],
      ["~ !#$%&'()*+,-./:;<=>?@[]^_`{|}", "~ !#$%&'()*+,-./:;<=>?@[]^_`{|}"],
      ['a"b\\c\nd', "a\\x22b\\x5cc\\x0ad"],
    ];
    for (const [input, output] of cases) {
      assert.equal(escapeLogText(input), output, JSON.stringify(input));
    }
  },
});

Deno.test({
  name: "AccessLog.flush() writes buffered lines",
  ...SANITIZE,
  async fn(): Promise<void> {
    const writer = new FakeWriter();
    const log = new AccessLog({ writer });
    try {
      log.write(record());
      log.write(record({ status: STATUS_CODE.NotFound, length: 0 }));
      assert.equal(writer.calls, 0);
      log.flush();
      assert.equal(writer.calls, 1);
      assert.equal(
        writer.text,
        formatCommonLog(record()) + "\n" +
          formatCommonLog(record({ status: STATUS_CODE.NotFound, length: 0 })) +
          "\n",
      );
      log.flush(); // nothing buffered: no write
      assert.equal(writer.calls, 1);
    } finally {
      await log.close();
    }
  },
});

Deno.test({
  name: "AccessLog.write() writes once the buffer reaches flushBytes",
  ...SANITIZE,
  async fn(): Promise<void> {
    const writer = new FakeWriter();
    const line = formatCommonLog(record()) + "\n";
    const log = new AccessLog({ writer, flushBytes: line.length * 3 });
    try {
      log.write(record());
      log.write(record());
      assert.equal(writer.calls, 0);
      log.write(record());
      assert.equal(writer.calls, 1);
      assert.equal(writer.text, line.repeat(3));
      log.write(record());
      assert.equal(writer.calls, 1);
    } finally {
      await log.close();
    }
    assert.equal(writer.text, line.repeat(4));
  },
});

Deno.test({
  name: "AccessLog.write() finishes partial writes",
  ...SANITIZE,
  async fn(): Promise<void> {
    const writer = new FakeWriter(7);
    const log = new AccessLog({ writer });
    try {
      for (let i = 0; i < 3; i++) log.write(record({ length: i + 1 }));
    } finally {
      await log.close();
    }
    assert.equal(
      writer.text,
      [1, 2, 3].map((n) => formatCommonLog(record({ length: n })) + "\n")
        .join(""),
    );
    assert.ok(writer.calls > 1);
  },
});

Deno.test({
  name: "AccessLog.write() drops lines silently when the writer fails",
  ...SANITIZE,
  async fn(): Promise<void> {
    let calls = 0;
    const reports: string[] = [];
    const log = new AccessLog({
      writer: {
        write(): Promise<number> {
          calls++;
          return Promise.reject(new Deno.errors.BrokenPipe("closed"));
        },
      },
      onDropped: (message) => {
        reports.push(message);
      },
    });
    try {
      log.write(record());
      log.flush();
      assert.equal(calls, 1);
      log.flush(); // the lost lines are not retried
      assert.equal(calls, 1);
      // A later line is tried again (the reader may come back).
      log.write(record());
    } finally {
      await log.close();
    }
    assert.equal(calls, 2);
    // A reader that went away is not one that does not read: no report.
    assert.deepEqual(reports, []);
  },
});

Deno.test({
  name: "AccessLog.write() writes buffered lines after flushInterval",
  ...SANITIZE,
  async fn(): Promise<void> {
    const writer = new FakeWriter();
    const log = new AccessLog({ writer, flushInterval: 5 });
    try {
      log.write(record());
      await until(() => writer.calls > 0, "the timed write");
      assert.equal(writer.text, formatCommonLog(record()) + "\n");
    } finally {
      await log.close();
    }
  },
});

Deno.test({
  name:
    "AccessLog.write() drops lines past maxPending while its writer is stuck, and reports them once it catches up",
  ...SANITIZE,
  async fn(): Promise<void> {
    const writer = new FakeWriter();
    writer.stuck = true;
    const reports: string[] = [];
    const line = (n: number): string =>
      formatCommonLog(record({ length: 1000 + n })) + "\n";
    const log = new AccessLog({
      writer,
      flushBytes: 1, // every line is written at once
      maxPending: line(0).length * 4,
      onDropped: (message) => {
        reports.push(message);
      },
    });
    try {
      // The first line is being written (and stuck), the next three wait,
      // and the bound is reached: the rest are dropped and counted, and
      // nothing waits on the writer.
      for (let n = 0; n < 10; n++) log.write(record({ length: 1000 + n }));
      assert.equal(writer.calls, 1);
      assert.equal(log.dropped, 6);
      assert.deepEqual(reports, []);

      writer.release();
      await until(() => reports.length > 0, "the report");
      assert.deepEqual(reports, [
        "Dropped 6 access log lines: stdout is not being read",
      ]);
      assert.equal(writer.text, [0, 1, 2, 3].map(line).join(""));
      assert.equal(log.dropped, 0);

      // Caught up: lines are written again, and nothing more is reported.
      log.write(record({ length: 1010 }));
      await until(() => writer.text.endsWith(line(10)), "the next line");
    } finally {
      await log.close();
    }
    assert.equal(reports.length, 1);
  },
});

Deno.test({
  name:
    "AccessLog.close() gives up on a stuck writer after its wait and reports the lines it held",
  ...SANITIZE,
  async fn(): Promise<void> {
    const writer = new FakeWriter();
    writer.stuck = true;
    const reports: string[] = [];
    const log = new AccessLog({
      writer,
      onDropped: (message) => {
        reports.push(message);
      },
    });
    try {
      log.write(record());
      log.flush(); // stuck with one line
      log.write(record());
      log.write(record());
      await log.close({ wait: 50 });
      assert.deepEqual(reports, [
        "Dropped 3 access log lines: stdout is not being read",
      ]);
    } finally {
      writer.release();
    }
  },
});

Deno.test({
  name:
    "AccessLog.writeLine() writes text as it is, never waits on a stuck writer, and reports what it dropped in its own words",
  ...SANITIZE,
  async fn(): Promise<void> {
    const writer = new FakeWriter();
    writer.stuck = true;
    const reports: string[] = [];
    const message = (n: number): string => `static-srv: Cannot serve "/${n}"`;
    const log = new AccessLog({
      writer,
      flushBytes: 1, // every line at once, as the workers' error messages
      maxPending: (message(0).length + 1) * 3,
      describeDropped: droppedErrorsMessage,
      onDropped: (text) => {
        reports.push(text);
      },
    });
    try {
      for (let n = 0; n < 8; n++) log.writeLine(message(n));
      assert.equal(writer.calls, 1);
      assert.equal(log.dropped, 5);
      writer.release();
      await until(() => reports.length > 0, "the report");
      assert.deepEqual(reports, [
        "Dropped 5 error messages: stderr is not being read",
      ]);
      assert.equal(
        writer.text,
        [0, 1, 2].map((n) => message(n) + "\n").join(""),
      );
    } finally {
      await log.close();
    }
  },
});

Deno.test({
  name:
    "droppedMessage() and droppedErrorsMessage() count in the project's message style",
  ...SANITIZE,
  fn(): void {
    assert.equal(
      droppedMessage(1),
      "Dropped 1 access log line: stdout is not being read",
    );
    assert.equal(
      droppedMessage(123),
      "Dropped 123 access log lines: stdout is not being read",
    );
    assert.equal(
      droppedErrorsMessage(1),
      "Dropped 1 error message: stderr is not being read",
    );
    assert.equal(
      droppedErrorsMessage(2),
      "Dropped 2 error messages: stderr is not being read",
    );
  },
});
