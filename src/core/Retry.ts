/**
 * Retry policies: how the runtime retries a run attempt that failed with a retryable error.
 *
 * Connectors only classify their errors (retryable or not); the runtime applies the pipeline's policy. The default is
 * the original plan's: 3 attempts in all, with exponential backoff starting at 5 seconds (waits of 5 s, then 10 s).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"

/** A retry policy as data (what JSON configs describe). */
export interface RetryPolicy {
  /** Attempts in all, including the first. 1 means no retry. */
  readonly attempts: number
  /** The wait before the second attempt. */
  readonly initialDelay: Duration.Input
  /** Each following wait is the previous one times `factor`. */
  readonly factor: number
  /** No wait is longer than this. */
  readonly maxDelay?: Duration.Input
}

/** 3 attempts in all, waiting 5 s then 10 s. */
export const defaultPolicy: RetryPolicy = { attempts: 3, initialDelay: "5 seconds", factor: 2 }

/** No retry at all. */
export const none: RetryPolicy = { attempts: 1, initialDelay: "0 millis", factor: 1 }

/** The Schedule a policy stands for; its delays are the waits between attempts. */
export const schedule = (policy: RetryPolicy): Schedule.Schedule<Duration.Duration> => {
  const base = Schedule.exponential(policy.initialDelay, policy.factor)
  const capped =
    policy.maxDelay === undefined
      ? base
      : (() => {
          const max = Duration.fromInputUnsafe(policy.maxDelay)
          return base.pipe(
            Schedule.modifyDelay(({ duration }) =>
              Effect.succeed(Duration.isGreaterThan(duration, max) ? max : duration)
            )
          )
        })()
  return capped.pipe(Schedule.upTo({ times: Math.max(0, policy.attempts - 1) }))
}

/** A one-line description, e.g. `3 attempts, backoff 5s ×2`. */
export const describe = (policy: RetryPolicy): string =>
  policy.attempts <= 1
    ? "no retry"
    : `${policy.attempts} attempts, backoff ${Duration.format(Duration.fromInputUnsafe(policy.initialDelay))} ×${policy.factor}` +
      (policy.maxDelay === undefined ? "" : ` (max ${Duration.format(Duration.fromInputUnsafe(policy.maxDelay))})`)
