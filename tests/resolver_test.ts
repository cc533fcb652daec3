import assert from "node:assert/strict";
import { posix } from "node:path";
import {
  type FoundFile,
  MAX_PAGE_SIZE,
  readFileOnce,
  type Resolution,
  Resolver,
  type ResolverOptions,
} from "../src/resolver.ts";
import { withTimeout } from "./test_util.ts";

const encoder = new TextEncoder();

/** Byte contents of the regular files of the tree (paths relative to the root). */
const CONTENTS: Record<string, Uint8Array> = {
  "index.html": encoder.encode("<h1>root index</h1>\n"),
  "other.html": encoder.encode("<p>other index</p>\n"),
  "a.txt": encoder.encode("hello from a\n"),
  "zero.txt": new Uint8Array(0),
  "404.html": encoder.encode("<h1>custom 404</h1>\n"),
  "bin.dat": Uint8Array.from({ length: 256 }, (_, i) => i),
  "big.bin": Uint8Array.from({ length: 300_000 }, (_, i) => (i * 31) & 0xff),
  ["l".repeat(250) + ".txt"]: encoder.encode("long but legal name\n"),
  "sub/index.html": encoder.encode("<h1>sub index</h1>\n"),
  "sub/page.txt": encoder.encode("sub page\n"),
  "sub/.well-known/x.txt": encoder.encode("nested well-known\n"),
  ".hidden": encoder.encode("hidden\n"),
  ".git/config": encoder.encode("[core]\n"),
  ".well-known/security.txt": encoder.encode("Contact: mailto:a@b.c\n"),
  ".well-known/.secret": encoder.encode("secret in well-known\n"),
  "locked/noperm.txt": encoder.encode("no permission\n"),
  "sealed/x.txt": encoder.encode("in a sealed directory\n"),
  "sealed/index.html": encoder.encode("sealed index\n"),
};

/** Files outside the root (relative to the base). */
const OUTSIDE: Record<string, Uint8Array> = {
  "outside/secret.txt": encoder.encode("outside secret\n"),
  "outside/dir/file.txt": encoder.encode("outside dir file\n"),
  "outside/.dotfile": encoder.encode("outside dotfile\n"),
  "outside/.private/file.txt": encoder.encode("outside hidden dir file\n"),
};

/** Symlinks of the tree: link path relative to the root -> link target. */
const SYMLINKS: Record<string, string> = {
  "link.txt": "a.txt",
  "sublink": "sub",
  "out.txt": "../outside/secret.txt",
  "outdir": "../outside/dir",
  "outdot": "../outside/.dotfile",
  "outdotdir": "../outside/.private",
  "sneaky": ".git/config",
  "sneakydir": ".git",
  ".dotlink": "a.txt",
  "loop1": "loop2",
  "loop2": "loop1",
  "dangling": "nothing-here.txt",
};

interface Tree {
  /** The temporary directory holding root/ and outside/. */
  base: string;
  /** The served root (not yet real-pathed). */
  root: string;
}

async function makeTree(): Promise<Tree> {
  const base = await Deno.makeTempDir({ prefix: "static-srv-resolver-" });
  const root = posix.join(base, "root");
  await Deno.mkdir(posix.join(root, "empty"), { recursive: true });
  const write = async (path: string, bytes: Uint8Array): Promise<void> => {
    await Deno.mkdir(posix.dirname(path), { recursive: true });
    await Deno.writeFile(path, bytes);
  };
  for (const [rel, bytes] of Object.entries(CONTENTS)) {
    await write(posix.join(root, rel), bytes);
  }
  for (const [rel, bytes] of Object.entries(OUTSIDE)) {
    await write(posix.join(base, rel), bytes);
  }
  for (const [rel, target] of Object.entries(SYMLINKS)) {
    await Deno.symlink(target, posix.join(root, rel));
  }
  const mkfifo = await new Deno.Command("mkfifo", {
    args: [posix.join(root, "fifo")],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(
    mkfifo.success,
    `mkfifo failed: ${new TextDecoder().decode(mkfifo.stderr)}`,
  );
  await Deno.chmod(posix.join(root, "locked/noperm.txt"), 0o000);
  await Deno.chmod(posix.join(root, "sealed"), 0o000);
  return { base, root };
}

async function removeTree(tree: Tree): Promise<void> {
  // Give permissions back so that a non-root user can remove everything.
  await Deno.chmod(posix.join(tree.root, "sealed"), 0o755).catch(() => {});
  await Deno.chmod(posix.join(tree.root, "locked/noperm.txt"), 0o644)
    .catch(() => {});
  await Deno.remove(tree.base, { recursive: true });
}

/** Resolves `segments`, which must find a file (asserted, with `label`). */
async function resolveFile(
  resolver: Resolver,
  segments: readonly string[],
  options: { directory?: boolean; label?: string } = {},
): Promise<FoundFile> {
  const { label, ...resolveOptions } = options;
  const found = await resolver.resolve(segments, resolveOptions);
  assert.equal(found.kind, "file", label);
  return found as FoundFile;
}

async function withTree(fn: (tree: Tree) => Promise<void>): Promise<void> {
  const tree = await makeTree();
  try {
    await fn(tree);
  } finally {
    await removeTree(tree);
  }
}

/** True when the tests run with root privileges (permission bits are not enforced). */
function runningAsRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    // Deno.uid() needs --allow-sys; fall back to `id -u` (--allow-run).
    const out = new Deno.Command("id", { args: ["-u"] }).outputSync();
    return new TextDecoder().decode(out.stdout).trim() === "0";
  }
}

