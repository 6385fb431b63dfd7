import { assert, layer } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as FileStore from "../../../src/connectors/file/FileStore.ts"
import { KafkaClient } from "../../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../../src/connectors/kafka/NodeKafka.ts"
import * as NodeS3 from "../../../src/connectors/s3/NodeS3.ts"
import { S3Client } from "../../../src/connectors/s3/S3Client.ts"
import { PgTest, pgUrl } from "../../support/Databases.ts"
import { runExample } from "../../support/Examples.ts"
import { KafkaBroker } from "../../support/KafkaBroker.ts"
import { S3Server } from "../../support/S3Server.ts"
import { type Tx, transactions } from "./KafkaConformance.ts"

const suffix = () => crypto.randomUUID().slice(0, 8)

const header = "transactionId,userId,amount,currency,status,eventTime,merchant,category"
const csvOf = (txs: ReadonlyArray<Tx>) =>
  new TextEncoder().encode(
    `${header}\n${txs
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
      .join("\n")}\n`
  )

const servers = Layer.mergeAll(
  KafkaBroker.layer,
  S3Server.layer,
  PgTest.layer,
  FileStore.layerMemory(FileStore.memory())
)

layer(servers, { timeout: 180_000, excludeTestServices: true })(
  "S3 (CSV) → Kafka (Confluent-framed Avro) → PostgreSQL, with examples/s3-csv-to-kafka.json and kafka-to-postgres.json",
  (it) => {
    const setup = Effect.gen(function* () {
      const broker = yield* KafkaBroker
      const s3 = yield* S3Server
      const pg = yield* PgTest
      return {
        pg,
        clients: Layer.merge(NodeKafka.layer({ brokers: broker.brokers }), NodeS3.layer(s3.options)),
        env: {
          ETL_KAFKA_BROKERS: broker.brokers.join(","),
          ETL_S3_ENDPOINT: s3.options.endpoint ?? "",
          ETL_S3_ACCESS_KEY: Redacted.value(s3.options.accessKeyId!),
          ETL_S3_SECRET_KEY: Redacted.value(s3.options.secretAccessKey!),
          ETL_PG_URL: pgUrl,
          ETL_PG_SCHEMA: pg.schema
        }
      }
    })

    it.effect(
      "CSV objects land in the PostgreSQL table through the topic; a second round upserts only the new messages",
      () =>
        Effect.gen(function* () {
          const { pg, clients, env } = yield* setup
          const topic = `tx-by-id-${suffix()}`
          const bucket = `landing-${suffix()}`
          const group = `to-pg-${suffix()}`
          const table = `transactions_${suffix()}`
          const day1 = transactions(40)
          const updated = day1.slice(0, 5).map((t) => ({ ...t, status: "refunded" as const }))
          const day2 = [...updated, ...transactions(10, 40)]
          yield* Effect.gen(function* () {
            yield* KafkaClient.use((c) => c.createTopic(topic, { partitions: 2 }))
            yield* S3Client.use((c) => c.createBucket(bucket))
            yield* S3Client.use((c) => c.put(bucket, "transactions/day1.csv", csvOf(day1)))
          }).pipe(Effect.provide(clients))

          const toKafka = (path: string) =>
            runExample("s3-csv-to-kafka.json", env, (c) => {
              c.source.bucket = bucket
              c.source.path = path
              c.sink.topic = topic
            })
          const toPostgres = runExample("kafka-to-postgres.json", env, (c) => {
            c.source.topics = [topic]
            c.source.group_id = group
            c.sink.table = table
          })

          assert.strictEqual((yield* toKafka("transactions/*.csv")).records.written, 40)
          const first = yield* toPostgres
          assert.strictEqual(first.records.read, 40)
          assert.strictEqual(first.records.written, 40)

          yield* S3Client.use((c) => c.put(bucket, "transactions/day2.csv", csvOf(day2))).pipe(Effect.provide(clients))
          assert.strictEqual((yield* toKafka("transactions/day2.csv")).records.written, 15)
          const second = yield* toPostgres
          assert.strictEqual(second.records.read, 15)

          const rows = yield* pg.sql(
            `SELECT "transactionId"::text AS id, "userId" AS user_id, amount::text AS amount, currency, status::text AS status,
                    (extract(epoch FROM "eventTime") * 1000)::bigint::text AS event_ms, merchant
               FROM "${pg.schema}"."${table}" ORDER BY "transactionId"`
          )
          const expected = new Map([...day1, ...day2].map((t) => [t.transactionId, t]))
          assert.strictEqual(rows.length, 50)
          for (const row of rows) {
            const t = expected.get(row.id!)
            assert.isDefined(t)
            assert.deepStrictEqual(
              {
                ...row,
                amount: BigDecimal.format(BigDecimal.normalize(BigDecimal.fromStringUnsafe(row.amount!)))
              },
              {
                id: t!.transactionId,
                user_id: t!.userId,
                amount: BigDecimal.format(BigDecimal.normalize(t!.amount)),
                currency: t!.currency,
                status: t!.status,
                event_ms: String(t!.eventTime.getTime()),
                // an empty CSV field reads as null, so a missing merchant stays missing all the way to the table
                merchant: t!.merchant
              }
            )
          }
          assert.deepStrictEqual(
            rows.filter((r) => updated.some((t) => t.transactionId === r.id)).map((r) => r.status),
            ["refunded", "refunded", "refunded", "refunded", "refunded"]
          )

          const committed = yield* KafkaClient.use((c) => c.committedOffsets(group, topic)).pipe(
            Effect.provide(clients)
          )
          assert.strictEqual(
            committed.reduce((n, c) => n + Number(c.offset ?? 0), 0),
            55
          )
        })
    )
  }
)
