/**
 * Config schemas of the Kafka connector's source and sink, and building them into the typed connector values (each
 * source or sink opens its own kafkajs client for the run).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as ConfigError from "../../config/ConfigError.ts"
import { NonEmpty, PositiveInt, StageName } from "../../config/Fields.ts"
import type { RecordSchema } from "../../core/RecordSchema.ts"
import type * as Sink from "../../core/Sink.ts"
import type * as Source from "../../core/Source.ts"
import * as Kafka from "./Kafka.ts"
import type { ConnectionOptions, KafkaClient } from "./KafkaClient.ts"
import type { KafkaError } from "./KafkaError.ts"
import * as NodeKafka from "./NodeKafka.ts"
import type * as Payload from "./Payload.ts"

const secret = (description: string) =>
  Schema.RedactedFromValue(
    Schema.String.annotate({
      description,
      message: "Expected a string, got a value that is not shown (it may be a secret)"
    })
  )

const connectionFields = {
  brokers: Schema.Array(NonEmpty)
    .check(Schema.isMinLength(1))
    .annotate({ description: 'Bootstrap brokers, e.g. ["127.0.0.1:9092"]' }),
  client_id: Schema.optionalKey(
    NonEmpty.annotate({ description: "The client id the brokers see (default effect-etl)" })
  ),
  ssl: Schema.optionalKey(Schema.Boolean.annotate({ description: "Connect with TLS (default false)" })),
  sasl: Schema.optionalKey(
    Schema.Struct({
      mechanism: Schema.Literals(["plain", "scram-sha-256", "scram-sha-512"]),
      username: NonEmpty,
      password: secret('The password; write {"$env": "VARIABLE"} rather than the password itself')
    }).annotate({ description: "SASL authentication" })
  )
}

const schemaName = NonEmpty.annotate({ description: "The name of an Avro schema in schemas/" })

/** A message payload format in a config. */
export const PayloadConfig = Schema.Union([
  Schema.Struct({
    type: Schema.Literal("avro").annotate({ description: "Avro binary, one datum per message" }),
    schema: schemaName
  }),
  Schema.Struct({
    type: Schema.Literal("confluent").annotate({
      description: "Confluent wire format: magic byte 0, 4-byte schema id, Avro binary"
    }),
    schemas: Schema.Record(
      Schema.String.check(Schema.isPattern(/^[0-9]+$/u, { message: "Expected a schema id (digits)" })),
      schemaName
    ).annotate({ description: 'Schema id → schema name in schemas/, e.g. {"1": "transaction"}' }),
    write_id: Schema.optionalKey(
      Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)).annotate({
        description: "The schema id produced messages carry (sinks)"
      })
    )
  }),
  Schema.Struct({ type: Schema.Literal("json").annotate({ description: "A JSON document per message" }) }),
  Schema.Struct({ type: Schema.Literal("string").annotate({ description: "UTF-8 text" }) }),
  Schema.Struct({ type: Schema.Literal("bytes").annotate({ description: "Raw bytes" }) })
]).annotate({ description: "How message values are encoded" })

/** A decoded payload config. */
export type PayloadConfig = typeof PayloadConfig.Type

const StartConfig = Schema.Union([
  Schema.Literals(["earliest", "latest", "committed"]),
  Schema.Struct({
    timestamp: Schema.Union([Schema.Finite, Schema.String]).annotate({
      description: "Epoch milliseconds or an ISO-8601 time"
    })
  }),
  Schema.Struct({
    offsets: Schema.Record(NonEmpty, Schema.Record(Schema.String, Schema.Union([Schema.Int, Schema.String]))).annotate({
      description: 'topic → partition → offset, e.g. {"orders": {"0": 42}}'
    })
  })
]).annotate({
  description: "Where to start: earliest, latest, committed (the group's offsets, default), a timestamp, or offsets"
})

