import { assert, describe, it } from "@effect/vitest"
import {
  AuthenticationError,
  MultipleErrors,
  NetworkError,
  ProtocolError,
  ResponseError,
  TimeoutError,
  UnsupportedCompressionError,
  UserError
} from "@platformatic/kafka"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Build from "../../../src/config/Build.ts"
import * as Load from "../../../src/config/Load.ts"
import * as FileStore from "../../../src/connectors/file/FileStore.ts"
import * as KafkaClient from "../../../src/connectors/kafka/KafkaClient.ts"
import * as KafkaConfig from "../../../src/connectors/kafka/KafkaConfig.ts"
import { classifyError, classifyReason } from "../../../src/connectors/kafka/NodeKafka.ts"
import * as ConfigError from "../../../src/core/ConfigError.ts"
import type * as RecordSchema from "../../../src/core/RecordSchema.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import { transactionAvsc } from "./KafkaConformance.ts"

const kafkaSource = {
  type: "kafka",
  brokers: ["127.0.0.1:9092"],
  topics: ["tx"],
  group_id: "etl",
  value: { type: "json" }
}
const kafkaSink = { type: "kafka", brokers: ["127.0.0.1:9092"], topic: "out", value: { type: "json" } }
const file = { type: "file", path: "out", format: { type: "jsonl" } }

const issuesOf = (value: unknown) =>
  Load.decode("p.json", value).pipe(
    Effect.flip,
    Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
  )

const transaction: RecordSchema.RecordSchema<Readonly<Record<string, unknown>>> = {
  name: "transaction",
  fields: transactionAvsc.fields.map((f) => f.name),
  validate: (value) => ({ ok: true, value: value as Readonly<Record<string, unknown>> }),
  avro: transactionAvsc
}
const lookup: Build.SchemaLookup = (name, path) =>
  name === "transaction"
    ? Effect.succeed(transaction)
    : Effect.fail(ConfigError.single("p.json", path, `Unknown schema "${name}"`))

