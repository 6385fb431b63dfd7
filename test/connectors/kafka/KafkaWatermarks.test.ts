import { assert, layer } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Kafka from "../../../src/connectors/kafka/Kafka.ts"
import { KafkaClient } from "../../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../../src/connectors/kafka/NodeKafka.ts"
import type { DeadLetter } from "../../../src/core/DeadLetter.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import { StopSignal } from "../../../src/core/Stop.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import * as Agg from "../../../src/transforms/Aggregate.ts"
import * as Window from "../../../src/transforms/Window.ts"
import { KafkaBroker, uniqueTopic } from "../../support/KafkaBroker.ts"

interface Ev {
  readonly id: number
  /** The message key: it decides the partition. */
  readonly k: string
  /** Event time, epoch milliseconds. */
  readonly at: number
}

interface Counted {
  readonly windowStart: Date
  readonly windowEnd: Date
  readonly n: number
  readonly ids: number
}

const base = Date.parse("2026-01-01T00:00:00Z")
const SECOND = 1000

const produce = (topic: string, records: ReadonlyArray<Ev>) =>
  Pipeline.from(Source.fromIterable("seed", records)).pipe(
    Pipeline.to(Kafka.sink<Ev>({ topic, mode: "upsert", key: ["k"], value: { type: "json" } })),
    Pipeline.run
  )

/** Keys that the producer's partitioner puts on partitions 0, 1 and 2 of a 3-partition topic (found on a probe topic). */
const keysPerPartition = Effect.gen(function* () {
  const probe = uniqueTopic("probe")
  yield* KafkaClient.use((c) => c.createTopic(probe, { partitions: 3 }))
  const candidates = Array.from({ length: 24 }, (_, i) => ({ id: i, k: `key-${i}`, at: 0 }))
  yield* produce(probe, candidates)
  const out = Sink.collect<Kafka.Envelope<Ev>>("probe")
  yield* Pipeline.from(
    Kafka.source<Ev>({
      topics: [probe],
      groupId: `probe-${crypto.randomUUID().slice(0, 8)}`,
      start: "earliest",
      envelope: true,
      value: { type: "json" }
    })
  ).pipe(Pipeline.to(out), Pipeline.run)
  const byPartition = new Map<number, string>()
  for (const e of out.collected().records) if (!byPartition.has(e.partition)) byPartition.set(e.partition, e.value.k)
  assert.strictEqual(byPartition.size, 3, "24 keys cover the 3 partitions")
  return [0, 1, 2].map((p) => byPartition.get(p)!)
})

/** A sink whose every write is durable at once, and what it holds so far. */
const liveSink = <A>(name: string) => {
  const seen: Array<A> = []
  const sink = Sink.make<A>({
    name,
    type: "memory",
    description: `${name} kept in memory, durable per write`,
    mode: "append",
    durability: "per-write",
    open: Effect.succeed({
      write: (records: ReadonlyArray<A>) => Effect.sync(() => void seen.push(...records)),
      commit: Effect.sync(() => ({ written: seen.length }))
    })
  })
  return { sink, seen }
}

const eventually = (condition: () => boolean) =>
  Effect.sync(condition).pipe(
    Effect.repeat({ until: (ok) => ok, schedule: Schedule.spaced("100 millis") }),
    Effect.timeout("60 seconds")
  )

const client = Layer.unwrap(Effect.map(KafkaBroker, (broker) => NodeKafka.layer({ brokers: broker.brokers }))).pipe(
  Layer.provide(KafkaBroker.layer)
)

layer(client, { timeout: 180_000, excludeTestServices: true })("event-time windows on a streaming Kafka read", (it) => {
  it.effect(
    "keep a watermark per partition; a silent partition goes idle and windows still close while the run goes on",
    () =>
      Effect.gen(function* () {
        const [kA, kB, kC] = yield* keysPerPartition
        const topic = uniqueTopic("idle")
        yield* KafkaClient.use((c) => c.createTopic(topic, { partitions: 3 }))
        const ev = (id: number, k: string, seconds: number): Ev => ({ id, k, at: base + seconds * SECOND })

        const read = new Set<number>()
        const until = (ids: ReadonlyArray<number>) => eventually(() => ids.every((id) => read.has(id)))
        const out = liveSink<Counted>("windows")
        const dead = liveSink<DeadLetter>("dead")
        const stop = yield* Deferred.make<void>()
        const run = yield* Pipeline.from(
          Kafka.source<Ev>({
            topics: [topic],
            groupId: `g-${crypto.randomUUID().slice(0, 8)}`,
            start: "earliest",
            bounded: false,
            value: { type: "json" }
          })
        ).pipe(
          Pipeline.filter((e) => {
            read.add(e.id)
            return true
          }),
          Pipeline.window(Window.tumbling("10 seconds", { time: "at", idleTimeout: "5 seconds" })),
          Pipeline.aggregate({
            groupBy: ["windowStart", "windowEnd"],
            fields: { n: Agg.count(), ids: Agg.sum("id") }
          }),
          Pipeline.to(out.sink),
          Pipeline.withDeadLetters(dead.sink),
          Pipeline.run,
          Effect.provideService(StopSignal, Deferred.await(stop)),
          Effect.forkChild
        )

        yield* produce(topic, [ev(1, kA!, 1), ev(2, kB!, 2), ev(3, kC!, 3)])
        yield* until([1, 2, 3])
        // Partition A runs ahead; B's record at 13 s is behind A but not behind B's own watermark, so it is not late.
        yield* produce(topic, [ev(4, kA!, 25)])
        yield* until([4])
        yield* produce(topic, [ev(5, kB!, 13)])
        yield* until([5])
        // C stays silent: once it has been idle for 5 s, B's next records move the watermark to 21 s.
        let id = 6
        const closed = () =>
          out.seen.some((w) => w.windowStart.getTime() === base) &&
          out.seen.some((w) => w.windowStart.getTime() === base + 10 * SECOND)
        yield* Effect.suspend(() => produce(topic, [ev(id++, kB!, 21)])).pipe(
          Effect.repeat({ until: () => closed(), schedule: Schedule.spaced("500 millis") }),
          Effect.timeout("60 seconds")
        )
        assert.isUndefined(run.pollUnsafe(), "the streaming run is still going")
        const window = (seconds: number) =>
          out.seen
            .filter((w) => w.windowStart.getTime() === base + seconds * SECOND)
            .map((w) => [w.windowEnd.getTime() - w.windowStart.getTime(), w.n, w.ids])
        assert.deepStrictEqual(window(0), [[10 * SECOND, 3, 1 + 2 + 3]])
        assert.deepStrictEqual(window(10), [[10 * SECOND, 1, 5]])

        // C comes back with a record the watermark has passed: it is late, and the run goes on.
        yield* produce(topic, [ev(1000, kC!, 4)])
        yield* eventually(() => dead.seen.length > 0)
        assert.deepStrictEqual(
          dead.seen.map((d) => [d.reason, (d.record as Ev).id]),
          [["late", 1000]]
        )
        assert.isUndefined(run.pollUnsafe(), "the streaming run is still going")
        yield* Deferred.succeed(stop, undefined)
        const report = yield* Fiber.join(run)
        assert.strictEqual(report.status, "succeeded")
        assert.strictEqual(report.records.rejected, 1)
      })
  )
})
