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

describe("pretty logging", () => {
  it.effect("prints time, level, pipeline/stage, message and the other fields, without run or trace ids", () =>
    Effect.gen(function* () {
      const lines = yield* capture(
        Effect.logWarning("batch written", { rows: 3 }).pipe(
          Effect.annotateLogs({ runId: "r1", pipeline: "p", stage: "sink", table: "public.t", note: "two words" }),
          Effect.withSpan("Pipeline.run")
        )
      )
      const text = Logging.prettyLine(lines[0]!, false)
      assert.match(
        text,
        /^\d\d:\d\d:\d\d\.\d\d\d WARN {2}\[p\/sink\] batch written table=public\.t note="two words" details=\{"rows":3\}$/
      )
      assert.notInclude(text, "r1")
      assert.notInclude(text, "traceId")
    })
  )

  it.effect("colours only when asked, and keeps secrets out like the JSON lines", () =>
    Effect.gen(function* () {
      const lines = yield* capture(
        Effect.logError("failed").pipe(Effect.annotateLogs({ password: Redacted.make("hunter2") }))
      )
      assert.notInclude(Logging.prettyLine(lines[0]!, false), "\x1b[")
      const coloured = Logging.prettyLine(lines[0]!, true)
      assert.include(coloured, "\x1b[31mERROR")
      assert.include(coloured, "<redacted>")
      assert.notInclude(coloured, "hunter2")
    })
  )

  it("defaults to pretty on a terminal and json elsewhere, unless ETL_LOG_FORMAT says otherwise", () => {
    assert.deepStrictEqual(Logging.defaultFormat({}, true), { format: "pretty" })
    assert.deepStrictEqual(Logging.defaultFormat({}, false), { format: "json" })
    assert.deepStrictEqual(Logging.defaultFormat({ ETL_LOG_FORMAT: "JSON" }, true), { format: "json" })
    assert.deepStrictEqual(Logging.defaultFormat({ ETL_LOG_FORMAT: "pretty" }, false), { format: "pretty" })
    assert.deepStrictEqual(Logging.defaultFormat({ ETL_LOG_FORMAT: "xml" }, false), { format: "json", invalid: "xml" })
  })
})