describe("Kafka config", () => {
  it.effect("decodes sources and sinks with every payload format and start position", () =>
    Effect.gen(function* () {
      for (const start of [
        "earliest",
        "latest",
        "committed",
        { timestamp: "2026-11-26T00:00:00Z" },
        { offsets: { tx: { "0": 42 } } }
      ]) {
        const config = yield* Load.decode("p.json", { name: "t", source: { ...kafkaSource, start }, sink: file })
        assert.strictEqual(config.source.type, "kafka")
      }
      const config = yield* Load.decode("p.json", {
        name: "t",
        source: {
          ...kafkaSource,
          value: { type: "confluent", schemas: { "1": "transaction" } },
          sasl: { mechanism: "plain", username: "u", password: "p" }
        },
        sink: {
          ...kafkaSink,
          mode: "upsert",
          key: ["userId"],
          value: { type: "avro", schema: "transaction" },
          compression: "gzip"
        }
      })
      assert.isTrue(
        config.source.type === "kafka" &&
          config.source.sasl !== undefined &&
          Redacted.isRedacted(config.source.sasl.password)
      )
      const pipeline = yield* Build.build(config, { file: "p.json", schema: lookup })
      assert.include(Pipeline.describe(pipeline).join("\n"), "kafka topics tx (confluent (ids 1), group etl, bounded)")
      assert.include(Pipeline.describe(pipeline).join("\n"), "kafka topic out (avro, key userId) [upsert]")
    })
  )

  it.effect(
    "rejects overwrite, upsert without key, unknown compressions and ambiguous topics with clear messages",
    () =>
      Effect.gen(function* () {
        assert.deepStrictEqual(
          yield* issuesOf({ name: "t", source: kafkaSource, sink: { ...kafkaSink, mode: "overwrite" } }),
          [
            '$.sink.mode: A Kafka topic is a log and cannot be overwritten. Use "append", or "upsert" with "key" fields on a compacted topic'
          ]
        )
        assert.deepStrictEqual(
          yield* issuesOf({ name: "t", source: kafkaSource, sink: { ...kafkaSink, mode: "upsert" } }),
          ['$.sink: An upsert Kafka sink needs "key": the record fields of the message key, e.g. ["userId"]']
        )
        for (const compression of ["gzip", "snappy", "lz4", "zstd"]) {
          const config = yield* Load.decode("p.json", {
            name: "t",
            source: kafkaSource,
            sink: { ...kafkaSink, compression }
          })
          assert.isTrue(config.sink.type === "kafka" && config.sink.compression === compression)
        }
        assert.deepStrictEqual(
          yield* issuesOf({ name: "t", source: kafkaSource, sink: { ...kafkaSink, compression: "brotli" } }),
          ['$.sink.compression: Expected "none" | "gzip" | "snappy" | "lz4" | "zstd", got "brotli"']
        )
        assert.deepStrictEqual(
          yield* issuesOf({ name: "t", source: { ...kafkaSource, topic_pattern: "tx-.*" }, sink: file }),
          ['$.source: Give exactly one of "topics" or "topic_pattern"']
        )
        const unknownKey = yield* issuesOf({ name: "t", source: { ...kafkaSource, group: "x" }, sink: file })
        assert.deepStrictEqual(unknownKey, ["$.source.group: Unknown key (not allowed here; check its spelling)"])
      })
  )

  it.effect("instance_id and session_timeout reach the consumer; bad ones are rejected with clear messages", () =>
    Effect.gen(function* () {
      const seen: Array<KafkaClient.ConsumeOptions> = []
      const run = (source: Record<string, unknown>) =>
        Effect.gen(function* () {
          const cluster = KafkaClient.memory({ tx: 1 })
          KafkaClient.appendMemory(cluster, "tx", [{ key: null, value: new TextEncoder().encode("{}") }], 0)
          const memory = KafkaClient.makeMemory(cluster)
          const recording: KafkaClient.KafkaClientShape = {
            ...memory,
            consume: (options) => {
              seen.push(options)
              return memory.consume(options)
            }
          }
          const config = yield* Load.decode("p.json", {
            name: "t",
            connections: { events: { type: "kafka", brokers: ["127.0.0.1:9092"] } },
            source: {
              type: "kafka",
              connection: "events",
              topics: ["tx"],
              group_id: "etl",
              value: { type: "json" },
              ...source
            },
            sink: file
          })
          const pipeline = yield* Build.build(config, { file: "p.json", schema: lookup })
          yield* Pipeline.run(pipeline).pipe(
            Effect.provide(Layer.succeed(KafkaClient.connection("events"), recording)),
            Effect.provide(FileStore.layerMemory())
          )
        })
      yield* run({ instance_id: "worker-1.eu_west", session_timeout: "20 seconds" })
      yield* run({ instance_id: false })
      yield* run({})
      assert.deepStrictEqual(
        seen.map((o) => [o.instanceId, o.sessionTimeout]),
        [
          ["worker-1.eu_west", 20_000],
          [false, undefined],
          [undefined, undefined]
        ]
      )
      assert.deepStrictEqual(
        yield* issuesOf({
          name: "t",
          source: { ...kafkaSource, instance_id: "worker 1", session_timeout: "soon" },
          sink: file
        }),
        [
          "$.source.instance_id: Expected an instance id of letters, digits, '.', '_' and '-' (1 to 249 of them), got \"worker 1\"",
          '$.source.session_timeout: Expected a duration like "5 seconds", "500 millis" or "2 minutes", got "soon"'
        ]
      )
    })
  )

  it.effect("names a missing schema and a bad timestamp at their paths", () =>
    Effect.gen(function* () {
      const build = (value: unknown) =>
        Load.decode("p.json", value).pipe(
          Effect.flatMap((config) => Build.build(config, { file: "p.json", schema: lookup })),
          Effect.flip,
          Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
        )
      assert.deepStrictEqual(
        yield* build({ name: "t", source: { ...kafkaSource, value: { type: "avro", schema: "nope" } }, sink: file }),
        ['$.source.value.schema: Unknown schema "nope"']
      )
      assert.deepStrictEqual(
        yield* build({ name: "t", source: { ...kafkaSource, start: { timestamp: "yesterday" } }, sink: file }),
        ['$.source.start.timestamp: Expected epoch milliseconds or an ISO-8601 time, got "yesterday"']
      )
    })
  )
})

