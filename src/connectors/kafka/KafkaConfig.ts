import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import { BatchSize, durationString, intBetween, NonEmpty, StageName, UnknownFields } from "../../core/ConfigFields.ts"
import type * as KafkaClient from "./KafkaClient.ts"

const secret = (description: string) =>
  Schema.RedactedFromValue(
    Schema.String.annotate({
      description,
      message: "Expected a string, got a value that is not shown (it may be a secret)"
    })
  )

const brokers = Schema.Array(NonEmpty)
  .check(Schema.isMinLength(1))
  .annotate({ description: 'Bootstrap brokers, e.g. ["127.0.0.1:9092"]' })

const clientFields = {
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

/** A named Kafka connection in a config's `connections`. */
export const ConnectionConfig = Schema.Struct({
  type: Schema.Literal("kafka").annotate({ description: "A Kafka cluster" }),
  brokers,
  ...clientFields,
  connection_timeout: Schema.optionalKey(
    durationString({ max: "1 day", positive: true }).annotate({
      description: 'Longest wait to connect to a broker (default "10 seconds")'
    })
  ),
  request_timeout: Schema.optionalKey(
    durationString({ max: "1 day", positive: true }).annotate({
      description: 'Longest wait for a broker\'s answer (default "30 seconds")'
    })
  )
}).annotate({
  description: "A Kafka cluster, connected once per run and shared by every source and sink naming it"
})

/** A decoded Kafka connection config. */
export type ConnectionConfig = typeof ConnectionConfig.Type

const connectionFields = {
  connection: Schema.optionalKey(
    NonEmpty.annotate({ description: 'The name of a "kafka" connection declared in `connections`' })
  ),
  brokers: Schema.optionalKey(
    brokers.annotate({ description: 'Bootstrap brokers, e.g. ["127.0.0.1:9092"] (or name a "connection")' })
  ),
  ...clientFields
}

/** Either a named connection or inline connection fields, not both. */
const oneConnection = Schema.makeFilter(
  (c: {
    readonly connection?: string
    readonly brokers?: ReadonlyArray<string>
    readonly client_id?: string
    readonly ssl?: boolean
    readonly sasl?: unknown
  }) =>
    c.connection === undefined
      ? c.brokers === undefined
        ? 'Give a "connection" (declared under "connections") or "brokers"'
        : undefined
      : c.brokers !== undefined || c.client_id !== undefined || c.ssl !== undefined || c.sasl !== undefined
        ? `With "connection", the brokers, client_id, ssl and sasl come from the connection "${c.connection}": remove them here`
        : undefined
)

const schemaName = NonEmpty.annotate({ description: "The name of an Avro schema in schemas/" })

/** A message payload format in a config. */
export const PayloadConfig = Schema.Union([
  Schema.Struct({
    type: Schema.Literal("avro").annotate({ description: "Avro binary, one datum per message" }),
    schema: schemaName
  }),
  Schema.Struct({
    type: Schema.Literal("confluent").annotate({
      description:
        'Confluent wire format: magic byte 0, 4-byte schema id, Avro binary; ids map to local schemas ("schemas") or come from a schema registry ("registry")'
    }),
    schemas: Schema.optionalKey(
      Schema.Record(
        Schema.String.check(Schema.isPattern(/^[0-9]+$/u, { message: "Expected a schema id (digits)" })),
        schemaName
      ).annotate({
        description: 'Schema id → schema name in schemas/, e.g. {"1": "transaction"} (without "registry")'
      })
    ),
    write_id: Schema.optionalKey(
      intBetween(0, 2_147_483_647, "schema ids are 32-bit").annotate({
        description: 'The schema id produced messages carry (sinks, without "registry")'
      })
    ),
    registry: Schema.optionalKey(
      NonEmpty.annotate({
        description:
          'The name of a "schema_registry" connection declared in `connections`: a sink registers "schema" (or looks it up) and frames messages with its id; a source fetches the writer schema of each id it meets'
      })
    ),
    schema: Schema.optionalKey(
      schemaName.annotate({
        description:
          'With "registry": the Avro schema in schemas/ a sink registers and writes, and a source reads messages as (Avro schema resolution from each writer schema)'
      })
    ),
    subject_strategy: Schema.optionalKey(
      Schema.Literals(["topic", "record", "topic_record"]).annotate({
        description:
          'With "registry", sinks: the subject "schema" is registered under: "topic" (default) <topic>-value, "record" the record\'s full name, "topic_record" <topic>-<full name>'
      })
    ),
    auto_register: Schema.optionalKey(
      Schema.Boolean.annotate({
        description:
          'With "registry", sinks: register "schema" under the subject when the run starts (default true); false only looks it up, and a schema the subject does not have fails the run at its start'
      })
    )
  }).check(
    Schema.makeFilter(
      (c: {
        readonly schemas?: unknown
        readonly write_id?: unknown
        readonly registry?: string
        readonly schema?: string
        readonly subject_strategy?: string
        readonly auto_register?: boolean
      }) => {
        if (c.registry === undefined) {
          const stray = (["schema", "subject_strategy", "auto_register"] as const).filter((k) => c[k] !== undefined)
          if (stray.length > 0)
            return `${stray.map((k) => `"${k}"`).join(", ")} ${stray.length === 1 ? "needs" : "need"} "registry" (a schema_registry connection); without it schema ids map to local schemas through "schemas"`
          return c.schemas === undefined
            ? 'Give "schemas" (schema id → schema in schemas/) or "registry" (a schema_registry connection) with "schema"'
            : undefined
        }
        if (c.schemas !== undefined || c.write_id !== undefined)
          return `With "registry", schema ids come from the registry "${c.registry}": remove "schemas" and "write_id"`
        return c.schema === undefined
          ? `With "registry", give "schema": the name of the Avro schema in schemas/ that is registered (sinks) or read as (sources)`
          : undefined
      }
    )
  ),
  Schema.Struct({
    type: Schema.Literal("json").annotate({ description: "A JSON document per message" }),
    max_depth: Schema.optionalKey(
      Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 })).annotate({
        description:
          "How deeply objects and arrays may nest in a message (default 100); a deeper message is dead-lettered before it is parsed"
      })
    )
  }),
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
      description:
        "true (default in batch mode): stop at the end offsets seen at start; false (default in streaming mode): stream until stopped"
    })
  ),
  value: PayloadConfig,
  key: Schema.optionalKey(
    Schema.Union([
      Schema.Literals(["string", "json", "bytes"]),
      Schema.Struct({
        type: Schema.Literal("confluent").annotate({
          description: "Keys in the Confluent wire format, their writer schemas fetched by id from a schema registry"
        }),
        registry: NonEmpty.annotate({
          description: 'The name of a "schema_registry" connection declared in `connections`'
        }),
        schema: schemaName.annotate({ description: "The Avro schema in schemas/ keys are read as" })
      })
    ]).annotate({
      description:
        'The key format (default string), or {"type": "confluent", "registry": NAME, "schema": NAME} for Avro keys through a schema registry (envelopes show the key)'
    })
  ),
  schema: Schema.optionalKey(
    schemaName.annotate({ description: "Validate JSON values against this schema (avro values use value.schema)" })
  ),
  unknown_fields: Schema.optionalKey(UnknownFields),
  envelope: Schema.optionalKey(
    Schema.Boolean.annotate({
      description: "Records are {topic, partition, offset, timestamp, key, headers, value} (default false)"
    })
  ),
  max_bytes_per_partition: Schema.optionalKey(
    intBetween(1, 16777216, "a request fetches at most 16 MiB in all").annotate({
      description: "Bytes fetched per partition per request (default 512 KiB; at most 16 MiB per request in all)"
    })
  ),
  instance_id: Schema.optionalKey(
    Schema.Union([
      Schema.String.check(
        Schema.isPattern(/^[A-Za-z0-9._-]{1,249}$/u, {
          message: "Expected an instance id of letters, digits, '.', '_' and '-' (1 to 249 of them)"
        })
      ),
      Schema.Literal(false)
    ]).annotate({
      description:
        'The consumer\'s static group membership id (group.instance.id): a process restarted after a crash gets its partitions back at once. Unique per process reading the group. Default: the ETL_INSTANCE_ID environment variable, else "<group_id>-<hostname>"; false: dynamic membership'
    })
  ),
  session_timeout: Schema.optionalKey(
    durationString({ max: "30 minutes", positive: true }).annotate({
      description:
        'How long the group waits for a member that stopped heartbeating (a crash) before giving its partitions to others (default "45 seconds"; brokers accept 6 seconds to 30 minutes unless configured otherwise)'
    })
  )
})
  .check(
    Schema.makeFilter((c: { readonly topics?: ReadonlyArray<string>; readonly topic_pattern?: string }) =>
      (c.topics === undefined) === (c.topic_pattern === undefined)
        ? 'Give exactly one of "topics" or "topic_pattern"'
        : undefined
    ),
    oneConnection
  )
  .annotate({ description: "Reads Kafka topics" })

