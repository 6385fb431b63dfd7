import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import type * as Transforms from "../../src/config/Transforms.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as ConfigError from "../../src/core/ConfigError.ts"
import * as RecordSchema from "../../src/core/RecordSchema.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"

const Order = Schema.Struct({ orderId: Schema.String, orderedAt: Schema.String, amount: Schema.Number })
const Payment = Schema.Struct({ orderId: Schema.String, paidAt: Schema.String, paid: Schema.Number })

const lookup: Build.SchemaLookup = (name, path) =>
  name === "order"
    ? Effect.succeed(RecordSchema.fromSchema(Order, "order") as RecordSchema.RecordSchema<Transforms.AnyRecord>)
    : name === "payment"
      ? Effect.succeed(RecordSchema.fromSchema(Payment, "payment") as RecordSchema.RecordSchema<Transforms.AnyRecord>)
      : Effect.fail(ConfigError.single("p.json", path, `Unknown schema "${name}"`))

const base = {
  name: "paid-orders",
  source: { type: "file", path: "orders", schema: "order" },
  sink: { type: "file", path: "out", format: { type: "jsonl" } }
}

const castOrders = { type: "cast", fields: { orderedAt: "timestamp" } }

const join = (fields: Record<string, unknown>) => ({
  type: "interval_join",
  source: { type: "file", path: "payments", schema: "payment", name: "payments" },
  transforms: [{ type: "cast", fields: { paidAt: "timestamp" } }],
  key: "orderId",
  left_time: "orderedAt",
  right_time: "paidAt",
  between: ["-5 minutes", "0 minutes"],
  ...fields
})

/** The join with some keys left out (`undefined`). */
const without = (fields: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(join(fields)).filter(([, v]) => v !== undefined))

const issues = (transforms: ReadonlyArray<unknown>, extra: Record<string, unknown> = {}) =>
  Load.decode("p.json", { ...base, ...extra, transforms }).pipe(
    Effect.flatMap((config) => Build.build(config, { file: "p.json", schema: lookup })),
    Effect.flip,
    Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
  )

const lines = (rows: ReadonlyArray<unknown>) => rows.map((r) => JSON.stringify(r)).join("\n")

const orders = [
  { orderId: "o1", orderedAt: "2026-11-01T10:00:00Z", amount: 10 },
  { orderId: "o2", orderedAt: "2026-11-01T10:01:00Z", amount: 20 },
  { orderId: "o3", orderedAt: "2026-11-01T10:30:00Z", amount: 30 }
]
const payments = [
  { orderId: "o1", paidAt: "2026-11-01T09:56:00Z", paid: 10 },
  { orderId: "o1", paidAt: "2026-11-01T09:59:30Z", paid: 1 },
  { orderId: "o2", paidAt: "2026-11-01T10:02:00Z", paid: 20 },
  { orderId: "o3", paidAt: "2026-11-01T10:25:00Z", paid: 30 }
]