/** What a case expects; paths are relative to the served root. */
type Expected =
  | { kind: "file"; name: string; path: string; contents: Uint8Array }
  | { kind: "redirect" }
  | { kind: "directory"; path: string }
  | { kind: "not-found" }
  | { kind: "forbidden" };

interface ResolveCase {
  name: string;
  segments: string[];
  directory: boolean;
  options?: ResolverOptions;
  expect: Expected;
}

function file(path: string, name = posix.basename(path)): Expected {
  const contents = CONTENTS[path] ??
    OUTSIDE[posix.normalize(posix.join("root", path))];
  assert.ok(contents !== undefined, `no contents for ${path}`);
  return { kind: "file", name, path, contents };
}

const NOT_FOUND: Expected = { kind: "not-found" };
const REDIRECT: Expected = { kind: "redirect" };
const LONG_NAME = "l".repeat(250) + ".txt";

const RESOLVE_CASES: ResolveCase[] = [
  // Plain files and index files.
  {
    name: "root directory serves index.html",
    segments: [],
    directory: true,
    expect: file("index.html"),
  },
  {
    name: "root without directory flag redirects",
    segments: [],
    directory: false,
    expect: REDIRECT,
  },
  {
    name: "plain file",
    segments: ["a.txt"],
    directory: false,
    expect: file("a.txt"),
  },
  {
    name: "index.html by name",
    segments: ["index.html"],
    directory: false,
    expect: file("index.html"),
  },
  {
    name: "empty file",
    segments: ["zero.txt"],
    directory: false,
    expect: file("zero.txt"),
  },
  {
    name: "file asked for as a directory",
    segments: ["a.txt"],
    directory: true,
    expect: NOT_FOUND,
  },
  {
    name: "file used as a directory",
    segments: ["a.txt", "x"],
    directory: false,
    expect: NOT_FOUND,
  },
  {
    name: "missing file",
    segments: ["missing.txt"],
    directory: false,
    expect: NOT_FOUND,
  },
  {
    name: "missing directory",
    segments: ["missing"],
    directory: true,
    expect: NOT_FOUND,
  },
  {
    name: "subdirectory without slash redirects",
    segments: ["sub"],
    directory: false,
    expect: REDIRECT,
  },
  {
    name: "subdirectory with slash serves its index",
    segments: ["sub"],
    directory: true,
    expect: file("sub/index.html", "index.html"),
  },
  {
    name: "file in a subdirectory",
    segments: ["sub", "page.txt"],
    directory: false,
    expect: file("sub/page.txt"),
  },
  {
    name: "directory without index",
    segments: ["empty"],
    directory: true,
    expect: { kind: "directory", path: "empty" },
  },
  {
    name: "directory without index, no slash",
    segments: ["empty"],
    directory: false,
    expect: REDIRECT,
  },
  {
    name: "250-character name",
    segments: [LONG_NAME],
    directory: false,
    expect: file(LONG_NAME),
  },
  {
    name: "4 KiB name",
    segments: ["x".repeat(4096)],
    directory: false,
    expect: NOT_FOUND,
  },
  {
    name: "4 KiB name as a directory",
    segments: ["x".repeat(4096)],
    directory: true,
    expect: NOT_FOUND,
  },
  {
    name: "path longer than PATH_MAX",
    segments: Array.from({ length: 20 }, () => "y".repeat(250)),
    directory: false,
    expect: NOT_FOUND,
  },

  // Dotfiles.
  {
    name: "dotfile hidden",
    segments: [".hidden"],
    directory: false,
    expect: NOT_FOUND,
  },
  {
    name: "file in a dot-directory hidden",
    segments: [".git", "config"],
    directory: false,
    expect: NOT_FOUND,
  },
  {
    name: "dot-directory hidden",
    segments: [".git"],
    directory: true,
    expect: NOT_FOUND,
  },
  {
    name: ".well-known file served",
    segments: [".well-known", "security.txt"],
    directory: false,
    expect: file(".well-known/security.txt"),
  },
  {
    name: ".well-known directory listed",
    segments: [".well-known"],
    directory: true,
    expect: { kind: "directory", path: ".well-known" },
  },
  {
    name: "dotfile inside .well-known hidden",
    segments: [".well-known", ".secret"],
    directory: false,
    expect: NOT_FOUND,
  },
  {
    name: ".well-known below the top level is a dot-directory",
    segments: ["sub", ".well-known", "x.txt"],
    directory: false,
    expect: NOT_FOUND,
  },

  // Symlinks.
  {
    name: "symlink inside the root keeps the requested name",
    segments: ["link.txt"],
    directory: false,
    expect: file("a.txt", "link.txt"),
  },
  {
    name: "symlink to a directory inside the root",
    segments: ["sublink"],
    directory: true,
    expect: file("sub/index.html", "index.html"),
  },
  {
    name: "file through a symlinked directory",
    segments: ["sublink", "page.txt"],
    directory: false,
    expect: file("sub/page.txt"),
  },
  {
    name: "symlink to a file outside the root",
    segments: ["out.txt"],
    directory: false,
    expect: NOT_FOUND,
  },
  {
    name: "symlink to a directory outside the root",
    segments: ["outdir"],
    directory: true,
    expect: NOT_FOUND,
  },
  {
    name: "file through a symlink to a directory outside the root",
    segments: ["outdir", "file.txt"],
    directory: false,
    expect: NOT_FOUND,
  },
  {
    name: "symlink to a dotfile inside the root",
    segments: ["sneaky"],
    directory: false,
    expect: NOT_FOUND,
  },
  {
    name: "file through a symlink to a dot-directory",
    segments: ["sneakydir", "config"],
    directory: false,
    expect: NOT_FOUND,
  },
  {
    name: "dot-named symlink to a visible file",
    segments: [".dotlink"],
    directory: false,
    expect: NOT_FOUND,
  },
  {
    name: "symlink loop",
    segments: ["loop1"],
    directory: false,
    expect: NOT_FOUND,
  },
  {
    name: "symlink loop as a directory",
    segments: ["loop2"],
    directory: true,
    expect: NOT_FOUND,
  },
  {
    name: "dangling symlink",
    segments: ["dangling"],
    directory: false,
    expect: NOT_FOUND,
  },

  // Special files.
  {
    name: "FIFO",
    segments: ["fifo"],
    directory: false,
    expect: NOT_FOUND,
  },
  {
    name: "FIFO as a directory",
    segments: ["fifo"],
    directory: true,
    expect: NOT_FOUND,
  },

  // Options: dotfiles.
  {
    name: "{dotfiles: true} serves a dotfile",
    segments: [".hidden"],
    directory: false,
    options: { dotfiles: true },
    expect: file(".hidden"),
  },
  {
    name: "{dotfiles: true} serves a dot-directory file",
    segments: [".git", "config"],
    directory: false,
    options: { dotfiles: true },
    expect: file(".git/config"),
  },
  {
    name: "{dotfiles: true} serves a dotfile in .well-known",
    segments: [".well-known", ".secret"],
    directory: false,
    options: { dotfiles: true },
    expect: file(".well-known/.secret"),
  },
  {
    name: "{dotfiles: true} follows a symlink to a dotfile",
    segments: ["sneaky"],
    directory: false,
    options: { dotfiles: true },
    expect: file(".git/config", "sneaky"),
  },
  {
    name: "{dotfiles: true} still refuses a symlink outside",
    segments: ["out.txt"],
    directory: false,
    options: { dotfiles: true },
    expect: NOT_FOUND,
  },

  // Options: followSymlinks.
  {
    name: "{followSymlinks: true} serves a symlink outside",
    segments: ["out.txt"],
    directory: false,
    options: { followSymlinks: true },
    expect: file("../outside/secret.txt", "out.txt"),
  },
  {
    name: "{followSymlinks: true} serves through a directory outside",
    segments: ["outdir", "file.txt"],
    directory: false,
    options: { followSymlinks: true },
    expect: file("../outside/dir/file.txt"),
  },
  {
    name: "{followSymlinks: true} lists a directory outside",
    segments: ["outdir"],
    directory: true,
    options: { followSymlinks: true },
    expect: { kind: "directory", path: "../outside/dir" },
  },
  {
    name: "{followSymlinks: true} still hides dotfiles",
    segments: [".hidden"],
    directory: false,
    options: { followSymlinks: true },
    expect: NOT_FOUND,
  },
  {
    name: "{followSymlinks: true} still hides a symlink to a dotfile",
    segments: ["sneaky"],
    directory: false,
    options: { followSymlinks: true },
    expect: NOT_FOUND,
  },
  {
    name: "{followSymlinks: true} still hides a symlink to a dotfile outside",
    segments: ["outdot"],
    directory: false,
    options: { followSymlinks: true },
    expect: NOT_FOUND,
  },
  {
    name:
      "{followSymlinks: true} still hides a file in a dot-directory outside",
    segments: ["outdotdir", "file.txt"],
    directory: false,
    options: { followSymlinks: true },
    expect: NOT_FOUND,
  },
  {
    name: "{followSymlinks: true, dotfiles: true} serves a dotfile outside",
    segments: ["outdot"],
    directory: false,
    options: { followSymlinks: true, dotfiles: true },
    expect: file("../outside/.dotfile", "outdot"),
  },
  {
    name: "{followSymlinks: true} symlink loop",
    segments: ["loop1"],
    directory: false,
    options: { followSymlinks: true },
    expect: NOT_FOUND,
  },

  // Options: index.
  {
    name: '{index: "other.html"} for the root',
    segments: [],
    directory: true,
    options: { index: "other.html" },
    expect: file("other.html"),
  },
  {
    name: '{index: "other.html"} for a directory without it',
    segments: ["sub"],
    directory: true,
    options: { index: "other.html" },
    expect: { kind: "directory", path: "sub" },
  },
  {
    name: '{index: "other.html"} leaves index.html a plain file',
    segments: ["index.html"],
    directory: false,
    options: { index: "other.html" },
    expect: file("index.html"),
  },
  {
    name: '{index: ".hidden"} is hidden by the dotfile policy',
    segments: [],
    directory: true,
    options: { index: ".hidden" },
    expect: { kind: "directory", path: "" },
  },
];

