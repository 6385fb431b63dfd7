import { assert, describe, it } from "@effect/vitest"
import { reconcile, type StageReport } from "../../src/core/RunReport.ts"

const stage = (
  name: string,
  kind: StageReport["kind"],
  counts: { readonly in: number; readonly out: number; readonly consumed?: number; readonly filtered?: number },
  inputs?: ReadonlyArray<string>
): StageReport => ({
  name,
  kind,
  description: "",
  cardinality: counts.consumed === undefined ? "one-to-one" : "one-to-many",
  recordsIn: counts.in,
  recordsOut: counts.out,
  filtered: counts.filtered ?? 0,
  rejected: 0,
  consumed: counts.consumed ?? 0,
  warned: 0,
  batches: 1,
  busyMs: 0,
  ...(inputs === undefined ? {} : { inputs })
})

describe("reconcile", () => {
  const run = (joinIn: number) => [
    stage("orders", "source", { in: 4, out: 4 }),
    stage("payments", "source", { in: 5, out: 5 }),
    stage("filter", "transform", { in: 5, out: 3, filtered: 2 }),
    stage("interval_join", "transform", { in: joinIn, out: 6, consumed: joinIn - 1, filtered: 1 }, [
      "orders",
      "filter"
    ]),
    stage("out", "sink", { in: 6, out: 6 })
  ]

  it("checks a stage with two inputs against their outputs added up, and a second source against nothing", () => {
    const checks = reconcile(run(7), 6)
    assert.isTrue(checks.every((c) => c.ok))
    assert.deepStrictEqual(
      checks.filter((c) => c.stage === "interval_join").map((c) => [c.rule, c.expected, c.actual]),
      [
        ["received = output of orders + filter", 7, 7],
        ["in = consumed + filtered + rejected", 7, 7]
      ]
    )
    assert.isUndefined(checks.find((c) => c.stage === "payments" && c.rule === "received = previous stage's output"))
    const run2 = checks.find((c) => c.stage === "run")!
    assert.deepStrictEqual([run2.expected, run2.actual], [9 + 6, 6 + 3 + 6])
  })

  it("fails when a stage with two inputs received more or less than they emitted", () => {
    const bad = reconcile(run(8), 6).filter((c) => !c.ok)
    assert.deepStrictEqual(
      bad.map((c) => [c.stage, c.rule, c.expected, c.actual]),
      [
        ["interval_join", "received = output of orders + filter", 7, 8],
        ["run", "read + combined out = written + filtered + rejected + combined in", 15, 16]
      ]
    )
  })
})
