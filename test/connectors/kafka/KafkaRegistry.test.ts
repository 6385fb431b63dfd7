/**
 * Kafka payloads in the Confluent wire format with a schema registry: a sink registers its schema under the subject
 * and frames messages with the registry's id; a source fetches each writer schema it meets by id and reads the data as
 * its own (reader) schema. Run on the memory client with the memory registry, and on the real broker with the real
 * registry (test/support/SchemaRegistryServer.ts).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Kafka from "../../../src/connectors/kafka/Kafka.ts"
import * as KafkaClient from "../../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../../src/connectors/kafka/NodeKafka.ts"
import type { DeadLetter } from "../../../src/core/DeadLetter.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import * as AvroWire from "../../../src/formats/AvroWire.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import * as AvroBridge from "../../../src/schema/AvroBridge.ts"
import type * as AvroSchema from "../../../src/schema/AvroSchema.ts"
import * as RegistryClient from "../../../src/schema/RegistryClient.ts"
import { KafkaBroker, uniqueTopic } from "../../support/KafkaBroker.ts"
import * as SchemaRegistryServer from "../../support/SchemaRegistryServer.ts"

const v1 = {
  type: "record",
  name: "Order",
  namespace: "shop",
  fields: [
    { name: "id", type: "long" },
    { name: "customer", type: "string" }
  ]
} as unknown as AvroSchema.Schema

/** v1 with a field added with a default: it reads v1's data (backward compatible). */
const v2 = {
  type: "record",
  name: "Order",
  namespace: "shop",
  fields: [
    { name: "id", type: "long" },
    { name: "customer", type: "string" },
    { name: "channel", type: "string", default: "web" }
  ]
} as unknown as AvroSchema.Schema

const orders = [
  { id: 1, customer: "ann" },
  { id: 2, customer: "bob" },
  { id: 3, customer: "cy" }
]

const roundTrip = (registry: RegistryClient.Service, subjectOf: (topic: string) => string) =>
  Effect.gen(function* () {
    const topic = uniqueTopic("registry")
    const subject = subjectOf(topic)
    yield* KafkaClient.KafkaClient.use((c) => c.createTopic(topic, { partitions: 1 }))
    yield* Pipeline.from(Source.fromIterable("orders", orders)).pipe(
      Pipeline.to(Kafka.sink({ topic, value: { type: "registry", registry, subject, schema: v1 } })),
      Pipeline.run
    )
    const id = yield* registry.lookup(subject, v1)
    // A message framed with an id the registry does not know is a dead letter that names the id.
    const unknown = AvroWire.confluent({ schemas: new Map([[987_001, AvroBridge.toAvroType(v1)]]), writeId: 987_001 })
    const framed = unknown.encode({ id: 4, customer: "dee" })
    assert.isTrue(framed.ok)
    yield* KafkaClient.KafkaClient.use((c) =>
      Effect.scoped(
        Effect.flatMap(c.producer({ compression: "none" }), (producer) =>
          producer.send(topic, [{ key: null, value: framed.ok ? framed.bytes : new Uint8Array() }])
        )
      )
    )
    const out = Sink.collect<Record<string, unknown>>("out")
    const dead = Sink.collect<DeadLetter>("dead")
    const report = yield* Pipeline.from(
      Kafka.source({
        topics: [topic],
        groupId: uniqueTopic("reader"),
        start: "earliest",
        value: { type: "registry", registry, subject, schema: v2 }
      })
    ).pipe(Pipeline.to(out), Pipeline.withDeadLetters(dead), Pipeline.run)
    assert.strictEqual(report.records.read, 4)
    assert.deepStrictEqual(
      out.collected().records.map((r) => ({ ...r })),
      orders.map((o) => ({ ...o, channel: "web" }))
    )
    const letters = dead.collected().records
    assert.strictEqual(letters.length, 1)
    assert.include(letters[0]!.message, "unknown schema id 987001")
    assert.strictEqual(letters[0]!.reason, "decode-error")
    return id
  })

