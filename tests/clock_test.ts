import assert from "node:assert/strict";
import { holdClock, monotonicNow, now } from "../src/clock.ts";
import {
  assertClockFree,
  assertClockHeld,
  SANITIZE,
  until,
} from "./test_util.ts";

Deno.test({
  name: "now() reads the real clock while nobody holds the clock",
  ...SANITIZE,
  fn(): void {
    const before = Date.now();
    const value = now();
    assert.ok(before <= value && value <= Date.now());
    assertClockFree("it moved with the real clock");
  },
});

Deno.test({
  name: "holdClock() makes now() a shared value that a timer refreshes",
  ...SANITIZE,
  async fn(): Promise<void> {
    const release = holdClock();
    try {
      // No timer runs during synchronous work: the value stands still.
      const held = assertClockHeld("the shared value during synchronous work");
      assert.ok(held <= Date.now());
      // Once the event loop turns, the timer moves it on.
      await until(() => now() > held, "the shared clock to advance", {
        ms: 2000,
        step: 5,
      });
      assert.ok(now() <= Date.now());
    } finally {
      release();
    }
  },
});

Deno.test({
  name: "holdClock() counts its holders and releases once per hold",
  ...SANITIZE,
  fn(): void {
    const releaseA = holdClock();
    const releaseB = holdClock();
    releaseA();
    releaseA(); // a second call changes nothing: B still holds the clock
    assertClockHeld("still shared while B holds it");
    releaseB();
    assertClockFree("the real clock once nobody holds it");
  },
});

Deno.test({
  name: "monotonicNow() follows performance.now(), not Date.now(), held or not",
  ...SANITIZE,
  async fn(): Promise<void> {
    const realNow = Date.now;
    Date.now = () => realNow() + 3_600_000; // the system clock steps forward
    try {
      const before = performance.now();
      const free = monotonicNow();
      assert.ok(before <= free && free <= performance.now(), "not held");
      const release = holdClock();
      try {
        const held = monotonicNow();
        assert.ok(held <= performance.now(), "held");
        assert.equal(monotonicNow(), held, "shared during synchronous work");
        await until(() => monotonicNow() > held, "the shared value to advance");
        assert.ok(monotonicNow() <= performance.now());
      } finally {
        release();
      }
    } finally {
      Date.now = realNow;
    }
  },
});