describe("interval_join in configs", () => {
  it.effect("rejects incomplete or contradictory interval joins with the JSON path of the problem", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* issues([castOrders, without({ key: undefined })]), [
        '$.transforms[1].left_key: An interval join needs its key: "key" (named alike on both sides) or both "left_key" and "right_key"'
      ])
      assert.deepStrictEqual(yield* issues([castOrders, join({ left_key: "orderId" })]), [
        '$.transforms[1].key: "key" names the key on both sides; leave out "left_key" and "right_key"'
      ])
      assert.deepStrictEqual(
        yield* issues([castOrders, without({ key: undefined, left_key: ["orderId"], right_key: ["orderId", "paid"] })]),
        ['$.transforms[1].right_key: "right_key" must name as many fields as "left_key" (compared in order)']
      )
      assert.deepStrictEqual(yield* issues([castOrders, join({ between: ["1 minute", "-1 minute"] })]), [
        '$.transforms[1].between: The interval is empty: "1 minute" is after "-1 minute"'
      ])
      assert.deepStrictEqual(yield* issues([castOrders, join({ between: ["-5 min", "0 minutes"] })]), [
        '$.transforms[1].between[0]: Expected a duration like "-5 minutes", "0 seconds" or "1 hour", got "-5 min"'
      ])
      assert.deepStrictEqual(yield* issues([castOrders, join({ kind: "left" })]), [
        '$.transforms[1].as: A left interval join needs "as": the field for the matched record, null when none matched'
      ])
      assert.deepStrictEqual(yield* issues([castOrders, join({ transforms: [{ type: "aggregate", fields: {} }] })]), [
        '$.transforms[1].transforms[0]: Unknown type "aggregate": expected one of filter, derive, select, rename, cast, validate'
      ])
    })
  )

  it.effect("checks field names on both sides, name clashes, and that batch mode joins bounded inputs only", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* issues([castOrders, join({ right_time: "paid_at" })]), [
        '$.transforms[1].right_time: Unknown field "paid_at"; records here have: orderId, paidAt, paid'
      ])
      assert.deepStrictEqual(
        yield* issues([castOrders, without({ key: undefined, left_key: "id", right_key: "orderId" })]),
        ['$.transforms[1].left_key: Unknown field "id"; records here have: orderId, orderedAt, amount']
      )
      assert.deepStrictEqual(
        yield* issues([castOrders, join({ transforms: [{ type: "rename", fields: { paid: "amount" } }] })]),
        [
          '$.transforms[1]: Both sides have field "amount": rename it on the second input ("transforms": [{"type": "rename", "fields": {"amount": "..."}}]), leave it out ("select"), or nest its records ("as")'
        ]
      )
      assert.deepStrictEqual(yield* issues([castOrders, join({ as: "amount" })]), [
        `$.transforms[1].as: The records already have a field "amount"; name the matched records' field otherwise`
      ])
      assert.deepStrictEqual(
        yield* issues([
          castOrders,
          join({
            source: {
              type: "kafka",
              brokers: ["localhost:9092"],
              topics: ["payments"],
              group_id: "g",
              bounded: false,
              value: { type: "json" }
            }
          })
        ]),
        [
          '$.transforms[1].source: A kafka source that never ends cannot be joined in batch mode; use "mode": "streaming" or make it bounded'
        ]
      )
    })
  )

  it.effect("builds and runs the same interval join the typed API describes", () =>
    Effect.gen(function* () {
      const config = yield* Load.decode("p.json", {
        ...base,
        transforms: [castOrders, join({ kind: "left", as: "payment" })]
      })
      const pipeline = yield* Build.build(config, { file: "p.json", schema: lookup })
      assert.deepStrictEqual(Pipeline.describe(pipeline).slice(1, 6), [
        "  source       source: files orders, schema order",
        "  transform    cast: cast orderedAt: timestamp",
        "  source       payments: files payments, schema payment",
        "  transform    cast#2: cast paidAt: timestamp",
        "  transform    interval_join: left interval join with payments on orderId, payments.paidAt in [orderedAt - 5m, orderedAt] as payment (late records rejected)"
      ])
      const files = FileStore.memory({ "orders/a.jsonl": lines(orders), "payments/a.jsonl": lines(payments) })
      const report = yield* Pipeline.run(pipeline).pipe(Effect.provide(FileStore.layerMemory(files)))
      assert.isTrue(report.reconciliation.ok)
      assert.strictEqual(report.records.read, 7)
      const written = FileStore.contents(files)
      const part = Array.from(written.keys()).find((k) => k.startsWith("out/part-"))!
      const fromConfig = new TextDecoder()
        .decode(written.get(part))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))

      const out = Sink.collect<Record<string, unknown>>("out")
      const typedOrders = orders.map((r) => ({ ...r, orderedAt: new Date(r.orderedAt) }))
      const typedPayments = payments.map((r) => ({ ...r, paidAt: new Date(r.paidAt) }))
      yield* Pipeline.from(Source.fromIterable("orders", typedOrders)).pipe(
        Pipeline.intervalJoin(Pipeline.from(Source.fromIterable("payments", typedPayments)), {
          leftKey: "orderId",
          rightKey: "orderId",
          leftTime: "orderedAt",
          rightTime: "paidAt",
          between: ["-5 minutes", "0 minutes"],
          type: "left",
          as: "payment"
        }),
        Pipeline.to(out),
        Pipeline.run
      )
      const typed = (JSON.parse(JSON.stringify(out.collected().records)) as Array<Record<string, unknown>>).sort(
        (a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))
      )
      assert.deepStrictEqual(fromConfig, typed)
      assert.deepStrictEqual(
        fromConfig.map((r) => [r.orderId, (r.payment as { readonly paid: number } | null)?.paid ?? null]),
        [
          ["o1", 10],
          ["o1", 1],
          ["o2", null],
          // Paid exactly 5 minutes before: the bounds are included.
          ["o3", 30]
        ]
      )
    })
  )

  it.effect("takes an idle timeout for the partitions of unbounded inputs", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* issues([castOrders, join({ idle_timeout: "0 seconds" })]), [
        '$.transforms[1].idle_timeout: Expected a duration above zero, got "0 seconds"'
      ])
      const config = yield* Load.decode("p.json", {
        ...base,
        transforms: [castOrders, join({ idle_timeout: "1 minute" })]
      })
      const pipeline = yield* Build.build(config, { file: "p.json", schema: lookup })
      assert.strictEqual(
        Pipeline.describe(pipeline)[5],
        "  transform    interval_join: inner interval join with payments on orderId, payments.paidAt in [orderedAt - 5m, orderedAt] (late records rejected, idle timeout 1m)"
      )
    })
  )
})
