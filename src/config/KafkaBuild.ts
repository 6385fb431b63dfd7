/**
 * Building Kafka sources, sinks and connection layers from decoded configs (the config schemas live in
 * `connectors/kafka/KafkaConfig.ts`): this is where a config picks the live layer over the driver.
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Kafka from "../connectors/kafka/Kafka.ts"
import * as KafkaClient from "../connectors/kafka/KafkaClient.ts"
import {
  type ConnectionConfig,
  connectionOptions,
  type PayloadConfig,
  type SinkConfig,
  type SourceConfig
} from "../connectors/kafka/KafkaConfig.ts"
import { KafkaError, reasons } from "../connectors/kafka/KafkaError.ts"
import * as ConfigError from "../core/ConfigError.ts"
import type { RecordSchema } from "../core/RecordSchema.ts"
import type * as Sink from "../core/Sink.ts"
import type * as Source from "../core/Source.ts"
import type * as Payload from "../formats/Payload.ts"
import * as AvroSchema from "../schema/AvroSchema.ts"
import * as RegistryClient from "../schema/RegistryClient.ts"
import * as Connections from "./Connections.ts"
import * as Records from "./Records.ts"
import * as RegistryBuild from "./RegistryBuild.ts"

/**
 * The layer of a named Kafka connection: one client (its admin connection opened on first use) for the run,
 * shared by every source and sink naming it, closed when the run ends.
 */
export const connectionLayer = <const Name extends string>(
  name: Name,
  config: ConnectionConfig
): Layer.Layer<KafkaClient.KafkaConnection<Name>> =>
  Layer.effect(KafkaClient.connection(name), KafkaClient.lazy(makeClient(connectionOptions(config))))

/** A client whose every operation fails: it stands for a connection nobody provided. */
/**
 * A client over the Kafka driver, which is loaded when the first one is made: it takes half a second to load, which
 * every run without Kafka (and every worker thread) would pay.
 */
const makeClient = (options: KafkaClient.ConnectionOptions) =>
  Effect.flatMap(
    Effect.promise(() => import("../connectors/kafka/NodeKafka.ts")),
    (driver) => driver.make(options)
  )

const missingClient = (name: string): KafkaClient.KafkaClientShape => {
  const fail = Effect.suspend(() =>
    Effect.fail(
      new KafkaError({
        reason: reasons.InvalidRequest,
        operation: `use connection ${name}`,
        message: `The Kafka connection "${name}" is not provided: provide Build.connections(config) (the CLI does) or KafkaBuild.connectionLayer("${name}", config)`
      })
    )
  )
  return {
    listTopics: fail,
    createTopic: () => fail,
    partitionOffsets: () => fail,
    offsetsForTimestamp: () => fail,
    committedOffsets: () => fail,
    consume: () => fail,
    commitOffsets: () => fail,
    producer: () => fail
  }
}

/**
 * The client of a config's named connection, read through a reference with the key of
 * `KafkaClient.connection(name)`: the connection layers of `Build.connections(config)` provide it, while config
 * pipelines keep needing only the services every config run gets.
 */
const named = (name: string): Context.Key<never, KafkaClient.KafkaClientShape> =>
  Context.Reference<KafkaClient.KafkaClientShape>(KafkaClient.connection(name).key, {
    defaultValue: () => missingClient(name)
  })

/** Runs a source with the client of a named connection. */
const sourceOnConnection = <A, E>(
  source: Source.Source<A, E, KafkaClient.KafkaClient>,
  name: string
): Source.Source<A, E> => Connections.sourceWith(source, KafkaClient.KafkaClient, Effect.service(named(name)))

/** Opens a sink's writer with the client of a named connection. */
const sinkOnConnection = <A, E>(sink: Sink.Sink<A, E, KafkaClient.KafkaClient>, name: string): Sink.Sink<A, E> =>
  Connections.sinkWith(sink, KafkaClient.KafkaClient, Effect.service(named(name)))

type Lookup = (
  name: string,
  path: string
) => Effect.Effect<RecordSchema<Readonly<Record<string, unknown>>>, ConfigError.ConfigError>

