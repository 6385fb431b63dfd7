/**
 * A user's typed pipeline written against the installed package: settled transactions read from PostgreSQL in two
 * slices, joined to their users, summed per user and currency, and upserted into MySQL. The package test type-checks
 * this file under `strict` and runs it against the real servers; it prints the RunReport as JSON.
 */
import { Effect, Layer, Redacted, Schema } from "effect"
import { AvroBridge, Pipeline, Source } from "effect-etl"
import { Mysql, NodeMysql } from "effect-etl/mysql"
import { NodePostgres, Postgres } from "effect-etl/postgres"

const Transaction = Schema.Struct({
  id: AvroBridge.long,
  user_id: Schema.String,
  amount: AvroBridge.decimal({ precision: 18, scale: 2 }),
  currency: Schema.String,
  status: Schema.String
})

const UserTotal = Schema.Struct({
  user_id: Schema.String,
  country: Schema.String,
  currency: Schema.String,
  total: AvroBridge.decimal({ precision: 18, scale: 2 }),
  count: Schema.Number
})

const users = Source.fromIterable("users", [
  { id: "u1", country: "DE" },
  { id: "u2", country: "FR" },
  { id: "u3", country: "US" }
])

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`${name} is not set`)
  return value
}

const pipeline = Pipeline.from(
  Postgres.table(env("PKG_PG_TABLE"), Transaction, { partitionBy: { column: "id", partitions: 2 } })
).pipe(
  Pipeline.filter((t) => t.status === "settled"),
  Pipeline.join(users, { on: { user_id: "id" }, select: ["country"] }),
  Pipeline.aggregate({
    groupBy: ["user_id", "country", "currency"],
    fields: { total: Pipeline.Agg.sum("amount"), count: Pipeline.Agg.count() }
  }),
  Pipeline.to(Mysql.table(env("PKG_MYSQL_TABLE"), UserTotal, { mode: "upsert", keys: ["user_id", "currency"] })),
  Pipeline.named("package-test")
)

const layer = Layer.mergeAll(
  NodePostgres.layer({ url: Redacted.make(env("PKG_PG_URL")), schema: env("PKG_PG_SCHEMA") }),
  NodeMysql.layer({ url: Redacted.make(env("PKG_MYSQL_URL")), database: env("PKG_MYSQL_DATABASE") })
)

const report = await Effect.runPromise(Pipeline.run(pipeline).pipe(Effect.provide(layer)))
console.log(JSON.stringify(report))