const compression = Schema.Literals(["none", "gzip", "snappy", "lz4", "zstd"]).annotate({
  description: "Compression of produced batches: none (default), gzip, snappy, lz4 or zstd"
})

/** A Kafka sink in a config. */
export const SinkConfig = Schema.Struct({
  type: Schema.Literal("kafka"),
  name: Schema.optionalKey(StageName),
  ...connectionFields,
  topic: NonEmpty.annotate({ description: "The topic messages are produced to" }),
  mode: Schema.optionalKey(
    Schema.Literals(["append", "overwrite", "upsert"])
      .check(
        Schema.makeFilter(
          (mode: string) =>
            mode === "overwrite"
              ? 'A Kafka topic is a log and cannot be overwritten. Use "append", or "upsert" with "key" fields on a compacted topic'
              : undefined,
          { toJsonSchema: () => ({ enum: ["append", "upsert"] }) }
        )
      )
      .annotate({ description: "append (default): no key; upsert: keyed by the key fields (compacted topics)" })
  ),
  key: Schema.optionalKey(Schema.Array(NonEmpty).annotate({ description: "Record fields forming the message key" })),
  value: PayloadConfig,
  compression: Schema.optionalKey(compression),
  max_request_bytes: Schema.optionalKey(
    intBetween(1, 268435456, "a request is held in memory").annotate({
      description: "Bytes per produce request (default 1 MiB, at most 256 MiB)"
    })
  ),
  linger: Schema.optionalKey(
    durationString({ max: "1 minute" }).annotate({
      description:
        'Wait this long for more records before producing, e.g. "5 millis" (like linger.ms); offsets are committed after the produce. Default: produce each batch as it comes'
    })
  ),
  batch_size: Schema.optionalKey(
    BatchSize.annotate({
      description: "Produce at once when this many records are gathered (default 10000; with linger)"
    })
  )
})
  .check(
    Schema.makeFilter((c: { readonly mode?: string; readonly key?: ReadonlyArray<string> }) =>
      c.mode === "upsert" && (c.key === undefined || c.key.length === 0)
        ? 'An upsert Kafka sink needs "key": the record fields of the message key, e.g. ["userId"]'
        : undefined
    ),
    oneConnection
  )
  .annotate({ description: "Produces records to a Kafka topic" })

/** A decoded Kafka source config. */
export type SourceConfig = typeof SourceConfig.Type
/** A decoded Kafka sink config. */
export type SinkConfig = typeof SinkConfig.Type

/** The connection options of a named connection, or of a source or sink config's inline fields. */
export const connectionOptions = (c: ConnectionConfig | SourceConfig | SinkConfig): KafkaClient.ConnectionOptions => ({
  brokers: c.brokers ?? [],
  ...(c.client_id === undefined ? {} : { clientId: c.client_id }),
  ...(c.ssl === undefined ? {} : { ssl: c.ssl }),
  ...(c.sasl === undefined ? {} : { sasl: c.sasl }),
  ...("connection_timeout" in c && c.connection_timeout !== undefined
    ? { connectionTimeout: millis(c.connection_timeout) }
    : {}),
  ...("request_timeout" in c && c.request_timeout !== undefined ? { requestTimeout: millis(c.request_timeout) } : {})
})

const millis = (duration: string): number => Duration.toMillis(Duration.fromInputUnsafe(duration as Duration.Input))
