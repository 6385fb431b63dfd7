/**
 * The Kafka source/sink behaviours every Kafka client layer must show: run on the memory layer and on a real broker.
 */
import { assert, layer } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Kafka from "../../../src/connectors/kafka/Kafka.ts"
import { KafkaClient } from "../../../src/connectors/kafka/KafkaClient.ts"
import type { DeadLetter } from "../../../src/core/DeadLetter.ts"
import { LoadError } from "../../../src/core/Errors.ts"
import * as RecordSchema from "../../../src/core/RecordSchema.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import { makeRunContext } from "../../../src/core/Stage.ts"
import * as AvroWire from "../../../src/formats/AvroWire.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../../../src/schema/AvroBridge.ts"
import type * as AvroSchema from "../../../src/schema/AvroSchema.ts"

/** The transaction contract, for Avro payloads. */
export const transactionAvsc = {
  type: "record",
  name: "Transaction",
  namespace: "com.effectetl",
  fields: [
    { name: "transactionId", type: { type: "string", logicalType: "uuid" } },
    { name: "userId", type: "string" },
    { name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 18, scale: 2 } },
    { name: "currency", type: "string" },
    {
      name: "status",
      type: { type: "enum", name: "TransactionStatus", symbols: ["pending", "settled", "failed", "refunded"] }
    },
    { name: "eventTime", type: { type: "long", logicalType: "timestamp-millis" } },
    { name: "merchant", type: ["null", "string"], default: null },
    { name: "category", type: ["null", "string"], default: null }
  ]
} as const

/** A transaction record as Avro decodes it. */
export interface Tx {
  readonly transactionId: string
  readonly userId: string
  readonly amount: BigDecimal.BigDecimal
  readonly currency: string
  readonly status: "pending" | "settled" | "failed" | "refunded"
  readonly eventTime: Date
  readonly merchant: string | null
  readonly category: string | null
}

/** `n` transactions, deterministic. */
export const transactions = (n: number, from = 0): ReadonlyArray<Tx> =>
  Array.from({ length: n }, (_, k) => {
    const i = from + k
    return {
      transactionId: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
      userId: `user-${i % 7}`,
      amount: BigDecimal.fromStringUnsafe(`${(i * 13) % 1000}.${String(i % 100).padStart(2, "0")}`),
      currency: "EUR",
      status: (["pending", "settled", "failed", "refunded"] as const)[i % 4]!,
      eventTime: new Date(Date.UTC(2026, 10, 26, 0, 0, i)),
      merchant: i % 3 === 0 ? null : `m-${i}`,
      category: null
    }
  })

const Row = Schema.Struct({ id: Schema.Int, name: Schema.String })
type Row = typeof Row.Type
const rows = (n: number, from = 0): ReadonlyArray<Row> =>
  Array.from({ length: n }, (_, i) => ({ id: from + i, name: `n${from + i}` }))

const suffix = () => crypto.randomUUID().slice(0, 8)

const produce = <A>(topic: string, records: ReadonlyArray<A>, options?: Partial<Kafka.SinkOptions>) =>
  Pipeline.from(Source.fromIterable("seed", records, { batchSize: 25 })).pipe(
    Pipeline.to(Kafka.sink<A>({ topic, value: { type: "json" }, ...options })),
    Pipeline.run
  )

const readAll = <A>(source: Source.Source<A, unknown, KafkaClient>) =>
  Effect.gen(function* () {
    const out = Sink.collect<A>("out")
    const dead = Sink.collect<DeadLetter>("dead")
    const report = yield* Pipeline.from(source).pipe(Pipeline.to(out), Pipeline.withDeadLetters(dead), Pipeline.run)
    return { records: out.collected().records, dead: dead.collected().records, report }
  })

const createTopic = (topic: string, partitions: number) => KafkaClient.use((c) => c.createTopic(topic, { partitions }))

const byId = (a: Row, b: Row) => a.id - b.id

