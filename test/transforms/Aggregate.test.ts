import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import fc from "fast-check"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Agg from "../../src/transforms/Aggregate.ts"
import { bag, batchSizes, canonical, dec, runSync, split, splitSource } from "./support.ts"

interface Txn {
  readonly seq: number
  readonly userId: string | null
  readonly shop: number
  readonly amount: number | null
  readonly price: BigDecimal.BigDecimal | null
  readonly tag: string | null
}

const specs = {
  rows: Agg.count(),
  amounts: Agg.count("amount"),
  distinctAmounts: Agg.countDistinct("amount"),
  total: Agg.sum("amount"),
  exact: Agg.sum("price"),
  mean: Agg.avg("amount"),
  meanPrice: Agg.avg("price"),
  low: Agg.min("amount"),
  high: Agg.max("price"),
  firstTag: Agg.first("tag"),
  lastTag: Agg.last("tag"),
  minTag: Agg.min("tag")
} as const

type Row = Record<string, unknown>

const nonNull = <A>(xs: ReadonlyArray<A | null>): Array<A> => xs.filter((x): x is A => x !== null)

/** The obviously correct aggregate: group with a canonical key, then compute each function from the group's rows. */
const reference = (records: ReadonlyArray<Txn>, groupBy: ReadonlyArray<"userId" | "shop">): Array<Row> => {
  const groups = new Map<string, Array<Txn>>()
  for (const r of records) {
    const key = groupBy.map((k) => canonical(r[k])).join("|")
    const list = groups.get(key) ?? []
    list.push(r)
    groups.set(key, list)
  }
  return Array.from(groups.values(), (rows) => {
    const amounts = nonNull(rows.map((r) => r.amount))
    const prices = nonNull(rows.map((r) => r.price))
    const tags = nonNull(rows.map((r) => r.tag))
    const out: Row = {}
    for (const k of groupBy) out[k] = rows[0]![k]
    const total = amounts.reduce((a, b) => a + b, 0)
    const exact = prices.length === 0 ? null : BigDecimal.sumAll(prices)
    out.rows = rows.length
    out.amounts = amounts.length
    out.distinctAmounts = new Set(amounts).size
    out.total = amounts.length === 0 ? null : total
    out.exact = exact
    out.mean = amounts.length === 0 ? null : total / amounts.length
    out.meanPrice = exact === null ? null : BigDecimal.toNumberUnsafe(exact) / prices.length
    out.low = amounts.length === 0 ? null : Math.min(...amounts)
    out.high = prices.length === 0 ? null : prices.reduce((a, b) => (BigDecimal.isGreaterThan(b, a) ? b : a))
    out.firstTag = tags[0] ?? null
    out.lastTag = tags[tags.length - 1] ?? null
    out.minTag = tags.length === 0 ? null : [...tags].sort()[0]
    return out
  })
}

const decimal = fc
  .tuple(fc.integer({ min: -100_000, max: 100_000 }), fc.integer({ min: 0, max: 4 }))
  .map(([v, scale]) => BigDecimal.make(BigInt(v), scale))

/** Skewed keys: one hot user, a few cold ones, and NULL. */
const userId = fc.oneof(
  { arbitrary: fc.constant("hot"), weight: 6 },
  { arbitrary: fc.constantFrom("u1", "u2", "u3", "u4"), weight: 3 },
  { arbitrary: fc.constant(null), weight: 1 }
)

const txns = fc
  .array(
    fc.record({
      userId,
      shop: fc.integer({ min: 0, max: 2 }),
      amount: fc.option(fc.integer({ min: -1000, max: 1000 }), { nil: null, freq: 4 }),
      price: fc.option(decimal, { nil: null, freq: 4 }),
      tag: fc.option(fc.constantFrom("a", "b", "B", "zz", ""), { nil: null, freq: 3 })
    }),
    { maxLength: 60 }
  )
  .map((rows): Array<Txn> => rows.map((r, seq) => ({ seq, ...r })))

const aggregated = (parts: ReadonlyArray<ReadonlyArray<Txn>>, groupBy: ReadonlyArray<"userId" | "shop">) =>
  runSync(Pipeline.from(splitSource("txns", parts)).pipe(Pipeline.aggregate({ groupBy, fields: specs })))

const sample: ReadonlyArray<Txn> = [
  { seq: 0, userId: "a", shop: 1, amount: 10, price: dec("1.10"), tag: "x" },
  { seq: 1, userId: "a", shop: 1, amount: null, price: dec("0.05"), tag: null },
  { seq: 2, userId: "b", shop: 2, amount: 5, price: null, tag: "y" },
  { seq: 3, userId: null, shop: 2, amount: null, price: null, tag: null },
  { seq: 4, userId: "a", shop: 2, amount: -4, price: dec("100.001"), tag: "z" },
  { seq: 5, userId: null, shop: 1, amount: 7, price: dec("-3"), tag: "w" }
]

