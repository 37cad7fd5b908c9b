/**
 * The signed envelope of remote-task messages (docs/amqp.md, "Security"): JSON text with a
 * version, a type, a nonce and the sender's time, plus an HMAC-SHA256 of the exact bytes in
 * the `stoker-sig` header, made with the key shared by engines and workers. A receiver
 * rejects, and counts, a message that is oversized, unsigned, wrongly signed, not JSON,
 * of another shape, older than the replay window, or whose nonce it has seen (a replay);
 * rejected messages are never executed or recorded.
 *
 * @example
 * ```ts
 * const codec = new MessageCodec({ key: 'a shared secret of 16+ chars' });
 * const { body, headers } = codec.seal({ type: 'cancel', id: 'r1' });
 * codec.open(body, headers, false); // { ok: true, message: { type: 'cancel', id: 'r1', … } }
 * ```
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { ValidationError } from '../../errors.js';

export const SIGNATURE_HEADER = 'stoker-sig';

/** Why a message was rejected: the counters of {@link RejectionCounts}. */
export type Rejection = 'oversized' | 'unsigned' | 'forged' | 'notJson' | 'malformed' | 'replayed' | 'expired';

export type RejectionCounts = Record<Rejection, number>;

export function noRejections(): RejectionCounts {
  return { oversized: 0, unsigned: 0, forged: 0, notJson: 0, malformed: 0, replayed: 0, expired: 0 };
}

export interface MessageCodecOptions {
  /** the shared key (at least 16 characters) */
  key: string;
  /** messages larger than this are rejected unread (default 4 MiB: run arguments are at most 1 MiB) */
  maxBytes?: number;
  /** how old (by the sender's clock) a message may be, and how long nonces are remembered (default 10 minutes) */
  replayWindowMs?: number;
  now?: () => number;
}

export interface Envelope {
  v: 1;
  type: string;
  nonce: string;
  sentAt: number;
  [field: string]: unknown;
}

export type Opened = { ok: true; message: Envelope } | { ok: false; why: Rejection };

/** Throws `STOKER_AMQP_KEY_INVALID` unless `key` is a usable shared key. */
export function checkAmqpKey(key: unknown): string {
  if (typeof key !== 'string' || key.length < 16) {
    throw new ValidationError(
      'STOKER_AMQP_KEY_INVALID',
      `the AMQP signing key (--amqp-key, STOKER_AMQP_KEY) must be at least 16 characters${typeof key === 'string' ? `, got ${key.length}` : ''}`,
    );
  }
  return key;
}

export class MessageCodec {
  readonly rejected: RejectionCounts = noRejections();
  readonly maxBytes: number;
  private readonly key: Buffer;
  private readonly windowMs: number;
  private readonly now: () => number;
  /** nonces seen, with when they may be forgotten (a message that old is rejected as expired anyway) */
  private readonly seen = new Map<string, number>();

  constructor(options: MessageCodecOptions) {
    this.key = Buffer.from(checkAmqpKey(options.key), 'utf8');
    this.maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
    this.windowMs = options.replayWindowMs ?? 600_000;
    this.now = options.now ?? Date.now;
  }

  /** The body and headers of a new message (a fresh nonce each time: a re-publish is a new message). @internal */
  seal(fields: { type: string; [field: string]: unknown }): { body: Buffer; headers: Record<string, string> } {
    const body = Buffer.from(JSON.stringify({ ...fields, v: 1, nonce: randomUUID(), sentAt: this.now() }), 'utf8');
    return { body, headers: { [SIGNATURE_HEADER]: this.sign(body) } };
  }

  /**
   * Checks and parses a delivery. `redelivered` (the broker's flag: it sent this very
   * message before, to a consumer that did not acknowledge it) skips the nonce check, since
   * a redelivery is not a replay; the age check still applies.
   * @internal
   */
  open(body: Buffer, headers: Record<string, unknown> | undefined, redelivered: boolean): Opened {
    const reject = (why: Rejection): Opened => {
      this.rejected[why] += 1;
      return { ok: false, why };
    };
    if (body.length > this.maxBytes) return reject('oversized');
    const sig = headers?.[SIGNATURE_HEADER];
    if (typeof sig !== 'string' && !Buffer.isBuffer(sig)) return reject('unsigned');
    const given = Buffer.from(String(sig), 'hex');
    const expected = Buffer.from(this.sign(body), 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return reject('forged');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return reject('notJson');
    }
    if (!isEnvelope(parsed)) return reject('malformed');
    const now = this.now();
    if (Math.abs(now - parsed.sentAt) > this.windowMs) return reject('expired');
    this.forgetOld(now);
    if (this.seen.has(parsed.nonce) && !redelivered) return reject('replayed');
    this.seen.set(parsed.nonce, now + 2 * this.windowMs);
    return { ok: true, message: parsed };
  }

  private sign(body: Buffer): string {
    return createHmac('sha256', this.key).update(body).digest('hex');
  }

  private forgetOld(now: number): void {
    // Map iteration is in insertion order, which is expiry order
    for (const [nonce, until] of this.seen) {
      if (until > now) break;
      this.seen.delete(nonce);
    }
  }
}

function isEnvelope(v: unknown): v is Envelope {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return (
    o.v === 1 &&
    typeof o.type === 'string' &&
    typeof o.nonce === 'string' &&
    o.nonce.length > 0 &&
    o.nonce.length <= 64 &&
    typeof o.sentAt === 'number' &&
    Number.isFinite(o.sentAt)
  );
}
