/**
 * The contract both SQL connectors implement: what sources and sinks need from a database, in terms of tables,
 * columns and record batches rather than SQL text. It imports no driver: `NodePostgres.ts` and `NodeMysql.ts`
 * implement it over `pg` and `mysql2` (COPY, LOAD DATA, streamed SELECTs, staging tables), and `SqlMemory.ts`
 * implements it over Maps for unit tests of pipelines.
 *
 * Every operation fails with the connector's own error type `E` (`PostgresError`, `MysqlError`), whose reason knows
 * whether retrying may help.
 */
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { WriteMode } from "../../core/Sink.ts"
import type { Dialect, TableRef } from "./Identifier.ts"
import type { Column, ColumnDef } from "./SqlTypes.ts"

/** A row as read from or written to a table: column name → record value. */
export type Row = Readonly<Record<string, unknown>>

/** A table as the server describes it. */
export interface TableInfo {
  readonly ref: TableRef
  readonly columns: ReadonlyArray<Column>
  /** The column sets of the primary key and of every unique index. */
  readonly uniqueKeys: ReadonlyArray<ReadonlyArray<string>>
}

/** What a read selects from: a table, or a query written by the pipeline's author. */
export type Relation =
  | { readonly _tag: "Table"; readonly ref: TableRef }
  | { readonly _tag: "Query"; readonly sql: string }

/** A range condition on one column, built from values (never from SQL text): `lower <= column < upper`. */
export interface RangeCondition {
  readonly column: string
  readonly lower?: unknown
  /** Whether `lower` itself is included (default `true`). */
  readonly lowerInclusive?: boolean
  readonly upper?: unknown
  /** Whether `upper` itself is included (default `false`). */
  readonly upperInclusive?: boolean
  /** Also select rows where the column is NULL (the first partition of a partitioned read takes them). */
  readonly orNull?: boolean
}

/** One streamed read. */
export interface ReadRequest {
  readonly relation: Relation
  /** The columns to select (default: all). */
  readonly columns?: ReadonlyArray<string> | undefined
  /** SQL conditions written by the pipeline's author, ANDed (a `where`, one partition predicate). */
  readonly conditions?: ReadonlyArray<string> | undefined
  /** Conditions on values (partition bounds, high-water marks), ANDed. */
  readonly ranges?: ReadonlyArray<RangeCondition> | undefined
  /** Records per emitted chunk. */
  readonly batchSize: number
}

/** A record the connector could not turn into a record value (e.g. a bigint beyond ±2^53-1), with why. */
export interface RejectedRow {
  readonly row: unknown
  readonly message: string
}

/**
 * A chunk of a raw read (see `SqlClient.readRaw`): whole rows in the server's text, in order. Runs of rows the reader
 * passed on as they are, and each row it parsed on its own (see `parsed`), are the `segments`.
 */
export interface RawChunk {
  readonly segments: ReadonlyArray<Uint8Array>
  /** The rows of all segments. */
  readonly rows: number
  /**
   * The rows whose text may not be the value a record would hold (a NaN or infinite number, an infinite or BC
   * timestamp, an integer beyond ±2^53-1), each parsed as `read` would have, and the index of the segment that holds
   * its text alone: the caller checks them and keeps or drops that segment.
   */
  readonly parsed: ReadonlyArray<{
    readonly segment: number
    readonly row?: Row | undefined
    readonly rejected?: RejectedRow | undefined
  }>
}

/** A chunk of a streamed read: at most `batchSize` rows, and the rows that could not be converted. */
export interface ReadChunk {
  readonly rows: ReadonlyArray<Row>
  readonly rejected: ReadonlyArray<RejectedRow>
}

/** The smallest and largest value of a column (both `null` when there are no non-NULL values). */
export interface Bounds {
  readonly min: unknown
  readonly max: unknown
  readonly kind: Column["kind"]
}

/** What a load writes, decided before the first row. */
export interface LoadRequest {
  readonly table: TableRef
  readonly mode: WriteMode
  /** The target's columns that records fill, in order (others take their defaults). */
  readonly columns: ReadonlyArray<Column>
  /** Upsert keys: a unique key of the target (checked before the load is opened). */
  readonly keys: ReadonlyArray<string>
  /**
   * `end` (default): one transaction for the whole attempt; nothing is visible before `commit`. `batch` (append only):
   * each `write` commits on its own, for streaming pipelines that acknowledge per batch.
   */
  readonly transaction: "end" | "batch"
  /**
   * The offsets table that {@link Loader.positions} rows go to, in the load's transaction (created beforehand with
   * `SqlTable.offsetsColumns`); absent: the load records no positions.
   */
  readonly offsets?: TableRef | undefined
  /**
   * Staging tables (see {@link SqlClient.stage}) whose rows join the load after the rows written to it, table by table
   * in order: a split run's finish loads what its parts staged, without the rows leaving the server. They have the
   * request's columns; the load leaves them in place (the run drops them once it has ended).
   */
  readonly staged?: ReadonlyArray<TableRef> | undefined
}

/**
 * A row of an offsets table: where a pipeline resumes reading one part of its source (`topic/partition` → the next
 * offset), for one target table. Written in the same transaction as the rows read up to there (exactly-once).
 */
export interface OffsetRow {
  readonly pipeline: string
  readonly target: string
  readonly part: string
  readonly position: string
  /**
   * The first position of the rows this commit covers in the part. The commit stores `position` only if no position
   * past `from` is stored (else another process wrote those rows meanwhile, and the commit fails with the
   * `PositionsMoved` reason, rolled back); absent: stored whatever is there.
   */
  readonly from?: string | undefined
}

