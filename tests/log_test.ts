import assert from "node:assert/strict";
import {
  AccessLog,
  clfTime,
  escapeLogText,
  formatCommonLog,
} from "../src/log.ts";
import type { AccessRecord } from "../src/connection.ts";
import { SANITIZE, sleep } from "./test_util.ts";

const decoder = new TextDecoder();

/** 10 Oct 2000 13:55:36 UTC, the Apache documentation's example. */
const APACHE_TIME = Date.UTC(2000, 9, 10, 13, 55, 36);

function record(overrides: Partial<AccessRecord> = {}): AccessRecord {
  return {
    remote: "127.0.0.1",
    time: APACHE_TIME,
    request: "GET /apache_pb.gif HTTP/1.0",
    status: 200,
    length: 2326,
    ...overrides,
  };
}

/** A writer that keeps what it is given; `max` bytes per call at most. */
class FakeWriter {
  chunks: Uint8Array[] = [];
  calls = 0;
  constructor(readonly max = Infinity) {}
  writeSync(p: Uint8Array): number {
    this.calls++;
    const n = Math.min(p.length, this.max);
    this.chunks.push(p.slice(0, n));
    return n;
  }
  get text(): string {
    return this.chunks.map((c) => decoder.decode(c)).join("");
  }
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
        { length: 0, status: 304 },
        '127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /apache_pb.gif HTTP/1.0" 304 -',
      ],
      [
        { request: "", status: 400, length: 157 },
        '127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "-" 400 157',
      ],
      [
        { remote: "::1", request: 'GET /"a"\\b HTTP/1.1', status: 404 },
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
  name: "AccessLog writes buffered lines on flush()",
  ...SANITIZE,
  fn(): void {
    const writer = new FakeWriter();
    const log = new AccessLog({ writer });
    try {
      log.write(record());
      log.write(record({ status: 404, length: 0 }));
      assert.equal(writer.calls, 0);
      log.flush();
      assert.equal(writer.calls, 1);
      assert.equal(
        writer.text,
        formatCommonLog(record()) + "\n" +
          formatCommonLog(record({ status: 404, length: 0 })) + "\n",
      );
      log.flush(); // nothing buffered: no write
      assert.equal(writer.calls, 1);
    } finally {
      log.flush();
    }
  },
});

Deno.test({
  name: "AccessLog writes once the buffer reaches flushBytes",
  ...SANITIZE,
  fn(): void {
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
      log.flush();
      assert.equal(writer.text, line.repeat(4));
    } finally {
      log.flush();
    }
  },
});

Deno.test({
  name: "AccessLog finishes partial writes",
  ...SANITIZE,
  fn(): void {
    const writer = new FakeWriter(7);
    const log = new AccessLog({ writer });
    try {
      for (let i = 0; i < 3; i++) log.write(record({ length: i + 1 }));
      log.flush();
      assert.equal(
        writer.text,
        [1, 2, 3].map((n) => formatCommonLog(record({ length: n })) + "\n")
          .join(""),
      );
      assert.ok(writer.calls > 1);
    } finally {
      log.flush();
    }
  },
});

Deno.test({
  name: "AccessLog drops lines when the writer throws",
  ...SANITIZE,
  fn(): void {
    let calls = 0;
    const log = new AccessLog({
      writer: {
        writeSync(): number {
          calls++;
          throw new Deno.errors.BrokenPipe("closed");
        },
      },
    });
    try {
      log.write(record());
      log.flush();
      assert.equal(calls, 1);
      log.flush(); // the dropped lines are not retried
      assert.equal(calls, 1);
    } finally {
      log.flush();
    }
  },
});

Deno.test({
  name: "AccessLog writes buffered lines after flushInterval",
  ...SANITIZE,
  async fn(): Promise<void> {
    const writer = new FakeWriter();
    const log = new AccessLog({ writer, flushInterval: 5 });
    try {
      log.write(record());
      for (let i = 0; i < 500 && writer.calls === 0; i++) {
        await sleep(10);
      }
      assert.equal(writer.text, formatCommonLog(record()) + "\n");
    } finally {
      log.flush();
    }
  },
});
