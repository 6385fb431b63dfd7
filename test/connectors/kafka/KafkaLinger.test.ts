import { assert, describe, it } from "@effect/vitest"
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { TestClock } from "effect/testing"
import * as Kafka from "../../../src/connectors/kafka/Kafka.ts"
import * as KafkaClient from "../../../src/connectors/kafka/KafkaClient.ts"
import * as Batch from "../../../src/core/Batch.ts"
import * as Source from "../../../src/core/Source.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"

interface Row {
  readonly id: number
}

/** Lets the pipeline's fibers run until `done()` holds (no clock time passes). */
const until = (done: () => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 10_000 && !done(); i++) yield* Effect.yieldNow
    assert.isTrue(done(), "condition not reached")
  })

/** Lets the pipeline's fibers take what was offered (and start their linger timer) before the clock moves. */
const settle = Effect.forEach(Array.from({ length: 100 }), () => Effect.yieldNow, { discard: true })

const setup = Effect.gen(function* () {
  const cluster = KafkaClient.memory({ out: 1 })
  const queue = yield* Queue.unbounded<Batch.Batch<Row>, Cause.Done>()
  const acked: Array<number> = []
  const offer = (ids: ReadonlyArray<number>) =>
    Queue.offer(
      queue,
      Batch.make(
        ids.map((id) => ({ id })),
        { ack: Effect.sync(() => acked.push(...ids)) }
      )
    )
  const source = Source.make<Row>({
    name: "queue",
    type: "memory",
    description: "batches offered by the test",
    bounded: false,
    batches: () => Stream.fromQueue(queue)
  })
  const produced = () => cluster.topics.get("out")![0]!.map((m) => JSON.parse(new TextDecoder().decode(m.value!)).id)
  return { cluster, queue, acked, offer, source, produced }
})

describe("Kafka sink batching by size and linger", () => {
  it.effect("produces when the linger elapses or the size is reached, and acknowledges only after the produce", () =>
    Effect.gen(function* () {
      const { queue, acked, offer, source, produced, cluster } = yield* setup
      const run = yield* Pipeline.from(source).pipe(
        Pipeline.to(Kafka.sink<Row>({ topic: "out", value: { type: "json" }, linger: "5 millis", batchSize: 10 })),
        Pipeline.run,
        Effect.provide(KafkaClient.layerMemory(cluster)),
        Effect.forkChild
      )
      yield* offer([1, 2])
      yield* offer([3])
      yield* settle
      yield* TestClock.adjust("4 millis")
      assert.deepStrictEqual(produced(), [])
      assert.deepStrictEqual(acked, [])
      yield* TestClock.adjust("1 millis")
      yield* until(() => acked.length === 3)
      assert.deepStrictEqual(produced(), [1, 2, 3])
      assert.deepStrictEqual(acked, [1, 2, 3])

      yield* offer([4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
      yield* until(() => acked.length === 15)
      assert.deepStrictEqual(produced(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])

      yield* offer([16])
      yield* Queue.end(queue)
      const report = yield* Fiber.join(run)
      assert.strictEqual(report.records.written, 16)
      assert.deepStrictEqual(acked.slice(-1), [16])
    })
  )

  it.effect("a failed produce acknowledges none of the gathered batches", () =>
    Effect.gen(function* () {
      const { queue, acked, offer, source } = yield* setup
      const missing = KafkaClient.memory({})
      const run = yield* Pipeline.from(source).pipe(
        Pipeline.to(Kafka.sink<Row>({ topic: "out", value: { type: "json" }, linger: "5 millis", batchSize: 10 })),
        Pipeline.withRetry({ attempts: 1, initialDelay: "1 millis", factor: 1 }),
        Pipeline.run,
        Effect.provide(KafkaClient.layerMemory(missing)),
        Effect.flip,
        Effect.forkChild
      )
      yield* offer([1, 2])
      yield* offer([3])
      yield* Queue.end(queue)
      yield* TestClock.adjust("5 millis")
      const error = yield* Fiber.join(run)
      assert.include(error.message, "Topic out does not exist")
      assert.deepStrictEqual(acked, [])
    })
  )
})
