/**
 * MySQL tables and queries as pipeline sources and sinks.
 *
 * ```ts
 * const transactions = Mysql.table("transactions", Transaction, { partitionBy: { column: "id", partitions: 4 } })
 * const summary = Mysql.table("user_summary", UserSummary, { mode: "upsert", keys: ["userId", "windowStart"] })
 * const p = Pipeline.from(transactions).pipe(Pipeline.filter(...), Pipeline.to(summary))
 * // Effect<RunReport, PipelineError, MysqlClient<"default">>
 * Pipeline.run(p).pipe(Effect.provide(NodeMysql.layer({ url: Redacted.make("mysql://etl@db/app") })))
 * ```
 *
 * Two connections in one pipeline: give each table the client of its connection, and provide one layer per name.
 *
 * ```ts
 * const Source = Mysql.client("source")
 * const Warehouse = Mysql.client("warehouse")
 * const p = Pipeline.from(Mysql.table("orders", Order, { client: Source })).pipe(
 *   Pipeline.to(Mysql.table("orders", Order, { client: Warehouse, mode: "overwrite" })))
 * // R = MysqlClient<"source"> | MysqlClient<"warehouse">
 * Effect.provide(Layer.mergeAll(NodeMysql.layer(sourceOptions, "source"), NodeMysql.layer(warehouseOptions, "warehouse")))
 * ```
 *
 * See `NodeMysql.ts` for how reads and the three write modes work on the server, and `SqlTypes.ts` for the type
 * mapping.
 */
import type * as Context from "effect/Context"
import type * as Schema from "effect/Schema"
import type * as Source from "../../core/Source.ts"
import * as Identifier from "../sql/Identifier.ts"
import type { Row } from "../sql/SqlClient.ts"
import * as SqlTable from "../sql/SqlTable.ts"
import { type MysqlClient, type MysqlError, type Shape, system, tag } from "./MysqlClient.ts"

/** The memory layer, the error type and the client service identifier. */
export { layerMemory, type MysqlClient, MysqlError } from "./MysqlClient.ts"

/** The client service of a named connection; `client()` is the `default` one. */
export const client: <const Name extends string = "default">(name?: Name) => Context.Service<MysqlClient<Name>, Shape> =
  tag

/** Options of `Mysql.table`: reading and writing options, and the connection's client. */
export interface TableOptions<A, Name extends string, ES, RS> extends SqlTable.TableOptions<A, ES, RS> {
  /** The connection's client (default: `Mysql.client()`, the `default` connection). */
  readonly client?: Context.Service<MysqlClient<Name>, Shape>
}

/**
 * A MySQL table, typed by an `effect/Schema` struct whose fields are its columns: a source with
 * `Pipeline.from`, a sink with `Pipeline.to`.
 *
 * @example
 * Mysql.table("transactions", Transaction, { partitionBy: { column: "id", partitions: 4 } })
 * Mysql.table("user_summary", UserSummary, { mode: "upsert", keys: ["userId"] })
 */
export const table = <S extends Schema.Top, const Name extends string = "default", ES = never, RS = never>(
  name: string,
  schema: S,
  options: TableOptions<S["Type"], Name, ES, RS> = {}
): SqlTable.Table<S["Type"], MysqlError | ES, MysqlClient<Name> | RS> =>
  SqlTable.makeTable(
    system,
    options.client ?? (tag() as unknown as Context.Service<MysqlClient<Name>, Shape>),
    name,
    schema,
    options
  )

/** Options of `Mysql.query`. */
export interface QueryOptions<Name extends string> {
  readonly name?: string
  readonly client?: Context.Service<MysqlClient<Name>, Shape>
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
 * Mysql.query("daily", "SELECT user_id, sum(amount) AS total FROM transactions GROUP BY user_id")
 */
export const query = <const Name extends string = "default">(
  name: string,
  sql: string,
  options: QueryOptions<Name> = {}
): Source.Source<Row, MysqlError, MysqlClient<Name>> =>
  SqlTable.source<Row, MysqlError, MysqlClient<Name>>(
    system,
    options.client ?? (tag() as unknown as Context.Service<MysqlClient<Name>, Shape>),
    {
      name,
      relation: { _tag: "Query", sql },
      batchSize: options.batchSize ?? 10_000,
      partitionBy: options.partitionBy,
      predicates: options.predicates
    },
    "MySQL query"
  )

/** Quotes an identifier for MySQL: `` `a``b` ``. */
export const quote = (name: string): string => Identifier.quote("mysql", name)