/** Where a payload format is, and what it is for: a sink's names the topic its subject is derived from. */
export interface PayloadEnv {
  readonly file: string
  readonly path: string
  readonly schema: Lookup
  readonly connections?: Readonly<Record<string, Connections.Declared>> | undefined
  readonly role: "source" | "sink"
  /** The sink's topic. */
  readonly topic?: string | undefined
}

const strategies = { topic: "topic", record: "record", topic_record: "topic-record" } as const

/** The payload format a config describes, with schema names resolved and registries bound to their connections. */
export const payload = (
  config: PayloadConfig,
  env: PayloadEnv
): Effect.Effect<Payload.PayloadFormat, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const path = env.path
    switch (config.type) {
      case "avro":
        return { type: "avro", schema: (yield* env.schema(config.schema, `${path}.schema`)).avro }
      case "confluent": {
        if (config.registry !== undefined) return yield* registryPayload(config, config.registry, env)
        const schemas = new Map<number, unknown>()
        for (const [id, name] of Object.entries(config.schemas ?? {}))
          schemas.set(Number(id), (yield* env.schema(name, `${path}.schemas.${id}`)).avro)
        return { type: "confluent", schemas, ...(config.write_id === undefined ? {} : { writeId: config.write_id }) }
      }
      case "json":
        return config.max_depth === undefined ? { type: "json" } : { type: "json", maxDepth: config.max_depth }
      default:
        return { type: config.type }
    }
  })

