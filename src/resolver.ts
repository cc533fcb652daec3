/**
 * The file resolver: maps a sanitised path to a regular file under the root,
 * with index files, the dotfile policy and symlink containment. It is the
 * only module that opens files.
 *
 * @module
 */

import {
  closeSync,
  constants,
  fstat,
  open,
  read,
  readlink,
  type Stats,
} from "node:fs";
import { posix } from "node:path";
import {
  CODING_SUFFIX,
  CONTENT_CODINGS,
  type ContentCoding,
} from "./encoding.ts";
import { concat } from "./bytes.ts";
import { reason } from "./log.ts";

/** Options of {@linkcode Resolver.create}. */
export interface ResolverOptions {
  /** Serve dotfiles and dot-directories (default false; `.well-known/` is always served). */
  dotfiles?: boolean;
  /** Serve symlinks whose target is outside the root (default false). */
  followSymlinks?: boolean;
  /** The index file of a directory (default "index.html"). */
  index?: string;
  /** Serve `x.br` / `x.gz` beside `x` for `x` (default false): listings then hide them. */
  precompressed?: boolean;
}

/**
 * What tells one version of a file from another. Size and mtime make the
 * validators (they survive a copy to another machine); the inode and the
 * change time also catch a replacement that keeps both, such as a rename
 * over the file or a rewrite followed by restoring the old mtime.
 */
export interface FileStamp {
  /** Size in bytes. */
  size: number;
  /** Modification time in ms since the epoch. */
  mtime: number;
  /** Inode number (0 where the platform has none). */
  ino: number;
  /** Status change time in ms since the epoch (0 where the platform has none). */
  ctime: number;
}

/** A regular file found under the root, stamped at resolution time. */
export interface FoundFile extends FileStamp {
  /** Tells a file from the other kinds of resolution. */
  kind: "file";
  /** The real path (symlinks resolved). */
  path: string;
  /** The name that decides the media type: the requested name, or the index file's. */
  name: string;
}

/** The answer of {@linkcode Resolver.resolve}. */
export type Resolution =
  | FoundFile
  | { kind: "redirect" }
  | { kind: "directory"; path: string }
  | { kind: "not-found" }
  | { kind: "forbidden" }
  | { kind: "error"; message: string }
  /** Out of file descriptors (EMFILE, ENFILE): it may work again soon. */
  | { kind: "busy"; message: string };

/** One entry of a directory listing. */
export interface ListedEntry {
  /** The file name. */
  name: string;
  /** True for a directory. */
  directory: boolean;
  /** Size in bytes. */
  size: number;
  /** Modification time in ms since the epoch. */
  mtime: number;
}

/**
 * Flags of every open: no blocking on a FIFO or device swapped in after the
 * check, and no following a final symlink swapped in after `realPath` (with
 * narrower permissions than `--allow-all`, Deno resolves symlinks before it
 * opens: {@linkcode isAt} then refuses the file).
 */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) |
  (constants.O_NOFOLLOW ?? 0);

/**
 * Flags of the opens that only look at what a listing shows (Linux, where
 * the kernel names descriptors): an O_PATH descriptor (0o10000000 on x86-64
 * and arm64; `node:fs` does not name it), which reads nothing, needs no read
 * permission and opens no FIFO or device, of what is at the path itself.
 */
const LOOK_FLAGS = 0o10000000 | (constants.O_NOFOLLOW ?? 0);

/** An open regular file, read by position. Its user closes it, once. */
export class OpenFile {
  #fd: number;
  #closed = false;

  /** Wraps a descriptor that {@linkcode Resolver.open} checked. */
  constructor(fd: number) {
    this.#fd = fd;
  }

  /** Reads into `into` from byte `position`: the count read, 0 at the end. */
  read(into: Uint8Array, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      read(
        this.#fd,
        into,
        0,
        into.length,
        position,
        (error, n) => error ? reject(error) : resolve(n),
      );
    });
  }

  /** Closes the file; later calls do nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeDescriptor(this.#fd);
  }
}

/** An open file, stamped from the open handle. */
export interface OpenedFile extends FileStamp {
  /** The open handle; the caller closes it. */
  file: OpenFile;
}

