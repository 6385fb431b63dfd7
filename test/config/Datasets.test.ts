import * as nodePath from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import * as Records from "../../src/config/Records.ts"
import * as File from "../../src/connectors/file/File.ts"
import * as Kafka from "../../src/connectors/kafka/Kafka.ts"
import * as Postgres from "../../src/connectors/postgres/Postgres.ts"
import * as S3 from "../../src/connectors/s3/S3.ts"
import type { StageInfo } from "../../src/core/Stage.ts"
import * as SchemaRegistry from "../../src/schema/SchemaRegistry.ts"

const schemasDirectory = fileURLToPath(new URL("../../schemas", import.meta.url))

const build = (config: unknown) =>
  Effect.gen(function* () {
    const registry = yield* SchemaRegistry.SchemaRegistry
    const decoded = yield* Load.decode("p.json", config)
    const pipeline = yield* Build.build(decoded, { file: "p.json", schema: Records.lookup(registry, "p.json") })
    const stages: ReadonlyArray<StageInfo> = [
      ...pipeline.stages,
      pipeline.sink.info,
      ...(pipeline.deadLetters === undefined ? [] : [pipeline.deadLetters.info])
    ]
    return stages
  }).pipe(Effect.provide(SchemaRegistry.layer(schemasDirectory)))

const noPassword = (stages: ReadonlyArray<StageInfo>, secrets: ReadonlyArray<string>) => {
  for (const stage of stages)
    for (const secret of secrets) {
      assert.notInclude(JSON.stringify(stage.dataset ?? {}), secret, stage.name)
      assert.notInclude(JSON.stringify(stage.attributes ?? {}), secret, stage.name)
    }
}

describe("datasets of config-built pipelines", () => {
  it.effect("PostgreSQL and MySQL tables are named host:port and database.schema.table / database.table", () =>
    Effect.gen(function* () {
      const stages = yield* build({
        name: "pg-to-mysql",
        connections: {
          warehouse: { type: "postgres", url: "postgres://etl:s3cr3t-pg@db.internal:6543/analytics" },
          shop: { type: "mysql", host: "mysql.internal", user: "root", password: "s3cr3t-my", database: "shop" }
        },
        source: { type: "postgres", connection: "warehouse", table: "transactions", schema: "transaction" },
        sink: { type: "mysql", connection: "shop", table: "orders", table_schema: "sales" },
        dead_letters: { type: "postgres", connection: "warehouse", table: "rejects", table_schema: "dlq" }
      })
      const [source, sink, deadLetters] = [stages[0]!, stages[1]!, stages[2]!]
      assert.strictEqual(source.connector, "postgres")
      assert.deepStrictEqual(
        { namespace: source.dataset?.namespace, name: source.dataset?.name },
        { namespace: "postgres://db.internal:6543", name: "analytics.public.transactions" }
      )
      assert.deepStrictEqual(source.dataset?.fields?.slice(0, 3), [
        { name: "transactionId", type: "uuid" },
        { name: "userId", type: "string" },
        { name: "amount", type: "decimal" }
      ])
      assert.deepStrictEqual(source.attributes, {
        "db.system.name": "postgresql",
        "db.namespace": "analytics|public",
        "db.collection.name": "transactions",
        "server.address": "db.internal",
        "server.port": 6543
      })
      assert.deepStrictEqual(
        { namespace: sink.dataset?.namespace, name: sink.dataset?.name },
        { namespace: "mysql://mysql.internal:3306", name: "sales.orders" }
      )
      // The sink is told the record fields (from the source's schema), not their types.
      assert.deepStrictEqual(sink.dataset?.fields?.[0], { name: "transactionId", type: "unknown" })
      assert.deepStrictEqual(sink.attributes, {
        "db.system.name": "mysql",
        "db.namespace": "sales",
        "db.collection.name": "sales.orders",
        "server.address": "mysql.internal",
        "server.port": 3306
      })
      assert.deepStrictEqual(deadLetters.dataset, {
        namespace: "postgres://db.internal:6543",
        name: "analytics.dlq.rejects",
        fields: ["stage", "reason", "message", "record", "origin"].map((name) => ({ name, type: "unknown" }))
      })
      noPassword(stages, ["s3cr3t", "etl:", "root"])
    })
  )

  it.effect("a query source has the server's attributes but no dataset", () =>
    Effect.gen(function* () {
      const stages = yield* build({
        name: "q",
        connections: { db: { type: "postgres", host: "127.0.0.1", database: "test" } },
        source: { type: "postgres", connection: "db", query: "SELECT 1 AS one" },
        sink: { type: "file", path: "out/q", format: { type: "jsonl" } }
      })
      assert.isUndefined(stages[0]!.dataset)
      assert.deepStrictEqual(stages[0]!.attributes, {
        "db.system.name": "postgresql",
        "db.namespace": "test|public",
        "server.address": "127.0.0.1",
        "server.port": 5432
      })
    })
  )

  it.effect("Kafka topics are named by the first bootstrap broker, S3 keys by their bucket", () =>
    Effect.gen(function* () {
      const stages = yield* build({
        name: "kafka-to-s3",
        connections: { lake: { type: "s3", region: "eu-west-1" } },
        source: {
          type: "kafka",
          brokers: ["broker-1.internal:9093", "broker-2.internal:9093"],
          sasl: { mechanism: "plain", username: "etl", password: "s3cr3t-kafka" },
          topics: ["transactions"],
          group_id: "etl",
          value: { type: "avro", schema: "transaction" }
        },
        sink: {
          type: "s3",
          connection: "lake",
          bucket: "lake",
          path: "/settled/",
          format: { type: "avro" },
          schema: "settled-transaction"
        }
      })
      const [source, sink] = [stages[0]!, stages[1]!]
      assert.deepStrictEqual(
        { namespace: source.dataset?.namespace, name: source.dataset?.name },
        { namespace: "kafka://broker-1.internal:9093", name: "transactions" }
      )
      assert.deepStrictEqual(source.dataset?.fields?.[0], { name: "transactionId", type: "uuid" })
      assert.deepStrictEqual(source.attributes, {
        "messaging.system": "kafka",
        "messaging.destination.name": "transactions",
        "messaging.consumer.group.name": "etl",
        "server.address": "broker-1.internal",
        "server.port": 9093
      })
      assert.deepStrictEqual(
        { namespace: sink.dataset?.namespace, name: sink.dataset?.name },
        { namespace: "s3://lake", name: "settled" }
      )
      assert.isAbove(sink.dataset?.fields?.length ?? 0, 0)
      assert.deepStrictEqual(sink.attributes, { "rpc.system": "aws-api", "rpc.service": "S3", "aws.s3.bucket": "lake" })
      noPassword(stages, ["s3cr3t"])
    })
  )

  it.effect("a Kafka sink on a named connection takes the connection's brokers", () =>
    Effect.gen(function* () {
      const stages = yield* build({
        name: "files-to-kafka",
        connections: { bus: { type: "kafka", brokers: ["[::1]:19092"] } },
        source: { type: "file", path: "in/*.jsonl", schema: "transaction" },
        sink: { type: "kafka", connection: "bus", topic: "settled", value: { type: "json" } }
      })
      assert.deepStrictEqual(stages[1]!.dataset, { namespace: "kafka://[::1]:19092", name: "settled" })
      assert.deepStrictEqual(stages[0]!.dataset?.namespace, "file")
      assert.strictEqual(stages[0]!.dataset?.name, nodePath.resolve("in/*.jsonl"))
      assert.deepStrictEqual(stages[0]!.attributes, { "file.path": nodePath.resolve("in/*.jsonl") })
    })
  )
})

