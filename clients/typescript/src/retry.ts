/** Retry backoff and the whole call's deadline, as the Python client (src/ledgerd/client.py). */

export interface RetryPolicy {
  /** Attempts in all, the first included (default 4). */
  attempts: number;
  /** The wait before the second attempt; doubled before each later one (default 100 ms). */
  firstBackoffMs: number;
  /** The longest wait between two attempts (default 2000 ms). */
  maxBackoffMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, firstBackoffMs: 100, maxBackoffMs: 2000 };

export function backoffMs(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxBackoffMs, policy.firstBackoffMs * 2 ** attempt);
}

/** When a whole call must be over, on the `performance.now()` clock (undefined: never). */
export class CallDeadline {
  constructor(readonly atMs: number | undefined) {}

  static after(deadlineMs: number | undefined, nowMs: number): CallDeadline {
    return new CallDeadline(deadlineMs === undefined ? undefined : nowMs + deadlineMs);
  }

  /** An attempt's own timeout, cut to what is left of the call's deadline. */
  attemptTimeoutMs(timeoutMs: number, nowMs: number): number {
    if (this.atMs === undefined) return timeoutMs;
    return Math.max(0, Math.min(timeoutMs, this.atMs - nowMs));
  }

  /** Whether an attempt after `waitMs` would still start before the deadline. */
  allowsRetry(waitMs: number, nowMs: number): boolean {
    return this.atMs === undefined || nowMs + waitMs < this.atMs;
  }
}