/** The contents of a whole file, stamped from the handle they were read from. */
export interface ReadFile extends FileStamp {
  /** The bytes read. */
  bytes: Uint8Array;
}

/** A C0 control character or DEL. */
// deno-lint-ignore no-control-regex
const CONTROL_CHARACTER = /[\x00-\x1f\x7f]/;

const NOT_FOUND: Resolution = Object.freeze({ kind: "not-found" });
const FORBIDDEN: Resolution = Object.freeze({ kind: "forbidden" });
const REDIRECT: Resolution = Object.freeze({ kind: "redirect" });

/** True when `error` means "there is nothing to serve there" (404). */
export function isMissing(error: unknown): boolean {
  if (error instanceof Deno.errors.NotFound) return true;
  if (error instanceof Deno.errors.NotADirectory) return true;
  if (error instanceof Deno.errors.FilesystemLoop) return true;
  const code = (error as { code?: string })?.code;
  return code === "ENAMETOOLONG" || code === "ELOOP" || code === "ENOTDIR" ||
    code === "ENOENT";
}

/** True when `error` says the process or the system is out of file descriptors (EMFILE, ENFILE): it may work again soon. */
export function isOutOfDescriptors(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  return code === "EMFILE" || code === "ENFILE";
}

function failure(error: unknown): Resolution {
  if (isMissing(error)) return NOT_FOUND;
  const code = (error as { code?: string })?.code;
  if (
    error instanceof Deno.errors.PermissionDenied || code === "EACCES" ||
    code === "EPERM"
  ) return FORBIDDEN;
  const message = error instanceof Error ? error.message : String(error);
  if (isOutOfDescriptors(error)) return { kind: "busy", message };
  return { kind: "error", message };
}

/** Resolves request paths to files under one root directory. */
export class Resolver {
  /** The root as given, made absolute: it may be a symlink that a deploy switches. */
  readonly given: string;
  #root: string;
  #dotfiles: boolean;
  #followSymlinks: boolean;
  #index: string;
  #precompressed: boolean;

  private constructor(given: string, root: string, options: ResolverOptions) {
    this.given = given;
    this.#root = root;
    this.#dotfiles = options.dotfiles ?? false;
    this.#followSymlinks = options.followSymlinks ?? false;
    this.#index = options.index ?? "index.html";
    this.#precompressed = options.precompressed ?? false;
  }

  /** Opens a root: throws a clear error when it is missing or not a directory. */
  static async create(
    root: string,
    options: ResolverOptions = {},
  ): Promise<Resolver> {
    let real: string;
    try {
      real = await Deno.realPath(root);
    } catch (error) {
      throw new Error(
        `Cannot serve "${root}": ${
          error instanceof Deno.errors.NotFound
            ? "no such directory"
            : reason(error)
        }`,
      );
    }
    const info = await Deno.stat(real);
    if (!info.isDirectory) {
      throw new Error(`Cannot serve "${root}": not a directory`);
    }
    return new Resolver(posix.resolve(root), real, options);
  }

  /** The real path of the root. */
  get root(): string {
    return this.#root;
  }

  /**
   * Resolves the given root again: true when it now leads to another
   * directory (a symlink switched to a new release). A root that cannot be
   * resolved, or is no directory, keeps the last one.
   */
  async refreshRoot(): Promise<boolean> {
    try {
      const real = await Deno.realPath(this.given);
      if (real === this.#root || !(await Deno.stat(real)).isDirectory) {
        return false;
      }
      this.#root = real;
      return true;
    } catch {
      return false;
    }
  }

  /** True while the root is still a directory (it may be removed while serving). */
  async rootExists(): Promise<boolean> {
    try {
      return (await Deno.stat(this.root)).isDirectory;
    } catch {
      return false;
    }
  }

  /** True when a path below the root (segments) may be served under the dotfile policy. */
  #visible(segments: readonly string[]): boolean {
    if (this.#dotfiles) return true;
    for (let i = 0; i < segments.length; i++) {
      const s = segments[i];
      if (s.charCodeAt(0) === 0x2e && !(i === 0 && s === ".well-known")) {
        return false;
      }
    }
    return true;
  }

