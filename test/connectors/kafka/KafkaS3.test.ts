import { assert, layer } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Records from "../../../src/config/Records.ts"
import * as Kafka from "../../../src/connectors/kafka/Kafka.ts"
import * as KafkaClient from "../../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../../src/connectors/kafka/NodeKafka.ts"
import * as NodeS3 from "../../../src/connectors/s3/NodeS3.ts"
import * as S3 from "../../../src/connectors/s3/S3.ts"
import * as S3Client from "../../../src/connectors/s3/S3Client.ts"
import type { DeadLetter } from "../../../src/core/DeadLetter.ts"
import type { RecordSchema } from "../../../src/core/RecordSchema.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../../../src/schema/AvroBridge.ts"
import type * as AvroSchema from "../../../src/schema/AvroSchema.ts"
import * as SchemaRegistry from "../../../src/schema/SchemaRegistry.ts"
import { KafkaBroker } from "../../support/KafkaBroker.ts"
import { S3Server } from "../../support/S3Server.ts"
import { type Tx, transactionAvsc, transactions } from "./KafkaConformance.ts"

const suffix = () => crypto.randomUUID().slice(0, 8)
const avroType = AvroBridge.toAvroType(transactionAvsc as unknown as AvroSchema.Schema)

const transactionSchema = Effect.gen(function* () {
  const registry = yield* SchemaRegistry.SchemaRegistry
  // The registry validates against the contract; records come out as Tx.
  return Records.fromEntry(yield* registry.get("transaction")) as unknown as RecordSchema<Tx>
}).pipe(Effect.provide(SchemaRegistry.layerMemory({ transaction: transactionAvsc })))

const collect = <A>(source: Source.Source<A, unknown, KafkaClient.KafkaClient | S3Client.S3Client>) =>
  Effect.gen(function* () {
    const out = Sink.collect<A>("out")
    const dead = Sink.collect<DeadLetter>("dead")
    const report = yield* Pipeline.from(source).pipe(Pipeline.to(out), Pipeline.withDeadLetters(dead), Pipeline.run)
    return { records: out.collected().records, dead: dead.collected().records, report }
  })

const plain = (t: Tx) => ({ ...t, amount: BigDecimal.format(t.amount), eventTime: t.eventTime.toISOString() })

