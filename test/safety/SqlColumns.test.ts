import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as Mysql from "../../src/connectors/mysql/Mysql.ts"
import * as NodeMysql from "../../src/connectors/mysql/NodeMysql.ts"
import * as NodePostgres from "../../src/connectors/postgres/NodePostgres.ts"
import * as Postgres from "../../src/connectors/postgres/Postgres.ts"
import type { Table } from "../../src/connectors/sql/SqlTable.ts"
import * as ConfigError from "../../src/core/ConfigError.ts"
import { messageOf } from "../../src/core/Errors.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import { MysqlTest, mysqlUrl, PgTest, pgUrl } from "../support/Databases.ts"

type Rows = ReadonlyArray<Readonly<Record<string, unknown>>>

interface System {
  readonly type: "postgres" | "mysql"
  readonly connection: Effect.Effect<Record<string, unknown>, never, PgTest | MysqlTest>
  readonly sql: (text: string) => Effect.Effect<Rows, never, PgTest | MysqlTest>
}

const systems: ReadonlyArray<System> = [
  {
    type: "postgres",
    connection: Effect.map(PgTest, (db) => ({ type: "postgres", url: pgUrl, schema: db.schema })),
    sql: (text) => Effect.flatMap(PgTest, (db) => db.sql(text))
  },
  {
    type: "mysql",
    connection: Effect.map(MysqlTest, (db) => ({ type: "mysql", url: mysqlUrl, database: db.database })),
    sql: (text) => Effect.flatMap(MysqlTest, (db) => db.sql(text))
  }
]

const file = "pipeline.json"

/** Builds a config pipeline with a connection `db` to the system's test database, and how to run it. */
const configured = (system: System, config: Record<string, unknown>, files: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const value = { name: "columns", connections: { db: yield* system.connection }, ...config }
    const decoded = yield* Load.decode(file, value)
    const pipeline = yield* Build.build(decoded, {
      file,
      schema: (name, path) => Effect.fail(ConfigError.single(file, path, `no schema ${name}`))
    })
    const services = Layer.merge(Build.connections(decoded), FileStore.layerMemory(FileStore.memory(files)))
    return {
      run: Pipeline.run(pipeline).pipe(Effect.provide(services)),
      check: pipeline.sink.check === undefined ? Effect.void : Effect.provide(pipeline.sink.check, services)
    }
  })

const numbers = (rows: Rows) =>
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? null : Number(v)])))

const texts = (rows: Rows) =>
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? null : String(v)])))