  /** The real path of `path`, or a failure when it escapes the root or hides behind a dotfile. */
  async #real(
    path: string,
    root: string = this.#root,
  ): Promise<string | Resolution> {
    let real: string;
    try {
      real = await Deno.realPath(path);
    } catch (error) {
      return failure(error);
    }
    if (real === root) return real;
    const inside = root === "/" ? true : real.startsWith(root + "/");
    if (!inside && !this.#followSymlinks) return NOT_FOUND;
    // The dotfile policy holds below the root, and outside it below the
    // nearest directory shared with the root (`/srv/.private/x` for a root
    // of `/srv/www`): following a symlink never uncovers a hidden name.
    return this.#visible(belowCommon(root, real)) ? real : NOT_FOUND;
  }

  /**
   * Resolves decoded, normalised segments (see `sanitizeTarget`): a file, a
   * redirect (a directory asked for without its trailing slash), a directory
   * without an index, or not-found / forbidden / error.
   */
  async resolve(
    segments: readonly string[],
    options: { directory?: boolean } = {},
  ): Promise<Resolution> {
    if (!this.#visible(segments)) return NOT_FOUND;
    // One root for the whole resolution, though a switch may come meanwhile.
    const root = this.#root;
    const requested = posix.join(root, ...segments);
    const real = await this.#real(requested, root);
    if (typeof real !== "string") return real;
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(real);
    } catch (error) {
      return failure(error);
    }
    const name = segments.length > 0 ? segments[segments.length - 1] : "";
    if (info.isFile) {
      if (options.directory && segments.length > 0) return NOT_FOUND;
      return found(real, name, info);
    }
    if (!info.isDirectory) return NOT_FOUND; // FIFO, socket, device
    if (!options.directory) return REDIRECT;
    const index = await this.#real(posix.join(real, this.#index), root);
    if (typeof index !== "string") {
      return index.kind === "not-found"
        ? { kind: "directory", path: real }
        : index;
    }
    try {
      const indexInfo = await Deno.stat(index);
      if (indexInfo.isFile) return found(index, this.#index, indexInfo);
    } catch (error) {
      return failure(error);
    }
    return { kind: "directory", path: real };
  }

  /**
   * Opens a resolved file for reading. It must still be a regular file, and
   * the very file at the checked real path: a directory swapped for a
   * symlink between the check and the open is refused, not followed.
   */
  async open(file: FoundFile): Promise<OpenedFile | Resolution> {
    let fd: number;
    try {
      fd = await openDescriptor(file.path, OPEN_FLAGS);
    } catch (error) {
      return failure(error);
    }
    const handle = new OpenFile(fd);
    try {
      const info = await statDescriptor(fd);
      if (!info.isFile() || !(await isAt(fd, file.path, info))) {
        handle.close();
        return NOT_FOUND;
      }
      return {
        file: handle,
        size: info.size,
        mtime: Math.trunc(info.mtimeMs),
        ino: info.ino,
        ctime: Math.trunc(info.ctimeMs),
      };
    } catch (error) {
      handle.close();
      return failure(error);
    }
  }

  /**
   * Reads a whole (small) resolved file, stamped from the handle it was read
   * from. A file grown past the size it was found at (or replaced by a
   * larger one) is not read: callers set memory aside for that size.
   */
  async read(file: FoundFile): Promise<ReadFile | Resolution> {
    const opened = await this.open(file);
    if (!("file" in opened)) return opened;
    if (opened.size > file.size) {
      opened.file.close();
      return NOT_FOUND;
    }
    try {
      const bytes = new Uint8Array(opened.size);
      let n = 0;
      while (n < bytes.length) {
        const got = await opened.file.read(bytes.subarray(n), n);
        if (got === 0) break;
        n += got;
      }
      return {
        bytes: bytes.subarray(0, n),
        size: n,
        mtime: opened.mtime,
        ino: opened.ino,
        ctime: opened.ctime,
      };
    } catch (error) {
      return failure(error);
    } finally {
      opened.file.close();
    }
  }

  /** Finds the precompressed sidecars (`.br`, `.gz`) of a resolved file, each only when it is a regular file; none unless `precompressed`. */
  async sidecars(
    file: FoundFile,
  ): Promise<Partial<Record<ContentCoding, FoundFile>>> {
    const out: Partial<Record<ContentCoding, FoundFile>> = {};
    if (!this.#precompressed) return out;
    for (const coding of CONTENT_CODINGS) {
      const real = await this.#real(file.path + CODING_SUFFIX[coding]);
      if (typeof real !== "string") continue;
      try {
        const info = await Deno.stat(real);
        if (info.isFile) out[coding] = found(real, file.name, info);
      } catch {
        // vanished between realPath and stat: no sidecar
      }
    }
    return out;
  }

  /**
   * Lists a directory for a listing page: regular files and directories only,
   * dotfiles hidden (unless served), names no request can reach (control
   * characters) hidden, sidecars (`x.br`, `x.gz` beside `x`) hidden when they
   * are served as `x`. What it shows comes from `directory` and its entries
   * (a symlink's target once found allowed) as checked, not from what a
   * symlink swapped in meanwhile leads to: where the kernel names
   * descriptors, through the directory's descriptor or the entry's own;
   * elsewhere by path, checked again after (see {@linkcode isStillAt}).
   */
  async list(directory: string): Promise<ListedEntry[]> {
    const opened = await openDirectory(directory);
    try {
      // Whether each name is a symlink, as the directory read says.
      const names = new Map<string, boolean>();
      const before = opened === null ? await Deno.lstat(directory) : null;
      if (before !== null && !before.isDirectory) throw replaced(directory);
      for await (const e of Deno.readDir(opened?.via ?? directory)) {
        names.set(e.name, e.isSymlink);
      }
      if (before !== null && !(await isStillAt(directory, before))) {
        throw replaced(directory);
      }
      const candidates: string[] = [];
      for (const name of names.keys()) {
        if (!this.#dotfiles && name.charCodeAt(0) === 0x2e) continue;
        // No request can name it (control characters are 400): no dead link.
        if (CONTROL_CHARACTER.test(name)) continue;
        if (
          this.#precompressed &&
          CONTENT_CODINGS.some((c) =>
            name.endsWith(CODING_SUFFIX[c]) &&
            names.has(name.slice(0, -CODING_SUFFIX[c].length))
          )
        ) continue;
        candidates.push(name);
      }
      // Each entry costs one to four calls on the blocking thread pool:
      // made a few at a time, not one after the other (50,000 entries took
      // 11 s in sequence).
      const found: (ListedEntry | undefined)[] = new Array(candidates.length);
      let next = 0;
      const check = async (): Promise<void> => {
        while (next < candidates.length) {
          const i = next++;
          const name = candidates[i];
          found[i] = await this.#listed(directory, name, {
            symlink: names.get(name)!,
            via: opened?.via,
          });
        }
      };
      const checkers: Promise<void>[] = [];
      for (let k = 0; k < Math.min(LIST_CONCURRENCY, candidates.length); k++) {
        checkers.push(check());
      }
      await Promise.all(checkers);
      return found.filter((entry) => entry !== undefined);
    } finally {
      if (opened !== null) closeDescriptor(opened.fd);
    }
  }

  /**
   * The listing entry for `name` in `directory`: undefined when it is hidden,
   * outside the root, vanished or replaced, or neither a file nor a
   * directory. `symlink` when the directory read says it is one; `via`, the
   * path of the directory's open descriptor, when there is one. Out of
   * descriptors throws: the listing would miss entries.
   */
  async #listed(
    directory: string,
    name: string,
    options: { symlink: boolean; via: string | undefined },
  ): Promise<ListedEntry | undefined> {
    try {
      let look: Look | null;
      if (!options.symlink && options.via !== undefined) {
        // In the directory opened, not following a symlink: nothing to check.
        look = lookOf(await Deno.lstat(`${options.via}/${name}`));
      } else {
        const path = posix.join(directory, name);
        const real = options.symlink ? await this.#real(path) : path;
        if (typeof real !== "string") return undefined;
        look = await lookAt(real);
      }
      return look === null ? undefined : { name, ...look };
    } catch (error) {
      if (isOutOfDescriptors(error)) throw error;
      return undefined; // vanished while listing
    }
  }

  /** Reads a file at `name` directly under the root when it exists (the root's own 404 page). */
  async readOptional(name: string): Promise<Uint8Array | undefined> {
    const resolution = await this.resolve([name]);
    if (resolution.kind !== "file") return undefined;
    const read = await this.read(resolution);
    return "bytes" in read ? read.bytes : undefined;
  }
}

