/**
 * Building SQL sources, sinks and connection layers from decoded configs: the same values `Postgres.table` and
 * `Mysql.table` give. Everything checkable before running is checked here with the JSON path of the problem: the
 * connection exists and is of the right system, identifiers are valid, a table to create has SQL types for its fields.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as File from "../connectors/file/File.ts"
import type { FileError } from "../connectors/file/FileError.ts"
import type { FileStore } from "../connectors/file/FileStore.ts"
import * as MysqlClient from "../connectors/mysql/MysqlClient.ts"
import * as NodeMysql from "../connectors/mysql/NodeMysql.ts"
import * as NodePostgres from "../connectors/postgres/NodePostgres.ts"
import * as PostgresClient from "../connectors/postgres/PostgresClient.ts"
import * as Identifier from "../connectors/sql/Identifier.ts"
import type { Row, SqlClient } from "../connectors/sql/SqlClient.ts"
import {
  type ConnectionConfig,
  connectionOptions,
  lagOf,
  type SinkConfig,
  type SourceConfig
} from "../connectors/sql/SqlConfig.ts"
import { reasons } from "../connectors/sql/SqlError.ts"
import * as SqlLineage from "../connectors/sql/SqlLineage.ts"
import * as SqlTable from "../connectors/sql/SqlTable.ts"
import { columnsOfAvro, createTableSql } from "../connectors/sql/SqlTypes.ts"
import * as ConfigError from "../core/ConfigError.ts"
import type { RecordSchema, Validation } from "../core/RecordSchema.ts"
import type { Source } from "../core/Source.ts"
import * as Declared from "./Connections.ts"

/** The services of the SQL connectors, for any connection name. */
export type Services = PostgresClient.PostgresClient<string> | MysqlClient.MysqlClient<string>

/** The declared connections of a config, by name (of any system: a SQL source or sink checks the type). */
export type Connections = Readonly<Record<string, Declared.Declared>>

/** What the SQL builders need from the config around them. */
export interface SqlBuildEnv {
  readonly file: string
  readonly path: string
  readonly defaultName: string
  readonly pipeline: string
  readonly connections: Connections
  readonly schema: (name: string, path: string) => Effect.Effect<RecordSchema<Row>, ConfigError.ConfigError>
  /** The fields records have when they reach a sink, when the source and transforms tell. */
  readonly fields?: ReadonlyArray<string> | undefined
}

type AnySystem = SqlTable.System<PostgresClient.PostgresError> | SqlTable.System<MysqlClient.MysqlError>

const systemOf = (type: "postgres" | "mysql"): AnySystem =>
  type === "postgres" ? PostgresClient.system : MysqlClient.system

type AnyClient = SqlClient<PostgresClient.PostgresError | MysqlClient.MysqlError>

/** A client whose every operation fails: it stands for a connection nobody provided. */
const missingClient = (type: "postgres" | "mysql", name: string): AnyClient => {
  const error = () =>
    systemOf(type).makeError(
      reasons.InvalidRequest,
      `use connection ${name}`,
      `The ${label(type)} connection "${name}" is not provided: provide Build.connections(config) (the CLI does) or ${type === "postgres" ? "NodePostgres" : "NodeMysql"}.layer(options, "${name}")`
    )
  const fail = Effect.suspend(() => Effect.fail(error()))
  return {
    dialect: type,
    connection: name,
    describe: () => fail,
    table: () => fail,
    createTable: () => fail,
    bounds: () => fail,
    read: () => Stream.fromEffect(fail),
    load: () => fail
  }
}

/**
 * The client of a config's connection. It is read through a reference with the same key as the typed API's service
 * (`PostgresClient.tag(name)`), so the connection layers of `Build.connections(config)` provide it, while config
 * pipelines keep needing only the services every config run gets; a connection nobody provided fails the run with
 * a message saying so.
 */
const tagOf = (type: "postgres" | "mysql", name: string): Context.Key<never, AnyClient> =>
  Context.Reference<AnyClient>((type === "postgres" ? PostgresClient.tag(name) : MysqlClient.tag(name)).key, {
    defaultValue: () => missingClient(type, name)
  })

/**
 * The dataset and attributes of a table (or query) on a config's connection; the fields are the schema's (with their
 * Avro types) or the column names.
 */
const lineageOf = (
  type: "postgres" | "mysql",
  connection: string,
  env: SqlBuildEnv,
  table: Identifier.TableRef | undefined,
  schema: RecordSchema<Row> | undefined,
  columns: ReadonlyArray<string> | undefined
): SqlLineage.Lineage => {
  const declared = env.connections[connection] as ConnectionConfig | undefined
  return SqlLineage.of(
    type,
    declared === undefined ? undefined : connectionOptions(declared),
    table,
    SqlLineage.fieldsOf(schema, columns)
  )
}

