/**
 * PostgreSQL tables and queries as pipeline sources and sinks.
 *
 * ```ts
 * const transactions = Postgres.table("transactions", Transaction, { partitionBy: { column: "id", partitions: 4 } })
 * const summary = Postgres.table("user_summary", UserSummary, { mode: "upsert", keys: ["userId", "windowStart"] })
 * const p = Pipeline.from(transactions).pipe(Pipeline.filter(...), Pipeline.to(summary))
 * // Effect<RunReport, PipelineError, PostgresClient<"default">>
 * Pipeline.run(p).pipe(Effect.provide(NodePostgres.layer({ url: Redacted.make("postgres://etl@db/app") })))
 * ```
 *
 * Two connections in one pipeline: give each table the client of its connection, and provide one layer per name.
 *
 * ```ts
 * const Source = Postgres.client("source")
 * const Warehouse = Postgres.client("warehouse")
 * const p = Pipeline.from(Postgres.table("orders", Order, { client: Source })).pipe(
 *   Pipeline.to(Postgres.table("orders", Order, { client: Warehouse, mode: "overwrite" })))
 * // R = PostgresClient<"source"> | PostgresClient<"warehouse">
 * Effect.provide(Layer.mergeAll(NodePostgres.layer(sourceOptions, "source"), NodePostgres.layer(warehouseOptions, "warehouse")))
 * ```
 *
 * See `NodePostgres.ts` for how reads and the three write modes work on the server, and `SqlTypes.ts` for the type
 * mapping.
 */
import type * as Context from "effect/Context"
import type * as Schema from "effect/Schema"
import type * as Source from "../../core/Source.ts"
import * as Identifier from "../sql/Identifier.ts"
import type { Row } from "../sql/SqlClient.ts"
import * as SqlTable from "../sql/SqlTable.ts"
import { type PostgresClient, type PostgresError, type Shape, system, tag } from "./PostgresClient.ts"

/** The memory layer, the error type and the client service identifier. */
export { layerMemory, type PostgresClient, PostgresError } from "./PostgresClient.ts"

/** The client service of a named connection; `client()` is the `default` one. */
export const client: <const Name extends string = "default">(
  name?: Name
) => Context.Service<PostgresClient<Name>, Shape> = tag

/** Options of `Postgres.table`: reading and writing options, and the connection's client. */
export interface TableOptions<A, Name extends string, ES, RS> extends SqlTable.TableOptions<A, ES, RS> {
  /** The connection's client (default: `Postgres.client()`, the `default` connection). */
  readonly client?: Context.Service<PostgresClient<Name>, Shape>
}

/**
 * A PostgreSQL table, typed by an `effect/Schema` struct whose fields are its columns: a source with
 * `Pipeline.from`, a sink with `Pipeline.to`.
 *
 * @example
 * Postgres.table("transactions", Transaction, { partitionBy: { column: "id", partitions: 4 } })
 * Postgres.table("user_summary", UserSummary, { mode: "upsert", keys: ["userId"] })
 */
export const table = <S extends Schema.Top, const Name extends string = "default", ES = never, RS = never>(
  name: string,
  schema: S,
  options: TableOptions<S["Type"], Name, ES, RS> = {}
): SqlTable.Table<S["Type"], PostgresError | ES, PostgresClient<Name> | RS> =>
  SqlTable.makeTable(
    system,
    options.client ?? (tag() as unknown as Context.Service<PostgresClient<Name>, Shape>),
    name,
    schema,
    options
  )

/** Options of `Postgres.query`. */
export interface QueryOptions<Name extends string> {
  readonly name?: string
  readonly client?: Context.Service<PostgresClient<Name>, Shape>
  /** Rows per batch (default 10,000). */
  readonly batchSize?: number
  /** Read the query's result in slices of a column's range, concurrently. */
  readonly partitionBy?: SqlTable.PartitionSpec
  /** One slice per SQL condition on the query's columns. */
  readonly predicates?: ReadonlyArray<string>
}

/**
 * A source over a SELECT you write (trusted SQL). Its rows are plain records (column name → value); decode them
 * with `Pipeline.decode(schema)` when you want a typed record.
 *
 * @example
 * Postgres.query("daily", "SELECT user_id, sum(amount) AS total FROM transactions GROUP BY user_id")
 */
export const query = <const Name extends string = "default">(
  name: string,
  sql: string,
  options: QueryOptions<Name> = {}
): Source.Source<Row, PostgresError, PostgresClient<Name>> =>
  SqlTable.source<Row, PostgresError, PostgresClient<Name>>(
    system,
    options.client ?? (tag() as unknown as Context.Service<PostgresClient<Name>, Shape>),
    {
      name,
      relation: { _tag: "Query", sql },
      batchSize: options.batchSize ?? 10_000,
      partitionBy: options.partitionBy,
      predicates: options.predicates
    },
    "PostgreSQL query"
  )

/** Quotes an identifier for PostgreSQL: `"a""b"`. */
export const quote = (name: string): string => Identifier.quote("postgres", name)