/** How many entries of a listing are checked at once. */
const LIST_CONCURRENCY = 16;

function stampOf(info: Deno.FileInfo): FileStamp {
  return {
    size: info.size,
    mtime: info.mtime?.getTime() ?? 0,
    ino: info.ino ?? 0,
    ctime: info.ctime?.getTime() ?? 0,
  };
}

/** The segments of `path` below the deepest directory it shares with `root` (both real, absolute). */
function belowCommon(root: string, path: string): string[] {
  const rootSegments = root.split("/").filter((s) => s !== "");
  const segments = path.split("/").filter((s) => s !== "");
  let shared = 0;
  while (
    shared < rootSegments.length && shared < segments.length &&
    rootSegments[shared] === segments[shared]
  ) shared++;
  return segments.slice(shared);
}

/** Opens `path` with `flags`: a descriptor for {@linkcode closeDescriptor}. */
function openDescriptor(path: string, flags: number): Promise<number> {
  return new Promise((resolve, reject) => {
    open(path, flags, (error, fd) => error ? reject(error) : resolve(fd));
  });
}

/** The status of open descriptor `fd`. */
function statDescriptor(fd: number): Promise<Stats> {
  return new Promise((resolve, reject) => {
    fstat(fd, (error, info) => error ? reject(error) : resolve(info));
  });
}