function check(
  label: string,
  root: string,
  actual: Resolution,
  expected: Expected,
): void {
  switch (expected.kind) {
    case "file": {
      assert.equal(actual.kind, "file", label);
      const found = actual as FoundFile;
      assert.equal(found.name, expected.name, `${label}: name`);
      assert.equal(
        found.path,
        posix.join(root, expected.path),
        `${label}: path`,
      );
      assert.equal(
        found.size,
        expected.contents.length,
        `${label}: size`,
      );
      assert.ok(
        Number.isFinite(found.mtime) && found.mtime > 0,
        `${label}: mtime`,
      );
      break;
    }
    case "directory":
      assert.deepEqual(
        actual,
        { kind: "directory", path: posix.join(root, expected.path) },
        label,
      );
      break;
    default:
      assert.deepEqual(actual, { kind: expected.kind }, label);
  }
}

Deno.test({
  name: "Resolver.resolve() maps paths to files, redirects and refusals",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await withTree(async (tree) => {
      const resolvers = new Map<string, Resolver>();
      for (const c of RESOLVE_CASES) {
        await t.step(c.name, async () => {
          const key = JSON.stringify(c.options ?? {});
          let resolver = resolvers.get(key);
          if (resolver === undefined) {
            resolver = await Resolver.create(tree.root, c.options);
            resolvers.set(key, resolver);
          }
          const label = `${c.name} (/${c.segments.join("/").slice(0, 40)}${
            c.directory ? "/" : ""
          })`;
          const actual = await withTimeout(
            resolver.resolve(c.segments, { directory: c.directory }),
            5000,
            { label },
          );
          check(label, resolver.root, actual, c.expect);
        });
      }
    });
  },
});

