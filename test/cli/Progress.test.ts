import { assert, describe, it } from "@effect/vitest"
import * as ProgressLine from "../../src/cli/Progress.ts"
import { makeRunContext } from "../../src/core/Stage.ts"

const context = () => {
  const ctx = makeRunContext({ runId: "r", pipeline: "p", now: () => 0 })
  const source = ctx.stage({ name: "in", kind: "source", description: "", cardinality: "one-to-one" })
  const validate = ctx.stage({ name: "validate", kind: "transform", description: "", cardinality: "one-to-one" })
  const sink = ctx.stage({ name: "out", kind: "sink", description: "", cardinality: "one-to-one" })
  source.recordsIn = 1_500_000
  validate.rejected = 12
  sink.recordsIn = 25_000
  return ctx
}

describe("progress line", () => {
  it("shows records read, written, rejected, records/s and elapsed time", () => {
    assert.strictEqual(
      ProgressLine.line(context(), 2000),
      "p: 1.50M read, 25.0K written, 12 rejected, 750.0K records/s, 2.0s"
    )
  })

  it("redraws in place on a terminal at most every interval, and ends the line when done", () => {
    const written: Array<string> = []
    const stream = { write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream
    const reporter = ProgressLine.terminal(stream, 60_000)
    const ctx = context()
    reporter.update(ctx)
    reporter.update(ctx)
    reporter.done(ctx)
    assert.strictEqual(written.length, 2)
    assert.isTrue(written[0]!.startsWith("\r\x1b[2Kp: 1.50M read"))
    assert.isTrue(written[1]!.endsWith("\n"))
  })
})