/** Closes descriptor `fd`; a failure leaves nothing to release. */
function closeDescriptor(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing to release
  }
}

/**
 * Whether Deno lets this program read `/proc/self/fd` (Linux, with
 * `--allow-all`): unknown until a first try, false once refused.
 */
let kernelNames: boolean | undefined = Deno.build.os === "linux"
  ? undefined
  : false;

/**
 * The kernel's own name for what descriptor `fd` is (Linux's
 * `/proc/self/fd`, which Deno lets a program read only with
 * `--allow-all`), or null where there is none to read.
 */
function kernelName(fd: number): Promise<string | null> {
  if (kernelNames === false) return Promise.resolve(null);
  return new Promise((resolve) => {
    readlink(`/proc/self/fd/${fd}`, (error, name) => {
      if (!error) {
        kernelNames = true;
        return resolve(name);
      }
      // Refused by Deno's permissions: it stays refused.
      if (error instanceof Deno.errors.NotCapable) kernelNames = false;
      resolve(null);
    });
  });
}

/**
 * True when descriptor `fd` is the file at `path`: by the kernel's own name
 * for what it opened (Linux, with `--allow-all`), else by device and inode
 * (see {@linkcode isStillAt}: narrower, but not atomic).
 */
async function isAt(fd: number, path: string, info: Stats): Promise<boolean> {
  const name = await kernelName(fd);
  return name !== null ? name === path : await isStillAt(path, info);
}

/**
 * True when `path` is free of symlinks and then, looked at again, the file
 * with `info`'s device and inode is at `path` itself (not behind a final
 * symlink). In that order: a directory of `path` swapped for a symlink to
 * one outside before `info` was taken and back before the real path is seen
 * by the inode. Not atomic: swapped again around that last look, it goes
 * unseen.
 */
async function isStillAt(
  path: string,
  info: { dev: number; ino: number | null },
): Promise<boolean> {
  try {
    if (await Deno.realPath(path) !== path) return false;
    const now = await Deno.lstat(path);
    return now.ino === info.ino && now.dev === info.dev;
  } catch {
    return false;
  }
}

/** A directory being listed, open (Linux, with `--allow-all`). */
interface OpenDirectory {
  /** Its descriptor. */
  fd: number;
  /** A path that leads to it through its descriptor, whatever its own path leads to by now. */
  via: string;
}