/** A Kafka source in a config. */
export const SourceConfig = Schema.Struct({
  type: Schema.Literal("kafka"),
  name: Schema.optionalKey(StageName),
  ...connectionFields,
  topics: Schema.optionalKey(Schema.Array(NonEmpty).annotate({ description: "Topic names" })),
  topic_pattern: Schema.optionalKey(
    NonEmpty.annotate({ description: "A regular expression matched against every topic" })
  ),
  group_id: NonEmpty.annotate({
    description: "The consumer group whose offsets are committed after the sink wrote a batch"
  }),
  start: Schema.optionalKey(StartConfig),
  bounded: Schema.optionalKey(
    Schema.Boolean.annotate({
      description: "true (default): stop at the end offsets seen at start; false: stream until stopped"
    })
  ),
  value: PayloadConfig,
  key: Schema.optionalKey(
    Schema.Literals(["string", "json", "bytes"]).annotate({ description: "The key format (default string)" })
  ),
  schema: Schema.optionalKey(
    schemaName.annotate({ description: "Validate JSON values against this schema (avro values use value.schema)" })
  ),
  envelope: Schema.optionalKey(
    Schema.Boolean.annotate({
      description: "Records are {topic, partition, offset, timestamp, key, headers, value} (default false)"
    })
  ),
  max_bytes_per_partition: Schema.optionalKey(
    PositiveInt.annotate({ description: "Bytes fetched per partition per request (default 4 MiB)" })
  )
})
  .check(
    Schema.makeFilter((c: { readonly topics?: ReadonlyArray<string>; readonly topic_pattern?: string }) =>
      (c.topics === undefined) === (c.topic_pattern === undefined)
        ? 'Give exactly one of "topics" or "topic_pattern"'
        : undefined
    )
  )
  .annotate({ description: "Reads Kafka topics" })

const compression = Schema.Literals(["none", "gzip", "snappy", "lz4", "zstd"])
  .check(
    Schema.makeFilter((c: string) =>
      c === "none" || c === "gzip"
        ? undefined
        : `Compression "${c}" is not available with the kafkajs client (it ships gzip only): use "gzip" or "none"`
    )
  )
  .annotate({ description: "Compression of produced batches: none (default) or gzip" })

/** A Kafka sink in a config. */
export const SinkConfig = Schema.Struct({
  type: Schema.Literal("kafka"),
  name: Schema.optionalKey(StageName),
  ...connectionFields,
  topic: NonEmpty.annotate({ description: "The topic messages are produced to" }),
  mode: Schema.optionalKey(
    Schema.Literals(["append", "overwrite", "upsert"])
      .check(
        Schema.makeFilter((mode: string) =>
          mode === "overwrite"
            ? 'A Kafka topic is a log and cannot be overwritten. Use "append", or "upsert" with "key" fields on a compacted topic'
            : undefined
        )
      )
      .annotate({ description: "append (default): no key; upsert: keyed by the key fields (compacted topics)" })
  ),
  key: Schema.optionalKey(Schema.Array(NonEmpty).annotate({ description: "Record fields forming the message key" })),
  value: PayloadConfig,
  compression: Schema.optionalKey(compression),
  max_request_bytes: Schema.optionalKey(
    PositiveInt.annotate({ description: "Bytes per produce request (default 1 MiB)" })
  )
})
  .check(
    Schema.makeFilter((c: { readonly mode?: string; readonly key?: ReadonlyArray<string> }) =>
      c.mode === "upsert" && (c.key === undefined || c.key.length === 0)
        ? 'An upsert Kafka sink needs "key": the record fields of the message key, e.g. ["userId"]'
        : undefined
    )
  )
  .annotate({ description: "Produces records to a Kafka topic" })

/** A decoded Kafka source config. */
export type SourceConfig = typeof SourceConfig.Type
/** A decoded Kafka sink config. */
export type SinkConfig = typeof SinkConfig.Type

/** The connection options of a source or sink config. */
export const connectionOptions = (c: SourceConfig | SinkConfig): ConnectionOptions => ({
  brokers: c.brokers,
  ...(c.client_id === undefined ? {} : { clientId: c.client_id }),
  ...(c.ssl === undefined ? {} : { ssl: c.ssl }),
  ...(c.sasl === undefined ? {} : { sasl: c.sasl })
})

type Lookup = (
  name: string,
  path: string
) => Effect.Effect<RecordSchema<Readonly<Record<string, unknown>>>, ConfigError.ConfigError>

/** The payload format a config describes, with schema names resolved. */
export const payload = (
  config: PayloadConfig,
  lookup: Lookup,
  path: string
): Effect.Effect<Payload.PayloadFormat, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    switch (config.type) {
      case "avro":
        return { type: "avro", schema: (yield* lookup(config.schema, `${path}.schema`)).avro }
      case "confluent": {
        const schemas = new Map<number, unknown>()
        for (const [id, name] of Object.entries(config.schemas))
          schemas.set(Number(id), (yield* lookup(name, `${path}.schemas.${id}`)).avro)
        return { type: "confluent", schemas, ...(config.write_id === undefined ? {} : { writeId: config.write_id }) }
      }
      default:
        return { type: config.type }
    }
  })

