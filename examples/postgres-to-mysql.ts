/**
 * examples/postgres-to-mysql.json as a typed program: settled transactions read from PostgreSQL in 4 concurrent
 * slices of `id`, upserted into MySQL by `id`. Two connections, each a named client service, so the pipeline's type
 * names both: `Pipeline<PostgresError | MysqlError, PostgresClient<"source_db"> | MysqlClient<"warehouse">>`.
 *
 * Run it with `node dist/main.js run examples/postgres-to-mysql.ts` (the CLI provides the exported `layer`); the
 * connections come from ETL_PG_URL / ETL_PG_SCHEMA and ETL_MYSQL_URL / ETL_MYSQL_DATABASE, like the JSON config.
 */
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Mysql from "../src/connectors/mysql/Mysql.ts"
import * as NodeMysql from "../src/connectors/mysql/NodeMysql.ts"
import * as NodePostgres from "../src/connectors/postgres/NodePostgres.ts"
import * as Postgres from "../src/connectors/postgres/Postgres.ts"
import * as Pipeline from "../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../src/schema/AvroBridge.ts"

/** A payment transaction, as both tables store it. */
export const Transaction = Schema.Struct({
  id: AvroBridge.long,
  user_id: Schema.String,
  amount: AvroBridge.decimal({ precision: 18, scale: 2 }),
  currency: Schema.String,
  status: Schema.String,
  created_at: AvroBridge.timestampMillis
})

/** The source database's client. */
export const SourceDb = Postgres.client("source_db")
/** The warehouse's client. */
export const Warehouse = Mysql.client("warehouse")

/** The pipeline. */
export const pipeline = Pipeline.from(
  Postgres.table("transactions", Transaction, {
    client: SourceDb,
    partitionBy: { column: "id", partitions: 4 },
    batchSize: 5000
  })
).pipe(
  Pipeline.filter((t) => t.status === "settled"),
  Pipeline.to(Mysql.table("settled_transactions", Transaction, { client: Warehouse, mode: "upsert", keys: ["id"] })),
  Pipeline.named("postgres-to-mysql"),
  Pipeline.withRetry({ attempts: 3, initialDelay: "2 seconds", factor: 2 })
)

/** The two connections, one pool each, opened when the run starts and closed when it ends. */
export const layer = Layer.mergeAll(
  NodePostgres.layer(
    {
      url: Redacted.make(process.env.ETL_PG_URL ?? "postgres://root@127.0.0.1:5432/test"),
      schema: process.env.ETL_PG_SCHEMA ?? "public",
      poolSize: 4
    },
    "source_db"
  ),
  NodeMysql.layer(
    {
      url: Redacted.make(process.env.ETL_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test"),
      database: process.env.ETL_MYSQL_DATABASE ?? "test",
      poolSize: 2
    },
    "warehouse"
  )
)

export default pipeline
