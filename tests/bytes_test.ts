import assert from "node:assert/strict";
import { concat } from "../src/bytes.ts";
import { SANITIZE } from "./test_util.ts";

const CASES: { name: string; pieces: number[][] }[] = [
  { name: "no pieces", pieces: [] },
  { name: "one piece", pieces: [[1, 2, 3]] },
  { name: "empty pieces among others", pieces: [[], [1], [], [2, 3], []] },
  { name: "many pieces", pieces: [[1, 2], [3], [4, 5, 6], [7, 8, 9, 10]] },
];

for (const c of CASES) {
  Deno.test({
    name: `concat() joins ${c.name} in order into a new array`,
    ...SANITIZE,
    fn(): void {
      const pieces = c.pieces.map((p) => Uint8Array.from(p));
      const total = pieces.reduce((sum, p) => sum + p.length, 0);
      const out = concat(pieces, total);
      assert.deepEqual([...out], c.pieces.flat());
      for (const piece of pieces) {
        if (piece.length > 0) assert.notEqual(out.buffer, piece.buffer);
      }
    },
  });
}

Deno.test({
  name: "concat() copies views at their own offsets",
  ...SANITIZE,
  fn(): void {
    const backing = Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    const out = concat([backing.subarray(6), backing.subarray(1, 3)], 4);
    assert.deepEqual([...out], [6, 7, 1, 2]);
  },
});
