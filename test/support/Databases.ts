/**
 * The database servers the SQL connector tests use: PostgreSQL at ETL_TEST_PG_URL and MySQL/MariaDB at
 * ETL_TEST_MYSQL_URL (defaults: the servers `.ci/run` starts on this machine). Each test file works in its own schema
 * (PostgreSQL) or database (MySQL) with a random suffix, created when its layer is built and dropped when it is
 * released, so files run in parallel and can be re-run.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as NodeMysql from "../../src/connectors/mysql/NodeMysql.ts"
import * as NodePostgres from "../../src/connectors/postgres/NodePostgres.ts"
import type { ConnectionOptions } from "../../src/connectors/sql/SqlConfig.ts"

/** The PostgreSQL server's URL. */
export const pgUrl = process.env.ETL_TEST_PG_URL ?? "postgres://root@127.0.0.1:5432/test"
/** The MySQL server's URL. */
export const mysqlUrl = process.env.ETL_TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test"

const suffix = () => crypto.randomUUID().replaceAll("-", "").slice(0, 10)

/** A PostgreSQL schema of one test file: its name, connection options pointing at it, and a way to run SQL. */
export interface PgDatabase {
  readonly schema: string
  readonly options: ConnectionOptions
  readonly sql: (
    text: string,
    values?: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<Readonly<Record<string, string | null>>>>
}

/** The PostgreSQL test database service. */
export class PgTest extends Context.Service<PgTest, PgDatabase>()("test/support/PgTest") {
  /** Creates a fresh schema; drops it (and everything in it) at the end. */
  static readonly layer = Layer.effect(
    PgTest,
    Effect.gen(function* () {
      const schema = `etl_test_${suffix()}`
      const admin: ConnectionOptions = { url: Redacted.make(pgUrl) }
      const options: ConnectionOptions = { url: Redacted.make(pgUrl), schema, poolSize: 12 }
      yield* Effect.acquireRelease(NodePostgres.execute(admin, `CREATE SCHEMA "${schema}"`), () =>
        Effect.ignore(NodePostgres.execute(admin, `DROP SCHEMA "${schema}" CASCADE`))
      ).pipe(Effect.orDie)
      return {
        schema,
        options,
        sql: (text, values) => Effect.orDie(NodePostgres.execute(options, text, values))
      }
    })
  )
}

/** A MySQL database of one test file: its name, connection options pointing at it, and a way to run SQL. */
export interface MysqlDatabase {
  readonly database: string
  readonly options: ConnectionOptions
  readonly sql: (
    text: string,
    values?: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<Readonly<Record<string, unknown>>>>
}

/** The MySQL test database service. */
export class MysqlTest extends Context.Service<MysqlTest, MysqlDatabase>()("test/support/MysqlTest") {
  /** Creates a fresh database; drops it at the end. */
  static readonly layer = Layer.effect(
    MysqlTest,
    Effect.gen(function* () {
      const database = `etl_test_${suffix()}`
      const admin: ConnectionOptions = { url: Redacted.make(mysqlUrl) }
      const options: ConnectionOptions = { url: Redacted.make(mysqlUrl), database, poolSize: 12 }
      yield* Effect.acquireRelease(
        NodeMysql.execute(admin, `CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`),
        () => Effect.ignore(NodeMysql.execute(admin, `DROP DATABASE \`${database}\``))
      ).pipe(Effect.orDie)
      return {
        database,
        options,
        sql: (text, values) => Effect.orDie(NodeMysql.execute(options, text, values))
      }
    })
  )
}

/**
 * Runs `effect` with live clients of the test databases under the given connection names (PostgreSQL clients point at
 * the file's schema, MySQL clients at its database).
 */
export const withClients =
  (names: { readonly postgres?: ReadonlyArray<string>; readonly mysql?: ReadonlyArray<string> }) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.gen(function* () {
      const pg = yield* PgTest
      const my = yield* MysqlTest
      const layers = [
        ...(names.postgres ?? []).map((name) => NodePostgres.layer(pg.options, name)),
        ...(names.mysql ?? []).map((name) => NodeMysql.layer(my.options, name))
      ]
      return yield* Effect.provide(effect, Layer.mergeAll(Layer.empty, ...layers))
    })
