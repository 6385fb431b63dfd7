/**
 * Configuration of the SQL connectors: named connections (declared once in a config's `connections` and referred to
 * by name), and the source and sink configs shared by PostgreSQL and MySQL. Credentials are `Redacted` from the moment
 * they are decoded: `{"$env": "PG_PASSWORD"}` references are resolved by the config loader, and the value never
 * appears in logs, errors or the RunReport.
 */
import type * as Duration from "effect/Duration"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { BatchSize, DurationString, durationString, intBetween, NonEmpty, StageName } from "../../core/ConfigFields.ts"

/** TLS settings of a connection. */
export interface TlsOptions {
  /** `disable`: plain TCP; `require`: TLS without checking the certificate; `verify-full`: TLS, certificate checked. */
  readonly mode: "disable" | "require" | "verify-full"
  /** PEM text of the CA certificate(s) to trust (for `verify-full` with a private CA). */
  readonly ca?: string | undefined
}

/** How to reach a database: a URL, or host/port/user/password/database fields (fields override the URL's). */
export interface ConnectionOptions {
  readonly url?: Redacted.Redacted<string> | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly database?: string | undefined
  /** PostgreSQL: the schema of unqualified table names (`search_path`); MySQL: the database, like `database`. */
  readonly schema?: string | undefined
  readonly user?: string | undefined
  readonly password?: Redacted.Redacted<string> | undefined
  readonly tls?: TlsOptions | undefined
  /** Connections in the pool (default 10). A partitioned read uses one per partition read at once. */
  readonly poolSize?: number | undefined
  /** Longest time a statement may run before the server cancels it (default: the server's). */
  readonly statementTimeout?: Duration.Input | undefined
  /** Longest wait for a new connection (default 30 seconds). */
  readonly connectTimeout?: Duration.Input | undefined
}

const Port = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))

/** A secret: decoded into `Redacted`, and an error about it never shows the value. */
const secret = (description: string) =>
  Schema.RedactedFromValue(
    Schema.String.annotate({
      description,
      message: "Expected a string, got a value that is not shown (it may be a secret)"
    })
  )

const connectionConfigOf = <T extends Schema.Top>(type: T) =>
  Schema.Struct({
    type,
    url: Schema.optionalKey(
      secret(
        'A connection URL, e.g. postgres://user@host:5432/db or mysql://user@host:3306/db; use {"$env": "VAR"} when it holds a password'
      )
    ),
    host: Schema.optionalKey(NonEmpty.annotate({ description: "The server's host name or address" })),
    port: Schema.optionalKey(Port.annotate({ description: "The server's port (default 5432 / 3306)" })),
    database: Schema.optionalKey(NonEmpty.annotate({ description: "The database to connect to" })),
    schema: Schema.optionalKey(
      NonEmpty.annotate({
        description: "PostgreSQL: the schema of unqualified table names (search_path); MySQL: the database"
      })
    ),
    user: Schema.optionalKey(NonEmpty.annotate({ description: "The user name" })),
    password: Schema.optionalKey(secret('The password; write {"$env": "VARIABLE"} rather than the password itself')),
    ssl: Schema.optionalKey(
      Schema.Struct({
        mode: Schema.Literals(["disable", "require", "verify-full"]).annotate({
          description:
            "disable: plain TCP; require: TLS, certificate not checked; verify-full: TLS, certificate checked"
        }),
        ca: Schema.optionalKey(Schema.String.annotate({ description: "PEM text of the CA certificate(s) to trust" }))
      }).annotate({ description: "TLS settings" })
    ),
    pool_size: Schema.optionalKey(
      intBetween(1, 1000, "each is a server connection").annotate({
        description: "Connections in the pool (default 10, at most 1000)"
      })
    ),
    statement_timeout: Schema.optionalKey(
      durationString({ max: "1 day", positive: true }).annotate({
        description: "The server cancels statements that run longer (default: no limit)"
      })
    ),
    connect_timeout: Schema.optionalKey(
      durationString({ max: "1 day", positive: true }).annotate({
        description: 'Longest wait for a new connection (default "30 seconds")'
      })
    )
  })
    .check(
      Schema.makeFilter((c: { readonly url?: unknown; readonly host?: unknown }) =>
        c.url === undefined && c.host === undefined ? 'A connection needs a "url" or a "host"' : undefined
      )
    )
    .annotate({
      description: "A database connection, opened once per run and shared by every source and sink using it"
    })

