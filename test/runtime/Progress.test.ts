import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Stream from "effect/Stream"
import * as Batch from "../../src/core/Batch.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import type { InputSize } from "../../src/core/Stage.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import { Progress, type ProgressReporter } from "../../src/runtime/Progress.ts"

const reporter = (told: Array<InputSize>, onSize?: () => void): ProgressReporter => ({
  size: (size) => {
    told.push(size)
    onSize?.()
  },
  update: () => {},
  done: () => {}
})

describe("progress reporting", () => {
  it.effect("tells the reporter the source's input size, asked beside the read", () =>
    Effect.gen(function* () {
      const told: Array<InputSize> = []
      const sized = yield* Deferred.make<void>()
      // The read waits for the size, so the size is asked for while the read is going, not before it.
      const source = Source.make({
        name: "in",
        type: "memory",
        description: "sized",
        bounded: true,
        batches: () => Stream.fromEffect(Effect.as(Deferred.await(sized), Batch.make([1, 2, 3], { bytes: 30 }))),
        size: Effect.succeed({ records: 3 })
      })
      const report = yield* Pipeline.from(source).pipe(
        Pipeline.to(Sink.collect<number>("out")),
        Pipeline.run,
        Effect.provideService(
          Progress,
          reporter(told, () => Deferred.doneUnsafe(sized, Effect.void))
        )
      )
      assert.strictEqual(report.records.written, 3)
      assert.deepStrictEqual(told, [{ records: 3 }])
    })
  )

  it.effect("a size that cannot be told leaves the run as it is", () =>
    Effect.gen(function* () {
      const told: Array<InputSize> = []
      const source = Source.make({
        ...Source.fromIterable("in", [1, 2, 3]),
        size: Effect.fail("no size")
      })
      const report = yield* Pipeline.from(source).pipe(
        Pipeline.to(Sink.collect<number>("out")),
        Pipeline.run,
        Effect.provideService(Progress, reporter(told)),
        Effect.provide(Logger.layer([]))
      )
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(report.records.written, 3)
      assert.deepStrictEqual(told, [])
    })
  )
})