describe("datasets of typed sources and sinks", () => {
  const Order = Schema.Struct({
    id: Schema.Int,
    note: Schema.NullOr(Schema.String),
    placedAt: Schema.Date,
    total: Schema.optional(Schema.Finite)
  })

  it("a typed PostgreSQL table names its dataset from the connection options it is given, without the password", () => {
    const table = Postgres.table("orders", Order, {
      tableSchema: "shop",
      server: { url: Redacted.make("postgres://etl:hunter2@pg.internal/app") }
    })
    assert.deepStrictEqual(table.dataset, {
      namespace: "postgres://pg.internal:5432",
      name: "app.shop.orders",
      fields: [
        { name: "id", type: "number" },
        { name: "note", type: "string" },
        { name: "placedAt", type: "Date" },
        { name: "total", type: "number" }
      ]
    })
    assert.notInclude(JSON.stringify(table.dataset), "hunter2")
    const bare = Postgres.table("orders", Order)
    assert.isUndefined(bare.dataset)
    assert.strictEqual(bare.attributes?.["db.collection.name"], "orders")
  })

  it("typed file, S3 and Kafka sources and sinks name their datasets", () => {
    assert.deepStrictEqual(File.sink({ path: "out/x/", format: { type: "jsonl" } }).dataset, {
      namespace: "file",
      name: nodePath.resolve("out/x")
    })
    assert.deepStrictEqual(S3.source({ bucket: "b", path: "raw/2026-*.jsonl" }).dataset, {
      namespace: "s3://b",
      name: "raw/2026-*.jsonl"
    })
    assert.deepStrictEqual(
      Kafka.sink({ topic: "t", value: { type: "json" }, brokers: ["user:pw@k.internal:9092"] }).dataset,
      { namespace: "kafka://k.internal:9092", name: "t" }
    )
    const noBrokers = Kafka.source({ topics: ["a", "b"], groupId: "g", value: { type: "json" } })
    assert.isUndefined(noBrokers.dataset)
    assert.strictEqual(noBrokers.attributes?.["messaging.destination.name"], "a,b")
  })
})