/** A named connection in a config, of either database system. */
export const ConnectionConfig = connectionConfigOf(
  Schema.Literals(["postgres", "mysql"]).annotate({ description: "The database system" })
)

/**
 * A named connection in a config of one database system: one member of the union of every system's connections,
 * so a config with a wrong key is told about that system's keys only.
 */
export const connectionConfig = <T extends "postgres" | "mysql">(type: T, label: string) =>
  connectionConfigOf(Schema.Literal(type).annotate({ description: `A ${label} database` }))

/** A decoded connection config. */
export type ConnectionConfig = typeof ConnectionConfig.Type

/** The typed connection options of a decoded connection config. */
export const connectionOptions = (c: ConnectionConfig): ConnectionOptions => ({
  url: c.url,
  host: c.host,
  port: c.port,
  database: c.database,
  schema: c.schema,
  user: c.user,
  password: c.password,
  tls: c.ssl === undefined ? undefined : { mode: c.ssl.mode, ca: c.ssl.ca },
  poolSize: c.pool_size,
  statementTimeout: c.statement_timeout as Duration.Input | undefined,
  connectTimeout: c.connect_timeout as Duration.Input | undefined
})

const Bound = Schema.Union([Schema.Finite, Schema.String]).annotate({
  description: "A number, or an ISO-8601 timestamp / YYYY-MM-DD date string"
})

const Identifier = NonEmpty.annotate({ description: "A name, quoted when used: any characters but NUL" })

const connectionField = NonEmpty.annotate({ description: "The name of a connection declared in `connections`" })

const tableSchemaField = Identifier.annotate({
  description: "The PostgreSQL schema or MySQL database of the table (default: the connection's)"
})

const sourceFields = {
  name: Schema.optionalKey(StageName.annotate({ description: "The stage name in logs and the RunReport" })),
  connection: connectionField,
  table: Schema.optionalKey(Identifier.annotate({ description: "The table to read (or give a `query`)" })),
  table_schema: Schema.optionalKey(tableSchemaField),
  query: Schema.optionalKey(
    NonEmpty.annotate({ description: "A SELECT to read instead of a table (trusted SQL: it is run as written)" })
  ),
  columns: Schema.optionalKey(Schema.Array(Identifier).annotate({ description: "The columns to read (default: all)" })),
  where: Schema.optionalKey(
    NonEmpty.annotate({ description: "A SQL condition on the rows to read (trusted SQL: it is run as written)" })
  ),
  schema: Schema.optionalKey(
    NonEmpty.annotate({ description: "An Avro schema in schemas/ naming the columns to read (default: all)" })
  ),
  batch_size: Schema.optionalKey(BatchSize.annotate({ description: "Rows per batch (default 10000)" })),
  partition: Schema.optionalKey(
    Schema.Struct({
      column: Identifier.annotate({ description: "A numeric, timestamp or date column to split the read on" }),
      partitions: intBetween(1, 10_000, "every slice is a query of its own").annotate({
        description: "How many slices to read at once (at most 10000)"
      }),
      lower_bound: Schema.optionalKey(Bound.annotate({ description: "Default: MIN(column)" })),
      upper_bound: Schema.optionalKey(Bound.annotate({ description: "Default: MAX(column)" }))
    }).annotate({
      description:
        "Reads the column's range in slices, concurrently (like Spark's JDBC source); the bounds only set the slices' width, every row is read"
    })
  ),
  predicates: Schema.optionalKey(
    Schema.Array(NonEmpty)
      .check(
        Schema.isMaxLength(10_000, { message: "Expected at most 10000 predicates (every slice is a query of its own)" })
      )
      .annotate({
        description:
          "One slice per SQL condition, read concurrently (an alternative to partition; they should not overlap)"
      })
  ),
  incremental: Schema.optionalKey(
    Schema.Struct({
      column: Identifier.annotate({ description: "A cursor column that grows: updated_at, id" }),
      lag: Schema.optionalKey(
        Schema.Union([
          Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0, { message: "Expected a lag that is not negative" })),
          DurationString
        ]).annotate({
          description:
            'Rows within this of the newest cursor value wait for the next run, so rows committed late are not missed: a number for numeric cursors, a duration ("5 minutes") for timestamps'
        })
      ),
      state_file: Schema.optionalKey(
        NonEmpty.annotate({
          description: "Where the high-water mark is kept (default .etl-state/<pipeline>.<source>.json)"
        })
      )
    }).annotate({ description: "Reads only the rows added or changed since the last successful run" })
  )
}