Deno.test({
  name: "Resolver.resolve() answers permission errors with forbidden",
  // Root ignores permission bits, so mode 000 cannot be refused there.
  ignore: runningAsRoot(),
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await withTree(async (tree) => {
      const resolver = await Resolver.create(tree.root);
      const cases: {
        name: string;
        segments: string[];
        directory: boolean;
        resolve: Expected["kind"];
        open?: Expected["kind"];
      }[] = [
        {
          name: "mode 000 file: found by stat, refused on open",
          segments: ["locked", "noperm.txt"],
          directory: false,
          resolve: "file",
          open: "forbidden",
        },
        {
          name: "file in a mode 000 directory",
          segments: ["sealed", "x.txt"],
          directory: false,
          resolve: "forbidden",
        },
        {
          name: "index of a mode 000 directory",
          segments: ["sealed"],
          directory: true,
          resolve: "forbidden",
        },
      ];
      for (const c of cases) {
        await t.step(c.name, async () => {
          const found = await resolver.resolve(c.segments, {
            directory: c.directory,
          });
          assert.equal(found.kind, c.resolve, `${c.name}: resolve`);
          if (c.open === undefined || found.kind !== "file") return;
          const opened = await resolver.open(found);
          if ("file" in opened) opened.file.close();
          assert.deepEqual(opened, { kind: c.open }, `${c.name}: open`);
          const read = await resolver.read(found);
          assert.deepEqual(read, { kind: c.open }, `${c.name}: read`);
        });
      }
    });
  },
});

Deno.test({
  name: "Resolver.create() refuses a missing root or a non-directory",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await withTree(async (tree) => {
      const cases: { name: string; path: string; reason: string }[] = [
        {
          name: "missing path",
          path: posix.join(tree.base, "does-not-exist"),
          reason: "no such directory",
        },
        {
          name: "regular file",
          path: posix.join(tree.root, "a.txt"),
          reason: "not a directory",
        },
        {
          name: "symlink to a regular file",
          path: posix.join(tree.root, "link.txt"),
          reason: "not a directory",
        },
        {
          name: "FIFO",
          path: posix.join(tree.root, "fifo"),
          reason: "not a directory",
        },
        {
          name: "dangling symlink",
          path: posix.join(tree.root, "dangling"),
          reason: "no such directory",
        },
        {
          name: "symlink loop",
          path: posix.join(tree.root, "loop1"),
          reason: "too many levels of symbolic links",
        },
      ];
      for (const c of cases) {
        await t.step(c.name, async () => {
          await assert.rejects(
            Resolver.create(c.path),
            (error: unknown) => {
              assert.ok(error instanceof Error, `${c.name}: Error`);
              assert.ok(
                error.message.startsWith(`Cannot serve "${c.path}": `),
                `${c.name}: message ${JSON.stringify(error.message)}`,
              );
              assert.equal(
                error.message,
                `Cannot serve "${c.path}": ${c.reason}`,
                c.name,
              );
              return true;
            },
            c.name,
          );
        });
      }
    });
  },
});

Deno.test({
  name: "Resolver.create() uses the real path of the root",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await withTree(async (tree) => {
      const cases: { name: string; path: string; real: string }[] = [
        { name: "root", path: tree.root, real: tree.root },
        {
          name: "root with a trailing slash",
          path: tree.root + "/",
          real: tree.root,
        },
        {
          name: "symlink to a directory",
          path: posix.join(tree.root, "sublink"),
          real: posix.join(tree.root, "sub"),
        },
        {
          name: "path with dot segments",
          path: posix.join(tree.root, "sub") + "/../empty",
          real: posix.join(tree.root, "empty"),
        },
      ];
      for (const c of cases) {
        await t.step(c.name, async () => {
          const resolver = await Resolver.create(c.path);
          assert.equal(resolver.root, await Deno.realPath(c.real), c.name);
        });
      }
    });
  },
});

const FILE_CASES: { name: string; segments: string[]; directory: boolean }[] = [
  { name: "text file", segments: ["a.txt"], directory: false },
  { name: "empty file", segments: ["zero.txt"], directory: false },
  { name: "all byte values", segments: ["bin.dat"], directory: false },
  { name: "300 kB file", segments: ["big.bin"], directory: false },
  { name: "index file", segments: ["sub"], directory: true },
  { name: "through a symlink", segments: ["link.txt"], directory: false },
];

/** The bytes on disk of a found file. */
function bytesOf(root: string, found: FoundFile): Uint8Array {
  const rel = found.path.slice(root.length + 1);
  const bytes = CONTENTS[rel];
  assert.ok(bytes !== undefined, `no contents for ${rel}`);
  return bytes;
}

