/**
 * A config's SQL source with a `schema` checks its rows against it, as `Postgres.table` / `Mysql.table` do: a value
 * the schema does not take is a dead letter naming the field, not a record that fails the sink later.
 */
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import * as Records from "../../src/config/Records.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import type { DeadLetter } from "../../src/core/DeadLetter.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as SchemaRegistryModule from "../../src/schema/SchemaRegistry.ts"
import { SchemaRegistry } from "../../src/schema/SchemaRegistry.ts"
import { MysqlTest, mysqlUrl, PgTest, pgUrl } from "../support/Databases.ts"

const item = {
  type: "record",
  name: "item",
  fields: [
    { name: "id", type: "long" },
    { name: "qty", type: "int" },
    { name: "price", type: { type: "bytes", logicalType: "decimal", precision: 8, scale: 2 } }
  ]
}

/** Runs a config reading `items` into JSON Lines in memory; the records written and the dead letters. */
const copy = (connection: Record<string, unknown>, source: Record<string, unknown>) =>
  Effect.gen(function* () {
    const registry = yield* SchemaRegistry
    const files = FileStore.memory()
    const config = yield* Load.decode("p.json", {
      name: "items",
      connections: { db: connection },
      source: { connection: "db", table: "items", ...source },
      sink: { type: "file", path: "out", format: { type: "jsonl" }, mode: "overwrite" },
      dead_letters: { type: "file", path: "dead", format: { type: "jsonl" } },
      retry: { attempts: 1 }
    })
    const built = yield* Build.build(config, { file: "p.json", schema: Records.lookup(registry, "p.json") })
    const report = yield* Pipeline.run(built).pipe(
      Effect.provide(Layer.merge(Build.connections(config), FileStore.layerMemory(files)))
    )
    const lines = (dir: string) =>
      Array.from(files.files)
        .filter(([path]) => (path.startsWith(`${dir}/`) || path.startsWith(`.${dir}.gen-`)) && path.endsWith(".jsonl"))
        .flatMap(([, bytes]) => new TextDecoder().decode(bytes).split("\n"))
        .filter((line) => line !== "")
    return {
      report,
      written: lines("out").map((line) => JSON.parse(line) as { id: number }),
      dead: lines("dead").map((line) => JSON.parse(line) as DeadLetter)
    }
  }).pipe(Effect.provide(SchemaRegistryModule.layerMemory({ item })))

layer(PgTest.layer, { timeout: 60_000, excludeTestServices: true })("a config's PostgreSQL source", (it) => {
  it.effect("checks its rows against its schema: a NaN price is a dead letter, the other rows are written", () =>
    Effect.gen(function* () {
      const pg = yield* PgTest
      yield* pg.sql("CREATE TABLE items (id bigint NOT NULL, qty integer NOT NULL, price numeric(8,2) NOT NULL)")
      yield* pg.sql("INSERT INTO items VALUES (1, 2, 3.50), (2, 1, 'NaN'), (3, 7, 0.99)")
      const connection = { type: "postgres", url: pgUrl, schema: pg.schema }
      const checked = yield* copy(connection, { type: "postgres", schema: "item" })
      assert.deepStrictEqual(
        checked.written.map((r) => r.id),
        [1, 3]
      )
      assert.strictEqual(checked.dead.length, 1)
      assert.match(checked.dead[0]!.message, /^price: /)
      assert.strictEqual(checked.report.records.deadLettered, 1)
      // Columns that leave out a field of the schema: the rows are not records of it, and are not checked.
      const partial = yield* copy(connection, { type: "postgres", schema: "item", columns: ["id", "price"] })
      assert.strictEqual(partial.written.length, 3)
    })
  )
})

layer(MysqlTest.layer, { timeout: 60_000, excludeTestServices: true })("a config's MySQL source", (it) => {
  it.effect("checks its rows against its schema: an int unsigned beyond an Avro int is a dead letter", () =>
    Effect.gen(function* () {
      const my = yield* MysqlTest
      yield* my.sql("CREATE TABLE items (id bigint NOT NULL, qty int unsigned NOT NULL, price decimal(8,2) NOT NULL)")
      yield* my.sql("INSERT INTO items VALUES (1, 2, 3.50), (2, 3000000000, 1.00), (3, 7, 0.99)")
      const checked = yield* copy(
        { type: "mysql", url: mysqlUrl, database: my.database },
        { type: "mysql", schema: "item" }
      )
      assert.deepStrictEqual(
        checked.written.map((r) => r.id),
        [1, 3]
      )
      assert.strictEqual(checked.dead.length, 1)
      assert.match(checked.dead[0]!.message, /^qty: /)
    })
  )
})