const label = (type: "postgres" | "mysql") => (type === "postgres" ? "PostgreSQL" : "MySQL")

const checkConnection = (type: "postgres" | "mysql", name: string, env: SqlBuildEnv, role: "source" | "sink") =>
  Declared.check({
    file: env.file,
    path: env.path,
    connections: env.connections,
    name,
    type,
    role
  })

const checkIdentifiers = (
  type: "postgres" | "mysql",
  env: SqlBuildEnv,
  entries: ReadonlyArray<readonly [string, ReadonlyArray<string>]>
) => {
  for (const [key, names] of entries)
    for (const name of names) {
      const problem = Identifier.problem(type, name)
      if (problem !== undefined)
        return Effect.fail(ConfigError.single(env.file, `${env.path}.${key}`, `Invalid identifier: ${problem}`))
    }
  return Effect.void
}

/** Builds the SQL source a config describes. */
export const buildSource = (
  config: SourceConfig,
  env: SqlBuildEnv
): Effect.Effect<
  {
    readonly source: Source<Row, PostgresClient.PostgresError | MysqlClient.MysqlError | FileError, FileStore>
    readonly fields: ReadonlyArray<string> | undefined
  },
  ConfigError.ConfigError
> =>
  Effect.gen(function* () {
    const type = config.type
    yield* checkConnection(type, config.connection, env, "source")
    yield* checkIdentifiers(type, env, [
      ["table", config.table === undefined ? [] : [config.table]],
      ["table_schema", config.table_schema === undefined ? [] : [config.table_schema]],
      ["columns", config.columns ?? []],
      ["partition.column", config.partition === undefined ? [] : [config.partition.column]],
      ["incremental.column", config.incremental === undefined ? [] : [config.incremental.column]]
    ])
    const schema = config.schema === undefined ? undefined : yield* env.schema(config.schema, `${env.path}.schema`)
    const name = config.name ?? env.defaultName
    const columns = config.columns ?? schema?.fields
    const typed =
      schema?.typed !== undefined &&
      schema.fields !== undefined &&
      (config.columns === undefined || schema.fields.every((f) => config.columns!.includes(f)))
        ? schema.typed
        : undefined
    const ref =
      config.table === undefined
        ? undefined
        : { name: config.table, ...(config.table_schema === undefined ? {} : { schema: config.table_schema }) }
    const incremental =
      config.incremental === undefined
        ? undefined
        : {
            column: config.incremental.column,
            lag: lagOf(config.incremental.lag),
            state: File.cursorState(config.incremental.state_file ?? `.etl-state/${env.pipeline}.${name}.json`)
          }
    const source = SqlTable.source<
      Row,
      PostgresClient.PostgresError | MysqlClient.MysqlError,
      never,
      FileError,
      FileStore
    >(
      systemOf(type) as SqlTable.System<PostgresClient.PostgresError | MysqlClient.MysqlError>,
      tagOf(type, config.connection),
      {
        name,
        relation: ref === undefined ? { _tag: "Query", sql: config.query! } : { _tag: "Table", ref },
        columns,
        where: config.where,
        batchSize: config.batch_size ?? 10_000,
        partitionBy:
          config.partition === undefined
            ? undefined
            : {
                column: config.partition.column,
                partitions: config.partition.partitions,
                lowerBound: config.partition.lower_bound,
                upperBound: config.partition.upper_bound
              },
        predicates: config.predicates,
        incremental,
        // Rows are checked against the schema (its typed side: the values arrive as Date, BigDecimal, ...) when every
        // field of it is read; fields the column types guarantee are not checked again per row.
        ...(typed === undefined
          ? {}
          : { validate: SqlTable.typeValidator(typed) as (row: Row) => Validation<Row>, schema: typed }),
        ...lineageOf(type, config.connection, env, ref, schema, columns)
      },
      `${label(type)} ${ref === undefined ? "query" : `table ${Identifier.show(ref)}`} on ${config.connection}${
        config.partition === undefined
          ? ""
          : ` in ${config.partition.partitions} partitions of ${config.partition.column}`
      }${config.predicates === undefined ? "" : ` in ${config.predicates.length} predicates`}${
        config.incremental === undefined ? "" : `, incremental on ${config.incremental.column}`
      }`
    )
    return { source, fields: columns }
  })

/**
 * The JSON of an Avro schema: a registry's record schema carries a compiled avsc type, whose `schema()` gives it back
 * with its logical types.
 */
const avroJson = (avro: unknown): unknown => {
  const compiled = avro as { readonly schema?: (options: { readonly exportAttrs: boolean }) => unknown }
  return typeof compiled?.schema === "function" ? compiled.schema({ exportAttrs: true }) : avro
}