describe("Kafka named connections", () => {
  const events = { type: "kafka", brokers: ["127.0.0.1:9092"], client_id: "etl", request_timeout: "5 seconds" }
  const named = {
    name: "t",
    connections: { events },
    source: { type: "kafka", connection: "events", topics: ["tx"], group_id: "etl", value: { type: "json" } },
    sink: { type: "kafka", connection: "events", topic: "out", value: { type: "json" } }
  }
  const build = (value: unknown) =>
    Load.decode("p.json", value).pipe(
      Effect.flatMap((config) => Build.build(config, { file: "p.json", schema: lookup }))
    )

  it.effect("a source and a sink naming one connection share its one client", () =>
    Effect.gen(function* () {
      const cluster = KafkaClient.memory({ tx: 2, out: 1 })
      KafkaClient.appendMemory(
        cluster,
        "tx",
        [1, 2, 3].map((id) => ({ key: null, value: new TextEncoder().encode(JSON.stringify({ id })) })),
        0
      )
      const pipeline = yield* build(named)
      const report = yield* Pipeline.run(pipeline).pipe(
        Effect.provide(Layer.succeed(KafkaClient.connection("events"), KafkaClient.makeMemory(cluster))),
        Effect.provide(FileStore.layerMemory())
      )
      assert.strictEqual(report.records.written, 3)
      assert.strictEqual(cluster.topics.get("out")![0]!.length, 3)
      assert.deepStrictEqual(
        cluster.committed.get("etl"),
        new Map([
          ["tx/0", "2"],
          ["tx/1", "1"]
        ])
      )
    })
  )

  it.effect("a connection nobody provided fails the run saying how to provide it", () =>
    Effect.gen(function* () {
      const pipeline = yield* build(named)
      const error = yield* Pipeline.run(pipeline).pipe(Effect.provide(FileStore.layerMemory()), Effect.flip)
      assert.include(
        error.message,
        'The Kafka connection "events" is not provided: provide Build.connections(config) (the CLI does)'
      )
    })
  )

  it.effect("rejects unknown connections, connections of another system and mixed inline fields", () =>
    Effect.gen(function* () {
      const issues = (value: unknown) =>
        build(value).pipe(
          Effect.flip,
          Effect.map((e) => e.issues.map((i) => `${i.path}: ${i.message}`))
        )
      assert.deepStrictEqual(yield* issues({ ...named, source: { ...named.source, connection: "nope" } }), [
        '$.source.connection: Unknown connection "nope": declare it under "connections" (declared: events)'
      ])
      assert.deepStrictEqual(
        yield* issues({ ...named, connections: { events: { type: "s3", endpoint: "http://127.0.0.1:9000" } } }),
        ['$.source.connection: Connection "events" is an S3 connection; a kafka source needs a Kafka one']
      )
      assert.deepStrictEqual(yield* issues({ ...named, sink: { ...named.sink, brokers: ["127.0.0.1:9092"] } }), [
        '$.sink: With "connection", the brokers, client_id, ssl and sasl come from the connection "events": remove them here'
      ])
      assert.deepStrictEqual(
        yield* issues({ ...named, sink: { type: "kafka", topic: "out", value: { type: "json" } } }),
        ['$.sink: Give a "connection" (declared under "connections") or "brokers"']
      )
      assert.deepStrictEqual(
        yield* issues({ ...named, connections: { events: { ...events, request_timeout: "soon" } } }),
        [
          '$.connections.events.request_timeout: Expected a duration like "5 seconds", "500 millis" or "2 minutes", got "soon"'
        ]
      )
    })
  )

  it("maps a connection's fields to client options, its password Redacted", () => {
    const options = KafkaConfig.connectionOptions({
      type: "kafka",
      brokers: ["b:9092"],
      client_id: "c",
      ssl: true,
      sasl: { mechanism: "scram-sha-512", username: "u", password: Redacted.make("p") },
      connection_timeout: "2 seconds",
      request_timeout: "1 minute"
    })
    assert.deepStrictEqual(
      { ...options, sasl: undefined },
      {
        brokers: ["b:9092"],
        clientId: "c",
        ssl: true,
        sasl: undefined,
        connectionTimeout: 2000,
        requestTimeout: 60000
      }
    )
    assert.strictEqual(Redacted.value(options.sasl!.password), "p")
  })
})

