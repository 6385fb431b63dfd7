/**
 * The connectors a JSON config can use, listed explicitly: config `type` → config schemas and builders.
 * A new system is one folder under `connectors/` plus its entries here: its source, sink and connection configs in the
 * unions below, and a case in `buildSource` / `buildSink`.
 */
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as File from "../connectors/file/File.ts"
import * as FileConfig from "../connectors/file/FileConfig.ts"
import type { FileStore } from "../connectors/file/FileStore.ts"
import type { KafkaConnection } from "../connectors/kafka/KafkaClient.ts"
import * as KafkaConfig from "../connectors/kafka/KafkaConfig.ts"
import type { S3Connection } from "../connectors/s3/S3Client.ts"
import * as S3Config from "../connectors/s3/S3Config.ts"
import * as SqlConfig from "../connectors/sql/SqlConfig.ts"
import type * as ConfigError from "../core/ConfigError.ts"
import { toSpec } from "../core/FormatConfig.ts"
import type { RecordSchema } from "../core/RecordSchema.ts"
import type { Sink } from "../core/Sink.ts"
import type { Source } from "../core/Source.ts"
import type { RegistryConnection } from "../schema/RegistryClient.ts"
import * as KafkaBuild from "./KafkaBuild.ts"
import type { AnyRecord } from "./Records.ts"
import * as Records from "./Records.ts"
import * as RegistryBuild from "./RegistryBuild.ts"
import * as RegistryConfig from "./RegistryConfig.ts"
import * as S3Build from "./S3Build.ts"
import * as SqlBuild from "./SqlBuild.ts"

/**
 * The services config-built pipelines may need: the union of every connector's. Named connections are not in it: a
 * config declares them (`connections`) and `Build.connections(config)` provides them.
 */
export type Services = FileStore

/** The services of the connections a config declares (SQL pools, Kafka, S3 and schema registry clients), by name. */
export type ConnectionServices =
  | SqlBuild.Services
  | KafkaConnection<string>
  | S3Connection<string>
  | RegistryConnection<string>

/** A named connection a config declares once (under `connections`) and its sources and sinks refer to by name. */
export const ConnectionConfig = Schema.Union([
  SqlConfig.connectionConfig("postgres", "PostgreSQL"),
  SqlConfig.connectionConfig("mysql", "MySQL"),
  KafkaConfig.ConnectionConfig,
  S3Config.ConnectionConfig,
  RegistryConfig.ConnectionConfig
]).annotate({
  description: "A connection declared once and shared by every source and sink naming it; `type` names the system"
})
/** A decoded connection config. */
export type ConnectionConfig = typeof ConnectionConfig.Type

/** PostgreSQL source and sink configs. */
const PostgresSource = SqlConfig.sourceConfig("postgres", "PostgreSQL")
const PostgresSink = SqlConfig.sinkConfig("postgres", "PostgreSQL")
/** MySQL source and sink configs. */
const MysqlSource = SqlConfig.sourceConfig("mysql", "MySQL")
const MysqlSink = SqlConfig.sinkConfig("mysql", "MySQL")

/** What a connector builder gets: where it is in the config, and how to find schemas by name. */
export interface BuildEnv {
  readonly file: string
  /** The JSON path of the source or sink being built, e.g. `$.sink`. */
  readonly path: string
  /** The stage name when the config gives none. */
  readonly defaultName: string
  readonly schema: (name: string, path: string) => Effect.Effect<RecordSchema<AnyRecord>, ConfigError.ConfigError>
  /** The pipeline's name (the default name of state files). */
  readonly pipeline?: string
  /** The connections the config declares, by name. */
  readonly connections?: Readonly<Record<string, ConnectionConfig>>
  /** True for `"mode": "streaming"`: sources that can stream (Kafka) default to unbounded. */
  readonly streaming?: boolean
  /** For a sink: the fields records have when they reach it, when the source and transforms tell. */
  readonly fields?: ReadonlyArray<string> | undefined
}

const sqlEnv = (env: BuildEnv): SqlBuild.SqlBuildEnv => ({
  file: env.file,
  path: env.path,
  defaultName: env.defaultName,
  pipeline: env.pipeline ?? "pipeline",
  connections: env.connections ?? {},
  schema: env.schema,
  fields: env.fields
})

/** A built source and the fields its records have, when known. */
export interface BuiltSource {
  readonly source: Source<AnyRecord, unknown, Services>
  readonly fields: ReadonlyArray<string> | undefined
}