const integration = (label: string, services: Layer.Layer<KafkaClient.KafkaClient | S3Client.S3Client, unknown>) =>
  layer(services, { timeout: 120_000, excludeTestServices: true })(label, (it) => {
    it.effect(
      "Kafka (Avro) → filter and map → S3 (Avro part objects), read back by the S3 source; offsets committed",
      () =>
        Effect.gen(function* () {
          const topic = `tx-${suffix()}`
          const group = `etl-${suffix()}`
          const bucket = `lake-${suffix()}`
          yield* KafkaClient.KafkaClient.use((c) => c.createTopic(topic, { partitions: 3 }))
          yield* S3Client.S3Client.use((c) => c.createBucket(bucket))
          const data = transactions(400)
          yield* Pipeline.from(Source.fromIterable("seed", data, { batchSize: 50 })).pipe(
            Pipeline.to(
              Kafka.sink<Tx>({
                topic,
                mode: "upsert",
                key: ["userId"],
                value: { type: "avro", schema: transactionAvsc }
              })
            ),
            Pipeline.run
          )
          const schema = { ...(yield* transactionSchema), avro: avroType }
          const report = yield* Pipeline.from(
            Kafka.source<Tx>({ topics: [topic], groupId: group, value: { type: "avro", schema: transactionAvsc } })
          ).pipe(
            Pipeline.filter((t: Tx) => t.status === "settled"),
            Pipeline.map((t: Tx) => ({ ...t, merchant: t.merchant ?? "unknown" })),
            Pipeline.to(
              S3.sink<Tx>({
                bucket,
                path: "settled",
                format: { type: "avro", codec: "deflate" },
                mode: "overwrite",
                schema,
                maxRecordsPerObject: 40
              })
            ),
            Pipeline.run
          )
          assert.strictEqual(report.records.read, 400)
          assert.strictEqual(report.records.written, 100)
          const back = yield* collect(S3.source<Tx>({ bucket, path: "settled", schema }))
          const expected = data
            .filter((t) => t.status === "settled")
            .map((t) => plain({ ...t, merchant: t.merchant ?? "unknown" }))
          const sort = (xs: ReadonlyArray<ReturnType<typeof plain>>) =>
            [...xs].sort((a, b) => a.transactionId.localeCompare(b.transactionId))
          assert.deepStrictEqual(sort(back.records.map(plain)), sort(expected))
          const committed = yield* KafkaClient.KafkaClient.use((c) => c.committedOffsets(group, topic))
          assert.strictEqual(
            committed.reduce((n, c) => n + Number(c.offset ?? 0), 0),
            400
          )
        })
    )

    it.effect(
      "S3 (CSV) → Kafka (Confluent-framed Avro); invalid rows become dead letters naming object and record",
      () =>
        Effect.gen(function* () {
          const topic = `tx-cf-${suffix()}`
          const bucket = `in-${suffix()}`
          yield* KafkaClient.KafkaClient.use((c) => c.createTopic(topic, { partitions: 2 }))
          yield* S3Client.S3Client.use((c) => c.createBucket(bucket))
          const data = transactions(120)
          const header = "transactionId,userId,amount,currency,status,eventTime,merchant,category"
          const line = (t: Tx) =>
            [
              t.transactionId,
              t.userId,
              BigDecimal.format(t.amount),
              t.currency,
              t.status,
              t.eventTime.toISOString(),
              t.merchant ?? "",
              ""
            ].join(",")
          const lines = data.map(line)
          lines.splice(10, 0, `${data[0]!.transactionId},u,not-a-number,EUR,settled,2026-11-26T00:00:00Z,,`)
          yield* S3Client.S3Client.use((c) =>
            Effect.all([
              c.put(bucket, "csv/a.csv", new TextEncoder().encode(`${header}\n${lines.slice(0, 61).join("\n")}\n`)),
              c.put(bucket, "csv/b.csv", new TextEncoder().encode(`${header}\n${lines.slice(61).join("\n")}\n`))
            ])
          )
          const schema = yield* transactionSchema
          const dead = Sink.collect<DeadLetter>("dead")
          const report = yield* Pipeline.from(
            S3.source<Tx>({ bucket, path: "csv", format: { type: "csv", emptyAsNull: true }, schema })
          ).pipe(
            Pipeline.to(
              Kafka.sink<Tx>({ topic, value: { type: "confluent", schemas: { 3: transactionAvsc }, writeId: 3 } })
            ),
            Pipeline.withDeadLetters(dead),
            Pipeline.run
          )
          assert.strictEqual(report.records.written, 120)
          assert.strictEqual(dead.collected().records.length, 1)
          assert.strictEqual(dead.collected().records[0]!.origin, `s3://${bucket}/csv/a.csv#11`)
          const back = yield* collect(
            Kafka.source<Tx>({
              topics: [topic],
              groupId: `g-${suffix()}`,
              start: "earliest",
              value: { type: "confluent", schemas: { 3: transactionAvsc } }
            })
          )
          const sort = (xs: ReadonlyArray<ReturnType<typeof plain>>) =>
            [...xs].sort((a, b) => a.transactionId.localeCompare(b.transactionId))
          assert.deepStrictEqual(sort(back.records.map(plain)), sort(data.map(plain)))
        })
    )
  })

integration(
  "Kafka and S3 together (memory clients)",
  Layer.suspend(() =>
    Layer.merge(KafkaClient.layerMemory(KafkaClient.memory()), S3Client.layerMemory(S3Client.memory()))
  )
)

integration(
  "Kafka and S3 together (real broker and S3Proxy)",
  Layer.merge(
    Layer.unwrap(Effect.map(KafkaBroker, (broker) => NodeKafka.layer({ brokers: broker.brokers }))).pipe(
      Layer.provide(KafkaBroker.layer)
    ),
    Layer.unwrap(Effect.map(S3Server, (server) => NodeS3.layer(server.options))).pipe(Layer.provide(S3Server.layer))
  )
)
