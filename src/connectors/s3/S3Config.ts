/**
 * Config schemas of the S3 connector: named connections (declared once in a config's `connections`, one SDK client per
 * run shared by every source and sink naming it), sources and sinks, and building them into the typed connector
 * values. A source or sink may instead carry its connection fields inline (`endpoint`, ...); it then opens its own
 * client for the run. Credentials are `Redacted` from the moment they are decoded; write them as
 * `{"$env": "VARIABLE"}`.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as ConfigError from "../../config/ConfigError.ts"
import { NonEmpty, PositiveInt, StageName } from "../../config/Fields.ts"
import { FormatConfig, toSpec } from "../../config/FormatConfig.ts"
import type { RecordSchema } from "../../core/RecordSchema.ts"
import type * as Sink from "../../core/Sink.ts"
import type * as Source from "../../core/Source.ts"
import * as Connections from "../internal/Connections.ts"
import * as NodeS3 from "./NodeS3.ts"
import * as S3 from "./S3.ts"
import * as S3Client from "./S3Client.ts"
import { reasons, S3Error } from "./S3Error.ts"

const secret = (description: string) =>
  Schema.RedactedFromValue(
    Schema.String.annotate({
      description,
      message: "Expected a string, got a value that is not shown (it may be a secret)"
    })
  )

const connectionFields = {
  endpoint: Schema.optionalKey(
    NonEmpty.annotate({
      description: "The S3 endpoint, e.g. http://127.0.0.1:9000 for an S3-compatible server (default: AWS)"
    })
  ),
  region: Schema.optionalKey(NonEmpty.annotate({ description: "The region (default us-east-1)" })),
  path_style: Schema.optionalKey(
    Schema.Boolean.annotate({
      description: "Path-style URLs (endpoint/bucket/key), needed by most S3-compatible servers"
    })
  ),
  access_key_id: Schema.optionalKey(secret('The access key id; write {"$env": "AWS_ACCESS_KEY_ID"}')),
  secret_access_key: Schema.optionalKey(secret('The secret access key; write {"$env": "AWS_SECRET_ACCESS_KEY"}'))
}

/** A named S3 connection in a config's `connections`. */
export const ConnectionConfig = Schema.Struct({
  type: Schema.Literal("s3").annotate({ description: "S3 or an S3-compatible store" }),
  ...connectionFields,
  session_token: Schema.optionalKey(
    secret('A session token (temporary credentials); write {"$env": "AWS_SESSION_TOKEN"}')
  )
}).annotate({
  description:
    "An S3 (or S3-compatible) store: one client per run shared by every source and sink naming it; without credentials the AWS SDK's chain applies"
})

/** A decoded S3 connection config. */
export type ConnectionConfig = typeof ConnectionConfig.Type

const inlineFields = {
  connection: Schema.optionalKey(
    NonEmpty.annotate({ description: 'The name of an "s3" connection declared in `connections`' })
  ),
  ...connectionFields
}

/** Either a named connection or inline connection fields, not both. */
const oneConnection = Schema.makeFilter((c: { readonly connection?: string } & Readonly<Record<string, unknown>>) =>
  c.connection !== undefined && Object.keys(connectionFields).some((k) => c[k] !== undefined)
    ? `With "connection", the endpoint, region, path_style and credentials come from the connection "${c.connection}": remove them here`
    : undefined
)

const bucket = NonEmpty.annotate({ description: "The bucket" })
const schemaName = NonEmpty.annotate({ description: "The name of an Avro schema in schemas/" })

/** An S3 source in a config. */
export const SourceConfig = Schema.Struct({
  type: Schema.Literal("s3"),
  name: Schema.optionalKey(StageName),
  ...inlineFields,
  bucket,
  path: Schema.String.annotate({
    description: "A key, a prefix (every object under it) or a glob such as events/2026-*.jsonl.gz"
  }),
  format: Schema.optionalKey(FormatConfig),
  schema: Schema.optionalKey(
    schemaName.annotate({ description: "The name of an Avro schema in schemas/ that every record must match" })
  ),
  batch_size: Schema.optionalKey(PositiveInt.annotate({ description: "Records per batch (default 4096)" })),
  concurrency: Schema.optionalKey(PositiveInt.annotate({ description: "Objects read at once (default 4)" })),
  use_manifest: Schema.optionalKey(
    Schema.Boolean.annotate({
      description: "Read only the objects a _SUCCESS manifest lists, when there is one (default true)"
    })
  )
})
  .check(oneConnection)
  .annotate({ description: "Reads objects from S3 or an S3-compatible store" })

