import { assert, describe, it, layer } from "@effect/vitest"
import { Admin, Consumer } from "@platformatic/kafka"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { Partitioners } from "kafkajs"
import * as Kafka from "../../../src/connectors/kafka/Kafka.ts"
import type { KafkaClientShape, TopicPartition } from "../../../src/connectors/kafka/KafkaClient.ts"
import { fetchedOnly, KafkaClient } from "../../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../../src/connectors/kafka/NodeKafka.ts"
import { LoadError } from "../../../src/core/Errors.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import { StopSignal } from "../../../src/core/Stop.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import { KafkaBroker, uniqueTopic } from "../../support/KafkaBroker.ts"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** An admin client of the test broker, for what the contract does not tell (group members, raw record batches). */
const admin = Effect.flatMap(KafkaBroker, (broker) =>
  Effect.acquireRelease(
    Effect.sync(() => new Admin({ clientId: "test", bootstrapBrokers: [...broker.brokers] })),
    (a) => Effect.promise(() => a.close())
  )
)

const groupState = (groupId: string) =>
  Effect.gen(function* () {
    const a = yield* admin
    const groups = yield* Effect.promise(() => a.describeGroups({ groups: [groupId] }))
    const group = groups.get(groupId)!
    return {
      state: group.state,
      instances: [...group.members.values()].map((m) => m.groupInstanceId).sort()
    }
  }).pipe(Effect.scoped)

const client = Effect.flatMap(KafkaBroker, (broker) => NodeKafka.make({ brokers: broker.brokers }))

const produce = (topic: string, n: number) =>
  Pipeline.from(
    Source.fromIterable(
      "seed",
      Array.from({ length: n }, (_, id) => ({ id }))
    )
  ).pipe(Pipeline.to(Kafka.sink({ topic, value: { type: "json" } })), Pipeline.run)

const partitionsText = (ps: ReadonlyArray<TopicPartition>) =>
  ps
    .map((p) => p.partition)
    .sort()
    .join(",")

describe("NodeKafka without a broker", () => {
  it("the default instance id is ETL_INSTANCE_ID, else the group and the host, in the characters Kafka allows", () => {
    assert.strictEqual(NodeKafka.defaultInstanceId("etl", { ETL_INSTANCE_ID: "worker-3" }, "host"), "worker-3")
    assert.strictEqual(NodeKafka.defaultInstanceId("etl", {}, "box.local"), "etl-box.local")
    assert.strictEqual(NodeKafka.defaultInstanceId("my group/1", { ETL_INSTANCE_ID: "" }, "h"), "my_group_1-h")
    assert.strictEqual(NodeKafka.defaultInstanceId("g".repeat(300), {}, "h").length, 249)
  })
})