/** Builds the SQL sink a config describes. */
export const buildSink = (
  config: SinkConfig,
  env: SqlBuildEnv
): Effect.Effect<
  SqlTable.SqlSink<Row, PostgresClient.PostgresError | MysqlClient.MysqlError, never>,
  ConfigError.ConfigError
> =>
  Effect.gen(function* () {
    const type = config.type
    yield* checkConnection(type, config.connection, env, "sink")
    yield* checkIdentifiers(type, env, [
      ["table", [config.table]],
      ["table_schema", config.table_schema === undefined ? [] : [config.table_schema]],
      ["keys", config.keys ?? []]
    ])
    const schema = config.schema === undefined ? undefined : yield* env.schema(config.schema, `${env.path}.schema`)
    let createIfMissing: SqlTable.SinkSpec["createIfMissing"]
    if (config.create_if_missing === true && schema !== undefined) {
      const defs = columnsOfAvro(type, avroJson(schema.avro))
      if (typeof defs === "string")
        return yield* Effect.fail(
          ConfigError.single(env.file, `${env.path}.schema`, `Cannot create ${config.table} from this schema: ${defs}`)
        )
      createIfMissing = defs
    }
    // The columns written are the fields the records have (known from the source and transforms), else the sink
    // schema's; when neither tells, the sink takes them from its first batch. A column no field names is left alone.
    const fields = env.fields ?? schema?.fields
    if (fields !== undefined && config.keys !== undefined) {
      const unknown = config.keys.filter((k) => !fields.includes(k))
      if (unknown.length > 0)
        return yield* Effect.fail(
          ConfigError.single(
            env.file,
            `${env.path}.keys`,
            `Unknown field ${unknown.map((k) => `"${k}"`).join(", ")}; records here have: ${fields.join(", ")}`
          )
        )
    }
    const ref = { name: config.table, ...(config.table_schema === undefined ? {} : { schema: config.table_schema }) }
    const mode = config.mode ?? "append"
    return SqlTable.sink<Row, PostgresClient.PostgresError | MysqlClient.MysqlError, never>(
      systemOf(type) as SqlTable.System<PostgresClient.PostgresError | MysqlClient.MysqlError>,
      tagOf(type, config.connection),
      {
        name: config.name ?? env.defaultName,
        table: ref,
        mode,
        keys: config.keys ?? [],
        fields,
        createIfMissing,
        transaction: config.transaction ?? "end",
        ...(config.offsets_table === undefined
          ? {}
          : {
              offsets:
                config.offsets_table === false
                  ? false
                  : {
                      name: config.offsets_table,
                      ...(config.table_schema === undefined ? {} : { schema: config.table_schema })
                    }
            }),
        ...lineageOf(type, config.connection, env, ref, schema, fields)
      },
      `${label(type)} table ${Identifier.show(ref)} on ${config.connection}${mode === "upsert" ? ` by (${(config.keys ?? []).join(", ")})` : ""}`
    )
  })

/** One scoped layer per declared connection (a pool opened once per run and closed at its end), merged. */
export const connectionLayers = (
  connections: Readonly<Record<string, ConnectionConfig>>
): ReadonlyArray<Layer.Layer<Services>> =>
  Object.entries(connections).map(([name, c]) =>
    c.type === "postgres"
      ? (NodePostgres.layer(connectionOptions(c), name) as Layer.Layer<Services>)
      : (NodeMysql.layer(connectionOptions(c), name) as Layer.Layer<Services>)
  )

/**
 * The `CREATE TABLE IF NOT EXISTS` of a record schema (what a sink with `create_if_missing` runs, and what
 * `schema show --as postgres-ddl|mysql-ddl` prints), or what is wrong: a field without a SQL type, a key that is not
 * a field, a name the dialect does not take. `table` is `table` or `schema.table`.
 */
export const createTableOf = (
  dialect: Identifier.Dialect,
  avro: unknown,
  table: string,
  keys: ReadonlyArray<string>
): { readonly sql: string } | { readonly problem: string } => {
  const columns = columnsOfAvro(dialect, avro)
  if (typeof columns === "string") return { problem: columns }
  const missing = keys.find((k) => !columns.some((c) => c.name === k))
  if (missing !== undefined)
    return {
      problem: `the key ${JSON.stringify(missing)} is not a field; the fields are ${columns.map((c) => c.name).join(", ")}`
    }
  const dot = table.indexOf(".")
  const ref: Identifier.TableRef =
    dot === -1 ? { name: table } : { schema: table.slice(0, dot), name: table.slice(dot + 1) }
  const bad = Identifier.check(
    dialect,
    ref,
    columns.map((c) => c.name)
  )
  if (bad !== undefined) return { problem: bad }
  return { sql: `${createTableSql(dialect, ref, columns, keys)};` }
}