/** An S3 sink in a config. */
export const SinkConfig = Schema.Struct({
  type: Schema.Literal("s3"),
  name: Schema.optionalKey(StageName),
  ...inlineFields,
  bucket,
  path: Schema.String.annotate({ description: "The prefix part objects are written under" }),
  format: FormatConfig,
  mode: Schema.optionalKey(
    Schema.Literals(["append", "overwrite", "upsert"])
      .check(
        Schema.makeFilter((mode: string) =>
          mode === "upsert"
            ? 'The S3 sink cannot upsert: objects have no keys. Use "append" or "overwrite", or a database sink for upserts'
            : undefined
        )
      )
      .annotate({
        description: "append (default) adds objects; overwrite replaces the prefix's set behind a _SUCCESS manifest"
      })
  ),
  schema: Schema.optionalKey(
    schemaName.annotate({ description: "The Avro schema of the written records; required for avro" })
  ),
  partition_by: Schema.optionalKey(
    Schema.Array(NonEmpty).annotate({
      description: 'Hive-style partition paths from these fields, e.g. ["date"] → date=2026-11-26/'
    })
  ),
  max_records_per_object: Schema.optionalKey(
    PositiveInt.annotate({ description: "Start a new object after this many records (default 1000000)" })
  ),
  max_bytes_per_object: Schema.optionalKey(
    PositiveInt.annotate({ description: "Start a new object after this many bytes (default 512 MiB)" })
  ),
  part_size: Schema.optionalKey(
    Schema.Int.check(Schema.isGreaterThanOrEqualTo(5 * 1024 * 1024)).annotate({
      description: "Multipart part size in bytes (default 8 MiB, at least 5 MiB)"
    })
  )
})
  .check(oneConnection)
  .annotate({ description: "Writes part objects to S3 or an S3-compatible store" })

/** A decoded S3 source config. */
export type SourceConfig = typeof SourceConfig.Type
/** A decoded S3 sink config. */
export type SinkConfig = typeof SinkConfig.Type

/** The connection options of a named connection, or of a source or sink config's inline fields. */
export const connectionOptions = (c: ConnectionConfig | SourceConfig | SinkConfig): S3Client.ConnectionOptions => ({
  ...(c.endpoint === undefined ? {} : { endpoint: c.endpoint }),
  ...(c.region === undefined ? {} : { region: c.region }),
  ...(c.path_style === undefined ? {} : { forcePathStyle: c.path_style }),
  ...(c.access_key_id === undefined ? {} : { accessKeyId: c.access_key_id }),
  ...(c.secret_access_key === undefined ? {} : { secretAccessKey: c.secret_access_key }),
  ...("session_token" in c && c.session_token !== undefined ? { sessionToken: c.session_token } : {})
})

/**
 * The layer of a named S3 connection: one SDK client for the run, shared by every source and sink naming it,
 * destroyed when the run ends.
 */
export const connectionLayer = <const Name extends string>(
  name: Name,
  config: ConnectionConfig
): Layer.Layer<S3Client.S3Connection<Name>> =>
  Layer.effect(S3Client.connection(name), NodeS3.make(connectionOptions(config)))

/** A client whose every operation fails: it stands for a connection nobody provided. */
const missingClient = (name: string): S3Client.S3ClientShape => {
  const fail = Effect.suspend(() =>
    Effect.fail(
      new S3Error({
        reason: reasons.InvalidArgument,
        operation: `use connection ${name}`,
        bucket: "",
        message: `The S3 connection "${name}" is not provided: provide Build.connections(config) (the CLI does) or S3Config.connectionLayer("${name}", config)`
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

/** Gives a source its own client, opened when its stream starts and closed when it ends. */
export const withClient = <A, E>(
  source: Source.Source<A, E, S3Client.S3Client>,
  layer: Layer.Layer<S3Client.S3Client>
): Source.Source<A, E> => ({
  ...source,
  batches: (ctx) =>
    Stream.unwrap(
      Effect.gen(function* () {
        const context = yield* Layer.buildWithScope(layer, yield* Effect.scope)
        return Stream.provideContext(source.batches(ctx), context)
      })
    )
})

/** Gives a sink its own client, open as long as the sink's writer. */
export const sinkWithClient = <A, E>(
  sink: Sink.Sink<A, E, S3Client.S3Client>,
  layer: Layer.Layer<S3Client.S3Client>
): Sink.Sink<A, E> => ({
  ...sink,
  open: Effect.gen(function* () {
    const context = yield* Layer.buildWithScope(layer, yield* Effect.scope)
    return yield* Effect.provideContext(sink.open, context)
  })
})

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
    const schema = config.schema === undefined ? undefined : yield* env.schema(config.schema, `${env.path}.schema`)
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
          ? withClient(source, NodeS3.layer(connectionOptions(config)))
          : sourceOnConnection(source, config.connection),
      fields: schema?.fields
    }
  })

/** Builds the S3 sink a config describes. */
export const buildSink = (config: SinkConfig, env: BuildEnv) =>
  Effect.gen(function* () {
    yield* checkConnection(config.connection, env, "sink")
    if (config.format.type === "avro" && config.schema === undefined)
      return yield* Effect.fail(
        ConfigError.single(
          env.file,
          `${env.path}.schema`,
          'An avro sink needs the schema of the records it writes: name one from schemas/ (e.g. "schema": "transaction")'
        )
      )
    const schema = config.schema === undefined ? undefined : yield* env.schema(config.schema, `${env.path}.schema`)
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
      ? sinkWithClient(sink, NodeS3.layer(connectionOptions(config)))
      : sinkOnConnection(sink, config.connection)
  })
