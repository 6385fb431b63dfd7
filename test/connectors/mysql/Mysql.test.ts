import { assert, describe, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as FileStore from "../../../src/connectors/file/FileStore.ts"
import * as Mysql from "../../../src/connectors/mysql/Mysql.ts"
import * as MysqlClient from "../../../src/connectors/mysql/MysqlClient.ts"
import * as NodeMysql from "../../../src/connectors/mysql/NodeMysql.ts"
import * as SqlMemory from "../../../src/connectors/sql/SqlMemory.ts"
import { MysqlTest } from "../../support/Databases.ts"
import { conformance, createTxnTable } from "../sql/Conformance.ts"

describe("MySQL connector (memory layer)", () => {
  it.effect("a whole-table source tells the memory table's row count as its size estimate; a query does not", () =>
    Effect.gen(function* () {
      const Row = Schema.Struct({ id: Schema.Number })
      assert.deepStrictEqual(yield* Mysql.table("t", Row).size!, { records: 3, estimated: true })
      assert.deepStrictEqual(yield* Mysql.table("t", Row, { partitionBy: { column: "id", partitions: 2 } }).size!, {
        records: 3,
        estimated: true
      })
      assert.isUndefined(Mysql.table("t", Row, { where: "id > 1" }).size)
      assert.isUndefined(Mysql.query("q", "SELECT 1").size)
    }).pipe(
      Effect.provide(
        Mysql.layerMemory(SqlMemory.memory({ tables: { t: { rows: [{ id: 1 }, { id: 2 }, { id: 3 }] } } }))
      )
    )
  )

  conformance({
    name: "memory",
    client: MysqlClient.Default,
    table: (name, schema, options) => Mysql.table(name, schema, options),
    createTxnTable: createTxnTable(MysqlClient.Default),
    provide: (effect) =>
      effect.pipe(
        Effect.provide(Layer.merge(Mysql.layerMemory(SqlMemory.memory()), FileStore.layerMemory(FileStore.memory())))
      )
  })
})

layer(MysqlTest.layer, { timeout: 60_000 })("MySQL connector (server)", (it) => {
  it.effect("connects", () =>
    Effect.gen(function* () {
      const db = yield* MysqlTest
      const rows = yield* db.sql("SELECT DATABASE() AS s")
      assert.strictEqual(rows[0]!.s, db.database)
    })
  )
})

describe("MySQL connector (server conformance)", () => {
  conformance({
    name: "server",
    client: MysqlClient.Default,
    table: (name, schema, options) => Mysql.table(name, schema, options),
    createTxnTable: createTxnTable(MysqlClient.Default),
    provide: (effect) =>
      Effect.gen(function* () {
        const db = yield* MysqlTest
        return yield* effect.pipe(
          Effect.provide(Layer.merge(NodeMysql.layer(db.options), FileStore.layerMemory(FileStore.memory())))
        )
      }).pipe(Effect.provide(MysqlTest.layer))
  })
})
