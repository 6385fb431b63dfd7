import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"
import * as Retry from "../../src/core/Retry.ts"

const attemptTimes = (policy: Retry.RetryPolicy, advanceMs: number) =>
  Effect.gen(function* () {
    const times: Array<number> = []
    const fiber = yield* Effect.forkChild(
      Effect.clockWith((clock) =>
        Effect.suspend(() => {
          times.push(clock.currentTimeMillisUnsafe())
          return Effect.fail("transient")
        })
      ).pipe(Effect.retry(Retry.schedule(policy)), Effect.flip)
    )
    for (let t = 0; t < advanceMs; t += 1000) yield* TestClock.adjust("1 second")
    yield* Fiber.join(fiber)
    return times.map((t) => t - times[0]!)
  })

describe("Retry", () => {
  it.effect("the default policy makes 3 attempts, 5 s then 10 s apart", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* attemptTimes(Retry.defaultPolicy, 20_000), [0, 5000, 15000])
    })
  )

  it.effect("caps the delay at maxDelay and honours the attempt count", () =>
    Effect.gen(function* () {
      const times = yield* attemptTimes(
        { attempts: 5, initialDelay: "1 second", factor: 3, maxDelay: "4 seconds" },
        20_000
      )
      assert.deepStrictEqual(times, [0, 1000, 4000, 8000, 12000])
      assert.deepStrictEqual(yield* attemptTimes(Retry.none, 1000), [0])
    })
  )

  it("describes policies", () => {
    assert.strictEqual(Retry.describe(Retry.defaultPolicy), "3 attempts, backoff 5s ×2")
    assert.strictEqual(Retry.describe(Retry.none), "no retry")
    assert.strictEqual(
      Retry.describe({ attempts: 2, initialDelay: "1 second", factor: 2, maxDelay: "1 minute" }),
      "2 attempts, backoff 1s ×2 (max 1m)"
    )
  })
})
