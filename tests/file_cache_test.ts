import assert from "node:assert/strict";
import { BoundedCache, CACHE_LIMITS } from "../src/file_cache.ts";
import { SANITIZE } from "./test_util.ts";

/** The keys present in `cache`, out of `candidates`. */
function keys<V>(cache: BoundedCache<V>, candidates: string[]): string[] {
  return candidates.filter((k) => cache.get(k) !== undefined);
}

Deno.test({
  name:
    "BoundedCache.set() stores values that get() returns and delete() removes",
  ...SANITIZE,
  fn(): void {
    const cache = new BoundedCache<string>();
    assert.equal(cache.get("a"), undefined);
    assert.equal(cache.size, 0);
    assert.equal(cache.bytes, 0);
    assert.equal(cache.set("a", "A"), true);
    assert.equal(cache.set("b", "B", { bytes: 10 }), true);
    assert.equal(cache.get("a"), "A");
    assert.equal(cache.get("b"), "B");
    assert.equal(cache.size, 2);
    cache.delete("a");
    assert.equal(cache.get("a"), undefined);
    assert.equal(cache.size, 1);
    cache.delete("a"); // absent: no effect
    cache.delete("never");
    assert.equal(cache.size, 1);
    assert.equal(cache.bytes, 10);
  },
});

Deno.test({
  name: "BoundedCache.maxBytes is CACHE_LIMITS.maxBytes unless given",
  ...SANITIZE,
  fn(): void {
    assert.equal(new BoundedCache().maxBytes, CACHE_LIMITS.maxBytes);
    assert.equal(CACHE_LIMITS.maxBytes, 32 * 1024 * 1024);
    assert.equal(CACHE_LIMITS.maxEntries, 4096);
    assert.equal(new BoundedCache({ maxBytes: 5 }).maxBytes, 5);
  },
});

Deno.test({
  name: "BoundedCache.set() accounts the bytes of each entry",
  ...SANITIZE,
  fn(): void {
    const cache = new BoundedCache<number>({ maxBytes: 1000 });
    cache.set("a", 1, { bytes: 100 });
    cache.set("b", 2, { bytes: 250 });
    cache.set("c", 3); // 0 bytes
    assert.equal(cache.bytes, 350);
    cache.delete("b");
    assert.equal(cache.bytes, 100);
    cache.delete("c");
    assert.equal(cache.bytes, 100);
    cache.delete("a");
    assert.equal(cache.bytes, 0);
    assert.equal(cache.size, 0);
  },
});

Deno.test({
  name: "BoundedCache.set() of a present key replaces its value and bytes",
  ...SANITIZE,
  fn(): void {
    const cache = new BoundedCache<string>({ maxBytes: 100 });
    cache.set("a", "one", { bytes: 10 });
    cache.set("b", "two", { bytes: 20 });
    cache.set("a", "three", { bytes: 40 });
    assert.equal(cache.get("a"), "three");
    assert.equal(cache.size, 2);
    assert.equal(cache.bytes, 60);
    cache.set("a", "four", { bytes: 5 });
    assert.equal(cache.bytes, 25);
    assert.equal(cache.size, 2);
  },
});

Deno.test({
  name: "BoundedCache.set() evicts the oldest entries past maxEntries",
  ...SANITIZE,
  fn(): void {
    const all = ["a", "b", "c", "d", "e"];
    const cache = new BoundedCache<string>({ maxEntries: 3 });
    for (const key of all) cache.set(key, key.toUpperCase(), { bytes: 1 });
    assert.deepEqual(keys(cache, all), ["c", "d", "e"]);
    assert.equal(cache.size, 3);
    assert.equal(cache.bytes, 3);
    // Reading does not refresh; replacing makes an entry the newest.
    cache.get("c");
    cache.set("c", "C2", { bytes: 1 });
    cache.set("f", "F", { bytes: 1 });
    assert.deepEqual(keys(cache, [...all, "f"]), ["c", "e", "f"]);
  },
});

Deno.test({
  name: "BoundedCache.set() evicts the oldest entries past maxBytes",
  ...SANITIZE,
  fn(): void {
    const all = ["a", "b", "c", "d"];
    const cases: {
      name: string;
      sizes: number[];
      kept: string[];
      bytes: number;
    }[] = [
      { name: "all fit", sizes: [2, 3, 4, 1], kept: all, bytes: 10 },
      {
        name: "one over",
        sizes: [4, 4, 4, 0],
        kept: ["b", "c", "d"],
        bytes: 8,
      },
      { name: "big last", sizes: [1, 1, 1, 9], kept: ["c", "d"], bytes: 10 },
      { name: "exactly max", sizes: [1, 1, 1, 10], kept: ["d"], bytes: 10 },
    ];
    for (const c of cases) {
      const cache = new BoundedCache<number>({ maxBytes: 10 });
      all.forEach((key, i) =>
        assert.equal(cache.set(key, i, { bytes: c.sizes[i] }), true)
      );
      assert.deepEqual(keys(cache, all), c.kept, c.name);
      assert.equal(cache.bytes, c.bytes, c.name);
      assert.equal(cache.size, c.kept.length, c.name);
    }
  },
});

Deno.test({
  name: "BoundedCache.set() refuses an entry larger than maxBytes",
  ...SANITIZE,
  fn(): void {
    const cache = new BoundedCache<string>({ maxBytes: 10 });
    cache.set("a", "A", { bytes: 5 });
    assert.equal(cache.set("big", "BIG", { bytes: 11 }), false);
    assert.equal(cache.get("big"), undefined);
    assert.equal(cache.get("a"), "A");
    assert.equal(cache.bytes, 5);
    assert.equal(cache.size, 1);
    assert.equal(
      new BoundedCache({ maxBytes: 0 }).set("x", 1, { bytes: 1 }),
      false,
    );
    assert.equal(
      new BoundedCache({ maxBytes: 0 }).set("x", 1, { bytes: 0 }),
      true,
    );
  },
});

Deno.test({
  name: "BoundedCache.set() keeps both bounds over many inserts",
  ...SANITIZE,
  fn(): void {
    const cache = new BoundedCache<number>({ maxEntries: 50, maxBytes: 1000 });
    for (let i = 0; i < 2000; i++) {
      cache.set(`k${i % 300}`, i, { bytes: (i * 37) % 120 });
      assert.ok(cache.size <= 50);
      assert.ok(cache.bytes <= 1000);
      assert.equal(cache.get(`k${i % 300}`), i);
    }
  },
});