Deno.test({
  name: "Resolver.open() returns a handle of the resolved size",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await withTree(async (tree) => {
      const resolver = await Resolver.create(tree.root);
      for (const c of FILE_CASES) {
        await t.step(c.name, async () => {
          const found = await resolveFile(resolver, c.segments, {
            directory: c.directory,
            label: c.name,
          });
          const opened = await resolver.open(found);
          assert.ok("file" in opened, `${c.name}: opened`);
          try {
            const expected = bytesOf(resolver.root, found);
            assert.equal(opened.size, expected.length, `${c.name}: size`);
            assert.equal(opened.size, found.size, `${c.name}: resolved size`);
            assert.equal(opened.mtime, found.mtime, `${c.name}: mtime`);
            const got = new Uint8Array(expected.length + 1);
            const n = await opened.file.read(got, 0);
            assert.deepEqual(got.subarray(0, n), expected, `${c.name}: bytes`);
            if (expected.length > 1) {
              const tail = await opened.file.read(got, 1);
              assert.deepEqual(
                got.subarray(0, tail),
                expected.subarray(1),
                `${c.name}: bytes from position 1`,
              );
            }
          } finally {
            opened.file.close();
          }
        });
      }
    });
  },
});

Deno.test({
  name: "Resolver.open() re-checks a file that changed after resolve()",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await withTree(async (tree) => {
      const resolver = await Resolver.create(tree.root);
      const cases: {
        name: string;
        change: (path: string) => Promise<void>;
        expect: Resolution;
      }[] = [
        {
          name: "file removed",
          change: (path) => Deno.remove(path),
          expect: { kind: "not-found" },
        },
        {
          name: "file replaced by a directory",
          change: async (path) => {
            await Deno.remove(path);
            await Deno.mkdir(path);
          },
          expect: { kind: "not-found" },
        },
      ];
      for (const [i, c] of cases.entries()) {
        await t.step(c.name, async () => {
          const name = `victim-${i}.txt`;
          const path = posix.join(tree.root, name);
          await Deno.writeTextFile(path, "soon gone\n");
          const found = await resolveFile(resolver, [name], {
            label: `${c.name}: resolved`,
          });
          await c.change(path);
          const opened = await resolver.open(found);
          if ("file" in opened) opened.file.close();
          assert.deepEqual(opened, c.expect, `${c.name}: open`);
          const read = await resolver.read(found);
          assert.deepEqual(read, c.expect, `${c.name}: read`);
        });
      }
    });
  },
});

Deno.test({
  name:
    "Resolver.open() refuses what a swap after resolve() puts at the path (symlinks, FIFOs)",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await withTree(async (tree) => {
      const resolver = await Resolver.create(tree.root);
      const outside = posix.join(tree.base, "outside");
      const cases: {
        name: string;
        /** Path of the file to resolve, relative to the root. */
        file: string;
        /** Replaces what was resolved (absolute paths of the root and outside/). */
        swap: (root: string) => Promise<void>;
      }[] = [
        {
          name: "directory swapped for a symlink to a directory outside",
          file: "swap-dir/file.txt",
          swap: async (root) => {
            await Deno.rename(`${root}/swap-dir`, `${root}/swap-dir-old`);
            await Deno.symlink(`${outside}/dir`, `${root}/swap-dir`);
          },
        },
        {
          name: "file swapped for a symlink to a file outside",
          file: "swap-file.txt",
          swap: async (root) => {
            await Deno.remove(`${root}/swap-file.txt`);
            await Deno.symlink(
              `${outside}/secret.txt`,
              `${root}/swap-file.txt`,
            );
          },
        },
        {
          name: "file swapped for a FIFO (must not block)",
          file: "swap-fifo",
          swap: async (root) => {
            await Deno.remove(`${root}/swap-fifo`);
            const made = await new Deno.Command("mkfifo", {
              args: [`${root}/swap-fifo`],
            }).output();
            assert.ok(made.success, "mkfifo");
          },
        },
      ];
      for (const c of cases) {
        await t.step(c.name, async () => {
          const path = posix.join(tree.root, c.file);
          await Deno.mkdir(posix.dirname(path), { recursive: true });
          // Named file.txt like the file in outside/dir, so that following
          // the swapped-in symlink would find a file.
          await Deno.writeTextFile(path, "inside\n");
          const found = await resolveFile(resolver, c.file.split("/"), {
            label: `${c.name}: resolved`,
          });
          await c.swap(tree.root);
          const opening = resolver.open(found);
          try {
            await withTimeout(opening, 5000, { label: `${c.name}: open` });
          } catch (error) {
            // A blocked open of a FIFO is released by opening its other end.
            const fifo = await Deno.open(path, { read: true, write: true });
            fifo.close();
            await opening.then((o) => "file" in o && o.file.close());
            throw error;
          }
          const opened = await opening;
          if ("file" in opened) opened.file.close();
          assert.deepEqual(opened, { kind: "not-found" }, `${c.name}: open`);
          const read = await resolver.read(found);
          assert.deepEqual(read, { kind: "not-found" }, `${c.name}: read`);
        });
      }
    });
  },
});

Deno.test({
  name: "Resolver.read() returns the exact bytes",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await withTree(async (tree) => {
      const resolver = await Resolver.create(tree.root);
      for (const c of FILE_CASES) {
        await t.step(c.name, async () => {
          const found = await resolveFile(resolver, c.segments, {
            directory: c.directory,
            label: c.name,
          });
          const read = await resolver.read(found);
          assert.ok("bytes" in read, `${c.name}: read`);
          const expected = bytesOf(resolver.root, found);
          assert.equal(read.size, expected.length, `${c.name}: size`);
          assert.deepEqual(read.bytes, expected, `${c.name}: bytes`);
          assert.equal(read.mtime, found.mtime, `${c.name}: mtime`);
        });
      }
    });
  },
});

