import { assert, describe, it } from "@effect/vitest"
import * as ProgressLine from "../../src/cli/Progress.ts"
import { makeRunContext } from "../../src/core/Stage.ts"

const context = (pipeline = "p") => {
  const ctx = makeRunContext({ runId: "r", pipeline, now: () => 0 })
  const source = ctx.stage({ name: "in", kind: "source", description: "", cardinality: "one-to-one" })
  const validate = ctx.stage({ name: "validate", kind: "transform", description: "", cardinality: "one-to-one" })
  const sink = ctx.stage({ name: "out", kind: "sink", description: "", cardinality: "one-to-one" })
  source.recordsIn = 1_500_000
  validate.recordsIn = 1_500_000
  validate.rejected = 12
  sink.recordsIn = 25_000
  return { ctx, source, validate, sink }
}

const window = (ctx: ReturnType<typeof context>) => {
  const rates = new ProgressLine.RateWindow(5000)
  const { source, validate, sink } = ctx
  source.recordsIn = 0
  validate.recordsIn = 0
  sink.recordsIn = 0
  rates.observe(ctx.ctx, 0)
  source.recordsIn = 1_000_000
  validate.recordsIn = 1_000_000
  sink.recordsIn = 900_000
  rates.observe(ctx.ctx, 3000)
  source.recordsIn = 1_250_000
  validate.recordsIn = 1_250_000
  sink.recordsIn = 1_025_000
  rates.observe(ctx.ctx, 8000)
  return rates
}

describe("progress line", () => {
  it("shows records read, the average rates, rejected records and the elapsed time when nothing else is known", () => {
    assert.strictEqual(
      ProgressLine.line(context().ctx, 2000),
      "p: 1.5M read · 750K/s · 12 rejected · 2.0s · validate 750K/s · out 13K/s"
    )
  })

  it("shows a percentage and an ETA when the number of records is known", () => {
    const ctx = context("quickstart")
    const rates = window(ctx)
    assert.strictEqual(
      ProgressLine.line(ctx.ctx, 8000, { size: { records: 2_000_000 }, rates }),
      "quickstart: 62% 1.3M/2.0M read · 50K/s · ETA 0:15 · 12 rejected · validate 50K/s · out 25K/s"
    )
  })

  it("measures rates over the recent window, not since the start, and none before two samples", () => {
    const single = new ProgressLine.RateWindow(5000)
    single.observe(context().ctx, 0)
    assert.isUndefined(single.rate("in"))
    const rates = window(context())
    assert.strictEqual(rates.rate("in"), 50_000)
    assert.strictEqual(rates.rate("out"), 25_000)
  })

  it("shows a percentage of the bytes read when the input size is in bytes", () => {
    const ctx = context()
    const rates = new ProgressLine.RateWindow(5000)
    ctx.source.bytes = 0
    rates.observe(ctx.ctx, 0)
    ctx.source.bytes = 1024 * 1024
    rates.observe(ctx.ctx, 1000)
    const text = ProgressLine.line(ctx.ctx, 1000, { size: { bytes: 4 * 1024 * 1024 }, rates })
    assert.isTrue(text.startsWith("p: 25% 1.5M read (1.0MiB/4.0MiB) · "), text)
    assert.include(text, "ETA 0:03")
  })

  it("shows no percentage when the size is unknown, and never 100% of an estimate that was passed", () => {
    const ctx = context()
    assert.notInclude(ProgressLine.line(ctx.ctx, 1000, { size: {} }), "%")
    const text = ProgressLine.line(ctx.ctx, 1000, { size: { records: 1000, estimated: true } })
    assert.isTrue(text.startsWith("p: 99% 1.5M/~1.0K read"), text)
    assert.notInclude(text, "ETA")
  })

  it("fits 120 columns, leaving out the stage rates that do not fit", () => {
    const ctx = makeRunContext({ runId: "r", pipeline: "a-pipeline-with-a-long-name", now: () => 0 })
    ctx.stage({ name: "in", kind: "source", description: "", cardinality: "one-to-one" }).recordsIn = 10
    for (let i = 0; i < 20; i++)
      ctx.stage({ name: `transform-${i}`, kind: "transform", description: "", cardinality: "one-to-one" })
    const text = ProgressLine.line(ctx, 1000, { size: { records: 100 } })
    assert.isAtMost(text.length, ProgressLine.MAX_WIDTH)
    assert.include(text, "transform-0 0/s")
  })

  it("redraws in place on a terminal at most every interval, and ends the line when done", () => {
    const written: Array<string> = []
    const stream = { write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream
    const reporter = ProgressLine.terminal(stream, 60_000)
    const { ctx } = context()
    reporter.size?.({ records: 3_000_000 })
    reporter.update(ctx)
    reporter.update(ctx)
    reporter.done(ctx)
    assert.strictEqual(written.length, 2)
    assert.isTrue(written[0]!.startsWith("\r\x1b[2Kp: 50% 1.5M/3.0M read"), written[0])
    assert.isTrue(written[1]!.endsWith("\n"))
  })
})
