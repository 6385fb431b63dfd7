import { assert, layer } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as FileStore from "../../../src/connectors/file/FileStore.ts"
import * as Kafka from "../../../src/connectors/kafka/Kafka.ts"
import { KafkaClient } from "../../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../../src/connectors/kafka/NodeKafka.ts"
import * as NodeS3 from "../../../src/connectors/s3/NodeS3.ts"
import * as S3 from "../../../src/connectors/s3/S3.ts"
import { S3Client } from "../../../src/connectors/s3/S3Client.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import { runExample } from "../../support/Examples.ts"
import { KafkaBroker } from "../../support/KafkaBroker.ts"
import { S3Server } from "../../support/S3Server.ts"
import { transactionAvsc, transactions } from "./KafkaConformance.ts"

const suffix = () => crypto.randomUUID().slice(0, 8)

const servers = Layer.mergeAll(KafkaBroker.layer, S3Server.layer, FileStore.layerMemory(FileStore.memory()))

layer(servers, { timeout: 120_000, excludeTestServices: true })(
  "examples/kafka-*.json and s3-*.json on the real servers",
  (it) => {
    const clients = Effect.gen(function* () {
      const broker = yield* KafkaBroker
      const s3 = yield* S3Server
      return Layer.merge(NodeKafka.layer({ brokers: broker.brokers }), NodeS3.layer(s3.options))
    })
    const envOf = Effect.gen(function* () {
      const broker = yield* KafkaBroker
      const s3 = yield* S3Server
      return {
        ETL_KAFKA_BROKERS: broker.brokers[0]!,
        ETL_S3_ENDPOINT: s3.options.endpoint ?? "",
        ETL_S3_ACCESS_KEY: Redacted.value(s3.options.accessKeyId!),
        ETL_S3_SECRET_KEY: Redacted.value(s3.options.secretAccessKey!)
      }
    })

    it.effect("kafka-transactions-to-s3.json moves settled Avro transactions to S3 Avro objects", () =>
      Effect.gen(function* () {
        const env = yield* envOf
        const topic = `transactions-${suffix()}`
        const bucket = `lake-${suffix()}`
        const data = transactions(200)
        yield* Effect.gen(function* () {
          yield* KafkaClient.use((c) => c.createTopic(topic, { partitions: 2 }))
          yield* S3Client.use((c) => c.createBucket(bucket))
          yield* Pipeline.from(Source.fromIterable("seed", data)).pipe(
            Pipeline.to(Kafka.sink({ topic, value: { type: "avro", schema: transactionAvsc } })),
            Pipeline.run
          )
        }).pipe(Effect.provide(yield* clients))
        const group = `g-${suffix()}`
        const report = yield* runExample("kafka-transactions-to-s3.json", env, (c) => {
          c.source.topics = [topic]
          c.source.group_id = group
          c.sink.bucket = bucket
          c.dead_letters.bucket = bucket
        })
        assert.strictEqual(report.records.read, 200)
        assert.strictEqual(report.records.written, 50)
        const out = Sink.collect<Record<string, unknown>>("check")
        yield* Pipeline.from(S3.source({ bucket, path: "settled-transactions" })).pipe(
          Pipeline.to(out),
          Pipeline.run,
          Effect.provide(yield* clients)
        )
        assert.strictEqual(out.collected().records.length, 50)
        for (const t of out.collected().records) assert.strictEqual(t.status, "settled")
        const committed = yield* KafkaClient.use((c) => c.committedOffsets(group, topic)).pipe(
          Effect.provide(yield* clients)
        )
        assert.strictEqual(
          committed.reduce((n, c) => n + Number(c.offset ?? 0), 0),
          200
        )
      })
    )

    it.effect("s3-csv-to-kafka.json loads CSV objects into a keyed topic as Confluent-framed Avro", () =>
      Effect.gen(function* () {
        const env = yield* envOf
        const topic = `by-id-${suffix()}`
        const bucket = `landing-${suffix()}`
        const header = "transactionId,userId,amount,currency,status,eventTime,merchant,category"
        const csv = transactions(30)
          .map((t) =>
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
          )
          .join("\n")
        yield* Effect.gen(function* () {
          yield* KafkaClient.use((c) => c.createTopic(topic, { partitions: 1 }))
          yield* S3Client.use((c) => c.createBucket(bucket))
          yield* S3Client.use((c) =>
            c.put(bucket, "transactions/day1.csv", new TextEncoder().encode(`${header}\n${csv}\n`))
          )
        }).pipe(Effect.provide(yield* clients))
        const report = yield* runExample("s3-csv-to-kafka.json", env, (c) => {
          c.source.bucket = bucket
          c.sink.topic = topic
        })
        assert.strictEqual(report.records.written, 30)
        const out = Sink.collect<Kafka.Envelope<Record<string, unknown>>>("check")
        yield* Pipeline.from(
          Kafka.source({
            topics: [topic],
            groupId: `g-${suffix()}`,
            start: "earliest",
            value: { type: "confluent", schemas: { 1: transactionAvsc } },
            envelope: true
          })
        ).pipe(Pipeline.to(out), Pipeline.run, Effect.provide(yield* clients))
        assert.strictEqual(out.collected().records.length, 30)
        for (const m of out.collected().records) assert.strictEqual(m.key, m.value.transactionId)
      })
    )
  }
)
