import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as KeyValueStore from "effect/persistence/KeyValueStore"
import * as Schema from "effect/Schema"
import * as Kafka from "../../src/connectors/kafka/Kafka.ts"
import * as KafkaClient from "../../src/connectors/kafka/KafkaClient.ts"
import * as Postgres from "../../src/connectors/postgres/Postgres.ts"
import * as SqlMemory from "../../src/connectors/sql/SqlMemory.ts"
import * as RecordSchema from "../../src/core/RecordSchema.ts"
import * as State from "../../src/core/State.ts"
import { StopSignal } from "../../src/core/Stop.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Agg from "../../src/transforms/Aggregate.ts"
import * as Window from "../../src/transforms/Window.ts"

const Event = Schema.Struct({ id: Schema.Number, user: Schema.String, amount: Schema.Number, ts: Schema.Number })
const Total = Schema.Struct({
  windowStart: Schema.Date,
  windowEnd: Schema.Date,
  user: Schema.String,
  n: Schema.Number,
  total: Schema.Number
})
const BASE = Date.UTC(2026, 0, 1)

const produce = (cluster: KafkaClient.MemoryCluster, ids: ReadonlyArray<number>) =>
  Effect.gen(function* () {
    const producer = yield* KafkaClient.KafkaClient.use((c) => c.producer({ compression: "none" }))
    yield* producer.send(
      "events",
      ids.map((i) => ({
        key: null,
        value: new TextEncoder().encode(
          // 2.5 events per second; a last event far ahead closes every window before it.
          JSON.stringify({ id: i, user: `u${i % 3}`, amount: i, ts: i === 999 ? BASE + 3_600_000 : BASE + i * 400 })
        )
      }))
    )
  }).pipe(Effect.scoped, Effect.provide(KafkaClient.layerMemory(cluster)))

const pipeline = (groupId: string) =>
  Pipeline.from(
    Kafka.source({
      topics: ["events"],
      groupId,
      start: "earliest",
      bounded: false,
      value: { type: "json" },
      schema: RecordSchema.fromSchema(Event)
    })
  ).pipe(
    Pipeline.window(Window.tumbling("10 seconds", { time: "ts" })),
    Pipeline.aggregate({
      groupBy: ["windowStart", "windowEnd", "user"],
      fields: { n: Agg.count(), total: Agg.sum("amount") }
    }),
    Pipeline.to(Postgres.table("totals", Total, { mode: "upsert", keys: ["windowStart", "user"] })),
    Pipeline.named("totals"),
    Pipeline.withStreaming({ commitInterval: "1 hour" })
  )

const table = () =>
  SqlMemory.memory({
    tables: {
      totals: {
        columns: { windowStart: "timestamptz", windowEnd: "timestamptz", user: "text", n: "bigint", total: "float" },
        keys: [["windowStart", "user"]]
      }
    }
  })

const sharedStore = () => {
  const kv = Effect.runSync(Effect.provide(Effect.service(KeyValueStore.KeyValueStore), KeyValueStore.layerMemory))
  return { kv, layer: Layer.succeed(State.StateStore, State.fromKeyValueStore(kv, "memory")) }
}

const rowsOf = (db: SqlMemory.MemoryDatabase) =>
  db.tables
    .get("totals")!
    .rows.map((r) => `${(r.windowStart as Date).toISOString()} ${r.user} n=${r.n} total=${r.total}`)
    .sort()

describe("checkpointed window state (memory broker, table and state store)", () => {
  it.effect("a stream stopped and restarted ends with the windows of a stream that never stopped", () =>
    Effect.gen(function* () {
      const all = [...Array.from({ length: 100 }, (_, i) => i), 999]

      const once = KafkaClient.memory({ events: 1 }, { fetchSize: 7 })
      const onceDb = table()
      yield* produce(once, all)
      yield* Pipeline.run(pipeline("g")).pipe(
        Effect.provide(Layer.mergeAll(KafkaClient.layerMemory(once), Postgres.layerMemory(onceDb), sharedStore().layer))
      )
      const expected = rowsOf(onceDb)
      assert.isAbove(expected.length, 10)

      const split = KafkaClient.memory({ events: 1 }, { fetchSize: 7 })
      const splitDb = table()
      const store = sharedStore()
      const layer = Layer.mergeAll(KafkaClient.layerMemory(split), Postgres.layerMemory(splitDb), store.layer)
      yield* produce(split, all.slice(0, 43))
      const first = yield* Pipeline.run(pipeline("g1")).pipe(Effect.provide(layer))
      assert.strictEqual(first.records.read, 43)
      const saved = JSON.parse((yield* store.kv.get("pipeline:totals"))!) as State.Snapshot
      assert.deepStrictEqual(saved.resume, { "events/0": "43" })
      assert.includeMembers(Object.keys(saved.stages), ["aggregate"])
      // The window open at the stop was kept, not emitted half full.
      assert.isBelow(rowsOf(splitDb).length, expected.length)

      yield* produce(split, all.slice(43))
      // Another group, "earliest": the checkpoint's positions still win.
      const second = yield* Pipeline.run(pipeline("g2")).pipe(Effect.provide(layer))
      assert.strictEqual(second.records.read, all.length - 43)
      assert.deepStrictEqual(rowsOf(splitDb), expected)
    }).pipe(Effect.provideService(StopSignal, Effect.never))
  )

  it.effect("a checkpoint saved by another spec is refused with a message that names the stage", () =>
    Effect.gen(function* () {
      const cluster = KafkaClient.memory({ events: 1 })
      const store = sharedStore()
      yield* store.kv.set(
        "pipeline:totals",
        JSON.stringify({
          version: 1,
          pipeline: "totals",
          resume: {},
          stages: { aggregate: { fingerprint: "something else" } },
          savedAt: new Date(0).toISOString()
        })
      )
      const report = yield* Pipeline.run(pipeline("g")).pipe(
        Effect.provide(Layer.mergeAll(KafkaClient.layerMemory(cluster), Postgres.layerMemory(table()), store.layer)),
        Effect.flip
      )
      assert.include(report.message, 'the checkpoint to resume from holds the state of a stage "aggregate"')
    }).pipe(Effect.provideService(StopSignal, Effect.never))
  )
})