/** A SQL source config of the given type. */
export const sourceConfig = <T extends "postgres" | "mysql">(type: T, label: string) =>
  Schema.Struct({ type: Schema.Literal(type), ...sourceFields })
    .check(
      Schema.makeFilter(
        (c: {
          readonly table?: string
          readonly query?: string
          readonly partition?: unknown
          readonly predicates?: unknown
        }) =>
          c.table === undefined && c.query === undefined
            ? `A ${label} source needs a "table" or a "query"`
            : c.table !== undefined && c.query !== undefined
              ? 'Give either "table" or "query", not both'
              : c.partition !== undefined && c.predicates !== undefined
                ? 'Give either "partition" or "predicates", not both'
                : undefined
      )
    )
    .annotate({ description: `Reads a ${label} table or query` })

/** A SQL sink config of the given type. */
export const sinkConfig = <T extends "postgres" | "mysql">(type: T, label: string) =>
  Schema.Struct({
    type: Schema.Literal(type),
    name: Schema.optionalKey(StageName),
    connection: connectionField,
    table: Identifier.annotate({ description: "The table to write" }),
    table_schema: Schema.optionalKey(tableSchemaField),
    mode: Schema.optionalKey(
      Schema.Literals(["append", "overwrite", "upsert"]).annotate({
        description:
          "append (default) adds rows; overwrite replaces the table atomically; upsert inserts or updates by `keys`"
      })
    ),
    keys: Schema.optionalKey(
      Schema.Array(Identifier).annotate({
        description: "Upsert keys: the columns of the primary key or of a unique index of the table"
      })
    ),
    schema: Schema.optionalKey(
      NonEmpty.annotate({ description: "An Avro schema in schemas/: the columns written, and the table to create" })
    ),
    create_if_missing: Schema.optionalKey(
      Schema.Boolean.annotate({ description: "Create the table from `schema` when it does not exist (default false)" })
    ),
    transaction: Schema.optionalKey(
      Schema.Literals(["end", "batch"]).annotate({
        description:
          "end (default): one transaction per run, nothing visible before the end; batch (append only): each batch commits, for streaming"
      })
    ),
    offsets_table: Schema.optionalKey(
      Schema.Union([Identifier, Schema.Literal(false)]).annotate({
        description:
          "Where an append or upsert stores the source positions of each commit, in the same transaction, so that a streaming run from Kafka resumes exactly where its last commit ended (exactly-once): default etl_offsets in the table's schema, created when first needed; false: store nothing (at-least-once)"
      })
    )
  })
    .check(
      Schema.makeFilter(
        (c: {
          readonly mode?: string
          readonly keys?: ReadonlyArray<string>
          readonly create_if_missing?: boolean
          readonly schema?: string
          readonly transaction?: string
        }) =>
          c.mode === "upsert" && (c.keys === undefined || c.keys.length === 0)
            ? 'An upsert needs "keys": the columns of the primary key or of a unique index of the table'
            : c.mode !== "upsert" && c.keys !== undefined
              ? '"keys" only apply to "mode": "upsert"'
              : c.create_if_missing === true && c.schema === undefined
                ? '"create_if_missing" needs a "schema" to create the table from'
                : c.transaction === "batch" && c.mode !== undefined && c.mode !== "append"
                  ? '"transaction": "batch" is for append only: overwrite and upsert commit once, at the end'
                  : undefined
      )
    )
    .annotate({ description: `Writes a ${label} table: append, overwrite (atomic) or upsert (by keys)` })

/** A decoded SQL source config. */
export type SourceConfig = ReturnType<typeof sourceConfig>["Type"]
/** A decoded SQL sink config. */
export type SinkConfig = ReturnType<typeof sinkConfig>["Type"]

/** The lag of an incremental config: a number, or a duration string. */
export const lagOf = (lag: number | string | undefined): number | Duration.Input | undefined =>
  typeof lag === "string" ? (lag as Duration.Input) : lag

/** The redacted text of a secret, for the one place that hands it to a driver. */
export const reveal = (secret: Redacted.Redacted<string> | undefined): string | undefined =>
  secret === undefined ? undefined : Redacted.value(secret)