/** A `confluent` payload with a `registry`: the registry payload of the Kafka connector, on the named connection. */
const registryPayload = (
  config: {
    readonly schema?: string | undefined
    readonly subject_strategy?: "topic" | "record" | "topic_record" | undefined
    readonly auto_register?: boolean | undefined
  },
  registry: string,
  env: PayloadEnv
): Effect.Effect<Payload.PayloadFormat, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const path = env.path
    const connection = yield* RegistryBuild.declared({
      file: env.file,
      path,
      connections: env.connections,
      name: registry
    })
    if (env.role === "source") {
      const sinkOnly = (["subject_strategy", "auto_register"] as const).find((k) => config[k] !== undefined)
      if (sinkOnly !== undefined)
        return yield* Effect.fail(
          ConfigError.single(
            env.file,
            `${path}.${sinkOnly}`,
            `"${sinkOnly}" is for sinks: a source reads the writer schema of each message's id from the registry, whatever its subject`
          )
        )
    }
    const schemaName = config.schema ?? ""
    const record = yield* env.schema(schemaName, `${path}.schema`)
    const schema = yield* Effect.mapError(AvroSchema.validate(record.avroJson ?? record.avro), () =>
      ConfigError.single(
        env.file,
        `${path}.schema`,
        `The schema "${schemaName}" has no Avro schema to register: a registry payload needs an .avsc schema`
      )
    )
    const autoRegister = config.auto_register ?? true
    let subject = ""
    if (env.role === "sink") {
      const strategy = config.subject_strategy ?? "topic"
      const named = RegistryClient.subjectName(strategies[strategy], {
        topic: env.topic ?? "",
        recordName: RegistryClient.fullNameOf(schema)
      })
      if (named === undefined)
        return yield* Effect.fail(
          ConfigError.single(
            env.file,
            `${path}.subject_strategy`,
            `"${strategy}" names the subject after the record's full name, and the schema "${schemaName}" is not a named record: use "topic"`
          )
        )
      subject = named
    }
    return {
      type: "registry",
      registry: RegistryBuild.payloadClient(registry, connection, { autoRegister }),
      subject,
      schema,
      autoRegister
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

/** What building needs from the config around it. */
export interface BuildEnv {
  readonly file: string
  readonly path: string
  readonly defaultName: string
  readonly schema: Lookup
  /** The connections the config declares, by name. */
  readonly connections?: Readonly<Record<string, Connections.Declared>>
  /** True in streaming mode: a source without `bounded` streams. */
  readonly streaming?: boolean
}

/** Checks a source's or sink's `connection` names a declared Kafka connection. */
const checkConnection = (name: string | undefined, env: BuildEnv, role: string) =>
  Connections.checkOptional(name, "kafka", role, env)

/** The bootstrap brokers of a source or sink config, or of the connection it names (they name its dataset). */
const brokersOf = (
  config: { readonly connection?: string | undefined; readonly brokers?: ReadonlyArray<string> | undefined },
  env: BuildEnv
): ReadonlyArray<string> | undefined =>
  config.connection === undefined
    ? config.brokers
    : (env.connections?.[config.connection] as { readonly brokers?: ReadonlyArray<string> } | undefined)?.brokers

/** Builds the Kafka source a config describes. */
export const buildSource = (config: SourceConfig, env: BuildEnv) =>
  Effect.gen(function* () {
    yield* checkConnection(config.connection, env, "source")
    const value = yield* payload(config.value, { ...env, path: `${env.path}.value`, role: "source" })
    const key: Payload.PayloadFormat | undefined =
      config.key === undefined
        ? undefined
        : typeof config.key === "string"
          ? { type: config.key }
          : yield* registryPayload(config.key, config.key.registry, { ...env, path: `${env.path}.key`, role: "source" })
    const schema = yield* Records.withUnknownFields(
      config.schema === undefined ? undefined : yield* env.schema(config.schema, `${env.path}.schema`),
      config.unknown_fields,
      env.file,
      env.path
    )
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
      brokers: brokersOf(config, env) ?? [],
      ...(start === undefined ? {} : { start }),
      ...(config.bounded === undefined
        ? env.streaming === true
          ? { bounded: false }
          : {}
        : { bounded: config.bounded }),
      ...(key === undefined ? {} : { key }),
      ...(schema === undefined ? {} : { schema }),
      ...(config.max_bytes_per_partition === undefined ? {} : { maxBytesPerPartition: config.max_bytes_per_partition }),
      ...(config.instance_id === undefined ? {} : { instanceId: config.instance_id }),
      ...(config.session_timeout === undefined ? {} : { sessionTimeout: config.session_timeout as Duration.Input })
    }
    const source: Source.Source<
      Readonly<Record<string, unknown>>,
      KafkaError,
      KafkaClient.KafkaClient
    > = config.envelope === true
      ? (Kafka.source({ ...options, envelope: true }) as unknown as Source.Source<
          Readonly<Record<string, unknown>>,
          KafkaError,
          KafkaClient.KafkaClient
        >)
      : Kafka.source<Readonly<Record<string, unknown>>>(options)
    return {
      source:
        config.connection === undefined
          ? Connections.sourceWithLayer(
              source,
              Layer.effect(KafkaClient.KafkaClient, makeClient(connectionOptions(config)))
            )
          : sourceOnConnection(source, config.connection),
      fields:
        config.envelope === true
          ? ["topic", "partition", "offset", "timestamp", "key", "headers", "value"]
          : schema?.fields
    }
  })

/** Builds the Kafka sink a config describes. */
export const buildSink = (config: SinkConfig, env: BuildEnv) =>
  Effect.gen(function* () {
    yield* checkConnection(config.connection, env, "sink")
    const value = yield* payload(config.value, {
      ...env,
      path: `${env.path}.value`,
      role: "sink",
      topic: config.topic
    })
    const sink = Kafka.sink<Readonly<Record<string, unknown>>>({
      topic: config.topic,
      name: config.name ?? env.defaultName,
      brokers: brokersOf(config, env) ?? [],
      // "overwrite" is rejected by the config schema.
      mode: config.mode === "upsert" ? "upsert" : "append",
      value,
      ...(config.key === undefined ? {} : { key: config.key }),
      ...(config.compression === undefined ? {} : { compression: config.compression }),
      ...(config.max_request_bytes === undefined ? {} : { maxRequestBytes: config.max_request_bytes }),
      ...(config.linger === undefined ? {} : { linger: config.linger as Duration.Input }),
      ...(config.batch_size === undefined ? {} : { batchSize: config.batch_size })
    })
    return config.connection === undefined
      ? Connections.sinkWithLayer(sink, Layer.effect(KafkaClient.KafkaClient, makeClient(connectionOptions(config))))
      : sinkOnConnection(sink, config.connection)
  })