/** The message of a commit refused because its positions moved (see `Checkpoint.moved`). */
export const movedMessage = (label: string, moved: { readonly row: OffsetRow; readonly stored: string }): string =>
  `The commit into ${label} covers ${moved.row.part} from position ${moved.row.from}, but another process of pipeline ` +
  `"${moved.row.pipeline}" already stored its rows up to ${moved.stored} (a consumer-group rebalance moved the ` +
  `partition): the commit was rolled back, and a new attempt reads from the stored positions`

/** The key of an offsets table. */
export const offsetsKey: ReadonlyArray<string> = ["pipeline", "target", "part"]

/** What a committed load did. */
export interface LoadResult {
  /** Rows accepted: inserted or updated (for upserts, every input row, including later duplicates of a key). */
  readonly written: number
  readonly inserted?: number
  readonly updated?: number
  /** Rows of the input whose key appeared again later in the same load (the later one wins). */
  readonly duplicates?: number
}

/** An open load. Closing its Scope without `commit` rolls everything back. */
export interface Loader<E> {
  readonly write: (rows: ReadonlyArray<Row>) => Effect.Effect<void, E>
  /**
   * Rows the commit upserts into the request's `offsets` table in its transaction (each call replaces the previous
   * ones). Present when the request names an offsets table and the load commits once (`transaction: "end"`).
   */
  readonly positions?: ((rows: ReadonlyArray<OffsetRow>) => void) | undefined
  /** Writes rows given in the format of `SqlClient.rawFormat`, in the request's column order; present when the client reads raw too. */
  readonly writeRaw?: ((chunks: ReadonlyArray<Uint8Array>) => Effect.Effect<void, E>) | undefined
  readonly commit: Effect.Effect<LoadResult, E>
}

/** What the SQL sources and sinks need from a database connection. */
export interface SqlClient<E> {
  readonly dialect: Dialect
  /** The connection's name (`default` or the name given in the config's `connections`). */
  readonly connection: string
  /**
   * `true` when reads give every column the record value `SqlTypes` lists for its kind, NULL only in nullable columns
   * (a decimal or timestamp that does not parse may stay text): sources then skip checking what the column types
   * already guarantee. A predicate limits that to the catalog columns it accepts (a server whose catalog kind of a
   * column does not always say what its reads give). Absent: every row is checked against the record schema.
   */
  readonly typedReads?: boolean | ((column: Column) => boolean) | undefined
  /**
   * How many connections its pool opens at most, when it has one: a partitioned read leaves two of them to the
   * writes that share the pool (a sink on the same connection), so that the slices never hold every connection.
   */
  readonly poolSize?: number | undefined
  /** The columns a relation yields (for a table, in table order), and the table's unique keys (empty for queries). */
  readonly describe: (relation: Relation) => Effect.Effect<ReadonlyArray<Column>, E>
  /** A table's description, or `undefined` when it does not exist. */
  readonly table: (ref: TableRef) => Effect.Effect<TableInfo | undefined, E>
  /** Creates a table (when missing), with an optional primary key. */
  readonly createTable: (
    ref: TableRef,
    columns: ReadonlyArray<ColumnDef>,
    primaryKey: ReadonlyArray<string>
  ) => Effect.Effect<void, E>
  /**
   * The number of rows of a table as the server's statistics estimate it (PostgreSQL's `pg_class.reltuples`, MySQL's
   * `information_schema.TABLES.TABLE_ROWS`), without reading it; `undefined` when the server has no estimate yet.
   * For progress only: it may be off, and a client may leave it out.
   */
  readonly estimateRows?: ((ref: TableRef) => Effect.Effect<number | undefined, E>) | undefined
  /** MIN and MAX of a column of a relation, under the given conditions. */
  readonly bounds: (relation: Relation, column: string, conditions: ReadonlyArray<string>) => Effect.Effect<Bounds, E>
  /** Streams the rows of a read in chunks of at most `batchSize`, holding at most a few chunks in memory. */
  readonly read: (request: ReadRequest) => Stream.Stream<ReadChunk, E>
  /**
   * The text a raw read gives and a raw write takes (PostgreSQL's COPY text): present when the client does both,
   * for a table copied to a table without parsing its rows (see `core/PassThrough.ts`).
   */
  readonly rawFormat?: string | undefined
  /**
   * Streams the rows of a read as the server's text (`rawFormat`), in chunks of about `batchSize` rows: the rows whose
   * text may not be a record's value come parsed as `read` would give them (see {@link RawChunk}).
   */
  readonly readRaw?: ((request: ReadRequest) => Stream.Stream<RawChunk, E>) | undefined
  /** Opens a load into an existing table. */
  readonly load: (request: LoadRequest) => Effect.Effect<Loader<E>, E, Scope.Scope>
  /**
   * Opens a load into a fresh staging table `stage`, next to the request's table: the request's columns, no keys, an
   * earlier table of that name dropped first. A split run's part stages its rows there, and the finish loads them into
   * the table with one load (`LoadRequest.staged`). The rows are there once `commit` returns; closing the Scope
   * without `commit` leaves the table empty or absent. Absent: the client cannot stage (a split run then stages in the
   * cluster's database).
   */
  readonly stage?: ((request: LoadRequest, stage: TableRef) => Effect.Effect<Loader<E>, E, Scope.Scope>) | undefined
  /** Drops the tables that exist among `refs` (a split run's staging tables). */
  readonly dropTables?: ((refs: ReadonlyArray<TableRef>) => Effect.Effect<void, E>) | undefined
}