const buildFileSource = (
  config: FileConfig.SourceConfig,
  env: BuildEnv
): Effect.Effect<BuiltSource, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const schema = yield* Records.withUnknownFields(
      config.schema === undefined ? undefined : yield* env.schema(config.schema, `${env.path}.schema`),
      config.unknown_fields,
      env.file,
      env.path
    )
    return {
      source: File.source<AnyRecord>({
        path: config.path,
        name: config.name ?? env.defaultName,
        ...(config.format === undefined ? {} : { format: toSpec(config.format) }),
        ...(schema === undefined ? {} : { schema }),
        ...(config.batch_size === undefined ? {} : { batchSize: config.batch_size }),
        ...(config.concurrency === undefined ? {} : { concurrency: config.concurrency })
      }),
      fields: schema?.fields
    }
  })

const buildFileSink = (
  config: FileConfig.SinkConfig,
  env: BuildEnv
): Effect.Effect<Sink<AnyRecord, unknown, Services>, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const schema = yield* Records.sinkSchema(config, env)
    return File.sink<AnyRecord>({
      path: config.path,
      format: toSpec(config.format),
      // "upsert" is rejected by the config schema; only append and overwrite reach here.
      mode: config.mode === "overwrite" ? "overwrite" : "append",
      name: config.name ?? env.defaultName,
      ...(schema === undefined ? {} : { schema }),
      ...(config.max_records_per_file === undefined ? {} : { maxRecordsPerFile: config.max_records_per_file })
    })
  })

/** Every source a config can name, by `type`. */
export const SourceConfig = Schema.Union([
  FileConfig.SourceConfig,
  PostgresSource,
  MysqlSource,
  KafkaConfig.SourceConfig,
  S3Config.SourceConfig
]).annotate({
  description: "Where records come from; `type` names the connector"
})
/** Every sink a config can name, by `type`. */
export const SinkConfig = Schema.Union([
  FileConfig.SinkConfig,
  PostgresSink,
  MysqlSink,
  KafkaConfig.SinkConfig,
  S3Config.SinkConfig
]).annotate({
  description: "Where records go; `type` names the connector"
})

/** A decoded source config. */
export type SourceConfig = typeof SourceConfig.Type
/** A decoded sink config. */
export type SinkConfig = typeof SinkConfig.Type

/** Builds the source a config describes. */
export const buildSource = (
  config: SourceConfig,
  env: BuildEnv
): Effect.Effect<BuiltSource, ConfigError.ConfigError> => {
  switch (config.type) {
    case "file":
      return buildFileSource(config, env)
    case "postgres":
    case "mysql":
      return SqlBuild.buildSource(config, sqlEnv(env))
    case "kafka":
      return KafkaBuild.buildSource(config, env)
    case "s3":
      return S3Build.buildSource(config, env)
  }
}

/** Builds the sink a config describes. */
export const buildSink = (
  config: SinkConfig,
  env: BuildEnv
): Effect.Effect<Sink<AnyRecord, unknown, Services>, ConfigError.ConfigError> => {
  switch (config.type) {
    case "file":
      return buildFileSink(config, env)
    case "postgres":
    case "mysql":
      return SqlBuild.buildSink(config, sqlEnv(env))
    case "kafka":
      return KafkaBuild.buildSink(config, env)
    case "s3":
      return S3Build.buildSink(config, env)
  }
}

/** One scoped layer per declared connection (each pool or client is opened once per run and closed at its end). */
export const connectionLayers = (
  connections: Readonly<Record<string, ConnectionConfig>>
): ReadonlyArray<Layer.Layer<ConnectionServices>> => {
  const sql: Record<string, SqlConfig.ConnectionConfig> = {}
  const layers: Array<Layer.Layer<ConnectionServices>> = []
  for (const [name, c] of Object.entries(connections)) {
    // One layer per connection, each providing its own service: the union type of the merged layer lists them all.
    if (c.type === "kafka") layers.push(KafkaBuild.connectionLayer(name, c) as Layer.Layer<ConnectionServices>)
    else if (c.type === "s3") layers.push(S3Build.connectionLayer(name, c) as Layer.Layer<ConnectionServices>)
    else if (c.type === "schema_registry")
      layers.push(RegistryBuild.connectionLayer(name, c) as Layer.Layer<ConnectionServices>)
    else sql[name] = c
  }
  return [...(SqlBuild.connectionLayers(sql) as ReadonlyArray<Layer.Layer<ConnectionServices>>), ...layers]
}
