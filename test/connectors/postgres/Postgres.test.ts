import { assert, describe, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as FileStore from "../../../src/connectors/file/FileStore.ts"
import * as NodePostgres from "../../../src/connectors/postgres/NodePostgres.ts"
import * as Postgres from "../../../src/connectors/postgres/Postgres.ts"
import * as PostgresClient from "../../../src/connectors/postgres/PostgresClient.ts"
import * as SqlMemory from "../../../src/connectors/sql/SqlMemory.ts"
import { PgTest } from "../../support/Databases.ts"
import { conformance, createTxnTable } from "../sql/Conformance.ts"

describe("PostgreSQL connector (memory layer)", () => {
  it.effect("a whole-table source tells the memory table's row count as its size estimate; a query does not", () =>
    Effect.gen(function* () {
      const Row = Schema.Struct({ id: Schema.Number })
      assert.deepStrictEqual(yield* Postgres.table("t", Row).size!, { records: 3, estimated: true })
      assert.deepStrictEqual(yield* Postgres.table("t", Row, { partitionBy: { column: "id", partitions: 2 } }).size!, {
        records: 3,
        estimated: true
      })
      assert.isUndefined(Postgres.table("t", Row, { where: "id > 1" }).size)
      assert.isUndefined(Postgres.query("q", "SELECT 1").size)
    }).pipe(
      Effect.provide(
        Postgres.layerMemory(SqlMemory.memory({ tables: { t: { rows: [{ id: 1 }, { id: 2 }, { id: 3 }] } } }))
      )
    )
  )

  conformance({
    name: "memory",
    client: PostgresClient.Default,
    table: (name, schema, options) => Postgres.table(name, schema, options),
    createTxnTable: createTxnTable(PostgresClient.Default),
    provide: (effect) =>
      effect.pipe(
        Effect.provide(Layer.merge(Postgres.layerMemory(SqlMemory.memory()), FileStore.layerMemory(FileStore.memory())))
      )
  })
})

layer(PgTest.layer, { timeout: 60_000 })("PostgreSQL connector (server)", (it) => {
  it.effect("connects", () =>
    Effect.gen(function* () {
      const db = yield* PgTest
      const rows = yield* db.sql("SELECT current_schema() AS s")
      assert.strictEqual(rows[0]!.s, db.schema)
    })
  )
})

describe("PostgreSQL connector (server conformance)", () => {
  conformance({
    name: "server",
    client: PostgresClient.Default,
    table: (name, schema, options) => Postgres.table(name, schema, options),
    createTxnTable: createTxnTable(PostgresClient.Default),
    provide: (effect) =>
      Effect.gen(function* () {
        const db = yield* PgTest
        return yield* effect.pipe(
          Effect.provide(Layer.merge(NodePostgres.layer(db.options), FileStore.layerMemory(FileStore.memory())))
        )
      }).pipe(Effect.provide(PgTest.layer))
  })
})
