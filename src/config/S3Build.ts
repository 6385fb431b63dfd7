/**
 * Building S3 sources, sinks and connection layers from decoded configs (the config schemas live in
 * `connectors/s3/S3Config.ts`): this is where a config picks the live layer over the driver.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as S3 from "../connectors/s3/S3.ts"
import * as S3Client from "../connectors/s3/S3Client.ts"
import {
  type ConnectionConfig,
  connectionOptions,
  type SinkConfig,
  type SourceConfig
} from "../connectors/s3/S3Config.ts"
import { reasons, S3Error } from "../connectors/s3/S3Error.ts"
import type * as ConfigError from "../core/ConfigError.ts"
import { toSpec } from "../core/FormatConfig.ts"
import type { RecordSchema } from "../core/RecordSchema.ts"
import type * as Sink from "../core/Sink.ts"
import type * as Source from "../core/Source.ts"
import * as Connections from "./Connections.ts"
import * as Records from "./Records.ts"

/** A client over the S3 driver, which is loaded when the first one is made (it takes a while to load). */
const makeClient = (options: S3Client.ConnectionOptions) =>
  Effect.flatMap(
    Effect.promise(() => import("../connectors/s3/NodeS3.ts")),
    (driver) => driver.make(options)
  )

/**
 * The layer of a named S3 connection: one SDK client for the run, shared by every source and sink naming it,
 * destroyed when the run ends.
 */
export const connectionLayer = <const Name extends string>(
  name: Name,
  config: ConnectionConfig
): Layer.Layer<S3Client.S3Connection<Name>> =>
  Layer.effect(S3Client.connection(name), makeClient(connectionOptions(config)))

/** A client whose every operation fails: it stands for a connection nobody provided. */
const missingClient = (name: string): S3Client.S3ClientShape => {
  const fail = Effect.suspend(() =>
    Effect.fail(
      new S3Error({
        reason: reasons.InvalidArgument,
        operation: `use connection ${name}`,
        bucket: "",
        message: `The S3 connection "${name}" is not provided: provide Build.connections(config) (the CLI does) or S3Build.connectionLayer("${name}", config)`
      })
    )
  )
  return {
    createBucket: () => fail,
    list: () => fail,
    get: () => Stream.fromEffect(fail),
    put: () => fail,
    createMultipartUpload: () => fail,
    uploadPart: () => fail,
    completeMultipartUpload: () => fail,
    abortMultipartUpload: () => fail,
    copy: () => fail,
    deleteMany: () => fail
  }
}

/** The client of a config's named connection, read through a reference with the key of `S3Client.connection(name)`. */
const named = (name: string): Context.Key<never, S3Client.S3ClientShape> =>
  Context.Reference<S3Client.S3ClientShape>(S3Client.connection(name).key, {
    defaultValue: () => missingClient(name)
  })

/** Runs a source with the client of a named connection. */
const sourceOnConnection = <A, E>(source: Source.Source<A, E, S3Client.S3Client>, name: string): Source.Source<A, E> =>
  Connections.sourceWith(source, S3Client.S3Client, Effect.service(named(name)))

/** Opens a sink's writer with the client of a named connection. */
const sinkOnConnection = <A, E>(sink: Sink.Sink<A, E, S3Client.S3Client>, name: string): Sink.Sink<A, E> =>
  Connections.sinkWith(sink, S3Client.S3Client, Effect.service(named(name)))

type Lookup = (
  name: string,
  path: string
) => Effect.Effect<RecordSchema<Readonly<Record<string, unknown>>>, ConfigError.ConfigError>

/** What building needs from the config around it. */
export interface BuildEnv {
  readonly file: string
  readonly path: string
  readonly defaultName: string
  readonly schema: Lookup
  /** The connections the config declares, by name. */
  readonly connections?: Readonly<Record<string, Connections.Declared>>
}

/** Checks a source's or sink's `connection` names a declared S3 connection. */
const checkConnection = (name: string | undefined, env: BuildEnv, role: string) =>
  Connections.checkOptional(name, "s3", role, env)

/** Builds the S3 source a config describes. */
export const buildSource = (config: SourceConfig, env: BuildEnv) =>
  Effect.gen(function* () {
    yield* checkConnection(config.connection, env, "source")
    const schema = yield* Records.withUnknownFields(
      config.schema === undefined ? undefined : yield* env.schema(config.schema, `${env.path}.schema`),
      config.unknown_fields,
      env.file,
      env.path
    )
    const source = S3.source<Readonly<Record<string, unknown>>>({
      bucket: config.bucket,
      path: config.path,
      name: config.name ?? env.defaultName,
      ...(config.format === undefined ? {} : { format: toSpec(config.format) }),
      ...(schema === undefined ? {} : { schema }),
      ...(config.batch_size === undefined ? {} : { batchSize: config.batch_size }),
      ...(config.concurrency === undefined ? {} : { concurrency: config.concurrency }),
      ...(config.use_manifest === undefined ? {} : { useManifest: config.use_manifest })
    })
    return {
      source:
        config.connection === undefined
          ? Connections.sourceWithLayer(source, Layer.effect(S3Client.S3Client, makeClient(connectionOptions(config))))
          : sourceOnConnection(source, config.connection),
      fields: schema?.fields
    }
  })

/** Builds the S3 sink a config describes. */
export const buildSink = (config: SinkConfig, env: BuildEnv) =>
  Effect.gen(function* () {
    yield* checkConnection(config.connection, env, "sink")
    const schema = yield* Records.sinkSchema(config, env)
    const sink = S3.sink<Readonly<Record<string, unknown>>>({
      bucket: config.bucket,
      path: config.path,
      name: config.name ?? env.defaultName,
      format: toSpec(config.format),
      // "upsert" is rejected by the config schema.
      mode: config.mode === "overwrite" ? "overwrite" : "append",
      ...(schema === undefined ? {} : { schema }),
      ...(config.partition_by === undefined ? {} : { partitionBy: config.partition_by }),
      ...(config.max_records_per_object === undefined ? {} : { maxRecordsPerObject: config.max_records_per_object }),
      ...(config.max_bytes_per_object === undefined ? {} : { maxBytesPerObject: config.max_bytes_per_object }),
      ...(config.part_size === undefined ? {} : { partSize: config.part_size })
    })
    return config.connection === undefined
      ? Connections.sinkWithLayer(sink, Layer.effect(S3Client.S3Client, makeClient(connectionOptions(config))))
      : sinkOnConnection(sink, config.connection)
  })
