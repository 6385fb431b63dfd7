import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import fc from "fast-check"
import * as Batch from "../../src/core/Batch.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Join from "../../src/transforms/Join.ts"
import { bag, batchSizes, canonical, runFlow, runSync, split, splitSource } from "./support.ts"

interface Order {
  readonly seq: number
  readonly k: string | null
  readonly g: number
  readonly v: number | null
}

interface Customer {
  readonly k: string | null
  readonly g: number
  readonly name: string
  readonly score: number | null
}

type Row = Record<string, unknown>

/**
 * The obviously correct join: nested loops, NULL keys match nothing, unmatched sides filled with NULL. Records typed
 * only by TypeScript carry no field list at run time, so when one side is empty the other side's rows cannot be given
 * its (non-key) fields: they are left out, which readers see as `undefined`.
 */
const reference = (left: ReadonlyArray<Order>, right: ReadonlyArray<Customer>, type: Join.JoinType): Array<Row> => {
  const out: Array<Row> = []
  const matched = new Set<number>()
  for (const l of left) {
    let any = false
    right.forEach((r, i) => {
      if (l.k === null || r.k === null || l.k !== r.k || l.g !== r.g) return
      any = true
      matched.add(i)
      out.push({ ...l, name: r.name, score: r.score })
    })
    if (!any && (type === "left" || type === "full"))
      out.push(right.length === 0 ? { ...l } : { ...l, name: null, score: null })
  }
  if (type === "right" || type === "full")
    right.forEach((r, i) => {
      if (!matched.has(i))
        out.push(
          left.length === 0
            ? { k: r.k, g: r.g, name: r.name, score: r.score }
            : { seq: null, k: r.k, g: r.g, v: null, name: r.name, score: r.score }
        )
    })
  return out
}

const key = fc.oneof(
  { arbitrary: fc.constant("hot"), weight: 5 },
  { arbitrary: fc.constantFrom("a", "b", "c"), weight: 3 },
  { arbitrary: fc.constant(null), weight: 1 }
)

const orders = fc
  .array(
    fc.record({
      k: key,
      g: fc.integer({ min: 0, max: 1 }),
      v: fc.option(fc.integer({ min: 0, max: 99 }), { nil: null })
    }),
    { maxLength: 40 }
  )
  .map((rows): Array<Order> => rows.map((r, seq) => ({ seq, ...r })))

const customers = fc.array(
  fc.record({
    k: key,
    g: fc.integer({ min: 0, max: 1 }),
    name: fc.constantFrom("Ada", "Bob", "Cy"),
    score: fc.option(fc.integer({ min: 0, max: 9 }), { nil: null })
  }),
  { maxLength: 12 }
)

const joined = (
  left: ReadonlyArray<ReadonlyArray<Order>>,
  right: ReadonlyArray<ReadonlyArray<Customer>>,
  type: Join.JoinType,
  events?: Array<string>
) =>
  runSync(
    Pipeline.from(splitSource("orders", left, events)).pipe(
      Pipeline.join(splitSource("customers", right), { on: ["k", "g"], type })
    ),
    { events: events ?? [] }
  )

const sampleOrders: ReadonlyArray<Order> = [
  { seq: 0, k: "a", g: 0, v: 1 },
  { seq: 1, k: "b", g: 0, v: 2 },
  { seq: 2, k: null, g: 0, v: 3 },
  { seq: 3, k: "a", g: 0, v: 4 }
]
const sampleCustomers: ReadonlyArray<Customer> = [
  { k: "a", g: 0, name: "Ada", score: 1 },
  { k: "a", g: 0, name: "Alan", score: null },
  { k: "c", g: 0, name: "Cy", score: 3 },
  { k: null, g: 0, name: "Nobody", score: 4 }
]

