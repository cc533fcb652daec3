/**
 * A bounded in-memory cache: by count and by total bytes, oldest entry out
 * first. The handler keeps what it learnt about a request path here (the
 * resolution, and the bytes of small files) so a hot file costs no file
 * system call until its entry is due for revalidation.
 *
 * @module
 */

/** Limits of a {@linkcode BoundedCache}. */
export interface CacheLimits {
  /** Most entries (default 4096). */
  maxEntries?: number;
  /** Most bytes over all entries, as each entry reports them (default 32 MiB). */
  maxBytes?: number;
}

/** Default limits of a {@linkcode BoundedCache}. */
export const CACHE_LIMITS: Readonly<Required<CacheLimits>> = {
  maxEntries: 4096,
  maxBytes: 32 * 1024 * 1024,
};

/** Options of {@linkcode BoundedCache.set}. */
export interface CacheSetOptions {
  /** The bytes accounted for the entry against `maxBytes` (default 0). */
  bytes?: number;
}

/** A map bounded by entry count and total bytes; inserting past a bound drops the oldest entries. */
export class BoundedCache<V> {
  #map = new Map<string, { value: V; bytes: number }>();
  #bytes = 0;
  #maxEntries: number;
  #maxBytes: number;

  /** Creates an empty cache. */
  constructor(limits: CacheLimits = {}) {
    this.#maxEntries = limits.maxEntries ?? CACHE_LIMITS.maxEntries;
    this.#maxBytes = limits.maxBytes ?? CACHE_LIMITS.maxBytes;
  }

  /** The value stored under `key`, if any. */
  get(key: string): V | undefined {
    return this.#map.get(key)?.value;
  }

  /** Stores `value` under `key`, accounting `options.bytes` for it; false when it alone exceeds the byte bound. */
  set(key: string, value: V, options?: CacheSetOptions): boolean {
    const bytes = options?.bytes ?? 0;
    this.delete(key);
    if (bytes > this.#maxBytes) return false;
    this.#map.set(key, { value, bytes });
    this.#bytes += bytes;
    for (const [oldKey, old] of this.#map) {
      if (this.#map.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) {
        break;
      }
      this.#map.delete(oldKey);
      this.#bytes -= old.bytes;
    }
    return true;
  }

  /** Removes `key`. */
  delete(key: string): void {
    const old = this.#map.get(key);
    if (old === undefined) return;
    this.#map.delete(key);
    this.#bytes -= old.bytes;
  }

  /** Removes every entry. */
  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }

  /** The number of entries. */
  get size(): number {
    return this.#map.size;
  }

  /** The bytes accounted over all entries. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The largest total the cache keeps. */
  get maxBytes(): number {
    return this.#maxBytes;
  }
}
