/**
 * Randomness that an operation can draw again: a stream of bytes derived from a seed (HMAC-
 * SHA-256 in counter mode), so executing an operation again with the same idempotency key
 * draws the same values. With a secret key (RandomString) the values cannot be computed by
 * whoever knows the idempotency key.
 */
import { createHmac } from 'node:crypto';

/**
 * A deterministic random source.
 *
 * @example
 * ```ts
 * const rng = KeyedRandom.fromKey('delay', ctx.idempotencyKey);
 * rng.float(); // the same number for every execution with this key
 * ```
 */
export class KeyedRandom {
  private counter = 0;
  private block: Buffer = Buffer.alloc(0);
  private offset = 0;

  private constructor(private readonly seed: Buffer) {}

  /**
   * A source for `label` and `key`, keyed with `secret` when given.
   *
   * @example
   * ```ts
   * KeyedRandom.fromKey('random-string', key, secret).below(62);
   * ```
   */
  static fromKey(label: string, key: string, secret?: string | Uint8Array): KeyedRandom {
    const seed = createHmac('sha256', secret ?? label)
      .update(`${label}\0${key}`)
      .digest();
    return new KeyedRandom(seed);
  }

  private byte(): number {
    if (this.offset >= this.block.length) {
      const counter = Buffer.alloc(4);
      counter.writeUInt32BE(this.counter++);
      this.block = createHmac('sha256', this.seed).update(counter).digest();
      this.offset = 0;
    }
    return this.block[this.offset++]!;
  }

  private uint32(): number {
    return ((this.byte() << 24) | (this.byte() << 16) | (this.byte() << 8) | this.byte()) >>> 0;
  }

  /**
   * A uniform integer in [0, n), without modulo bias.
   *
   * @example
   * ```ts
   * rng.below(10); // 0…9
   * ```
   */
  below(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32) throw new RangeError(`below(${n})`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.uint32();
      if (x < limit) return x % n;
    }
  }

  /**
   * A uniform number in [0, 1) with 53 random bits.
   *
   * @example
   * ```ts
   * rng.float(); // 0.4172…
   * ```
   */
  float(): number {
    const high = this.uint32() >>> 5; // 27 bits
    const low = this.uint32() >>> 6; // 26 bits
    return (high * 2 ** 26 + low) / 2 ** 53;
  }

  /**
   * A uniform integer in [0, 2^63), as Python's `random.randrange(sys.maxsize)` draws.
   *
   * @example
   * ```ts
   * rng.bigint63(); // 4711…n
   * ```
   */
  bigint63(): bigint {
    const high = BigInt(this.uint32() & 0x7fffffff);
    return (high << 32n) | BigInt(this.uint32());
  }

  /**
   * Shuffles `items` in place (Fisher-Yates) and returns them.
   *
   * @example
   * ```ts
   * rng.shuffle(['a', 'b', 'c']);
   * ```
   */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}