describe("Kafka with a schema registry (memory client, memory registry)", () => {
  it.effect("registers the sink's schema, reads with the source's schema, dead-letters unknown ids", () =>
    Effect.gen(function* () {
      const registry = yield* RegistryClient.makeMemory()
      const id = yield* roundTrip(registry, (topic) => RegistryClient.subjectName("topic", { topic })!)
      assert.deepStrictEqual(yield* registry.schemaById(id), v1)
    }).pipe(Effect.provide(Layer.suspend(() => KafkaClient.layerMemory(KafkaClient.memory({}, { fetchSize: 2 })))))
  )

  it.effect("reads keys through the registry too (envelopes)", () =>
    Effect.gen(function* () {
      const registry = yield* RegistryClient.makeMemory()
      const keySchema = { type: "record", name: "OrderKey", namespace: "shop", fields: [{ name: "id", type: "long" }] }
      const keyId = yield* registry.register("keyed-key", keySchema as unknown as AvroSchema.Schema)
      const valueId = yield* registry.register("keyed-value", v1)
      const frame = (id: number, schema: unknown, value: unknown) => {
        const encoded = AvroWire.confluent({
          schemas: new Map([[id, AvroBridge.toAvroType(schema as AvroSchema.Schema)]]),
          writeId: id
        }).encode(value)
        return encoded.ok ? encoded.bytes : new Uint8Array()
      }
      yield* KafkaClient.KafkaClient.use((c) =>
        Effect.gen(function* () {
          yield* c.createTopic("keyed", { partitions: 1 })
          yield* Effect.scoped(
            Effect.flatMap(c.producer({ compression: "none" }), (producer) =>
              producer.send(
                "keyed",
                orders.map((o) => ({ key: frame(keyId, keySchema, { id: o.id }), value: frame(valueId, v1, o) }))
              )
            )
          )
        })
      )
      const out = Sink.collect<Kafka.Envelope<Record<string, unknown>>>("out")
      yield* Pipeline.from(
        Kafka.source<Record<string, unknown>>({
          topics: ["keyed"],
          groupId: "keyed-reader",
          start: "earliest",
          envelope: true,
          key: { type: "registry", registry, subject: "keyed-key", schema: keySchema as unknown as AvroSchema.Schema },
          value: { type: "registry", registry, subject: "keyed-value", schema: v1 }
        })
      ).pipe(Pipeline.to(out), Pipeline.run)
      assert.deepStrictEqual(
        out.collected().records.map((e) => [{ ...(e.key as object) }, { ...e.value }]),
        orders.map((o) => [{ id: o.id }, o])
      )
    }).pipe(Effect.provide(Layer.suspend(() => KafkaClient.layerMemory(KafkaClient.memory()))))
  )

  it.effect("a sink that may not register fails at its start when its schema is not registered", () =>
    Effect.gen(function* () {
      const registry = yield* RegistryClient.makeMemory()
      yield* KafkaClient.KafkaClient.use((c) => c.createTopic("unregistered", { partitions: 1 }))
      const error = yield* Pipeline.from(Source.fromIterable("orders", orders)).pipe(
        Pipeline.to(
          Kafka.sink({
            topic: "unregistered",
            value: { type: "registry", registry, subject: "unregistered-value", schema: v1, autoRegister: false }
          })
        ),
        Pipeline.withRetry({ attempts: 1, initialDelay: "0 millis", factor: 1 }),
        Pipeline.run,
        Effect.flip
      )
      assert.include(error.message, "subject unregistered-value not found")
      assert.isFalse(error.retryable)
    }).pipe(Effect.provide(Layer.suspend(() => KafkaClient.layerMemory(KafkaClient.memory()))))
  )
})

describe("Kafka with a schema registry (real broker, real registry)", () => {
  it.live(
    "registers under the topic-record subject, reads with an evolved schema",
    () =>
      Effect.gen(function* () {
        const server = yield* Effect.acquireRelease(
          Effect.promise(() => SchemaRegistryServer.shared()),
          (s) => Effect.promise(() => s.stop())
        )
        const registry = yield* RegistryClient.make({ url: server.url })
        const recordName = RegistryClient.fullNameOf(v1)
        yield* roundTrip(registry, (topic) => RegistryClient.subjectName("topic-record", { topic, recordName })!)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Layer.unwrap(Effect.map(KafkaBroker, (broker) => NodeKafka.layer({ brokers: broker.brokers }))).pipe(
            Layer.provide(KafkaBroker.layer)
          )
        )
      ),
    900_000
  )
})
