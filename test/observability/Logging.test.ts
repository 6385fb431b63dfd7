import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Logging from "../../src/observability/Logging.ts"

const capture = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const lines: Array<Record<string, unknown>> = []
    const logger = Logger.make((options) => {
      lines.push(Logging.formatLine(options))
    })
    yield* effect.pipe(Effect.provide(Logger.layer([logger])))
    return lines
  })

describe("JSON logging", () => {
  it.effect("carries annotations, trace and span ids, and never prints secrets", () =>
    Effect.gen(function* () {
      const lines = yield* capture(
        Effect.logInfo("batch written", { rows: 3 }).pipe(
          Effect.annotateLogs({ runId: "r1", pipeline: "p", stage: "sink", password: Redacted.make("hunter2") }),
          Effect.withSpan("Pipeline.run")
        )
      )
      assert.strictEqual(lines.length, 1)
      const line = lines[0]!
      assert.strictEqual(line.message, "batch written")
      assert.strictEqual(line.level, "info")
      assert.strictEqual(line.runId, "r1")
      assert.strictEqual(line.stage, "sink")
      assert.strictEqual(line.password, "<redacted>")
      assert.deepStrictEqual(line.details, { rows: 3 })
      assert.strictEqual(line.span, "Pipeline.run")
      assert.isString(line.traceId)
      assert.isString(line.spanId)
      assert.notInclude(JSON.stringify(line), "hunter2")
    })
  )

  it.effect("reports the cause of an error log by message", () =>
    Effect.gen(function* () {
      const lines = yield* capture(Effect.logError("failed", new Error("boom")).pipe(Effect.asVoid))
      assert.strictEqual(lines[0]!.level, "error")
      assert.deepStrictEqual(lines[0]!.details, { name: "Error", message: "boom" })
    })
  )
})