/** Runs the conformance suite on a Kafka client layer. */
export const conformance = (label: string, clientLayer: Layer.Layer<KafkaClient, unknown>) =>
  layer(clientLayer, { timeout: 120_000, excludeTestServices: true })(label, (it) => {
    it.effect("reads what the sink appended, then only new messages from the committed offsets", () =>
      Effect.gen(function* () {
        const topic = `rows-${suffix()}`
        const group = `g-${suffix()}`
        yield* createTopic(topic, 3)
        yield* produce(topic, rows(60))
        const source = Kafka.source<Row>({
          topics: [topic],
          groupId: group,
          value: { type: "json" },
          schema: RecordSchema.fromSchema(Row)
        })
        const first = yield* readAll(source)
        assert.deepStrictEqual([...first.records].sort(byId), rows(60))
        assert.strictEqual(first.report.records.read, 60)
        const again = yield* readAll(source)
        assert.strictEqual(again.records.length, 0)
        yield* produce(topic, rows(5, 60))
        const next = yield* readAll(source)
        assert.deepStrictEqual([...next.records].sort(byId), rows(5, 60))
      })
    )

    it.effect("keeps per-partition order and gives metadata with envelope: true; upsert keys by fields", () =>
      Effect.gen(function* () {
        const topic = `keyed-${suffix()}`
        yield* createTopic(topic, 2)
        yield* produce(topic, rows(40), { mode: "upsert", key: ["name"] })
        const { records } = yield* readAll(
          Kafka.source<Row>({
            topics: [topic],
            groupId: `g-${suffix()}`,
            start: "earliest",
            value: { type: "json" },
            envelope: true
          })
        )
        assert.strictEqual(records.length, 40)
        for (const r of records) {
          assert.strictEqual(r.key, r.value.name)
          assert.strictEqual(r.topic, topic)
          assert.isTrue(r.timestamp > 0)
        }
        for (const partition of [0, 1]) {
          const offsets = records.filter((r) => r.partition === partition).map((r) => Number(r.offset))
          assert.deepStrictEqual(
            offsets,
            offsets.map((_, i) => i)
          )
          const ids = records.filter((r) => r.partition === partition).map((r) => r.value.id)
          assert.deepStrictEqual(
            ids,
            [...ids].sort((a, b) => a - b)
          )
        }
        // The same key always lands in the same partition (what compaction relies on).
        yield* produce(
          topic,
          rows(40).map((r) => ({ ...r, id: r.id + 1000 })),
          { mode: "upsert", key: ["name"] }
        )
        const all = yield* readAll(
          Kafka.source<Row>({
            topics: [topic],
            groupId: `g-${suffix()}`,
            start: "earliest",
            value: { type: "json" },
            envelope: true
          })
        )
        const partitionOf = new Map<string, number>()
        for (const r of all.records) {
          const seen = partitionOf.get(r.value.name)
          if (seen !== undefined) assert.strictEqual(r.partition, seen)
          partitionOf.set(r.value.name, r.partition)
        }
      })
    )

    it.effect("round-trips Avro binary and Confluent-framed Avro with logical types", () =>
      Effect.gen(function* () {
        const avroTopic = `tx-avro-${suffix()}`
        const confluentTopic = `tx-cf-${suffix()}`
        yield* createTopic(avroTopic, 2)
        yield* createTopic(confluentTopic, 1)
        const data = transactions(50)
        yield* produce(avroTopic, data, { value: { type: "avro", schema: transactionAvsc } })
        yield* produce(confluentTopic, data, {
          value: { type: "confluent", schemas: { 42: transactionAvsc }, writeId: 42 }
        })
        const avro = yield* readAll(
          Kafka.source<Tx>({
            topics: [avroTopic],
            groupId: `g-${suffix()}`,
            start: "earliest",
            value: { type: "avro", schema: transactionAvsc }
          })
        )
        const sort = (xs: ReadonlyArray<Tx>) => [...xs].sort((a, b) => a.transactionId.localeCompare(b.transactionId))
        assert.deepStrictEqual(sort(avro.records), sort(data))
        assert.instanceOf(avro.records[0]!.eventTime, Date)
        const framed = yield* readAll(
          Kafka.source<Tx>({
            topics: [confluentTopic],
            groupId: `g-${suffix()}`,
            start: "earliest",
            value: { type: "confluent", schemas: { 42: transactionAvsc } }
          })
        )
        assert.deepStrictEqual(framed.records, data)
        const raw = yield* readAll(
          Kafka.source<Uint8Array>({
            topics: [confluentTopic],
            groupId: `g-${suffix()}`,
            start: "earliest",
            value: { type: "bytes" }
          })
        )
        const header = AvroWire.unframe(raw.records[0]!)
        assert.isTrue(header.ok && header.schemaId === 42)
      })
    )

    it.effect(
      "sends a corrupt Avro message to the dead letters with topic, partition and offset; the rest is delivered",
      () =>
        Effect.gen(function* () {
          const topic = `corrupt-${suffix()}`
          yield* createTopic(topic, 1)
          const type = AvroBridge.toAvroType(transactionAvsc as unknown as AvroSchema.Schema)
          const good = transactions(10)
          const payloads: Array<Uint8Array> = good.map((t) => type.toBuffer(t))
          payloads.splice(4, 0, Uint8Array.from([0xff, 0x01, 0x02]))
          yield* produce(topic, payloads, { value: { type: "bytes" } })
          const { records, dead, report } = yield* readAll(
            Kafka.source<Tx>({
              topics: [topic],
              groupId: `g-${suffix()}`,
              start: "earliest",
              value: { type: "avro", schema: transactionAvsc }
            })
          )
          assert.deepStrictEqual(records, good)
          assert.strictEqual(dead.length, 1)
          assert.strictEqual(dead[0]!.origin, `${topic}/0@4`)
          assert.strictEqual(dead[0]!.reason, "decode-error")
          assert.include(dead[0]!.message, "invalid Avro payload")
          assert.strictEqual(report.records.rejected, 1)
        })
    )

    it.effect("does not commit offsets when the sink fails", () =>
      Effect.gen(function* () {
        const topic = `nocommit-${suffix()}`
        const group = `g-${suffix()}`
        yield* createTopic(topic, 2)
        yield* produce(topic, rows(20))
        const failing = Sink.make<Row, LoadError>({
          name: "failing",
          type: "memory",
          description: "fails",
          mode: "append",
          durability: "per-write",
          open: Effect.succeed({
            write: () => Effect.fail(new LoadError({ stage: "failing", message: "disk full", retryable: false })),
            commit: Effect.succeed({ written: 0 })
          })
        })
        const source = Kafka.source<Row>({ topics: [topic], groupId: group, value: { type: "json" } })
        const result = yield* Pipeline.from(source).pipe(
          Pipeline.to(failing),
          Pipeline.withRetry({ attempts: 1, initialDelay: "1 millis", factor: 1 }),
          Pipeline.run,
          Effect.flip
        )
        assert.include(result.message, "disk full")
        const committed = yield* KafkaClient.use((c) => c.committedOffsets(group, topic))
        assert.deepStrictEqual(
          committed.map((c) => c.offset),
          [undefined, undefined]
        )
        const { records } = yield* readAll(source)
        assert.strictEqual(records.length, 20)
        const after = yield* KafkaClient.use((c) => c.committedOffsets(group, topic))
        assert.strictEqual(
          after.reduce((n, c) => n + Number(c.offset), 0),
          20
        )
      })
    )

    it.effect("does not commit offsets when the sink's final commit fails, and a retry reads everything again", () =>
      Effect.gen(function* () {
        const topic = `nocommit2-${suffix()}`
        const group = `g-${suffix()}`
        yield* createTopic(topic, 2)
        yield* produce(topic, rows(30))
        let commits = 0
        const flaky = Sink.make<Row, LoadError>({
          name: "flaky",
          type: "memory",
          description: "the first commit fails",
          mode: "append",
          durability: "on-commit",
          open: Effect.sync(() => {
            let staged = 0
            return {
              write: (records) =>
                Effect.sync(() => {
                  staged += records.length
                }),
              commit: Effect.suspend(() =>
                commits++ === 0
                  ? Effect.fail(new LoadError({ stage: "flaky", message: "commit lost", retryable: true }))
                  : Effect.succeed({ written: staged })
              )
            }
          })
        })
        const source = Kafka.source<Row>({ topics: [topic], groupId: group, value: { type: "json" } })
        const failed = yield* Pipeline.from(source).pipe(
          Pipeline.to(flaky),
          Pipeline.withRetry({ attempts: 1, initialDelay: "1 millis", factor: 1 }),
          Pipeline.run,
          Effect.flip
        )
        assert.include(failed.message, "commit lost")
        const committed = yield* KafkaClient.use((c) => c.committedOffsets(group, topic))
        assert.deepStrictEqual(
          committed.map((c) => c.offset),
          [undefined, undefined]
        )
        const report = yield* Pipeline.from(source).pipe(Pipeline.to(flaky), Pipeline.run)
        assert.strictEqual(report.records.written, 30)
        const after = yield* KafkaClient.use((c) => c.committedOffsets(group, topic))
        assert.strictEqual(
          after.reduce((n, c) => n + Number(c.offset), 0),
          30
        )
      })
    )

    it.effect("starts at latest, at a timestamp, or at explicit offsets; reads a topic pattern", () =>
      Effect.gen(function* () {
        const base = `start-${suffix()}`
        const topic = `${base}-a`
        yield* createTopic(topic, 1)
        yield* produce(topic, rows(30))
        const read = (start: Kafka.StartPosition, topics: ReadonlyArray<string> | RegExp = [topic]) =>
          Effect.map(
            readAll(
              Kafka.source<Row>({ topics, groupId: `g-${suffix()}`, start, value: { type: "json" }, envelope: true })
            ),
            (r) => r.records
          )
        assert.strictEqual((yield* read("latest")).length, 0)
        const all = yield* read("earliest")
        const t = all[12]!.timestamp
        const fromTime = yield* read({ timestamp: t })
        assert.deepStrictEqual(
          fromTime.map((r) => r.value.id),
          all.filter((r) => r.timestamp >= t).map((r) => r.value.id)
        )
        const fromOffset = yield* read({ offsets: { [topic]: { 0: 25 } } })
        assert.deepStrictEqual(
          fromOffset.map((r) => r.value.id),
          [25, 26, 27, 28, 29]
        )
        yield* createTopic(`${base}-b`, 1)
        yield* produce(`${base}-b`, rows(3, 100))
        const pattern = yield* read("earliest", new RegExp(`^${base}-`))
        assert.strictEqual(pattern.length, 33)
      })
    )

    it.effect("an upsert sink without key fields fails with a clear message", () =>
      Effect.gen(function* () {
        const topic = `nokey-${suffix()}`
        yield* createTopic(topic, 1)
        const error = yield* Effect.flip(produce(topic, rows(1), { mode: "upsert" }))
        assert.include(error.message, "needs the record fields of the message key")
      })
    )

    it.effect("a bounded source tells how many messages it will read; a streaming one tells nothing", () =>
      Effect.gen(function* () {
        const topic = `size-${suffix()}`
        const group = `g-${suffix()}`
        yield* createTopic(topic, 3)
        yield* produce(topic, rows(60))
        const source = (start: Kafka.StartPosition, bounded = true) =>
          Kafka.source<Row>({ topics: [topic], groupId: group, start, bounded, value: { type: "json" } })
        assert.deepStrictEqual(yield* source("earliest").size!, { records: 60 })
        assert.deepStrictEqual(yield* source("latest").size!, { records: 0 })
        assert.deepStrictEqual(yield* source("committed").size!, { records: 60 })
        yield* readAll(source("committed"))
        yield* produce(topic, rows(5, 60))
        assert.deepStrictEqual(yield* source("committed").size!, { records: 5 })
        assert.isUndefined(source("earliest", false).size)
      })
    )

    it.effect("each fetched batch sets the consumer lag gauge of its partition", () =>
      Effect.gen(function* () {
        const topic = `lag-${suffix()}`
        yield* createTopic(topic, 1)
        yield* produce(topic, rows(100))
        const source = Kafka.source<Row>({
          topics: [topic],
          groupId: `g-${suffix()}`,
          start: "earliest",
          value: { type: "json" },
          maxBytesPerPartition: 1024
        })
        const [first] = yield* Stream.runCollect(
          Stream.take(source.batches(makeRunContext({ runId: "r", pipeline: "p", now: () => 0 })), 1)
        )
        const read = first!.records.length
        assert.isAbove(read, 0)
        assert.isBelow(read, 100)
        const lag = yield* Metric.value(Metric.withAttributes(Kafka.consumerLag, { topic, partition: "0" }))
        assert.strictEqual(lag.value, 100 - read)
        const snapshot = (yield* Metric.snapshot).find(
          (m) => m.id === "etl_kafka_consumer_lag" && m.attributes?.topic === topic
        )
        assert.deepStrictEqual(snapshot?.attributes, { topic, partition: "0" })
        yield* first!.ack
      }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
    )
  })
