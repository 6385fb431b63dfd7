import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as fc from "fast-check"
import type { DeadLetter } from "../../src/core/DeadLetter.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Rule from "../../src/transforms/Rule.ts"

interface Row {
  readonly id: number
  readonly amount: number | null
  readonly tag: string
}

const row = fc.record({
  id: fc.integer(),
  // -0 is left out: as text it is "0" (String, JSON), so no round trip through a string can keep its sign.
  amount: fc.option(
    fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((x) => (x === 0 ? 0 : x)),
    { nil: null }
  ),
  tag: fc.string({ maxLength: 8 })
})

const runAll = <A>(
  records: ReadonlyArray<Row>,
  batchSize: number,
  build: (flow: Pipeline.Flow<Row>) => Pipeline.Flow<A>
) => {
  const out = Sink.collect<A>("out")
  const dead = Sink.collect<DeadLetter>("dead")
  const report = Effect.runSync(
    build(Pipeline.from(Source.fromIterable("rows", records, { batchSize }))).pipe(
      Pipeline.to(out),
      Pipeline.withDeadLetters(dead),
      Pipeline.run
    )
  )
  return { records: out.collected().records, dead: dead.collected().records, report }
}

const reference = (records: ReadonlyArray<Row>) => {
  const kept: Array<{ id: number; amount: number; tag: string; doubled: number }> = []
  let rejected = 0
  let filtered = 0
  for (const r of records) {
    if (r.amount === null || r.amount < 0) {
      rejected++
      continue
    }
    if (r.tag.length === 0) {
      filtered++
      continue
    }
    kept.push({ id: r.id, amount: r.amount, tag: r.tag.toUpperCase(), doubled: r.amount * 2 })
  }
  return { kept, rejected, filtered }
}

const chain = (flow: Pipeline.Flow<Row>) =>
  flow.pipe(
    Pipeline.validate([Rule.notNull("amount"), Rule.range("amount", { min: 0 })]),
    Pipeline.filter((r) => r.tag.length > 0),
    Pipeline.map((r) => ({ ...r, amount: r.amount as number, tag: r.tag.toUpperCase() })),
    Pipeline.derive({ doubled: (r: { readonly amount: number }) => r.amount * 2 }),
    Pipeline.select(["id", "amount", "tag", "doubled"])
  )

describe("stateless transforms (properties)", () => {
  it("validate → filter → map → derive → select equals a plain loop, whatever the batch size", () =>
    fc.assert(
      fc.property(fc.array(row, { maxLength: 200 }), fc.integer({ min: 1, max: 50 }), (records, batchSize) => {
        const { records: out, report } = runAll(records, batchSize, chain)
        const expected = reference(records)
        assert.deepStrictEqual(out, expected.kept)
        assert.strictEqual(report.records.rejected, expected.rejected)
        assert.strictEqual(report.records.filtered, expected.filtered)
        assert.strictEqual(
          report.records.read,
          report.records.written + report.records.filtered + report.records.rejected
        )
        assert.isTrue(report.reconciliation.ok)
      }),
      { numRuns: 200 }
    ))

  it("rename then rename back is the identity; cast to string and back to number keeps finite numbers", () =>
    fc.assert(
      fc.property(fc.array(row, { maxLength: 100 }), fc.integer({ min: 1, max: 30 }), (records, batchSize) => {
        const renamed = runAll(records, batchSize, (flow) =>
          flow.pipe(Pipeline.rename({ tag: "label" }), Pipeline.rename({ label: "tag" }))
        )
        assert.deepStrictEqual(
          renamed.records.map((r) => ({ id: r.id, amount: r.amount, tag: r.tag })),
          records.map((r) => ({ id: r.id, amount: r.amount, tag: r.tag }))
        )
        const cast = runAll(records, batchSize, (flow) =>
          flow.pipe(Pipeline.cast({ amount: "string" }), Pipeline.cast({ amount: "number" }))
        )
        assert.deepStrictEqual(
          cast.records.map((r) => r.amount),
          records.map((r) => r.amount)
        )
      }),
      { numRuns: 100 }
    ))
})

describe("cast", () => {
  it.effect("converts decimals, timestamps, booleans and integers, and rejects what does not convert", () =>
    Effect.gen(function* () {
      const out = Sink.collect<Record<string, unknown>>("out")
      const dead = Sink.collect<DeadLetter>("dead")
      yield* Pipeline.from(
        Source.fromIterable("raw", [
          { price: "12.30", at: "2026-01-01T00:00:00Z", ok: "true", n: "42" },
          { price: "abc", at: "2026-01-01T00:00:00Z", ok: "1", n: "1" },
          { price: "1", at: "yesterday", ok: "0", n: "2" },
          { price: null, at: 0, ok: false, n: "1.5" }
        ])
      ).pipe(
        Pipeline.cast({ price: "decimal", at: "timestamp", ok: "boolean", n: "integer" }),
        Pipeline.to(out),
        Pipeline.withDeadLetters(dead),
        Pipeline.run
      )
      const [first] = out.collected().records
      assert.isTrue(BigDecimal.equals(first!.price as BigDecimal.BigDecimal, BigDecimal.fromStringUnsafe("12.3")))
      assert.deepStrictEqual(first!.at, new Date("2026-01-01T00:00:00Z"))
      assert.strictEqual(first!.ok, true)
      assert.strictEqual(first!.n, 42)
      assert.deepStrictEqual(
        dead.collected().records.map((d) => d.message),
        [
          'price: expected a decimal number, got "abc"',
          'at: expected an ISO-8601 timestamp or epoch milliseconds, got "yesterday"',
          'n: expected a safe integer, got "1.5"'
        ]
      )
    })
  )

  it.effect("rules report exactly what is wrong", () =>
    Effect.gen(function* () {
      const rules = [
        Rule.pattern("code", /^[A-Z]{3}$/g),
        Rule.oneOf("status", ["a", "b"]),
        Rule.range("at", { max: new Date("2026-01-01T00:00:00Z"), exclusiveMax: true }),
        Rule.range("price", { min: BigDecimal.fromStringUnsafe("0.01") }),
        Rule.check("even", (r: { readonly n: number }) => r.n % 2 === 0, { message: "n must be even" })
      ]
      const record = {
        code: "eur",
        status: "c",
        at: new Date("2026-01-01T00:00:00Z"),
        price: BigDecimal.fromStringUnsafe("0"),
        n: 3
      }
      assert.deepStrictEqual(
        rules.map((r) => (r.check as (x: typeof record) => string | undefined)(record)),
        [
          'code: expected a string matching /^[A-Z]{3}$/, got "eur"',
          'status: expected one of "a", "b", got "c"',
          "at: expected a value < 2026-01-01T00:00:00.000Z, got 2026-01-01T00:00:00.000Z",
          "price: expected a value >= 0.01, got 0",
          "n must be even"
        ]
      )
      // a global RegExp does not keep state between records
      assert.isUndefined((rules[0]!.check as (x: { code: string }) => string | undefined)({ code: "EUR" }))
      assert.isUndefined((rules[0]!.check as (x: { code: string }) => string | undefined)({ code: "USD" }))
    })
  )
})
