import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as KafkaClient from "../../../src/connectors/kafka/KafkaClient.ts"

describe("the memory Kafka client", () => {
  it.effect("assigns every partition when a consumer starts and revokes them once when it closes", () =>
    Effect.gen(function* () {
      const cluster = KafkaClient.memory({ a: 2, b: 1 })
      KafkaClient.appendMemory(cluster, "a", [{ key: null, value: new Uint8Array([1]) }], 0)
      const client = KafkaClient.makeMemory(cluster)
      const events: Array<string> = []
      const text = (ps: ReadonlyArray<KafkaClient.TopicPartition>) =>
        ps.map((p) => `${p.topic}/${p.partition}`).join(" ")
      const consumer = yield* client.consume({
        groupId: "g",
        topics: ["a", "b"],
        seeks: [],
        onAssigned: (ps) =>
          Effect.sync(() => {
            events.push(`assigned ${text(ps)}`)
          }),
        onRevoked: (ps) =>
          Effect.sync(() => {
            events.push(`revoked ${text(ps)}`)
          })
      })
      assert.deepStrictEqual(events, ["assigned a/0 a/1 b/0"])
      const batches = yield* Stream.runCollect(consumer.batches)
      assert.strictEqual(batches.length, 1)
      yield* consumer.close
      yield* consumer.close
      assert.deepStrictEqual(events, ["assigned a/0 a/1 b/0", "revoked a/0 a/1 b/0"])
    })
  )
})
