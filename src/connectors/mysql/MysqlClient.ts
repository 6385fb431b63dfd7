/**
 * The MySQL connector's contract: its error type, its client services (one per named connection) and its
 * in-memory layer. It imports no driver; `NodeMysql.ts` is the only file that imports `mysql2`.
 *
 * Two connections in one pipeline (MySQL → MySQL) are two services: `MysqlClient.tag("source")` and
 * `MysqlClient.tag("warehouse")` are distinct keys, and a pipeline's `R` names each one it uses.
 */

import type * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Layer from "effect/Layer"
import type { SqlClient } from "../sql/SqlClient.ts"
import type { SqlErrorFields, SqlErrorReason } from "../sql/SqlError.ts"
import * as SqlMemory from "../sql/SqlMemory.ts"
import { clientTag, type System } from "../sql/SqlTable.ts"

/** A failed MySQL operation: what was being done and why (its reason knows whether to retry). */
export class MysqlError extends Data.TaggedError("MysqlError")<SqlErrorFields> {
  /** Whether retrying the attempt may succeed. */
  get retryable(): boolean {
    return this.reason.retryable
  }
}

/** The identifier of the MySQL client service of connection `Name`. */
export interface MysqlClient<out Name extends string = "default"> {
  readonly "~effect-etl/MysqlClient": Name
}

/** What a MySQL client service offers. */
export type Shape = SqlClient<MysqlError>

/** The service key of a connection's client: `tag()` is the `default` connection. */
export const tag = <const Name extends string = "default">(
  name: Name = "default" as Name
): Context.Service<MysqlClient<Name>, Shape> =>
  clientTag<MysqlClient<Name>, MysqlError>("effect-etl/connectors/mysql/MysqlClient", name)

/** The client of the `default` connection. */
export const Default: Context.Service<MysqlClient<"default">, Shape> = tag()

/** How MySQL errors are built (used by the shared SQL sources and sinks). */
export const system: System<MysqlError> = {
  type: "mysql",
  dialect: "mysql",
  makeError: (reason: SqlErrorReason, operation: string, message: string) =>
    new MysqlError({ reason, operation, message })
}

/**
 * A MySQL client over a memory database (see `SqlMemory.memory`), for unit tests of pipelines.
 *
 * @example
 * const db = SqlMemory.memory({ tables: { transactions: { rows } } })
 * Pipeline.run(p).pipe(Effect.provide(MysqlClient.layerMemory(db)))
 */
export const layerMemory = <const Name extends string = "default">(
  db: SqlMemory.MemoryDatabase = SqlMemory.memory(),
  name: Name = "default" as Name
): Layer.Layer<MysqlClient<Name>> => Layer.succeed(tag(name), SqlMemory.make("mysql", name, db, system.makeError))