Deno.test({
  name:
    "Resolver.read() does not read a file grown past the size it was found at",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(): Promise<void> {
    // Its callers set memory aside for the size found (and check it against
    // the largest file they keep): a file grown meanwhile, or replaced by a
    // larger one, was read whole into memory all the same.
    await withTree(async (tree) => {
      const resolver = await Resolver.create(tree.root);
      const path = posix.join(tree.root, "grows.bin");
      await Deno.writeTextFile(path, "small\n");
      const found = await resolveFile(resolver, ["grows.bin"]);
      await Deno.truncate(path, 64 * 1024 * 1024); // sparse: no disk blocks
      const read = await resolver.read(found);
      assert.ok(!("bytes" in read), "not read");
      // Smaller than found: read, with the stamp of what was read.
      await Deno.truncate(path, 3);
      const shrunk = await resolver.read(found);
      assert.ok("bytes" in shrunk, "read");
      assert.equal(shrunk.size, 3);
    });
  },
});

Deno.test({
  name: "Resolver.readOptional() reads a root file when it is there",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await withTree(async (tree) => {
      const cases: {
        name: string;
        file: string;
        options?: ResolverOptions;
        expect: Uint8Array | undefined;
      }[] = [
        {
          name: "present 404.html",
          file: "404.html",
          expect: CONTENTS["404.html"],
        },
        { name: "empty file", file: "zero.txt", expect: new Uint8Array(0) },
        { name: "absent file", file: "500.html", expect: undefined },
        { name: "directory", file: "sub", expect: undefined },
        { name: "dotfile", file: ".hidden", expect: undefined },
        {
          name: "dotfile with {dotfiles: true}",
          file: ".hidden",
          options: { dotfiles: true },
          expect: CONTENTS[".hidden"],
        },
        { name: "symlink inside", file: "link.txt", expect: CONTENTS["a.txt"] },
        { name: "symlink outside", file: "out.txt", expect: undefined },
        { name: "symlink loop", file: "loop1", expect: undefined },
        { name: "FIFO", file: "fifo", expect: undefined },
      ];
      for (const c of cases) {
        await t.step(c.name, async () => {
          const resolver = await Resolver.create(tree.root, c.options);
          const bytes = await withTimeout(resolver.readOptional(c.file), 5000, {
            label: c.name,
          });
          assert.deepEqual(bytes, c.expect, c.name);
        });
      }
    });
  },
});

