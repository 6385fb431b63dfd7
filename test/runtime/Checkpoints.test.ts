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
import * as Sink from "../../src/core/Sink.ts"
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

  it.effect("state per partition: each partition's windows are saved under their own key and restored with it", () =>
    Effect.gen(function* () {
      // Keyed by user: a user's events are in one partition. A last event per user, far ahead, closes its partition's
      // windows (each partition's windows close on its own watermark).
      const send = (cluster: KafkaClient.MemoryCluster, ids: ReadonlyArray<number>) =>
        Effect.gen(function* () {
          const producer = yield* KafkaClient.KafkaClient.use((c) => c.producer({ compression: "none" }))
          yield* producer.send(
            "events",
            ids.map((i) => ({
              key: new TextEncoder().encode(`u${i % 3}`),
              value: new TextEncoder().encode(
                JSON.stringify({
                  id: i,
                  user: `u${i % 3}`,
                  amount: i,
                  ts: i >= 900 ? BASE + 3_600_000 : BASE + i * 400
                })
              )
            }))
          )
        }).pipe(Effect.scoped, Effect.provide(KafkaClient.layerMemory(cluster)))
      const all = [...Array.from({ length: 100 }, (_, i) => i), 900, 901, 902]
      const byPartition = (groupId: string) =>
        pipeline(groupId).pipe(Pipeline.withStreaming({ stateScope: "partition" }))

      const once = KafkaClient.memory({ events: 2 }, { fetchSize: 7 })
      const onceDb = table()
      yield* send(once, all)
      yield* Pipeline.run(byPartition("g")).pipe(
        Effect.provide(Layer.mergeAll(KafkaClient.layerMemory(once), Postgres.layerMemory(onceDb), sharedStore().layer))
      )
      const expected = rowsOf(onceDb)
      // The same windows as one state for the pipeline gives (a user's events are in one partition).
      const whole = KafkaClient.memory({ events: 2 }, { fetchSize: 7 })
      const wholeDb = table()
      yield* send(whole, all)
      yield* Pipeline.run(pipeline("g")).pipe(
        Effect.provide(
          Layer.mergeAll(KafkaClient.layerMemory(whole), Postgres.layerMemory(wholeDb), sharedStore().layer)
        )
      )
      assert.deepStrictEqual(expected, rowsOf(wholeDb))
      assert.isAbove(expected.length, 10)

      const split = KafkaClient.memory({ events: 2 }, { fetchSize: 7 })
      const splitDb = table()
      const store = sharedStore()
      const layer = Layer.mergeAll(KafkaClient.layerMemory(split), Postgres.layerMemory(splitDb), store.layer)
      yield* send(split, all.slice(0, 43))
      const first = yield* Pipeline.run(byPartition("g1")).pipe(Effect.provide(layer))
      assert.strictEqual(first.records.read, 43)
      assert.isUndefined(yield* store.kv.get("pipeline:totals"))
      const saved = yield* Effect.forEach(["events/0", "events/1"], (part) =>
        Effect.map(store.kv.get(`pipeline:totals@${part}`), (json) => JSON.parse(json!) as State.Snapshot)
      )
      assert.strictEqual(
        saved.reduce((n, snap, i) => n + Number(snap.resume[`events/${i}`]), 0),
        43
      )
      for (const snap of saved) assert.deepStrictEqual(Object.keys(snap.stages), ["aggregate"])
      assert.isBelow(rowsOf(splitDb).length, expected.length)

      yield* send(split, all.slice(43))
      const second = yield* Pipeline.run(byPartition("g2")).pipe(Effect.provide(layer))
      assert.strictEqual(second.records.read, all.length - 43)
      assert.deepStrictEqual(rowsOf(splitDb), expected)
    }).pipe(Effect.provideService(StopSignal, Effect.never))
  )

  it.effect("a partition's state saved by another spec is refused with a message that names the stage and part", () =>
    Effect.gen(function* () {
      const cluster = KafkaClient.memory({ events: 1 })
      yield* produce(cluster, [1, 2, 3])
      const store = sharedStore()
      yield* store.kv.set(
        "pipeline:totals@events/0",
        JSON.stringify({
          version: 1,
          pipeline: "totals@events/0",
          resume: { "events/0": "1" },
          stages: { aggregate: { fingerprint: "something else" } },
          savedAt: new Date(0).toISOString()
        })
      )
      const error = yield* Pipeline.run(pipeline("g").pipe(Pipeline.withStreaming({ stateScope: "partition" }))).pipe(
        Effect.provide(Layer.mergeAll(KafkaClient.layerMemory(cluster), Postgres.layerMemory(table()), store.layer)),
        Effect.flip
      )
      assert.include(error.message, 'the checkpoint to resume from holds the state of a stage "aggregate"')
      assert.include(error.message, "(the state of events/0)")
      assert.isFalse(error.retryable)
    }).pipe(Effect.provideService(StopSignal, Effect.never))
  )

  it.effect("an interval join refuses state per partition", () =>
    Effect.gen(function* () {
      const cluster = KafkaClient.memory({ events: 1, other: 1 })
      const source = (topic: string) =>
        Kafka.source({
          topics: [topic],
          groupId: "g",
          bounded: false,
          value: { type: "json" },
          schema: RecordSchema.fromSchema(Event)
        })
      const error = yield* Pipeline.from(source("events")).pipe(
        Pipeline.intervalJoin(Pipeline.from(source("other")), {
          leftKey: "user",
          rightKey: "user",
          leftTime: "ts",
          rightTime: "ts",
          between: ["-1 minute", "1 minute"],
          as: "other"
        }),
        Pipeline.to(Sink.collect("out")),
        Pipeline.named("joined"),
        Pipeline.withStreaming({ stateScope: "partition" }),
        Pipeline.run,
        Effect.provide(Layer.mergeAll(KafkaClient.layerMemory(cluster), sharedStore().layer)),
        Effect.flip
      )
      assert.include(error.message, "one state for the whole pipeline, not one per partition")
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
