import assert from "node:assert/strict";
import { CLOCK, holdClock, now } from "../src/clock.ts";
import { SANITIZE, spin, until } from "./test_util.ts";

Deno.test({
  name: "now() reads the real clock while nobody holds the clock",
  ...SANITIZE,
  fn(): void {
    const before = Date.now();
    const value = now();
    assert.ok(before <= value && value <= Date.now());
    const first = now();
    spin(5);
    assert.ok(now() >= first + 5, "it moved with the real clock");
  },
});

Deno.test({
  name: "holdClock() makes now() a shared value that a timer refreshes",
  ...SANITIZE,
  async fn(): Promise<void> {
    const release = holdClock();
    try {
      const held = now();
      assert.ok(held <= Date.now());
      // No timer runs during synchronous work: the value stands still.
      spin(CLOCK.resolution + 10);
      assert.equal(now(), held);
      // Once the event loop turns, the timer moves it on.
      await until(() => now() > held, "the shared clock to advance", 2000, 5);
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
    const held = now();
    spin(CLOCK.resolution + 10);
    assert.equal(now(), held, "still shared while B holds it");
    releaseB();
    const free = now();
    spin(5);
    assert.ok(now() >= free + 5, "the real clock once nobody holds it");
  },
});
