/**
 * A coarse shared clock for the hot path.
 *
 * Reading the real clock (`Date.now()`, a vDSO call) costs about 60 ns on
 * the machines we measure on, and one request needs the time four or five
 * times: deadlines, cache freshness, the `Date` header. While a server runs
 * it holds this clock, and a timer refreshes one shared value every
 * {@linkcode CLOCK.resolution} ms; {@linkcode now} returns that value. With no
 * holder (a handler used on its own, in a test say), {@linkcode now} reads
 * the real clock, so nothing ever sees a stopped clock.
 *
 * @module
 */

/** Settings of the shared clock. */
export const CLOCK = {
  /** How often the shared value is refreshed while held, in ms. */
  resolution: 20,
} as const;

let holders = 0;
let timer = 0;
let current = 0;
let currentMonotonic = 0;

function tick(): void {
  current = Date.now();
  currentMonotonic = performance.now();
}

/** The time in ms since the epoch: the shared value while the clock is held (at most {@linkcode CLOCK.resolution} ms old), else the real clock. */
export function now(): number {
  return holders > 0 ? current : Date.now();
}

// Deadlines use the monotonic clock: a step of the system clock (NTP, a
// resumed VM) must neither extend them nor end them all at once.

/** The time in ms on the monotonic clock (`performance.now()`), shared while held as {@linkcode now} is: for deadlines. */
export function monotonicNow(): number {
  return holders > 0 ? currentMonotonic : performance.now();
}

/** Keeps the shared clock ticking until the returned release function is called (calling it again does nothing). */
export function holdClock(): () => void {
  if (holders++ === 0) {
    tick();
    timer = setInterval(tick, CLOCK.resolution) as unknown as number;
    Deno.unrefTimer(timer);
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    if (--holders === 0) clearInterval(timer);
  };
}
