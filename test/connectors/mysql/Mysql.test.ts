import { assert, describe, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as FileStore from "../../../src/connectors/file/FileStore.ts"
import * as Mysql from "../../../src/connectors/mysql/Mysql.ts"
import * as MysqlClient from "../../../src/connectors/mysql/MysqlClient.ts"
import * as NodeMysql from "../../../src/connectors/mysql/NodeMysql.ts"
import * as SqlMemory from "../../../src/connectors/sql/SqlMemory.ts"
import { MysqlTest } from "../../support/Databases.ts"
import { conformance, createTxnTable } from "../sql/Conformance.ts"

describe("MySQL connector (memory layer)", () => {
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
