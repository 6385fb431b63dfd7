/**
 * The PostgreSQL connector's contract: its error type, its client services (one per named connection) and its
 * in-memory layer. It imports no driver; `NodePostgres.ts` is the only file that imports `pg`.
 *
 * Two connections in one pipeline (PostgreSQL → PostgreSQL) are two services: `PostgresClient.tag("source")` and
 * `PostgresClient.tag("warehouse")` are distinct keys, and a pipeline's `R` names each one it uses.
 */

import type * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Layer from "effect/Layer"
import type { SqlClient } from "../sql/SqlClient.ts"
import type { SqlErrorFields, SqlErrorReason } from "../sql/SqlError.ts"
import * as SqlMemory from "../sql/SqlMemory.ts"
import { clientTag, type System } from "../sql/SqlTable.ts"

/** A failed PostgreSQL operation: what was being done and why (its reason knows whether to retry). */
export class PostgresError extends Data.TaggedError("PostgresError")<SqlErrorFields> {
  /** Whether retrying the attempt may succeed. */
  get retryable(): boolean {
    return this.reason.retryable
  }
}

/** The identifier of the PostgreSQL client service of connection `Name`. */
export interface PostgresClient<out Name extends string = "default"> {
  readonly "~effect-etl/PostgresClient": Name
}

/** What a PostgreSQL client service offers. */
export type Shape = SqlClient<PostgresError>

/** The service key of a connection's client: `tag()` is the `default` connection. */
export const tag = <const Name extends string = "default">(
  name: Name = "default" as Name
): Context.Service<PostgresClient<Name>, Shape> =>
  clientTag<PostgresClient<Name>, PostgresError>("effect-etl/connectors/postgres/PostgresClient", name)

/** The client of the `default` connection. */
export const Default: Context.Service<PostgresClient<"default">, Shape> = tag()

/** The raw format of PostgreSQL clients (see `SqlClient.rawFormat`): COPY's text format. */
export const RAW_FORMAT = "postgres-copy-text"

/** How PostgreSQL errors are built (used by the shared SQL sources and sinks). */
export const system: System<PostgresError> = {
  type: "postgres",
  dialect: "postgres",
  rawFormat: RAW_FORMAT,
  makeError: (reason: SqlErrorReason, operation: string, message: string) =>
    new PostgresError({ reason, operation, message })
}

/**
 * A PostgreSQL client over a memory database (see `SqlMemory.memory`), for unit tests of pipelines.
 *
 * @example
 * const db = SqlMemory.memory({ tables: { transactions: { rows } } })
 * Pipeline.run(p).pipe(Effect.provide(PostgresClient.layerMemory(db)))
 */
export const layerMemory = <const Name extends string = "default">(
  db: SqlMemory.MemoryDatabase = SqlMemory.memory(),
  name: Name = "default" as Name
): Layer.Layer<PostgresClient<Name>> => Layer.succeed(tag(name), SqlMemory.make("postgres", name, db, system.makeError))
