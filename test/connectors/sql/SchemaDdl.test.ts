/**
 * One schema, many targets: the `CREATE TABLE` that `schema show --as postgres-ddl|mysql-ddl` prints (the one a sink
 * with `create_if_missing` runs) makes a table that takes every record the schema accepts, on PostgreSQL and MySQL.
 */
import { spawnSync } from "node:child_process"
import * as nodePath from "node:path"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SchemaModule from "effect/Schema"
import * as fc from "fast-check"
import * as Mysql from "../../../src/connectors/mysql/Mysql.ts"
import * as Postgres from "../../../src/connectors/postgres/Postgres.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../../../src/schema/AvroBridge.ts"
import { contracts } from "../../schema/support/ContractCases.ts"
import { MysqlTest, PgTest, withClients as withSqlClients } from "../../support/Databases.ts"

const root = nodePath.resolve(import.meta.dirname, "../../..")

/** What `effect-etl schema show NAME --as FORMAT --table TABLE` prints. */
const ddl = (name: string, format: "postgres-ddl" | "mysql-ddl", table: string, keys?: string) => {
  const result = spawnSync(
    process.execPath,
    [
      nodePath.join(root, "src/main.ts"),
      "schema",
      "show",
      name,
      "--as",
      format,
      "--table",
      table,
      ...(keys === undefined ? [] : ["--keys", keys])
    ],
    { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } }
  )
  assert.strictEqual(result.status, 0, result.stderr)
  return result.stdout.trim()
}

/** True when every timestamp of the record falls in the years `from` to `to`. */
const datesWithin =
  (from: number, to: number) =>
  (value: unknown): boolean => {
    if (value instanceof Date) return value.getUTCFullYear() >= from && value.getUTCFullYear() <= to
    if (Array.isArray(value)) return value.every(datesWithin(from, to))
    if (typeof value === "object" && value !== null) return Object.values(value).every(datesWithin(from, to))
    return true
  }

const Pg = Postgres.client("ddl_pg")
const My = Mysql.client("ddl_my")

const withClients = withSqlClients({ postgres: ["ddl_pg"], mysql: ["ddl_my"] })

layer(Layer.mergeAll(PgTest.layer, MysqlTest.layer), { timeout: 120_000, excludeTestServices: true })(
  "schema show --as postgres-ddl|mysql-ddl",
  (it) => {
    for (const contract of contracts)
      it.effect(`${contract.file}: the DDL's tables take every valid record, on PostgreSQL and MySQL`, () =>
        withClients(
          Effect.gen(function* () {
            const pg = yield* PgTest
            const my = yield* MysqlTest
            const table = `ddl_${contract.file.replaceAll("-", "_")}`
            const pgDdl = ddl(contract.file, "postgres-ddl", table)
            const myDdl = ddl(contract.file, "mysql-ddl", table)
            assert.match(pgDdl, /^CREATE TABLE IF NOT EXISTS "ddl_/)
            assert.match(myDdl, /^CREATE TABLE IF NOT EXISTS `ddl_.*DEFAULT CHARSET = utf8mb4;$/)
            yield* pg.sql(pgDdl)
            yield* my.sql(myDdl)
            // Every record the schema takes, with timestamps in the years each server holds: PostgreSQL 4713 BC to
            // 294276 AD (a JavaScript date ends at 275760), MySQL's DATETIME 1000 to 9999.
            const sample = (from: number, to: number) => [
              contract.record,
              ...fc.sample(contract.arbitrary.filter(datesWithin(from, to)), { numRuns: 300, seed: 42 })
            ]
            const typed = contract.typed as SchemaModule.Codec<Record<string, unknown>, unknown>
            const write = <E, R>(
              records: ReadonlyArray<Record<string, unknown>>,
              sink: Sink.Sink<Record<string, unknown>, E, R>
            ) => Pipeline.from(Source.fromIterable("records", records)).pipe(Pipeline.to(sink), Pipeline.run)
            const pgRecords = sample(-4712, 275760)
            const myRecords = sample(1000, 9999)
            const intoPg = yield* write(pgRecords, Postgres.table(table, typed, { client: Pg }))
            const intoMy = yield* write(myRecords, Mysql.table(table, typed, { client: My }))
            assert.strictEqual(intoPg.records.written, pgRecords.length)
            assert.strictEqual(intoMy.records.written, myRecords.length)
            const counted = yield* pg.sql(`SELECT count(*)::int AS n FROM ${table}`)
            assert.strictEqual(Number(counted[0]!.n), pgRecords.length)
            const mine = yield* my.sql(`SELECT count(*) AS n FROM ${table}`)
            assert.strictEqual(Number(mine[0]!.n), myRecords.length)
          })
        )
      )

    it.effect("PostgreSQL keeps timestamps of every year it holds: past 9999, and BC", () =>
      withClients(
        Effect.gen(function* () {
          const pg = yield* PgTest
          yield* pg.sql("CREATE TABLE ddl_years (id bigint, t timestamptz(3) NOT NULL)")
          const Row = SchemaModule.Struct({ id: AvroBridge.long, t: AvroBridge.timestampMillis })
          const times = [
            "0001-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
            "+010000-01-01T00:00:00.000Z",
            "+049991-02-21T05:39:21.394Z",
            "+275760-09-13T00:00:00.000Z",
            "0000-06-30T12:00:00.000Z",
            "-000043-03-15T12:00:00.000Z",
            "-004712-01-01T00:00:00.000Z"
          ]
          const rows = times.map((t, id) => ({ id, t: new Date(t) }))
          const table = Postgres.table("ddl_years", Row, { client: Pg })
          yield* Pipeline.from(Source.fromIterable("years", rows)).pipe(Pipeline.to(table), Pipeline.run)
          const back = Sink.collect<typeof Row.Type>("back")
          yield* Pipeline.from(table).pipe(Pipeline.to(back), Pipeline.run)
          assert.deepStrictEqual(
            [...back.collected().records].sort((a, b) => a.id - b.id).map((r) => r.t.toISOString()),
            times
          )
        })
      )
    )

    it.effect("a primary key from --keys, and a clear error for a key the schema does not have", () =>
      Effect.gen(function* () {
        const pg = yield* PgTest
        yield* pg.sql(ddl("transaction", "postgres-ddl", "ddl_keyed", "transactionId"))
        const keys = yield* pg.sql(
          `SELECT a.attname AS name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '${pg.schema}.ddl_keyed'::regclass AND i.indisprimary`
        )
        assert.deepStrictEqual(
          keys.map((k) => k.name),
          ["transactionId"]
        )
        const bad = spawnSync(
          process.execPath,
          [nodePath.join(root, "src/main.ts"), "schema", "show", "transaction", "--as", "mysql-ddl", "--keys", "nope"],
          { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } }
        )
        assert.strictEqual(bad.status, 2)
        assert.include(bad.stderr, `schema transaction has no mysql-ddl: the key "nope" is not a field`)
        assert.notMatch(bad.stderr, /\n\s+at .+:\d+:\d+/)
      })
    )
  }
)
