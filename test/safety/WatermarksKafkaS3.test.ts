import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Kafka from "../../src/connectors/kafka/Kafka.ts"
import * as KafkaClient from "../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../src/connectors/kafka/NodeKafka.ts"
import * as NodeS3 from "../../src/connectors/s3/NodeS3.ts"
import * as S3 from "../../src/connectors/s3/S3.ts"
import * as S3Client from "../../src/connectors/s3/S3Client.ts"
import type { DeadLetter } from "../../src/core/DeadLetter.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Agg from "../../src/transforms/Aggregate.ts"
import * as Window from "../../src/transforms/Window.ts"
import { KafkaBroker, uniqueTopic } from "../support/KafkaBroker.ts"
import { S3Server, uniqueBucket } from "../support/S3Server.ts"

interface Tx {
  readonly id: number
  readonly user: string
  readonly amount: number
  /** Epoch milliseconds. */
  readonly at: number
}

const HOUR = 3_600_000
const base = Date.parse("2026-03-01T00:00:00Z")

/** Records over two days, in event-time order: any subsequence of them (a partition, an object) is in order too. */
const transactions = (n: number): Array<Tx> =>
  Array.from({ length: n }, (_, i) => ({
    id: i,
    user: `u${(i * 7) % 40}`,
    amount: (i % 100) + 1,
    at: base + Math.floor((i * 48 * HOUR) / n)
  }))

/** Per user and hour: how many records and their total, from the records themselves. */
const expectedWindows = (records: ReadonlyArray<Tx>) => {
  const out = new Map<string, { n: number; total: number }>()
  for (const r of records) {
    const start = Math.floor(r.at / HOUR) * HOUR
    const key = `${r.user} ${start} ${start + HOUR}`
    const w = out.get(key) ?? { n: 0, total: 0 }
    w.n++
    w.total += r.amount
    out.set(key, w)
  }
  return [...out.entries()].map(([k, v]) => `${k} ${v.n} ${v.total}`).sort()
}

/** Hourly windows with an hour of allowed lateness, counted and summed per user, into memory; dead letters too. */
const hourly = <E, R>(source: Source.Source<Tx, E, R>) =>
  Effect.gen(function* () {
    const out = Sink.collect<{ user: string; windowStart: Date; windowEnd: Date; n: number; total: number }>("out")
    const dead = Sink.collect<DeadLetter>("dead")
    const report = yield* Pipeline.from(source).pipe(
      Pipeline.window(Window.tumbling("1 hour", { time: "at", allowedLateness: "1 hour" })),
      Pipeline.aggregate({
        groupBy: ["user", "windowStart", "windowEnd"],
        fields: { n: Agg.count(), total: Agg.sum("amount") }
      }),
      Pipeline.to(out),
      Pipeline.withDeadLetters(dead),
      Pipeline.run
    )
    const windows = out
      .collected()
      .records.map((w) => `${w.user} ${w.windowStart.getTime()} ${w.windowEnd.getTime()} ${w.n} ${w.total}`)
      .sort()
    return { report, windows, dead: dead.collected().records.map((d) => d.message) }
  })

const services = Layer.merge(
  Layer.unwrap(Effect.map(KafkaBroker, (broker) => NodeKafka.layer({ brokers: broker.brokers }))).pipe(
    Layer.provide(KafkaBroker.layer)
  ),
  Layer.unwrap(Effect.map(S3Server, (server) => NodeS3.layer(server.options))).pipe(Layer.provide(S3Server.layer))
)

layer(services, { timeout: 120_000, excludeTestServices: true })("watermarks per input part (Kafka, S3)", (it) => {
  it.effect("a 4-partition topic, each partition in time order, keeps every on-time record", () =>
    Effect.gen(function* () {
      const topic = uniqueTopic("watermarks")
      const data = transactions(20_000)
      yield* KafkaClient.KafkaClient.use((c) => c.createTopic(topic, { partitions: 4 }))
      yield* Pipeline.from(Source.fromIterable("seed", data, { batchSize: 2000 })).pipe(
        Pipeline.to(Kafka.sink<Tx>({ topic, mode: "upsert", key: ["user"], value: { type: "json" } })),
        Pipeline.run
      )
      const offsets = yield* KafkaClient.KafkaClient.use((c) => c.partitionOffsets(topic))
      assert.deepStrictEqual(
        offsets.map((o) => Number(o.high) > 0),
        [true, true, true, true]
      )
      const { report, windows, dead } = yield* hourly(
        Kafka.source<Tx>({ topics: [topic], groupId: uniqueTopic("etl"), start: "earliest", value: { type: "json" } })
      )
      assert.deepStrictEqual(dead, [])
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(report.records.read, data.length)
      assert.strictEqual(report.records.rejected, 0)
      assert.deepStrictEqual(windows, expectedWindows(data))
    })
  )

  it.effect("an S3 prefix of 6 objects read 4 at a time keeps every on-time record", () =>
    Effect.gen(function* () {
      const bucket = uniqueBucket("watermarks")
      const data = transactions(12_000)
      yield* S3Client.S3Client.use((c) => c.createBucket(bucket))
      for (let o = 0; o < 6; o++) {
        const lines = data.filter((t) => t.id % 6 === o).map((t) => `${JSON.stringify(t)}\n`)
        yield* S3Client.S3Client.use((c) =>
          c.put(bucket, `events/part-${o}.jsonl`, new TextEncoder().encode(lines.join("")))
        )
      }
      const { report, windows, dead } = yield* hourly(
        S3.source<Tx>({ bucket, path: "events", concurrency: 4, batchSize: 500 })
      )
      assert.deepStrictEqual(dead, [])
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(report.records.read, data.length)
      assert.deepStrictEqual(windows, expectedWindows(data))
    })
  )
})
