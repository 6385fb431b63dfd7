/**
 * One schema, many targets: the `CREATE TABLE` that `schema show --as postgres-ddl|mysql-ddl` prints (the one a sink
 * with `create_if_missing` runs) makes a table that takes every record the schema accepts, on PostgreSQL and MySQL.
 */
import { spawnSync } from "node:child_process"
import * as nodePath from "node:path"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Schema from "effect/Schema"
import * as fc from "fast-check"
import * as Mysql from "../../../src/connectors/mysql/Mysql.ts"
import * as Postgres from "../../../src/connectors/postgres/Postgres.ts"
import * as Source from "../../../src/core/Source.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
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

/** True when every timestamp of the record falls in the years 1000 to 9999. */
const storableDates = (value: unknown): boolean => {
  if (value instanceof Date) return value.getUTCFullYear() >= 1000 && value.getUTCFullYear() <= 9999
  if (Array.isArray(value)) return value.every(storableDates)
  if (typeof value === "object" && value !== null) return Object.values(value).every(storableDates)
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
            // Timestamps within MySQL DATETIME's years (1000 to 9999); years beyond 9999 and BC ones are a known gap.
            const records = [
              contract.record,
              ...fc.sample(contract.arbitrary.filter(storableDates), { numRuns: 300, seed: 42 })
            ]
            const typed = contract.typed as Schema.Codec<Record<string, unknown>, unknown>
            const source = () => Pipeline.from(Source.fromIterable<Record<string, unknown>>("records", records))
            const intoPg = yield* source().pipe(Pipeline.to(Postgres.table(table, typed, { client: Pg })), Pipeline.run)
            const intoMy = yield* source().pipe(Pipeline.to(Mysql.table(table, typed, { client: My })), Pipeline.run)
            assert.strictEqual(intoPg.records.written, records.length)
            assert.strictEqual(intoMy.records.written, records.length)
            const counted = yield* pg.sql(`SELECT count(*)::int AS n FROM ${table}`)
            assert.strictEqual(Number(counted[0]!.n), records.length)
            const mine = yield* my.sql(`SELECT count(*) AS n FROM ${table}`)
            assert.strictEqual(Number(mine[0]!.n), records.length)
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