describe("Kafka error classification", () => {
  const protocol = (id: string) => new ProtocolError(id)
  it("maps @platformatic/kafka errors to reasons, searching retry and response wrappers", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" })
    const cases: ReadonlyArray<readonly [unknown, string, boolean]> = [
      [protocol("UNKNOWN_TOPIC_OR_PARTITION"), "TopicNotFound", false],
      [protocol("TOPIC_AUTHORIZATION_FAILED"), "AuthorizationError", false],
      [protocol("MESSAGE_TOO_LARGE"), "MessageTooLarge", false],
      [protocol("NOT_LEADER_OR_FOLLOWER"), "NotLeader", true],
      [protocol("COORDINATOR_LOAD_IN_PROGRESS"), "NotLeader", true],
      [protocol("REBALANCE_IN_PROGRESS"), "RebalanceInProgress", true],
      [protocol("FENCED_INSTANCE_ID"), "FencedInstanceId", false],
      [protocol("OFFSET_OUT_OF_RANGE"), "OffsetOutOfRange", false],
      [protocol("UNSUPPORTED_COMPRESSION_TYPE"), "UnsupportedCompression", false],
      [new NetworkError("Connection to 127.0.0.1:1 failed.", { cause: refused }), "ConnectionError", true],
      [new TimeoutError("Request timed out"), "Timeout", true],
      [new AuthenticationError("SASL authentication failed."), "AuthenticationError", false],
      [new UnsupportedCompressionError("Unsupported compression algorithm brotli"), "UnsupportedCompression", false],
      [
        new MultipleErrors("metadata failed 4 times.", [
          new NetworkError("Connection to 127.0.0.1:1 failed.", { cause: refused })
        ]),
        "ConnectionError",
        true
      ],
      [new ResponseError(0, 11, { "/topics/0/partitions/0": [3, null] }, {}), "TopicNotFound", false],
      [
        new MultipleErrors("send failed 2 times.", [
          new UserError("unrelated"),
          new ResponseError(0, 11, { "/topics/0/partitions/0": [10, "too big"] }, {})
        ]),
        "MessageTooLarge",
        false
      ],
      [new Error("something else"), "Unknown", false]
    ]
    for (const [error, tag, retryable] of cases) {
      const reason = classifyReason(error)
      assert.strictEqual(reason._tag, tag, String(error))
      assert.strictEqual(reason.retryable, retryable, String(error))
    }
  })

  it("names the operation, the topic and the protocol errors in the message", () => {
    const error = classifyError("send", "orders")(new ResponseError(0, 11, { "/topics/0/partitions/0": [3, null] }, {}))
    assert.strictEqual(error.reason._tag, "TopicNotFound")
    assert.include(error.message, "Kafka send on orders failed (TopicNotFound)")
    assert.include(error.message, "UNKNOWN_TOPIC_OR_PARTITION")
  })
})
