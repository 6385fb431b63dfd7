import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, layer } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as File from "../../../src/connectors/file/File.ts"
import * as NodeFileStore from "../../../src/connectors/file/NodeFileStore.ts"
import * as Kafka from "../../../src/connectors/kafka/Kafka.ts"
import { KafkaClient } from "../../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../../src/connectors/kafka/NodeKafka.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import { StopSignal } from "../../../src/core/Stop.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import { KafkaBroker, uniqueTopic } from "../../support/KafkaBroker.ts"

interface Row {
  readonly id: number
}

/** A sink whose every write is durable at once (so the runtime acknowledges batch by batch), and a way to wait for it. */
const liveSink = () => {
  const seen: Array<Row> = []
  const waiters: Array<{ readonly n: number; readonly done: Deferred.Deferred<void> }> = []
  const sink = Sink.make<Row>({
    name: "live",
    type: "memory",
    description: "records kept in memory, durable per write",
    mode: "append",
    durability: "per-write",
    open: Effect.succeed({
      write: (records: ReadonlyArray<Row>) =>
        Effect.gen(function* () {
          seen.push(...records)
          for (const w of waiters) if (seen.length >= w.n) yield* Deferred.succeed(w.done, undefined)
        }),
      commit: Effect.sync(() => ({ written: seen.length }))
    })
  })
  const reach = (n: number) =>
    Effect.gen(function* () {
      const done = yield* Deferred.make<void>()
      waiters.push({ n, done })
      if (seen.length >= n) yield* Deferred.succeed(done, undefined)
      yield* Deferred.await(done)
    }).pipe(Effect.timeout("30 seconds"))
  return { sink, seen, reach }
}

const produce = (topic: string, from: number, n: number) =>
  Pipeline.from(
    Source.fromIterable(
      "seed",
      Array.from({ length: n }, (_, i) => ({ id: from + i }))
    )
  ).pipe(Pipeline.to(Kafka.sink<Row>({ topic, value: { type: "json" } })), Pipeline.run)

const client = Layer.unwrap(Effect.map(KafkaBroker, (broker) => NodeKafka.layer({ brokers: broker.brokers }))).pipe(
  Layer.provide(KafkaBroker.layer)
)

layer(client, { timeout: 120_000, excludeTestServices: true })("Kafka source, unbounded, on the real broker", (it) => {
  it.effect(
    "keeps consuming new messages until interrupted, committing offsets as it goes; a restart resumes from them",
    () =>
      Effect.gen(function* () {
        const topic = uniqueTopic("stream")
        const group = `g-${crypto.randomUUID().slice(0, 8)}`
        yield* KafkaClient.use((c) => c.createTopic(topic, { partitions: 2 }))
        const committed = KafkaClient.use((c) => c.committedOffsets(group, topic)).pipe(
          Effect.map((offsets) => offsets.reduce((n, o) => n + Number(o.offset ?? 0), 0))
        )
        const first = liveSink()
        const source = Kafka.source<Row>({ topics: [topic], groupId: group, bounded: false, value: { type: "json" } })
        yield* produce(topic, 0, 20)
        const run = yield* Pipeline.from(source).pipe(Pipeline.to(first.sink), Pipeline.run, Effect.forkChild)
        yield* first.reach(20)
        yield* produce(topic, 20, 10)
        yield* first.reach(30)
        // The batches of the first 20 were acknowledged before any later batch was written.
        assert.isAtLeast(yield* committed, 20)
        assert.isUndefined(run.pollUnsafe())
        yield* Fiber.interrupt(run)

        yield* produce(topic, 30, 5)
        const second = liveSink()
        yield* Pipeline.from(Kafka.source<Row>({ topics: [topic], groupId: group, value: { type: "json" } })).pipe(
          Pipeline.to(second.sink),
          Pipeline.run
        )
        const ids = new Set([...first.seen, ...second.seen].map((r) => r.id))
        assert.deepStrictEqual(
          [...ids].sort((a, b) => a - b),
          Array.from({ length: 35 }, (_, i) => i)
        )
        assert.isAtMost(second.seen.length, 15)
        assert.isTrue(second.seen.every((r) => r.id >= 20))
        assert.strictEqual(yield* committed, 35)
      })
  )

  it.effect(
    "in streaming mode commits part files while running, and a stop leaves each message committed on both sides or on neither",
    () =>
      Effect.gen(function* () {
        const topic = uniqueTopic("stream-files")
        const group = `g-${crypto.randomUUID().slice(0, 8)}`
        const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-stream-"))
        const out = nodePath.join(dir, "out")
        yield* KafkaClient.use((c) => c.createTopic(topic, { partitions: 2 }))
        yield* produce(topic, 0, 50)
        const files = File.sink<Kafka.Envelope<Row>>({ path: out, format: { type: "jsonl" } })
        const firstCommit = yield* Deferred.make<void>()
        const watched = Sink.make({
          ...files,
          open: Effect.map(files.open, (writer) => ({
            write: writer.write,
            commit: Effect.tap(writer.commit, () => Deferred.succeed(firstCommit, undefined))
          }))
        })
        const stop = yield* Deferred.make<void>()
        const run = yield* Pipeline.from(
          Kafka.source<Row>({
            topics: [topic],
            groupId: group,
            start: "earliest",
            bounded: false,
            envelope: true,
            value: { type: "json" }
          })
        ).pipe(
          Pipeline.to(watched),
          Pipeline.withStreaming({ commitInterval: "500 millis", commitRecords: 1000 }),
          Pipeline.run,
          Effect.provideService(StopSignal, Deferred.await(stop)),
          Effect.provide(NodeFileStore.layer),
          Effect.forkChild
        )
        yield* Deferred.await(firstCommit).pipe(Effect.timeout("60 seconds"))
        const committedParts = fs.readdirSync(out).filter((f) => f.startsWith("part-"))
        assert.isAbove(committedParts.length, 0)
        assert.isUndefined(run.pollUnsafe())
        yield* produce(topic, 50, 30)
        yield* Deferred.succeed(stop, undefined)
        const report = yield* Fiber.join(run)
        assert.strictEqual(report.status, "succeeded")
        assert.isAtLeast(report.streaming?.segments ?? 0, 1)
        assert.isDefined(report.streaming?.latencyMs)

        const inFiles = new Map<number, Array<number>>()
        for (const file of fs.readdirSync(out).filter((f) => f.startsWith("part-")))
          for (const line of fs.readFileSync(nodePath.join(out, file), "utf8").split("\n")) {
            if (line === "") continue
            const envelope = JSON.parse(line) as { readonly partition: number; readonly offset: string }
            inFiles.set(envelope.partition, [...(inFiles.get(envelope.partition) ?? []), Number(envelope.offset)])
          }
        const committed = yield* KafkaClient.use((c) => c.committedOffsets(group, topic))
        let total = 0
        for (const partition of [0, 1]) {
          const upTo = Math.max(0, Number(committed.find((o) => o.partition === partition)?.offset ?? 0))
          const offsets = (inFiles.get(partition) ?? []).sort((a, b) => a - b)
          assert.deepStrictEqual(
            offsets,
            Array.from({ length: upTo }, (_, i) => i),
            `partition ${partition}: the sink holds exactly the offsets committed to the group`
          )
          total += upTo
        }
        assert.isAtLeast(total, 50)
        assert.strictEqual(report.records.written, total)
        fs.rmSync(dir, { recursive: true, force: true })
      })
  )
})