const startOf = (
  start: SourceConfig["start"],
  file: string,
  path: string
): Effect.Effect<Kafka.StartPosition | undefined, ConfigError.ConfigError> => {
  if (start === undefined || typeof start === "string") return Effect.succeed(start)
  if ("timestamp" in start) {
    const ms = typeof start.timestamp === "number" ? start.timestamp : Date.parse(start.timestamp)
    return Number.isFinite(ms)
      ? Effect.succeed({ timestamp: ms })
      : Effect.fail(
          ConfigError.single(
            file,
            `${path}.timestamp`,
            `Expected epoch milliseconds or an ISO-8601 time, got ${JSON.stringify(start.timestamp)}`
          )
        )
  }
  const offsets: Record<string, Record<number, string | number>> = {}
  for (const [topic, partitions] of Object.entries(start.offsets))
    offsets[topic] = Object.fromEntries(Object.entries(partitions).map(([p, o]) => [Number(p), o]))
  return Effect.succeed({ offsets })
}

/** Gives a source its own client, opened when its stream starts and closed when it ends. */
export const withClient = <A, E>(
  source: Source.Source<A, E, KafkaClient>,
  layer: Layer.Layer<KafkaClient, KafkaError>
): Source.Source<A, E | KafkaError> => ({
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
  sink: Sink.Sink<A, E, KafkaClient>,
  layer: Layer.Layer<KafkaClient, KafkaError>
): Sink.Sink<A, E | KafkaError> => ({
  ...sink,
  open: Effect.gen(function* () {
    const context = yield* Layer.buildWithScope(layer, yield* Effect.scope)
    return yield* Effect.provideContext(sink.open, context)
  })
})

/** What building needs from the config around it. */
export interface BuildEnv {
  readonly file: string
  readonly path: string
  readonly defaultName: string
  readonly schema: Lookup
}

/** Builds the Kafka source a config describes. */
export const buildSource = (config: SourceConfig, env: BuildEnv) =>
  Effect.gen(function* () {
    const value = yield* payload(config.value, env.schema, `${env.path}.value`)
    const schema = config.schema === undefined ? undefined : yield* env.schema(config.schema, `${env.path}.schema`)
    const start = yield* startOf(config.start, env.file, `${env.path}.start`)
    let topics: ReadonlyArray<string> | RegExp
    if (config.topic_pattern !== undefined) {
      const pattern = config.topic_pattern
      topics = yield* Effect.try({
        try: () => new RegExp(pattern),
        catch: (e) =>
          ConfigError.single(
            env.file,
            `${env.path}.topic_pattern`,
            `Invalid regular expression: ${(e as Error).message}`
          )
      })
    } else topics = config.topics ?? []
    const options = {
      topics,
      groupId: config.group_id,
      name: config.name ?? env.defaultName,
      value,
      ...(start === undefined ? {} : { start }),
      ...(config.bounded === undefined ? {} : { bounded: config.bounded }),
      ...(config.key === undefined ? {} : { key: { type: config.key } }),
      ...(schema === undefined ? {} : { schema }),
      ...(config.max_bytes_per_partition === undefined ? {} : { maxBytesPerPartition: config.max_bytes_per_partition })
    }
    const source: Source.Source<Readonly<Record<string, unknown>>, KafkaError, KafkaClient> = config.envelope === true
      ? (Kafka.source({ ...options, envelope: true }) as unknown as Source.Source<
          Readonly<Record<string, unknown>>,
          KafkaError,
          KafkaClient
        >)
      : Kafka.source<Readonly<Record<string, unknown>>>(options)
    return {
      source: withClient(source, NodeKafka.layer(connectionOptions(config))),
      fields:
        config.envelope === true
          ? ["topic", "partition", "offset", "timestamp", "key", "headers", "value"]
          : schema?.fields
    }
  })

/** Builds the Kafka sink a config describes. */
export const buildSink = (config: SinkConfig, env: BuildEnv) =>
  Effect.gen(function* () {
    const value = yield* payload(config.value, env.schema, `${env.path}.value`)
    const sink = Kafka.sink<Readonly<Record<string, unknown>>>({
      topic: config.topic,
      name: config.name ?? env.defaultName,
      // "overwrite" is rejected by the config schema.
      mode: config.mode === "upsert" ? "upsert" : "append",
      value,
      ...(config.key === undefined ? {} : { key: config.key }),
      ...(config.compression === "gzip" ? { compression: "gzip" as const } : {}),
      ...(config.max_request_bytes === undefined ? {} : { maxRequestBytes: config.max_request_bytes })
    })
    return sinkWithClient(sink, NodeKafka.layer(connectionOptions(config)))
  })
