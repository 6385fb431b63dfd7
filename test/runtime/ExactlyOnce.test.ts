import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Kafka from "../../src/connectors/kafka/Kafka.ts"
import * as KafkaClient from "../../src/connectors/kafka/KafkaClient.ts"
import * as Postgres from "../../src/connectors/postgres/Postgres.ts"
import * as SqlMemory from "../../src/connectors/sql/SqlMemory.ts"
import * as Checkpoint from "../../src/core/Checkpoint.ts"
import * as RecordSchema from "../../src/core/RecordSchema.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"

const Order = Schema.Struct({ id: Schema.Number, amount: Schema.Number })

const produce = (cluster: KafkaClient.MemoryCluster, topic: string, from: number, to: number) =>
  Effect.gen(function* () {
    const client = yield* KafkaClient.KafkaClient
    const producer = yield* client.producer({ compression: "none" })
    const messages = []
    for (let i = from; i < to; i++)
      messages.push({ key: null, value: new TextEncoder().encode(JSON.stringify({ id: i, amount: i * 2 })) })
    yield* producer.send(topic, messages)
  }).pipe(Effect.scoped, Effect.provide(KafkaClient.layerMemory(cluster)))

const pipeline = (groupId: string, mode: "append" | "upsert") =>
  Pipeline.from(
    Kafka.source({
      topics: ["orders"],
      groupId,
      start: "earliest",
      value: { type: "json" },
      schema: RecordSchema.fromSchema(Order)
    })
  ).pipe(
    Pipeline.to(Postgres.table("orders", Order, mode === "upsert" ? { mode, keys: ["id"] } : { mode: "append" })),
    Pipeline.named("orders-eo")
  )

const database = () =>
  SqlMemory.memory({
    tables: { orders: { rows: [], columns: { id: "bigint", amount: "float" }, keys: [["id"]] } }
  })

describe("exactly-once into a SQL table (memory client and broker)", () => {
  for (const mode of ["append", "upsert"] as const)
    it.effect(`${mode}: the positions are stored with the rows, and a new run resumes there, whatever the group`, () =>
      Effect.gen(function* () {
        const cluster = KafkaClient.memory({ orders: 2 }, { fetchSize: 7 })
        const db = database()
        const layer = Layer.mergeAll(KafkaClient.layerMemory(cluster), Postgres.layerMemory(db))
        yield* produce(cluster, "orders", 0, 100)
        const first = yield* Pipeline.run(pipeline("g1", mode)).pipe(Effect.provide(layer))
        assert.strictEqual(first.records.written, 100)
        const offsets = db.tables.get("etl_offsets")
        assert.isDefined(offsets)
        const stored = offsets!.rows.map((r) => `${r.pipeline} ${r.target} ${r.part}=${r.position}`).sort()
        const ends = ["0", "1"].map((p) => `orders/${p}`)
        assert.strictEqual(stored.length, 2)
        for (const part of ends) assert.isTrue(stored.some((s) => s.startsWith(`orders-eo orders ${part}=`)))
        const total = offsets!.rows.reduce((n, r) => n + Number(r.position), 0)
        assert.strictEqual(total, 100)

        // A new group has no committed offsets, and the source says "earliest": the stored positions still win.
        const second = yield* Pipeline.run(pipeline("g2", mode)).pipe(Effect.provide(layer))
        assert.strictEqual(second.records.read, 0)
        assert.strictEqual(db.tables.get("orders")!.rows.length, 100)

        yield* produce(cluster, "orders", 100, 130)
        const third = yield* Pipeline.run(pipeline("g3", mode)).pipe(Effect.provide(layer))
        assert.strictEqual(third.records.read, 30)
        const ids = db.tables
          .get("orders")!
          .rows.map((r) => Number(r.id))
          .sort((a, b) => a - b)
        assert.deepStrictEqual(
          ids,
          Array.from({ length: 130 }, (_, i) => i)
        )
      })
    )

  it.effect("offsets_table: false stores nothing, and the run goes by the group's offsets", () =>
    Effect.gen(function* () {
      const cluster = KafkaClient.memory({ orders: 1 })
      const db = database()
      const layer = Layer.mergeAll(KafkaClient.layerMemory(cluster), Postgres.layerMemory(db))
      yield* produce(cluster, "orders", 0, 10)
      const p = Pipeline.from(
        Kafka.source({
          topics: ["orders"],
          groupId: "g",
          start: "earliest",
          value: { type: "json" },
          schema: RecordSchema.fromSchema(Order)
        })
      ).pipe(Pipeline.to(Postgres.table("orders", Order, { offsetsTable: false })))
      yield* Pipeline.run(p).pipe(Effect.provide(layer))
      assert.isUndefined(db.tables.get("etl_offsets"))
    })
  )
})

describe("Checkpoint", () => {
  it("merges ranges per part: the smallest start, the largest end, compared as integers", () => {
    const merged = Checkpoint.merge(
      [{ part: "t/1", from: "9", to: "10" }],
      [
        { part: "t/1", from: "10", to: "100" },
        { part: "t/0", from: "5", to: "6" }
      ],
      undefined
    )
    assert.deepStrictEqual(merged, [
      { part: "t/0", from: "5", to: "6" },
      { part: "t/1", from: "9", to: "100" }
    ])
    assert.isTrue(Checkpoint.isBefore("9", "10"))
    assert.strictEqual(Checkpoint.max("99999999999999999999", "100000000000000000000"), "100000000000000000000")
  })
})