describe("join", () => {
  it("joins like SQL: duplicates multiply, NULL keys match nothing, outer joins fill NULLs", () => {
    const full = joined([sampleOrders], [sampleCustomers], "full")
    assert.deepStrictEqual(full.records, [
      { seq: 0, k: "a", g: 0, v: 1, name: "Ada", score: 1 },
      { seq: 0, k: "a", g: 0, v: 1, name: "Alan", score: null },
      { seq: 1, k: "b", g: 0, v: 2, name: null, score: null },
      { seq: 2, k: null, g: 0, v: 3, name: null, score: null },
      { seq: 3, k: "a", g: 0, v: 4, name: "Ada", score: 1 },
      { seq: 3, k: "a", g: 0, v: 4, name: "Alan", score: null },
      { k: "c", g: 0, seq: null, v: null, name: "Cy", score: 3 },
      { k: null, g: 0, seq: null, v: null, name: "Nobody", score: 4 }
    ])
    const inner = joined([sampleOrders], [sampleCustomers], "inner")
    assert.deepStrictEqual(
      inner.records.map((r) => [r.seq, r.name]),
      [
        [0, "Ada"],
        [0, "Alan"],
        [3, "Ada"],
        [3, "Alan"]
      ]
    )
    assert.strictEqual(inner.ctx.stages().find((c) => c.info.name === "join")!.filtered, 2)
  })

  it("matches the reference model for every join type, any batching of either side, skew and NULLs", () => {
    fc.assert(
      fc.property(
        orders,
        customers,
        fc.constantFrom<Join.JoinType>("inner", "left", "right", "full"),
        batchSizes,
        batchSizes,
        (left, right, type, leftSizes, rightSizes) => {
          const one = joined([left], [right], type)
          const many = joined(split(left, leftSizes), split(right, rightSizes), type)
          assert.deepStrictEqual(many.records.map(canonical), one.records.map(canonical))
          assert.deepStrictEqual(bag(one.records), bag(reference(left, right, type)))
        }
      ),
      { numRuns: 300 }
    )
  })

  it("matches the reference model on one key field, a string or a number, for every join type and batching", () => {
    const referenceOn = (
      left: ReadonlyArray<Order>,
      right: ReadonlyArray<Customer>,
      type: Join.JoinType,
      on: "k" | "g"
    ): Array<Row> => {
      const out: Array<Row> = []
      const matched = new Set<number>()
      for (const l of left) {
        let any = false
        right.forEach((r, i) => {
          if (l[on] === null || r[on] === null || l[on] !== r[on]) return
          any = true
          matched.add(i)
          out.push({ ...l, name: r.name, score: r.score })
        })
        if (!any && (type === "left" || type === "full")) out.push({ ...l, name: null, score: null })
      }
      if (type === "right" || type === "full")
        right.forEach((r, i) => {
          if (matched.has(i)) return
          const row: Row = left.length === 0 ? {} : { seq: null, k: null, g: null, v: null }
          out.push({ ...row, [on]: r[on], name: r.name, score: r.score })
        })
      return out
    }
    fc.assert(
      fc.property(
        orders,
        customers,
        fc.constantFrom<Join.JoinType>("inner", "left", "right", "full"),
        fc.constantFrom<"k" | "g">("k", "g"),
        batchSizes,
        (left, right, type, on, leftSizes) => {
          const run = runSync(
            Pipeline.from(splitSource("orders", split(left, leftSizes))).pipe(
              Pipeline.join(splitSource("customers", [right]), { on, type, select: ["name", "score"] })
            )
          )
          assert.deepStrictEqual(bag(run.records), bag(referenceOn(left, right, type, on)))
        }
      ),
      { numRuns: 300 }
    )
  })

  it("passes acks on with each batch for inner and left joins, and holds them to the end for right and full", () => {
    const parts = [sampleOrders.slice(0, 2), sampleOrders.slice(2)]
    const left: Array<string> = []
    joined(parts, [sampleCustomers], "left", left)
    assert.deepStrictEqual(left, ["write 3", "ack 0", "write 3", "ack 1"])
    const full: Array<string> = []
    joined(parts, [sampleCustomers], "full", full)
    assert.deepStrictEqual(full, ["write 3", "write 3", "write 2", "ack 0", "ack 1"])
  })

  it("maps differently named keys, selects and renames the joined side's fields", () => {
    const users = Source.fromIterable("users", [
      { id: "a", name: "Ada", country: "UK", v: 9 },
      { id: "b", name: "Bob", country: "FR", v: 8 }
    ])
    const run = runSync(
      Pipeline.from(Source.fromIterable("orders", sampleOrders)).pipe(
        Pipeline.join(users, { on: { k: "id" }, type: "left", select: ["name", "v"], rename: { v: "userV" } })
      )
    )
    assert.deepStrictEqual(run.records.slice(0, 3), [
      { seq: 0, k: "a", g: 0, v: 1, name: "Ada", userV: 9 },
      { seq: 1, k: "b", g: 0, v: 2, name: "Bob", userV: 8 },
      { seq: 2, k: null, g: 0, v: 3, name: null, userV: null }
    ])
  })

  it("fails with a clear message when the joined side is larger than maxRows", () => {
    const error = Effect.runSync(
      runFlow(
        Pipeline.from(Source.fromIterable("orders", sampleOrders)).pipe(
          Pipeline.join(Source.fromIterable("customers", sampleCustomers, { batchSize: 2 }), {
            on: ["k", "g"],
            maxRows: 3
          })
        )
      ).pipe(Effect.flip)
    ) as { readonly _tag: string; readonly message: string; readonly retryable: boolean }
    assert.strictEqual(error._tag, "TransformError")
    assert.isFalse(error.retryable)
    assert.strictEqual(
      error.message,
      "join: customers has more than 3 rows, the limit of a lookup join (maxRows); raise maxRows if it fits in memory, filter the joined source, or join inside the database"
    )
  })

  it("reloads the joined side when the refresh interval has passed", () => {
    let now = 0
    let loads = 0
    const rates = Source.make({
      name: "rates",
      type: "memory",
      description: "changes on every load",
      bounded: true,
      batches: () =>
        Stream.suspend(() => {
          loads++
          return Stream.make(Batch.make([{ k: "a", rate: loads }]))
        })
    })
    const left = Source.make<{ readonly k: string; readonly at: number }>({
      name: "ticks",
      type: "memory",
      description: "ticks",
      bounded: true,
      batches: () =>
        Stream.fromIterable([0, 30_000, 61_000, 90_000, 125_000], { chunkSize: 1 }).pipe(
          Stream.map((at) => {
            now = at
            return Batch.make([{ k: "a", at }])
          })
        )
    })
    const run = runSync(Pipeline.from(left).pipe(Pipeline.join(rates, { on: "k", refresh: "1 minute" })), {
      now: () => now
    })
    assert.deepStrictEqual(
      run.records.map((r) => [r.at, r.rate]),
      [
        [0, 1],
        [30_000, 1],
        [61_000, 2],
        [90_000, 2],
        [125_000, 3]
      ]
    )
  })

  it("fails when records typed only at run time have a field on both sides", () => {
    const error = Effect.runSync(
      runFlow(
        Pipeline.from(Source.fromIterable("orders", [{ k: "a", name: "order" }])).pipe(
          Join.dynamic(Source.fromIterable("users", [{ k: "a", name: "Ada" }]), { on: "k" })
        )
      ).pipe(Effect.flip)
    ) as { readonly message: string }
    assert.strictEqual(
      error.message,
      'join: both sides have a field named "name"; rename it on the joined side (rename: { "name": "..." }) or leave it out (select)'
    )
  })

  it.effect("runs in a pipeline: a full join of a bounded flow reconciles; of an endless one it is refused", () =>
    Effect.gen(function* () {
      const out = Sink.collect<Row>("out")
      const report = yield* Pipeline.from(Source.fromIterable("orders", sampleOrders, { batchSize: 3 })).pipe(
        Pipeline.join(Source.fromIterable("customers", sampleCustomers), { on: ["k", "g"], type: "full" }),
        Pipeline.to(out),
        Pipeline.run
      )
      assert.isTrue(report.reconciliation.ok)
      assert.strictEqual(report.records.written, 8)
      const endless = Source.make<Order>({ ...Source.fromIterable("endless", sampleOrders), bounded: false })
      const error = yield* Pipeline.from(endless).pipe(
        Pipeline.join(Source.fromIterable("customers", sampleCustomers), { on: ["k", "g"], type: "right" }),
        Pipeline.to(Sink.collect("out")),
        Pipeline.run,
        Effect.flip
      )
      assert.strictEqual(error._tag, "BuildError")
      assert.include(error.message, "a right join emits the unmatched rows of customers when the input ends")
      const endlessLookup = yield* Pipeline.from(Source.fromIterable("orders", sampleOrders)).pipe(
        Pipeline.join(Source.make<Customer>({ ...Source.fromIterable("topic", sampleCustomers), bounded: false }), {
          on: ["k", "g"]
        }),
        Pipeline.to(Sink.collect("out")),
        Pipeline.run,
        Effect.flip
      )
      assert.include(endlessLookup.message, "topic never ends, so it cannot be loaded into a lookup table")
    })
  )

  it("merges both record types, the joined source's errors and services, and rejects name clashes", () => {
    interface User {
      readonly id: string
      readonly name: string
      readonly country: string | null
    }
    interface UsersDb {
      readonly _: "UsersDb"
    }
    interface UsersError {
      readonly _: "UsersError"
    }
    const users = Source.make<User, UsersError, UsersDb>({
      name: "users",
      type: "memory",
      description: "typed only",
      bounded: true,
      batches: () => Stream.empty
    })
    const flow = Pipeline.from(Source.fromIterable<Order>("orders", []))
    const inner = flow.pipe(Pipeline.join(users, { on: { k: "id" } }))
    expectTypeOf(inner).toEqualTypeOf<
      Pipeline.Flow<
        {
          readonly seq: number
          readonly k: string | null
          readonly g: number
          readonly v: number | null
          readonly name: string
          readonly country: string | null
        },
        UsersError,
        UsersDb
      >
    >()
    const full = flow.pipe(Pipeline.join(users, { on: { k: "id" }, type: "full", select: ["name"] }))
    expectTypeOf(full).toEqualTypeOf<
      Pipeline.Flow<
        {
          readonly seq: number | null
          readonly k: string | null
          readonly g: number | null
          readonly v: number | null
          readonly name: string | null
        },
        UsersError,
        UsersDb
      >
    >()
    const customerFlow = Pipeline.from(Source.fromIterable<Customer>("customers", []))
    // @ts-expect-error: both sides have `name`
    customerFlow.pipe(Pipeline.join(users, { on: { k: "id" } }))
    const renamed = customerFlow.pipe(
      Pipeline.join(users, { on: { k: "id" }, type: "left", rename: { name: "userName" } })
    )
    expectTypeOf(renamed).toExtend<
      Pipeline.Flow<{ readonly name: string; readonly userName: string | null }, UsersError, UsersDb>
    >()
    // @ts-expect-error: the joined side has no field `userId`
    flow.pipe(Pipeline.join(users, { on: { k: "userId" } }))
    // @ts-expect-error: refresh is for inner and left joins
    flow.pipe(Pipeline.join(users, { on: { k: "id" }, type: "full", refresh: "1 minute" }))
  })
})