describe("aggregate", () => {
  it("computes every function with SQL's NULL semantics and exact decimal sums", () => {
    const run = aggregated([sample.slice(0, 2), sample.slice(2)], ["userId"])
    assert.deepStrictEqual(bag(run.records), bag(reference(sample, ["userId"])))
    const a = run.records.find((r) => r.userId === "a")!
    assert.strictEqual(a.rows, 3)
    assert.strictEqual(a.amounts, 2)
    assert.strictEqual(a.total, 6)
    assert.isTrue(BigDecimal.equals(a.exact!, dec("101.151")))
    assert.strictEqual(a.firstTag, "x")
    assert.strictEqual(a.lastTag, "z")
    const nulls = run.records.find((r) => r.userId === null)!
    assert.strictEqual(nulls.rows, 2)
    const b = run.records.find((r) => r.userId === "b")!
    assert.strictEqual(b.exact, null)
    assert.strictEqual(b.meanPrice, null)
    assert.deepStrictEqual(
      run.records.map((r) => r.userId),
      ["a", "b", null]
    )
  })

  it("sums decimals exactly where doubles would not", () => {
    const tenths = Array.from({ length: 10 }, (_, i) => ({ id: i, amount: dec("0.1"), approx: 0.1 }))
    const run = runSync(
      Pipeline.from(Source.fromIterable("tenths", tenths, { batchSize: 3 })).pipe(
        Pipeline.aggregate({ fields: { exact: Agg.sum("amount"), approx: Agg.sum("approx") } })
      )
    )
    assert.strictEqual(BigDecimal.format(run.records[0]!.exact), "1")
    assert.notStrictEqual(run.records[0]!.approx, 1)
  })

  it("estimates percentiles within the sketch's relative accuracy", () => {
    const values = Array.from({ length: 2000 }, (_, i) => ({ v: ((i * 7919) % 2000) - 500 + (i % 3) * 0.25 }))
    const run = runSync(
      Pipeline.from(Source.fromIterable("values", values, { batchSize: 128 })).pipe(
        Pipeline.aggregate({
          fields: {
            p50: Agg.p50("v"),
            p95: Agg.p95("v"),
            p99: Agg.p99("v"),
            p01: Agg.percentile("v", 0.01, { relativeAccuracy: 0.001 })
          }
        })
      )
    )
    const sorted = values.map((r) => r.v).sort((a, b) => a - b)
    const exact = (q: number) => sorted[Math.floor(q * (sorted.length - 1))]!
    const row = run.records[0]!
    for (const [name, q, alpha] of [
      ["p50", 0.5, 0.01],
      ["p95", 0.95, 0.01],
      ["p99", 0.99, 0.01],
      ["p01", 0.01, 0.001]
    ] as const) {
      const x = exact(q)
      assert.isAtMost(Math.abs((row[name] as number) - x), alpha * Math.abs(x) + 1e-9, `${name}: ${row[name]} vs ${x}`)
    }
  })

  it("matches the reference model for any batching, key skew, NULLs and duplicates", () => {
    fc.assert(
      fc.property(
        txns,
        batchSizes,
        fc.constantFrom<ReadonlyArray<"userId" | "shop">>([], ["userId"], ["shop", "userId"]),
        (records, sizes, groupBy) => {
          const one = aggregated([records], groupBy)
          const many = aggregated(split(records, sizes), groupBy)
          assert.deepStrictEqual(many.records.map(canonical), one.records.map(canonical))
          assert.deepStrictEqual(bag(one.records), bag(reference(records, groupBy)))
        }
      ),
      { numRuns: 200 }
    )
  })

  it("rejects values a function cannot use to the dead letters, and emits nothing for an empty input", () => {
    const raw: ReadonlyArray<Readonly<Record<string, unknown>>> = [
      { k: "a", v: 1 },
      { k: "a", v: "2" },
      { k: "b", v: 3 }
    ]
    const run = runSync(
      Pipeline.from(Source.fromIterable("raw", raw)).pipe(
        Agg.dynamic({ groupBy: ["k"], fields: { total: { kind: "sum", field: "v" } } })
      )
    )
    assert.deepStrictEqual(run.records, [
      { k: "a", total: 1 },
      { k: "b", total: 3 }
    ])
    assert.deepStrictEqual(run.deadLetters, [
      {
        stage: "aggregate",
        reason: "invalid-value",
        message: 'sum(v): v: expected a number or a decimal, got "2"',
        record: { k: "a", v: "2" }
      }
    ])
    const empty = runSync(
      Pipeline.from(Source.fromIterable<Txn>("none", [])).pipe(Pipeline.aggregate({ fields: { n: Agg.count() } }))
    )
    assert.deepStrictEqual(empty.records, [])
  })

  it("holds every input acknowledgement until the groups are written", () => {
    const events: Array<string> = []
    runSync(
      Pipeline.from(splitSource("txns", [sample.slice(0, 2), [], sample.slice(2)], events)).pipe(
        Pipeline.aggregate({ groupBy: ["userId"], fields: { n: Agg.count() } })
      ),
      { events }
    )
    assert.deepStrictEqual(events, ["write 3", "ack 0", "ack 1", "ack 2"])
  })

  it.effect("runs in a pipeline with reconciled row counts, and refuses an input that never ends", () =>
    Effect.gen(function* () {
      const out = Sink.collect<{ readonly userId: string | null; readonly n: number }>("out")
      const report = yield* Pipeline.from(Source.fromIterable("txns", sample, { batchSize: 4 })).pipe(
        Pipeline.aggregate({ groupBy: ["userId"], fields: { n: Agg.count() } }),
        Pipeline.to(out),
        Pipeline.run
      )
      assert.isTrue(report.reconciliation.ok)
      assert.deepStrictEqual(
        report.stages.map((s) => [s.name, s.recordsIn, s.recordsOut]),
        [
          ["txns", 6, 6],
          ["aggregate", 6, 3],
          ["out", 3, 3]
        ]
      )
      const badQuantile = yield* Pipeline.from(Source.fromIterable("txns", sample)).pipe(
        Pipeline.aggregate({ fields: { p: Agg.percentile("amount", 95) } }),
        Pipeline.to(Sink.collect("out")),
        Pipeline.run,
        Effect.flip
      )
      assert.strictEqual(badQuantile.message, "aggregate: p: percentile: the quantile must be between 0 and 1, got 95")
      const endless = Source.make<Txn>({ ...Source.fromIterable("endless", sample), bounded: false })
      const error = yield* Pipeline.from(endless).pipe(
        Pipeline.aggregate({ groupBy: ["userId"], fields: { n: Agg.count() } }),
        Pipeline.to(Sink.collect("out")),
        Pipeline.run,
        Effect.flip
      )
      assert.strictEqual(error._tag, "BuildError")
      assert.include(error.message, "endless never ends, so an aggregate over it would never emit")
    })
  )

  it("infers the output type from the spec and rejects what cannot work", () => {
    interface Payment {
      readonly userId: string
      readonly amount: number
      readonly price: BigDecimal.BigDecimal
      readonly fee: number | null
      readonly note: string | null
    }
    const flow = Pipeline.from(Source.fromIterable<Payment>("payments", []))
    const summary = flow.pipe(
      Pipeline.aggregate({ groupBy: ["userId"], fields: { total: Agg.sum("amount"), count: Agg.count() } })
    )
    expectTypeOf(summary).toEqualTypeOf<
      Pipeline.Flow<{ readonly userId: string; readonly total: number; readonly count: number }>
    >()
    const detail = flow.pipe(
      Pipeline.aggregate({
        fields: {
          exact: Agg.sum("price"),
          fees: Agg.sum("fee"),
          meanFee: Agg.avg("fee"),
          p99: Agg.p99("amount"),
          lastNote: Agg.last("note"),
          low: Agg.min("price"),
          users: Agg.countDistinct("userId")
        }
      })
    )
    expectTypeOf(detail).toEqualTypeOf<
      Pipeline.Flow<{
        readonly exact: BigDecimal.BigDecimal
        readonly fees: number | null
        readonly meanFee: number | null
        readonly p99: number
        readonly lastNote: string | null
        readonly low: BigDecimal.BigDecimal
        readonly users: number
      }>
    >()
    // @ts-expect-error: there is no field `shop` to group by
    flow.pipe(Pipeline.aggregate({ groupBy: ["shop"], fields: { count: Agg.count() } }))
    // @ts-expect-error: a string cannot be summed
    flow.pipe(Pipeline.aggregate({ groupBy: ["userId"], fields: { total: Agg.sum("userId") } }))
    // @ts-expect-error: a percentile needs numbers
    flow.pipe(Pipeline.aggregate({ fields: { p: Agg.p50("price") } }))
    // @ts-expect-error: an output field may not be named like a grouping field
    flow.pipe(Pipeline.aggregate({ groupBy: ["userId"], fields: { userId: Agg.count() } }))
  })
})
