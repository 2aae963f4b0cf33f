/** When to retry a request and how long to wait first (pure: the transport does the waiting). */

/** Statuses worth another try: the service is busy (429) or briefly unavailable (503). */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 503]);
/** Methods whose repetition does no harm; other calls are retried only when the caller says so. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/** Exponential backoff with full jitter, in milliseconds; a Retry-After from the service wins (capped). */
export interface RetryOptions {
  /** Retries after the first attempt (0 turns retrying off); default 3. */
  maxRetries?: number;
  /** The first backoff in milliseconds; default 500. */
  backoffMs?: number;
  /** No wait is longer, Retry-After included; default 30000. */
  maxBackoffMs?: number;
  /** A random number in [0, 1) (tests pass a fixed one). */
  random?: () => number;
}

export class RetryPolicy {
  readonly maxRetries: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  private readonly random: () => number;

  constructor(options: RetryOptions = {}) {
    this.maxRetries = options.maxRetries ?? 3;
    this.backoffMs = options.backoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  /** A policy like this one with another number of retries. */
  withMaxRetries(maxRetries: number): RetryPolicy {
    return new RetryPolicy({
      maxRetries,
      backoffMs: this.backoffMs,
      maxBackoffMs: this.maxBackoffMs,
      random: this.random,
    });
  }

  /** Whether retry number `retryNumber` (1-based) may happen. */
  allows(retryNumber: number): boolean {
    return retryNumber <= this.maxRetries;
  }

  /** Milliseconds to wait before retry number `retryNumber` (1-based). */
  delayMs(retryNumber: number, retryAfterMs: number | null = null): number {
    if (retryAfterMs !== null) {
      return Math.min(retryAfterMs, this.maxBackoffMs);
    }
    const ceiling = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (retryNumber - 1));
    // Full jitter in [ceiling/2, ceiling]: spreads clients that failed together, never retries at once.
    return ceiling * (0.5 + this.random() / 2);
  }
}

/**
 * Milliseconds to wait before retrying a failed call (status null: no answer came), or null to give up.
 * Only retryable calls are retried, and only on no answer, 429 or 503.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  retryable: boolean,
  retryNumber: number,
  status: number | null,
  retryAfterMs: number | null,
): number | null {
  if (!retryable || !policy.allows(retryNumber)) {
    return null;
  }
  if (status !== null && !RETRYABLE_STATUSES.has(status)) {
    return null;
  }
  return policy.delayMs(retryNumber, retryAfterMs);
}
