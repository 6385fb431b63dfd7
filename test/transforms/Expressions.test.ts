import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fc from "fast-check"
import * as Transforms from "../../src/config/Transforms.ts"
import type { DeadLetter } from "../../src/core/DeadLetter.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import type * as Expression from "../../src/expr/Expression.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"

interface Txn {
  readonly id: number
  readonly amount: number
  readonly currency: string
}

const runFlow = <A>(flow: Pipeline.Flow<A>) => {
  const out = Sink.collect<A>("out")
  const dead = Sink.collect<DeadLetter>("dead")
  return Pipeline.run(flow.pipe(Pipeline.to(out), Pipeline.withDeadLetters(dead))).pipe(
    Effect.map((report) => ({ report, records: out.collected().records, dead: dead.collected().records }))
  )
}

const txns: ReadonlyArray<Txn> = [
  { id: 1, amount: 50, currency: "EUR" },
  { id: 2, amount: 150, currency: "EUR" },
  { id: 3, amount: 250, currency: "USD" }
]

const txn = fc.record({
  id: fc.integer(),
  amount: fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }),
  currency: fc.constantFrom("EUR", "USD", "GBP")
})

describe("CEL expressions in the typed API", () => {
  it.effect("where keeps the records a condition holds for; the others are filtered", () =>
    Effect.gen(function* () {
      const { report, records } = yield* runFlow(
        Pipeline.from(Source.fromIterable("t", txns)).pipe(Pipeline.where("amount > 100.0 && currency == 'EUR'"))
      )
      assert.deepStrictEqual(
        records.map((r) => r.id),
        [2]
      )
      assert.strictEqual(report.records.filtered, 2)
    })
  )

  it.effect("compute adds typed fields from expressions", () =>
    Effect.gen(function* () {
      const flow = Pipeline.from(Source.fromIterable("t", txns)).pipe(
        Pipeline.compute({ band: "amount > 100.0 ? 'large' : 'small'", cents: "int(amount * 100.0)" })
      )
      expectTypeOf(flow).toEqualTypeOf<
        Pipeline.Flow<{
          readonly id: number
          readonly amount: number
          readonly currency: string
          readonly band: Expression.Value
          readonly cents: Expression.Value
        }>
      >()
      const { records } = yield* runFlow(flow)
      assert.deepStrictEqual(
        records.map((r) => [r.band, r.cents]),
        [
          ["small", 5000],
          ["large", 15000],
          ["large", 25000]
        ]
      )
    })
  )

  it.effect("a record an expression cannot be evaluated on is dead-lettered with the expression", () =>
    Effect.gen(function* () {
      const rows: ReadonlyArray<Readonly<Record<string, unknown>>> = [{ amount: 1 }, { other: 2 }]
      const { records, dead } = yield* runFlow(
        Pipeline.from(Source.fromIterable("t", rows)).pipe(Pipeline.where("amount > 0"))
      )
      assert.strictEqual(records.length, 1)
      assert.strictEqual(dead.length, 1)
      assert.strictEqual(dead[0]!.reason, "expression-error")
      assert.include(dead[0]!.message, "filter amount > 0")
    })
  )

  it.effect("an expression that does not compile fails the run, naming the stage", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        runFlow(Pipeline.from(Source.fromIterable("t", txns)).pipe(Pipeline.where("amount >")))
      )
      assert.strictEqual(error._tag, "BuildError")
      assert.match(error.message, /^where: /)
      const computeError = yield* Effect.flip(
        runFlow(Pipeline.from(Source.fromIterable("t", txns)).pipe(Pipeline.compute({ x: "1 +" })))
      )
      assert.strictEqual(computeError._tag, "BuildError")
    })
  )

  it.effect("a config filter and derive give what where and compute give (the same functions)", () =>
    Effect.gen(function* () {
      const records = fc.sample(fc.array(txn, { maxLength: 40 }), { numRuns: 30, seed: 7 })
      const ctx = { file: "p.json", path: "$.transforms[0]", fields: ["id", "amount", "currency"] }
      const filter = yield* Transforms.build({ type: "filter", condition: "amount >= 0.0 && currency != 'GBP'" }, ctx)
      const derive = yield* Transforms.build(
        { type: "derive", fields: { neg: "-amount", big: "amount > 1000.0" } },
        ctx
      )
      for (const sample of records) {
        const typed = yield* runFlow(
          Pipeline.from(Source.fromIterable("t", sample)).pipe(
            Pipeline.where("amount >= 0.0 && currency != 'GBP'"),
            Pipeline.compute({ neg: "-amount", big: "amount > 1000.0" })
          )
        )
        const configured = yield* runFlow(
          derive.apply(filter.apply(Pipeline.from(Source.fromIterable<Readonly<Record<string, unknown>>>("t", sample))))
        )
        assert.deepStrictEqual(configured.records, typed.records)
        assert.strictEqual(configured.report.records.filtered, typed.report.records.filtered)
      }
    })
  )
})
