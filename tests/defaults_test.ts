import assert from "node:assert/strict";
import { SERVER_DEFAULTS, TIMEOUTS } from "../src/defaults.ts";
import { HANDLER_DEFAULTS } from "../src/handler.ts";
import { SANITIZE } from "./test_util.ts";

const README = new URL("../README.md", import.meta.url);

/** The default column of README's flag table, by flag (as in its first column). */
async function readmeDefaults(): Promise<Map<string, string>> {
  const text = await Deno.readTextFile(README);
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const cells = line.split("|").map((cell) => cell.trim());
    if (cells.length < 4 || !cells[1].startsWith("`-")) continue;
    out.set(cells[1].replaceAll("`", ""), cells[2]);
  }
  return out;
}

Deno.test({
  name:
    "SERVER_DEFAULTS and TIMEOUTS are the defaults README's flag table shows",
  ...SANITIZE,
  async fn(): Promise<void> {
    const shown = await readmeDefaults();
    const expected: [string, string][] = [
      ["-p, --port N", `\`$PORT\`, else \`${SERVER_DEFAULTS.port}\``],
      ["--host ADDR", `\`${SERVER_DEFAULTS.hostname}\``],
      ["--header-timeout S", `\`${TIMEOUTS.header / 1000}\``],
      ["--idle-timeout S", `\`${TIMEOUTS.idle / 1000}\``],
      ["--max-connections N", `\`${SERVER_DEFAULTS.maxConnections}\``],
      [
        "--cache-size MIB",
        `\`${HANDLER_DEFAULTS.cacheSize / (1024 * 1024)}\``,
      ],
    ];
    for (const [flag, value] of expected) {
      assert.equal(shown.get(flag), value, flag);
    }
  },
});

Deno.test({
  name: "TIMEOUTS.send is the send timeout README states",
  ...SANITIZE,
  async fn(): Promise<void> {
    const text = (await Deno.readTextFile(README)).replaceAll(/\s+/g, " ");
    assert.ok(
      text.includes(`a ${TIMEOUTS.send / 1000} s send timeout`),
      `README names a ${TIMEOUTS.send / 1000} s send timeout`,
    );
  },
});

Deno.test({
  name: "TIMEOUTS and SERVER_DEFAULTS hold usable values",
  ...SANITIZE,
  fn(): void {
    // The tutorial's port; a stop's wait for a coming head stays well
    // inside the shutdown grace; the sweep is finer than every timeout.
    assert.equal(SERVER_DEFAULTS.port, 7890);
    assert.ok(TIMEOUTS.headOnStop < SERVER_DEFAULTS.shutdownGrace);
    for (const [name, ms] of Object.entries(TIMEOUTS)) {
      assert.ok(Number.isInteger(ms) && ms > 0, name);
      assert.ok(SERVER_DEFAULTS.sweepInterval <= ms, name);
    }
  },
});
