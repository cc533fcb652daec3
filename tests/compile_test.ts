/**
 * `deno compile` with deno.json's `compile` task flags, then the binary.
 *
 * `deno compile` needs the denort runtime, which it downloads unless
 * `DENORT_BIN` points at one. Without network, the test runs only when a
 * runtime is available (DENORT_BIN, or a cached denort in the Deno cache);
 * otherwise it is registered as ignored and says why.
 */

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { STATUS_CODE } from "../src/http/status.ts";
import {
  getAndClose,
  killAfter,
  type ProcessOutput,
  PROJECT,
  type RawResponse,
  runWithin,
  SANITIZE,
} from "./test_util.ts";

const CHILD_LIMIT_MS = 300_000;

/** Finds a file whose name starts with `denort` under `dir`, a few levels deep. */
function findDenort(dir: string, depth = 4): string | undefined {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    if (entry.isFile && entry.name.startsWith("denort")) {
      return `${dir}/${entry.name}`;
    }
  }
  if (depth === 0) return undefined;
  for (const entry of entries) {
    if (entry.isDirectory) {
      const found = findDenort(`${dir}/${entry.name}`, depth - 1);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** The denort runtime to compile with, if one is available offline. */
function denortRuntime(): string | undefined {
  const fromEnv = Deno.env.get("DENORT_BIN");
  if (fromEnv) return fromEnv;
  const dirs: string[] = [];
  const denoDir = Deno.env.get("DENO_DIR");
  if (denoDir) dirs.push(`${denoDir}/dl`, denoDir);
  const home = Deno.env.get("HOME");
  if (home) dirs.push(`${home}/.cache/deno/dl`);
  for (const dir of dirs) {
    const found = findDenort(dir);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** deno.json's `compile` task split into `deno compile` flags, the output and the entry point. */
function compileTask(): { flags: string[]; output: string; entry: string } {
  const words = denoJson.tasks.compile.trim().split(/\s+/);
  assert.deepEqual(words.slice(0, 2), ["deno", "compile"], "compile task");
  const rest = words.slice(2);
  const entry = rest.pop()!;
  const flags: string[] = [];
  let output: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === "--output" || rest[i] === "-o") output = rest[++i];
    else if (rest[i].startsWith("--output=")) output = rest[i].slice(9);
    else flags.push(rest[i]);
  }
  assert.ok(output !== undefined, "the compile task names its --output");
  return { flags, output, entry };
}

/** Runs a command to its exit, killed after CHILD_LIMIT_MS. */
function output(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<ProcessOutput> {
  const command = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  return runWithin(command, CHILD_LIMIT_MS);
}

/** Serves with `binary` from `cwd`, GETs / and stops it with SIGTERM. */
async function serveOnce(
  binary: string,
  cwd: string,
): Promise<{ response: RawResponse; code: number; stderr: string }> {
  const child = new Deno.Command(binary, {
    args: ["--port", "0", "--host", "127.0.0.1", "--quiet"],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = killAfter(child, CHILD_LIMIT_MS);
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let response: RawResponse | undefined;
  let failure: unknown;
  try {
    let text = "";
    let port = 0;
    for (let i = 0; i < 1000 && port === 0; i++) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`Stdout ended before the banner: "${text}"`);
      text += value;
      const match = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(text);
      if (match) port = Number(match[1]);
    }
    assert.ok(port > 0, text);
    response = await getAndClose(port);
  } catch (error) {
    failure = error;
  }
  try {
    child.kill("SIGTERM");
  } catch {
    // already exited
  }
  const status = await child.status;
  clearTimeout(timer);
  for (;;) {
    const { done } = await reader.read();
    if (done) break;
  }
  reader.releaseLock();
  const errText = await stderr;
  if (failure !== undefined) {
    throw new Error(`${String(failure)}; stderr: ${errText}`);
  }
  return { response: response!, code: status.code, stderr: errText };
}

Deno.test({
  name: "deno.json's compile task compiles main.ts with --include html",
  ...SANITIZE,
  fn(): void {
    const { flags, output, entry } = compileTask();
    assert.equal(entry, "main.ts");
    assert.equal(output, "static-srv");
    const include = flags.indexOf("--include");
    assert.ok(include >= 0 && flags[include + 1] === "html", flags.join(" "));
  },
});

const DENORT = denortRuntime();
const SKIP_REASON =
  "compile test skipped: no denort runtime (set DENORT_BIN) — deno compile downloads it and the network is unavailable";

if (DENORT === undefined) console.log(SKIP_REASON);

Deno.test({
  name: "deno compile builds a binary that serves ./html and knows its version",
  ignore: DENORT === undefined,
  ...SANITIZE,
  async fn(): Promise<void> {
    const { flags, entry } = compileTask();
    const outDir = await Deno.makeTempDir({ prefix: "static-srv-compile-" });
    try {
      const binary = `${outDir}/static-srv`;
      const compiled = await output(
        Deno.execPath(),
        ["compile", ...flags, "--output", binary, entry],
        { cwd: PROJECT, env: { DENORT_BIN: DENORT!, NO_COLOR: "1" } },
      );
      assert.equal(compiled.code, 0, compiled.stderr);

      const version = await output(binary, ["--version"], { cwd: outDir });
      assert.equal(version.code, 0, version.stderr);
      assert.equal(version.stdout, `static-srv ${denoJson.version}\n`);

      // The default root ./html is relative to the working directory.
      const { response, code, stderr } = await serveOnce(binary, PROJECT);
      assert.equal(response.status, STATUS_CODE.OK);
      assert.deepEqual(
        response.body,
        await Deno.readFile(`${PROJECT}/html/index.html`),
      );
      assert.equal(code, 0, stderr);
    } finally {
      await Deno.remove(outDir, { recursive: true });
    }
  },
});