Deno.test({
  name:
    "Resolver.readOptional() returns undefined when the root has no such file",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(): Promise<void> {
    const root = await Deno.makeTempDir({ prefix: "static-srv-empty-" });
    try {
      const resolver = await Resolver.create(root);
      for (const name of ["404.html", "index.html"]) {
        assert.equal(await resolver.readOptional(name), undefined, name);
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "Resolver.list() lists every visible entry of a large directory in the order read, and only those",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(): Promise<void> {
    const base = await Deno.makeTempDir({ prefix: "static-srv-list-" });
    try {
      const root = `${base}/root`;
      const dir = `${root}/many`;
      await Deno.mkdir(dir, { recursive: true });
      await Deno.mkdir(`${base}/outside`);
      await Deno.writeTextFile(`${base}/outside/secret.txt`, "secret");
      const expected = new Map<string, { directory: boolean; size: number }>();
      for (let i = 0; i < 300; i++) {
        const name = `f${String(i).padStart(3, "0")}.txt`;
        await Deno.writeFile(`${dir}/${name}`, new Uint8Array(i));
        expected.set(name, { directory: false, size: i });
      }
      for (let i = 0; i < 20; i++) {
        await Deno.mkdir(`${dir}/d${i}`);
        expected.set(`d${i}`, { directory: true, size: 0 });
      }
      await Deno.symlink("f007.txt", `${dir}/inside-link`);
      expected.set("inside-link", { directory: false, size: 7 });
      // Left out: dotfiles, a link out of the root, a dangling link, a FIFO.
      for (let i = 0; i < 10; i++) {
        await Deno.writeTextFile(`${dir}/.h${i}`, "");
      }
      await Deno.symlink(`${base}/outside/secret.txt`, `${dir}/out-link`);
      await Deno.symlink("nothing-here", `${dir}/dangling`);
      const fifo = new Deno.Command("mkfifo", { args: [`${dir}/fifo`] });
      assert.equal((await fifo.output()).code, 0);

      const resolver = await Resolver.create(root, {});
      const listed = await withTimeout(resolver.list(dir), 20_000, {
        label: "the listing",
      });
      const read: string[] = [];
      for await (const e of Deno.readDir(dir)) read.push(e.name);
      assert.deepEqual(
        listed.map((e) => e.name),
        read.filter((name) => expected.has(name)),
      );
      for (const entry of listed) {
        const want = expected.get(entry.name)!;
        assert.equal(entry.directory, want.directory, entry.name);
        if (!want.directory) assert.equal(entry.size, want.size, entry.name);
        assert.ok(entry.mtime > 0, entry.name);
      }
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

/** Size of the files outside the root in the listing swap tests: no file inside has it. */
const OUTSIDE_SIZE = 123_457;
/** Modification time of the files outside the root in the listing swap tests (2001-09-09). */
const OUTSIDE_MTIME = new Date(1_000_000_000_000);
/** The `Deno` functions before whose calls the swap tests swap. */
const SWAP_POINTS = ["lstat", "readDir", "realPath", "stat"] as const;
/** More calls than the checks of the swap tests make. */
const MAX_SWAP_POINT = 40;
/** Set to "1" for the child run with --allow-all: the kernel must then name descriptors. */
const KERNEL_NAMES_ENV = "STATIC_SRV_KERNEL_NAMES";

/** True when Deno lets this program read /proc/self/fd (Linux, --allow-all). */
function kernelNamesReadable(): boolean {
  try {
    for (const _ of Deno.readDirSync("/proc/self/fd")) return true;
    return false;
  } catch {
    return false;
  }
}

/**
 * Runs `fn` with every `Deno` function of {@linkcode SWAP_POINTS} counting
 * its calls and calling `before(n)` ahead of call number `n`.
 */
async function withSwapPoints<T>(
  before: (n: number) => void,
  fn: () => Promise<T>,
): Promise<T> {
  const deno = Deno as unknown as Record<string, unknown>;
  const originals = SWAP_POINTS.map((name) => deno[name]);
  let calls = 0;
  SWAP_POINTS.forEach((name, i) => {
    const original = originals[i] as (...args: unknown[]) => unknown;
    deno[name] = (...args: unknown[]): unknown => {
      before(calls++);
      return original.apply(Deno, args);
    };
  });
  try {
    return await fn();
  } finally {
    SWAP_POINTS.forEach((name, i) => deno[name] = originals[i]);
  }
}

/**
 * Makes `swap`, then opens `file` with `undo` made before call 0, 1, ... of
 * the resolver's file system calls, until one open makes fewer calls than
 * that: every open must find nothing.
 */
async function assertOpenRefusedAtEverySwapPoint(
  resolver: Resolver,
  file: FoundFile,
  { swap, undo }: { swap: () => void; undo: () => void },
): Promise<void> {
  let point = 0;
  for (; point < MAX_SWAP_POINT; point++) {
    swap();
    let undone = false;
    const opened = await withSwapPoints((n) => {
      if (n !== point) return;
      undo();
      undone = true;
    }, () => resolver.open(file));
    if ("file" in opened) opened.file.close();
    assert.deepEqual(opened, { kind: "not-found" }, `undone at ${point}`);
    if (!undone) {
      undo();
      break;
    }
  }
  assert.ok(point < MAX_SWAP_POINT, `${point} calls`);
}

Deno.test({
  name:
    "Resolver.open() refuses a file swapped for a symlink to a file outside before the open and back before the check",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(): Promise<void> {
    await withTree(async (tree) => {
      const resolver = await Resolver.create(tree.root);
      const path = posix.join(tree.root, "swap-back.txt");
      await Deno.writeTextFile(path, "inside\n");
      const file = await resolveFile(resolver, ["swap-back.txt"]);
      const secret = posix.join(tree.base, "outside/secret.txt");
      const undo = (): void => {
        Deno.removeSync(path);
        Deno.renameSync(`${path}.old`, path);
      };
      const swap = (): void => {
        Deno.renameSync(path, `${path}.old`);
        Deno.symlinkSync(secret, path);
      };
      await assertOpenRefusedAtEverySwapPoint(resolver, file, { swap, undo });
    });
  },
});

Deno.test({
  name:
    "Resolver.open() refuses a file whose directory is swapped for a symlink to a directory outside before the open and back before the check",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(): Promise<void> {
    await withTree(async (tree) => {
      const resolver = await Resolver.create(tree.root);
      const directory = posix.join(tree.root, "swap-dir");
      const outside = posix.join(tree.base, "outside-swap-dir");
      await Deno.mkdir(directory);
      await Deno.mkdir(outside);
      await Deno.writeTextFile(`${directory}/page.txt`, "inside\n");
      await Deno.writeTextFile(`${outside}/page.txt`, "outside, larger\n");
      const file = await resolveFile(resolver, ["swap-dir", "page.txt"]);
      const hidden = posix.join(tree.root, ".swap-dir");
      const undo = (): void => {
        Deno.removeSync(directory);
        Deno.renameSync(hidden, directory);
      };
      const swap = (): void => {
        Deno.renameSync(directory, hidden);
        Deno.symlinkSync(outside, directory);
      };
      await assertOpenRefusedAtEverySwapPoint(resolver, file, { swap, undo });
    });
  },
});

Deno.test({
  name:
    "Resolver.list() shows nothing of what is outside the root when an entry or the directory is swapped for a symlink during the listing",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    const atomic = kernelNamesReadable();
    if (Deno.env.get(KERNEL_NAMES_ENV) === "1") {
      assert.ok(atomic, "the child run reads /proc/self/fd");
    }
    /** The entries of the listed directory inside the root: name -> size. */
    const inside: Record<string, number> = { "victim": 5, "other.txt": 3 };
    const swaps: {
      name: string;
      /** Swaps (synchronously: a hook of `Deno.readDir` must) in the tree at `base`. */
      swap: (base: string) => void;
      /** Undoes `swap`. */
      undo: (base: string) => void;
    }[] = [
      {
        name: "an entry swapped for a symlink to a file outside",
        swap: (base) => {
          Deno.renameSync(`${base}/root/dir/victim`, `${base}/root/.victim`);
          Deno.symlinkSync(`${base}/outside/secret`, `${base}/root/dir/victim`);
        },
        undo: (base) => {
          Deno.removeSync(`${base}/root/dir/victim`);
          Deno.renameSync(`${base}/root/.victim`, `${base}/root/dir/victim`);
        },
      },
      {
        name: "the directory swapped for a symlink to a directory outside",
        swap: (base) => {
          Deno.renameSync(`${base}/root/dir`, `${base}/root/.dir`);
          Deno.symlinkSync(`${base}/outside/dir`, `${base}/root/dir`);
        },
        undo: (base) => {
          Deno.removeSync(`${base}/root/dir`);
          Deno.renameSync(`${base}/root/.dir`, `${base}/root/dir`);
        },
      },
    ];
    // A swap undone at the next call is caught too: through descriptors,
    // and by path by the entry's inode found again after its real path.
    for (const s of swaps) {
      for (const undone of [false, true]) {
        const label = undone ? `${s.name}, and back at the next call` : s.name;
        await t.step(label, async () => {
          // Swap before call 0, 1, 2, ... of the listing, until one makes
          // fewer calls than that.
          let point = 0;
          for (; point < MAX_SWAP_POINT; point++) {
            const base = await Deno.makeTempDir({ prefix: "static-srv-swap-" });
            try {
              await Deno.mkdir(`${base}/root/dir`, { recursive: true });
              await Deno.mkdir(`${base}/outside/dir`, { recursive: true });
              for (const [name, size] of Object.entries(inside)) {
                await Deno.writeFile(
                  `${base}/root/dir/${name}`,
                  new Uint8Array(size),
                );
              }
              await Deno.symlink("victim", `${base}/root/dir/link`);
              for (
                const path of [
                  "secret",
                  "dir/victim",
                  "dir/other.txt",
                  "dir/link",
                  "dir/outside-only",
                ]
              ) {
                await Deno.writeFile(
                  `${base}/outside/${path}`,
                  new Uint8Array(OUTSIDE_SIZE),
                );
                await Deno.utime(
                  `${base}/outside/${path}`,
                  OUTSIDE_MTIME,
                  OUTSIDE_MTIME,
                );
              }
              const resolver = await Resolver.create(`${base}/root`);
              const directory = `${resolver.root}/dir`;
              let swapped = false;
              const listed = await withSwapPoints((n) => {
                if (n === point) {
                  s.swap(base);
                  swapped = true;
                } else if (undone && n === point + 1) s.undo(base);
              }, async () => {
                try {
                  return await resolver.list(directory);
                } catch {
                  return []; // the directory is no longer the one resolved
                }
              });
              const at = `swapped before call ${point}`;
              for (const entry of listed) {
                // A symlink inside shows its target's size.
                const size =
                  inside[entry.name === "link" ? "victim" : entry.name];
                assert.equal(entry.size, size, `${at}: ${entry.name} size`);
                assert.equal(entry.directory, false, `${at}: ${entry.name}`);
                assert.notEqual(
                  entry.mtime,
                  OUTSIDE_MTIME.getTime(),
                  `${at}: ${entry.name} mtime`,
                );
              }
              if (!swapped) {
                // The listing made fewer calls: every point was covered,
                // and without a swap everything is listed.
                assert.deepEqual(
                  listed.map((e) => e.name).sort(),
                  ["link", "other.txt", "victim"],
                );
                break;
              }
            } finally {
              await Deno.remove(base, { recursive: true });
            }
          }
          assert.ok(point > 2 && point < MAX_SWAP_POINT, `${point} calls`);
        });
      }
    }
  },
});

Deno.test({
  name:
    "Resolver.list() shows nothing of what is outside the root after a swap also where the kernel names descriptors (--allow-all)",
  ignore: Deno.build.os !== "linux",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(): Promise<void> {
    // Deno lets a program read /proc/self/fd only with --allow-all, which
    // `deno task test` does not give: the test above runs again in a child.
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "--allow-all",
        "--filter",
        "Resolver.list() shows nothing of what is outside the root when",
        new URL(import.meta.url).pathname,
      ],
      env: { [KERNEL_NAMES_ENV]: "1", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout);
    assert.equal(code, 0, out + new TextDecoder().decode(stderr));
    assert.match(out, /^ok \| 1 passed \(4 steps\) \| 0 failed \|/m);
  },
});

Deno.test({
  name:
    "readFileOnce() reads up to MAX_PAGE_SIZE bytes and refuses a larger file, a directory or a missing one",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t): Promise<void> {
    await withTree(async (tree) => {
      const page = posix.join(tree.base, "page.html");
      const big = posix.join(tree.base, "big.html");
      await Deno.writeFile(page, new Uint8Array(MAX_PAGE_SIZE).fill(0x61));
      await Deno.writeFile(big, new Uint8Array(MAX_PAGE_SIZE + 1));
      await t.step("a file of exactly MAX_PAGE_SIZE", async () => {
        const bytes = await readFileOnce(page);
        assert.equal(bytes.length, MAX_PAGE_SIZE);
        assert.equal(bytes[MAX_PAGE_SIZE - 1], 0x61);
      });
      const refused: [string, string, string][] = [
        ["a file one byte larger", big, "larger than 1 MiB"],
        ["a directory", tree.root, "is a directory"],
        // Endless: read up to the limit, not until memory runs out.
        ["/dev/zero", "/dev/zero", "larger than 1 MiB"],
        ["a missing file", posix.join(tree.base, "nope"), "no such file"],
      ];
      for (const [name, path, why] of refused) {
        await t.step(name, async () => {
          await assert.rejects(
            withTimeout(readFileOnce(path), 5000, { label: name }),
            { message: `Cannot read ${JSON.stringify(path)}: ${why}` },
          );
        });
      }
    });
  },
});