layer(Layer.mergeAll(PgTest.layer, MysqlTest.layer), { timeout: 120_000, excludeTestServices: true })(
  "SQL sinks check record fields against table columns",
  (it) => {
    for (const system of systems) {
      it.effect(
        `${system.type}: an upsert of a renamed aggregate field fails before writing, naming the field and the table`,
        () =>
          Effect.gen(function* () {
            yield* system.sql(
              "CREATE TABLE orders (id INT PRIMARY KEY, user_id VARCHAR(40) NOT NULL, amount DOUBLE PRECISION NOT NULL)"
            )
            yield* system.sql("INSERT INTO orders VALUES (1, 'u1', 10), (2, 'u1', 30), (3, 'u2', 5)")
            yield* system.sql("CREATE TABLE summary (user_id VARCHAR(40) PRIMARY KEY, avg_amount DOUBLE PRECISION)")
            yield* system.sql("INSERT INTO summary VALUES ('u1', 7), ('u2', 8)")
            const config = (name: string) => ({
              source: { type: system.type, connection: "db", table: "orders" },
              transforms: [
                {
                  type: "aggregate",
                  group_by: ["user_id"],
                  fields: { [name]: { fn: "avg", field: "amount" } }
                }
              ],
              sink: { type: system.type, connection: "db", table: "summary", mode: "upsert", keys: ["user_id"] }
            })
            const renamed = yield* configured(system, config("avg_amt"))
            const checked = yield* Effect.flip(renamed.check)
            const failed = yield* Effect.flip(renamed.run)
            for (const error of [checked, failed]) {
              assert.include(messageOf(error), 'The record field "avg_amt" has no column in')
              assert.include(messageOf(error), "summary")
              assert.include(messageOf(error), "its columns are user_id, avg_amount")
            }
            const untouched = yield* system.sql("SELECT user_id, avg_amount FROM summary ORDER BY user_id")
            assert.deepStrictEqual(texts(untouched), [
              { user_id: "u1", avg_amount: "7" },
              { user_id: "u2", avg_amount: "8" }
            ])

            const fixed = yield* configured(system, config("avg_amount"))
            yield* fixed.check
            const report = yield* fixed.run
            assert.strictEqual(report.records.written, 2)
            const updated = yield* system.sql("SELECT user_id, avg_amount FROM summary ORDER BY user_id")
            assert.deepStrictEqual(texts(updated), [
              { user_id: "u1", avg_amount: "20" },
              { user_id: "u2", avg_amount: "5" }
            ])
          })
      )

      it.effect(
        `${system.type}: an upsert changes only the columns its records carry, with or without known fields`,
        () =>
          Effect.gen(function* () {
            yield* system.sql("CREATE TABLE scores (id INT PRIMARY KEY, score INT)")
            yield* system.sql("INSERT INTO scores VALUES (1, 100), (2, 200), (4, 400)")
            for (const [i, columns] of [undefined, ["id", "score"]].entries()) {
              const target = `people_${i}`
              yield* system.sql(
                `CREATE TABLE ${target} (id INT PRIMARY KEY, name VARCHAR(40), score INT, note VARCHAR(40))`
              )
              yield* system.sql(
                `INSERT INTO ${target} VALUES (1, 'Ada', 1, 'keep'), (2, 'Bob', 2, 'keep'), (3, 'Cy', 3, 'keep')`
              )
              const pipeline = yield* configured(system, {
                source: {
                  type: system.type,
                  connection: "db",
                  table: "scores",
                  ...(columns === undefined ? {} : { columns })
                },
                sink: { type: system.type, connection: "db", table: target, mode: "upsert", keys: ["id"] }
              })
              yield* pipeline.check
              const report = yield* pipeline.run
              assert.strictEqual(report.records.written, 3)
              const rows = yield* system.sql(`SELECT id, name, score, note FROM ${target} ORDER BY id`)
              assert.deepStrictEqual(texts(rows), [
                { id: "1", name: "Ada", score: "100", note: "keep" },
                { id: "2", name: "Bob", score: "200", note: "keep" },
                { id: "3", name: "Cy", score: "3", note: "keep" },
                { id: "4", name: null, score: "400", note: null }
              ])
            }
          })
      )

      it.effect(`${system.type}: a NOT NULL column without a default that no field fills fails before writing`, () =>
        Effect.gen(function* () {
          yield* system.sql("CREATE TABLE points (id INT PRIMARY KEY, score INT)")
          yield* system.sql("INSERT INTO points VALUES (1, 10), (2, 20)")
          yield* system.sql(
            "CREATE TABLE ranked (id INT PRIMARY KEY, player VARCHAR(40) NOT NULL, score INT, tier VARCHAR(10) NOT NULL DEFAULT 'none')"
          )
          for (const mode of ["append", "overwrite", "upsert"] as const)
            for (const columns of [["id", "score"], undefined]) {
              const pipeline = yield* configured(system, {
                source: {
                  type: system.type,
                  connection: "db",
                  table: "points",
                  ...(columns === undefined ? {} : { columns })
                },
                sink: {
                  type: system.type,
                  connection: "db",
                  table: "ranked",
                  mode,
                  ...(mode === "upsert" ? { keys: ["id"] } : {})
                }
              })
              // Without known fields, the check cannot tell what the records will carry; the first batch does.
              if (columns !== undefined) {
                const checked = yield* Effect.flip(pipeline.check)
                assert.include(
                  messageOf(checked),
                  'requires the column "player" (NOT NULL, no default), but no record field fills it; the records have id, score'
                )
              }
              const failed = yield* Effect.flip(pipeline.run)
              assert.include(messageOf(failed), 'requires the column "player" (NOT NULL, no default)')
              assert.notInclude(messageOf(failed), "tier")
              assert.isFalse(failed.retryable)
            }
          const count = yield* system.sql("SELECT COUNT(*) AS n FROM ranked")
          assert.deepStrictEqual(numbers(count), [{ n: 0 }])
        })
      )

      it.effect(
        `${system.type}: a field of schemaless records without a column fails, in the first batch or later`,
        () =>
          Effect.gen(function* () {
            yield* system.sql("CREATE TABLE landed (id INT PRIMARY KEY, score INT, note VARCHAR(40))")
            const lines = (records: ReadonlyArray<object>) => records.map((r) => JSON.stringify(r)).join("\n")
            const run = (text: string) =>
              Effect.flatMap(
                configured(
                  system,
                  {
                    source: { type: "file", path: "in.jsonl", format: { type: "jsonl" }, batch_size: 2 },
                    sink: { type: system.type, connection: "db", table: "landed" }
                  },
                  { "in.jsonl": text }
                ),
                (p) => p.run
              )
            const first = yield* Effect.flip(run(lines([{ id: 1, scor: 1 }])))
            assert.include(messageOf(first), 'The record field "scor" has no column in')
            assert.include(messageOf(first), "landed")
            const later = yield* Effect.flip(
              run(
                lines([
                  { id: 1, score: 1 },
                  { id: 2, score: 2 },
                  { id: 3, score: 3, bonus: 7 }
                ])
              )
            )
            assert.include(messageOf(later), 'The record field "bonus" has no column in')
            const unwritten = yield* Effect.flip(
              run(
                lines([
                  { id: 1, score: 1 },
                  { id: 2, score: 2 },
                  { id: 3, score: 3, note: "late" }
                ])
              )
            )
            assert.include(messageOf(unwritten), 'The record field "note" first appeared after the first batch')
            assert.deepStrictEqual(numbers(yield* system.sql("SELECT COUNT(*) AS n FROM landed")), [{ n: 0 }])
            const report = yield* run(
              lines([
                { id: 1, score: 1 },
                { id: 2, note: "two" },
                { id: 3, score: 3 }
              ])
            )
            assert.strictEqual(report.records.written, 3)
            const rows = yield* system.sql("SELECT id, score, note FROM landed ORDER BY id")
            assert.deepStrictEqual(texts(rows), [
              { id: "1", score: "1", note: null },
              { id: "2", score: null, note: "two" },
              { id: "3", score: "3", note: null }
            ])
          })
      )
    }

    it.effect("a typed table's check reports a required column its schema lacks, without writing or creating", () =>
      Effect.gen(function* () {
        const pg = yield* PgTest
        const my = yield* MysqlTest
        yield* pg.sql("CREATE TABLE typed (id INT PRIMARY KEY, player VARCHAR(40) NOT NULL, score INT)")
        yield* my.sql("CREATE TABLE typed (id INT PRIMARY KEY, player VARCHAR(40) NOT NULL, score INT)")
        const Score = Schema.Struct({ id: Schema.Number, score: Schema.Number })
        const Player = Schema.Struct({ id: Schema.Number, player: Schema.String })
        const typed = <E, R>(
          table: (
            name: string,
            schema: typeof Score,
            options?: { readonly createIfMissing?: boolean }
          ) => Table<typeof Score.Type, E, R>,
          upsert: Table<typeof Player.Type, E, R>,
          services: Layer.Layer<R>
        ) =>
          Effect.gen(function* () {
            const error = yield* Effect.flip(table("typed", Score).check)
            assert.include(messageOf(error), 'requires the column "player" (NOT NULL, no default)')
            const failed = yield* Pipeline.from(Source.fromIterable("in", [{ id: 1, score: 2 }])).pipe(
              Pipeline.to(table("typed", Score)),
              Pipeline.run,
              Effect.flip
            )
            assert.include(messageOf(failed), 'requires the column "player" (NOT NULL, no default)')
            yield* upsert.check
            yield* table("not_yet", Score, { createIfMissing: true }).check
          }).pipe(Effect.provide(services))
        yield* typed(
          (name, schema, options) => Postgres.table(name, schema, options),
          Postgres.table("typed", Player, { mode: "upsert", keys: ["id"] }),
          NodePostgres.layer(pg.options)
        )
        yield* typed(
          (name, schema, options) => Mysql.table(name, schema, options),
          Mysql.table("typed", Player, { mode: "upsert", keys: ["id"] }),
          NodeMysql.layer(my.options)
        )
        assert.deepStrictEqual(numbers(yield* pg.sql("SELECT COUNT(*) AS n FROM typed")), [{ n: 0 }])
        assert.deepStrictEqual(numbers(yield* my.sql("SELECT COUNT(*) AS n FROM typed")), [{ n: 0 }])
        assert.deepStrictEqual(
          numbers(
            yield* pg.sql(
              "SELECT COUNT(*) AS n FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'not_yet'"
            )
          ),
          [{ n: 0 }]
        )
        assert.deepStrictEqual(
          numbers(
            yield* my.sql(
              "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'not_yet'"
            )
          ),
          [{ n: 0 }]
        )
      })
    )
  }
)