layer(KafkaBroker.layer, { timeout: 120_000, excludeTestServices: true })("NodeKafka on the real broker", (it) => {
  it.effect("a consumer leaves its group when closed: after a bounded read, a failed run and a graceful stop", () =>
    Effect.gen(function* () {
      const kafka = yield* client
      const topic = uniqueTopic("leave")
      yield* kafka.createTopic(topic, { partitions: 2 })
      yield* produce(topic, 20).pipe(Effect.provideService(KafkaClient, kafka))
      const source = (groupId: string, bounded = true) =>
        Kafka.source({ topics: [topic], groupId, start: "earliest", bounded, value: { type: "json" } })

      const bounded = `g-${topic}-bounded`
      const read = yield* Pipeline.from(source(bounded)).pipe(
        Pipeline.to(Sink.collect("out")),
        Pipeline.run,
        Effect.provideService(KafkaClient, kafka)
      )
      assert.strictEqual(read.records.read, 20)
      assert.deepStrictEqual(yield* groupState(bounded), { state: "Empty", instances: [] })

      const failed = `g-${topic}-failed`
      const failing = Sink.make<unknown, LoadError>({
        name: "failing",
        type: "memory",
        description: "fails",
        mode: "append",
        durability: "per-write",
        open: Effect.succeed({
          write: () => Effect.fail(new LoadError({ stage: "failing", message: "disk full", retryable: false })),
          commit: Effect.succeed({ written: 0 })
        })
      })
      const error = yield* Pipeline.from(source(failed)).pipe(
        Pipeline.to(failing),
        Pipeline.run,
        Effect.provideService(KafkaClient, kafka),
        Effect.flip
      )
      assert.include(error.message, "disk full")
      assert.deepStrictEqual(yield* groupState(failed), { state: "Empty", instances: [] })

      const streaming = `g-${topic}-streaming`
      const stop = yield* Deferred.make<void>()
      const out = Sink.collect<unknown>("out")
      const run = yield* Pipeline.from(source(streaming, false)).pipe(
        Pipeline.to(out),
        Pipeline.withStreaming({ commitInterval: "100 millis" }),
        Pipeline.run,
        Effect.provideService(StopSignal, Deferred.await(stop)),
        Effect.provideService(KafkaClient, kafka),
        Effect.forkChild
      )
      while (out.collected().records.length < 20) yield* Effect.sleep("20 millis")
      const member = yield* groupState(streaming)
      assert.strictEqual(member.state, "Stable")
      assert.deepStrictEqual(member.instances, [NodeKafka.defaultInstanceId(streaming)])
      yield* Deferred.succeed(stop, undefined)
      assert.strictEqual((yield* Fiber.join(run)).status, "succeeded")
      assert.deepStrictEqual(yield* groupState(streaming), { state: "Empty", instances: [] })
    }).pipe(Effect.scoped)
  )

  it.effect("runs onRevoked before another member gets the partitions, and onAssigned before they are fetched", () =>
    Effect.gen(function* () {
      const first = yield* client
      const second = yield* client
      const topic = uniqueTopic("rebalance")
      const groupId = `g-${topic}`
      yield* first.createTopic(topic, { partitions: 2 })
      const events: Array<string> = []
      const log = (event: string) =>
        Effect.sync(() => {
          events.push(event)
        })
      const firstAssigned = yield* Deferred.make<void>()
      const firstReassigned = yield* Deferred.make<void>()
      const secondAssigned = yield* Deferred.make<void>()
      let assignments = 0
      const one = yield* first.consume({
        groupId,
        topics: [topic],
        seeks: [],
        instanceId: `${groupId}-one`,
        onAssigned: (ps) =>
          Effect.andThen(
            log(`one assigned ${partitionsText(ps)}`),
            Deferred.succeed(++assignments === 1 ? firstAssigned : firstReassigned, undefined)
          ),
        // Slower than the other member's join: without the wait, "two assigned" would come first.
        onRevoked: (ps) =>
          log(`one revoking ${partitionsText(ps)}`).pipe(
            Effect.andThen(Effect.sleep("2 seconds")),
            Effect.andThen(log("one revoked"))
          )
      })
      yield* Deferred.await(firstAssigned)
      const two = yield* second.consume({
        groupId,
        topics: [topic],
        seeks: [],
        instanceId: `${groupId}-two`,
        onAssigned: (ps) =>
          Effect.andThen(log(`two assigned ${partitionsText(ps)}`), Deferred.succeed(secondAssigned, undefined))
      })
      yield* Deferred.await(secondAssigned)
      yield* Deferred.await(firstReassigned)
      assert.deepStrictEqual(events.slice(0, 3), ["one assigned 0,1", "one revoking 0,1", "one revoked"])
      const rest = events.slice(3).sort()
      assert.strictEqual(rest.length, 2)
      assert.match(rest[0]!, /^one assigned [01]$/)
      assert.match(rest[1]!, /^two assigned [01]$/)
      assert.notStrictEqual(rest[0]!.slice(-1), rest[1]!.slice(-1))
      assert.deepStrictEqual((yield* groupState(groupId)).instances, [`${groupId}-one`, `${groupId}-two`])
      yield* two.close
      yield* one.close
      assert.strictEqual(events.at(-1), "one revoked")
    }).pipe(Effect.scoped)
  )

  it.effect(
    "two consumers of a process given the same instance id get distinct ids instead of fencing each other",
    () =>
      Effect.gen(function* () {
        const first = yield* client
        const second = yield* client
        const topic = uniqueTopic("same-id")
        const groupId = `g-${topic}`
        yield* first.createTopic(topic, { partitions: 2 })
        const one = yield* first.consume({ groupId, topics: [topic], seeks: [], instanceId: "worker" })
        const two = yield* second.consume({ groupId, topics: [topic], seeks: [], instanceId: "worker" })
        const state = yield* groupState(groupId)
        assert.deepStrictEqual(state.instances, ["worker", "worker-2"])
        yield* one.commit([{ topic, partition: 0, offset: "0" }])
        yield* two.commit([{ topic, partition: 1, offset: "0" }])
        yield* two.close
        yield* one.close
      }).pipe(Effect.scoped)
  )

  it.effect(
    "keyed messages land where kafkajs and the Java client put them; unkeyed ones go round the partitions",
    () =>
      Effect.gen(function* () {
        const kafka = yield* client
        const topic = uniqueTopic("keys")
        const partitions = 5
        yield* kafka.createTopic(topic, { partitions })
        const keys = Array.from({ length: 200 }, (_, i) => `user-${i}-${"x".repeat(i % 7)}`)
        const producer = yield* kafka.producer({ compression: "none" })
        yield* producer.send(
          topic,
          keys.map((k) => ({ key: encoder.encode(k), value: encoder.encode(k) }))
        )
        yield* producer.send(
          topic,
          Array.from({ length: 10 }, () => ({ key: null, value: encoder.encode("unkeyed") }))
        )
        const consumer = yield* kafka.consume({ groupId: `g-${topic}`, topics: [topic], seeks: [], instanceId: false })
        const seen: Array<{ readonly partition: number; readonly key: string | null }> = []
        yield* fetchedOnly(consumer.batches).pipe(
          Stream.takeUntil((batch) => {
            for (const m of batch.messages)
              seen.push({ partition: m.partition, key: m.key === null ? null : decoder.decode(m.key) })
            return seen.length >= keys.length + 10
          }),
          Stream.runDrain
        )
        yield* consumer.close
        const javaCompatible = Partitioners.DefaultPartitioner()
        const metadata = Array.from({ length: partitions }, (_, partitionId) => ({
          partitionId,
          leader: 1,
          replicas: [1],
          isr: [1],
          partitionErrorCode: 0
        }))
        for (const { partition, key } of seen.filter((s) => s.key !== null))
          assert.strictEqual(
            partition,
            javaCompatible({ topic, partitionMetadata: metadata, message: { key: key!, value: null } }),
            key!
          )
        assert.deepStrictEqual(
          [...new Set(seen.filter((s) => s.key === null).map((s) => s.partition))].sort(),
          [0, 1, 2, 3, 4]
        )
      }).pipe(Effect.scoped)
  )

  it.effect("produces with gzip, snappy, lz4 and zstd, the batches carrying the codec, and reads them back", () =>
    Effect.gen(function* () {
      const kafka = yield* client
      const topic = uniqueTopic("codecs")
      yield* kafka.createTopic(topic, { partitions: 1 })
      const codecs = ["none", "gzip", "snappy", "lz4", "zstd"] as const
      for (const compression of codecs) {
        const producer = yield* kafka.producer({ compression })
        yield* producer.send(topic, [
          {
            key: encoder.encode("k"),
            value: encoder.encode(`${compression} `.repeat(50)),
            headers: { codec: encoder.encode(compression) }
          },
          { key: encoder.encode("k"), value: null }
        ])
      }
      const consumer = yield* kafka.consume({ groupId: `g-${topic}`, topics: [topic], seeks: [], instanceId: false })
      const seen: Array<string> = []
      yield* fetchedOnly(consumer.batches).pipe(
        Stream.takeUntil((batch) => {
          for (const m of batch.messages)
            seen.push(
              m.value === null ? "tombstone" : `${decoder.decode(m.headers.codec!)}:${decoder.decode(m.value).length}`
            )
          return seen.length >= codecs.length * 2
        }),
        Stream.runDrain
      )
      yield* consumer.close
      assert.deepStrictEqual(
        seen,
        codecs.flatMap((c) => [`${c}:${(c.length + 1) * 50}`, "tombstone"])
      )
      // The codec of each record batch as the broker stores it (attributes, lowest 3 bits).
      const { brokers } = yield* KafkaBroker
      const raw = new Consumer({ clientId: "test", bootstrapBrokers: [...brokers], groupId: `raw-${topic}` })
      raw.topics.track(topic)
      const response = yield* Effect.promise(async () => {
        const metadata = await raw.metadata({ topics: [topic] })
        const t = metadata.topics.get(topic)!
        const fetched = await raw.fetch({
          node: t.partitions[0]!.leader,
          topics: [
            {
              topicId: t.id,
              partitions: [
                {
                  partition: 0,
                  fetchOffset: 0n,
                  partitionMaxBytes: 1 << 20,
                  currentLeaderEpoch: -1,
                  lastFetchedEpoch: -1
                }
              ]
            }
          ]
        })
        await raw.close()
        return fetched
      })
      const attributes = response.responses[0]!.partitions[0]!.records!.map((b) => b.attributes & 7)
      assert.deepStrictEqual(attributes, [0, 1, 2, 3, 4])
    }).pipe(Effect.scoped)
  )

  it.effect(
    "a session timeout the broker refuses fails the consumer with InvalidRequest, naming the broker's error",
    () =>
      Effect.gen(function* () {
        const kafka: KafkaClientShape = yield* client
        const topic = uniqueTopic("session")
        yield* kafka.createTopic(topic, { partitions: 1 })
        const error = yield* Effect.flip(
          kafka.consume({ groupId: `g-${topic}`, topics: [topic], seeks: [], sessionTimeout: 1_000 })
        )
        assert.strictEqual(error.reason._tag, "InvalidRequest")
        assert.include(error.message, "INVALID_SESSION_TIMEOUT")
      }).pipe(Effect.scoped)
  )
})