/**
 * Opens `directory` for a listing where the kernel names descriptors, and
 * checks that it opened `directory` itself; null elsewhere.
 */
async function openDirectory(
  directory: string,
): Promise<OpenDirectory | null> {
  if (kernelNames === false) return null;
  const fd = await openDescriptor(
    directory,
    LOOK_FLAGS | (constants.O_DIRECTORY ?? 0),
  );
  const name = await kernelName(fd);
  if (name === directory) return { fd, via: `/proc/self/fd/${fd}` };
  closeDescriptor(fd);
  if (name === null) return null;
  throw replaced(directory);
}

/** What a listing shows of an entry. */
type Look = Omit<ListedEntry, "name">;

/** What a listing shows of a file or directory (null for anything else). */
function lookOf(info: Deno.FileInfo): Look | null {
  if (!info.isFile && !info.isDirectory) return null;
  return {
    directory: info.isDirectory,
    size: info.size,
    mtime: info.mtime?.getTime() ?? 0,
  };
}

/**
 * What a listing shows of the file or directory at real path `path`, or null
 * when something else is there. Where the kernel names descriptors, from an
 * O_PATH descriptor of it known by that name to be `path` (atomic);
 * elsewhere, from what is at `path` itself (a final symlink not followed),
 * once `path` is found still free of symlinks and, after that, still the
 * same file (device and inode): a directory of `path` swapped for a symlink
 * and back around the first look is seen by the second. Not atomic: a
 * second swap around the second look goes unseen (see
 * {@linkcode isStillAt}).
 */
async function lookAt(path: string): Promise<Look | null> {
  if (kernelNames !== false) {
    const fd = await openDescriptor(path, LOOK_FLAGS);
    try {
      const info = await statDescriptor(fd);
      const name = await kernelName(fd);
      if (name !== null) {
        if (name !== path || (!info.isFile() && !info.isDirectory())) {
          return null;
        }
        return {
          directory: info.isDirectory(),
          size: info.size,
          mtime: Math.trunc(info.mtimeMs),
        };
      }
    } finally {
      closeDescriptor(fd);
    }
  }
  const info = await Deno.lstat(path);
  const look = lookOf(info);
  if (look === null || await Deno.realPath(path) !== path) return null;
  const now = await Deno.lstat(path);
  return now.ino === info.ino && now.dev === info.dev ? look : null;
}

/** The error of a listed directory that is no longer the one resolved. */
function replaced(directory: string): Error {
  return new Deno.errors.NotFound(
    `Cannot list ${JSON.stringify(directory)}: it was replaced`,
  );
}

function found(path: string, name: string, info: Deno.FileInfo): FoundFile {
  return { kind: "file", path, name, ...stampOf(info) };
}

/** The largest file {@linkcode readFileOnce} reads: a page held in memory and sent whole with each error. */
export const MAX_PAGE_SIZE = 1024 * 1024;

/**
 * Reads a file outside any root, such as the built-in 404 page or a `--404`
 * file (a pipe too: `--404 <(make-page)`); a clear error when it cannot, or
 * when it is over {@linkcode MAX_PAGE_SIZE} (`/dev/zero` would fill memory).
 */
export async function readFileOnce(path: string | URL): Promise<Uint8Array> {
  const cannot = (why: string) =>
    new Error(`Cannot read ${JSON.stringify(String(path))}: ${why}`);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (error) {
    throw cannot(reason(error));
  }
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const chunk = new Uint8Array(PAGE_CHUNK);
      let n: number | null;
      try {
        n = await file.read(chunk);
      } catch (error) {
        throw cannot(reason(error));
      }
      if (n === null) return concat(chunks, total);
      total += n;
      if (total > MAX_PAGE_SIZE) {
        throw cannot(`larger than ${MAX_PAGE_SIZE / 1024 / 1024} MiB`);
      }
      chunks.push(chunk.subarray(0, n));
    }
  } finally {
    file.close();
  }
}

/** The size of each read of {@linkcode readFileOnce}. */
const PAGE_CHUNK = 64 * 1024;
