/**
 * A bounded Kafka read split into parts (issue 12): one part per partition with data, from its start to the end offset
 * captured when the run was planned. A part reads its partition outside the consumer group and commits nothing; the
 * run commits the group's offsets to the parts' ends only once its sink committed. On the memory client and on a real
 * broker: the records equal a one-process read's, a failed sink leaves the group's offsets where they were, and a
 * finish run again commits nothing twice.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as WorkflowEngine from "effect/workflow/WorkflowEngine"
import { pipelines } from "../../../src/cli/ClusterCommands.ts"
import * as Cluster from "../../../src/cluster/Cluster.ts"
import * as Kafka from "../../../src/connectors/kafka/Kafka.ts"
import * as KafkaClient from "../../../src/connectors/kafka/KafkaClient.ts"
import { KafkaError, reasons } from "../../../src/connectors/kafka/KafkaError.ts"
import * as NodeKafka from "../../../src/connectors/kafka/NodeKafka.ts"
import type { RunReport } from "../../../src/core/RunReport.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import * as Split from "../../../src/runtime/Split.ts"
import { KafkaBroker, uniqueTopic } from "../../support/KafkaBroker.ts"
import { countingStaging } from "../../support/Staging.ts"
import { bag } from "../../transforms/support.ts"

interface Ev {
  readonly id: number
  readonly k: string
  readonly amount: number
}

const events = (n: number, from = 0): ReadonlyArray<Ev> =>
  Array.from({ length: n }, (_, i) => ({ id: from + i, k: `key-${(from + i) % 11}`, amount: (from + i) % 7 }))

const produce = (topic: string, records: ReadonlyArray<Ev>) =>
  Pipeline.from(Source.fromIterable("seed", records)).pipe(
    Pipeline.to(Kafka.sink<Ev>({ topic, mode: "upsert", key: ["k"], value: { type: "json" } })),
    Pipeline.run
  )

const source = (topic: string, groupId: string) =>
  Kafka.source<Ev>({ topics: [topic], groupId, start: "committed", value: { type: "json" } })

/** A pipeline reading `topic` in group `groupId`: filter, then per-key totals, or every record (`copy`). */
const pipelineOf = (topic: string, groupId: string, kind: "copy" | "totals", out: Sink.Sink<unknown, Error>) =>
  kind === "copy"
    ? Pipeline.from(source(topic, groupId)).pipe(
        Pipeline.filter((e: Ev) => e.amount !== 3),
        Pipeline.to(out)
      )
    : Pipeline.from(source(topic, groupId)).pipe(
        Pipeline.filter((e: Ev) => e.amount !== 3),
        Pipeline.aggregate({
          groupBy: ["k"],
          fields: { n: Pipeline.Agg.count(), total: Pipeline.Agg.sum("amount") }
        }),
        Pipeline.to(out)
      )

const staging = Layer.succeed(Split.Staging, Split.makeMemory())

/** The group's committed offsets of a topic, as `partition@offset`. */
const committed = (topic: string, groupId: string) =>
  Effect.map(
    KafkaClient.KafkaClient.use((c) => c.committedOffsets(groupId, topic)),
    (offsets) => offsets.map((o) => `${o.partition}@${o.offset ?? "-"}`)
  )

/** A sink whose commit fails (the records never land). */
const failing = Sink.make<unknown, Error>({
  name: "broken",
  type: "memory",
  description: "a sink whose commit fails",
  mode: "append",
  durability: "on-commit",
  open: Effect.succeed({
    write: () => Effect.void,
    commit: Effect.fail(new Error("disk full"))
  })
})

/** The checks of the split read, against whatever Kafka client is provided. */
const checks = (topic: string) =>
  Effect.gen(function* () {
    // 1. One part per partition; the parts read exactly what one process reads.
    for (const kind of ["copy", "totals"] as const) {
      const single = Sink.collect<unknown>("single")
      const one = yield* Pipeline.run(pipelineOf(topic, `single-${kind}-${topic}`, kind, single))
      const split = Sink.collect<unknown>("split")
      const group = `split-${kind}-${topic}`
      const p = pipelineOf(topic, group, kind, split)
      assert.isUndefined(Split.problemOf(p))
      const parts = yield* p.split!({ targetBytes: 1 })
      assert.deepStrictEqual(
        parts.map((part) => part.id),
        [`${topic}/0`, `${topic}/1`, `${topic}/2`]
      )
      assert.deepStrictEqual(
        parts.reduce((n, part) => n + (part.size?.records ?? 0), 0),
        600
      )
      // Planning commits nothing.
      assert.deepStrictEqual(yield* committed(topic, group), ["0@-", "1@-", "2@-"])
      const { report, error } = yield* Split.runLocal(p, { runId: `run-${kind}`, concurrency: 3 }).pipe(
        Effect.provide(staging)
      )
      assert.isUndefined(error)
      assert.deepStrictEqual(bag(split.collected().records), bag(single.collected().records))
      assert.strictEqual(report.records.read, one.records.read)
      assert.strictEqual(report.records.read, 600)
      assert.isTrue(report.reconciliation.ok)
      // The group's offsets are the parts' ends, as after a one-process read.
      assert.deepStrictEqual(yield* committed(topic, group), yield* committed(topic, `single-${kind}-${topic}`))
    }

    // 2. A sink that fails: the parts were read, but the group's offsets stay where they were.
    const group = `broken-${topic}`
    const broken = pipelineOf(topic, group, "copy", failing).pipe(
      Pipeline.withRetry({ attempts: 1, initialDelay: "1 millis", factor: 1 })
    )
    const outcome = yield* Split.runLocal(broken, { runId: "run-broken" }).pipe(Effect.provide(staging))
    assert.isDefined(outcome.error)
    assert.deepStrictEqual(yield* committed(topic, group), ["0@-", "1@-", "2@-"])

    // 3. A finish run again after its commit (its runner died before the cluster recorded that it ended): the
    // offsets are committed again, to the same ends; the records are not written twice (an overwrite).
    const again = Sink.collect<unknown>("again", { mode: "overwrite" })
    const p = pipelineOf(topic, `again-${topic}`, "totals", again)
    const parts = yield* p.split!({ targetBytes: 1 })
    const effect = Effect.gen(function* () {
      const results = yield* Effect.forEach(parts, (part, index) =>
        Split.readPart(p, { runId: "run-again", part, index })
      )
      const first = yield* Split.finish(p, { runId: "run-again", parts, results })
      const second = yield* Split.finish(p, { runId: "run-again", parts, results })
      return [first, second] as const
    })
    const [first, second] = yield* Effect.provide(effect, staging)
    assert.isUndefined(first.error)
    assert.isUndefined(second.error)
    assert.strictEqual(again.collected().records.length, 11)
    assert.strictEqual(second.report.records.written, first.report.records.written)
    assert.deepStrictEqual(
      yield* committed(topic, `again-${topic}`),
      parts.map((part) => `${(part.spec as { partition: number }).partition}@${(part.spec as { to: string }).to}`)
    )

    // 4. Records produced after the run: a later bounded read from the committed offsets reads only them.
    yield* produce(topic, events(30, 600))
    const later = Sink.collect<unknown>("later")
    const { report } = yield* Split.runLocal(pipelineOf(topic, `split-copy-${topic}`, "copy", later), {
      runId: "run-later"
    }).pipe(Effect.provide(staging))
    assert.strictEqual(report.records.read, 30)
  })

describe("split bounded Kafka reads", () => {
  describe("memory client", () => {
    it.effect("one part per partition, offsets committed for the group only after the sink committed", () =>
      Effect.gen(function* () {
        // 600 records, 200 per partition (the memory client spreads records without a key round-robin).
        const cluster = KafkaClient.memory({ split: 3 })
        KafkaClient.appendMemory(
          cluster,
          "split",
          events(600).map((e, i) => ({
            key: null,
            value: new TextEncoder().encode(JSON.stringify(e)),
            partition: i % 3
          })),
          0
        )
        yield* checks("split").pipe(Effect.provide(KafkaClient.layerMemory(cluster)))
      })
    )

    // Live: the retry schedule sleeps on the real clock.
    it.live("the offsets commit is retried when it may help, and a refused one fails the run naming the sink", () =>
      Effect.gen(function* () {
        const cluster = KafkaClient.memory({ flaky: 2 })
        KafkaClient.appendMemory(
          cluster,
          "flaky",
          events(40).map((e, i) => ({
            key: null,
            value: new TextEncoder().encode(JSON.stringify(e)),
            partition: i % 2
          })),
          0
        )
        const memory = KafkaClient.makeMemory(cluster)
        let failures = 0
        const failing = (
          reason: "ConnectionError" | "InvalidRequest",
          times: number
        ): KafkaClient.KafkaClientShape => ({
          ...memory,
          commitOffsets: (groupId, positions) =>
            failures++ < times
              ? Effect.fail(
                  new KafkaError({
                    reason: reasons[reason],
                    operation: "commit",
                    topic: "flaky",
                    message: `broker said no (${reason})`
                  })
                )
              : memory.commitOffsets(groupId, positions)
        })
        const run = (client: KafkaClient.KafkaClientShape, group: string) => {
          const out = Sink.collect<unknown>("out")
          const p = pipelineOf("flaky", group, "copy", out).pipe(
            Pipeline.withRetry({ attempts: 3, initialDelay: "1 millis", factor: 1 })
          )
          return Split.runLocal(p, { runId: `run-${group}` }).pipe(
            Effect.provide(staging),
            Effect.provideService(KafkaClient.KafkaClient, client),
            Effect.map((outcome) => ({ ...outcome, out }))
          )
        }
        // A connection lost twice: the third try commits.
        const retried = yield* run(failing("ConnectionError", 2), "retried")
        assert.isUndefined(retried.error)
        assert.strictEqual(failures, 3)
        assert.deepStrictEqual([...(cluster.committed.get("retried") ?? new Map())].sort(), [
          ["flaky/0", "20"],
          ["flaky/1", "20"]
        ])
        // Refused: the records are in the sink, the run fails and says the offsets did not move.
        failures = 0
        const refused = yield* run(failing("InvalidRequest", 5), "refused")
        assert.strictEqual(failures, 1)
        assert.strictEqual(refused.out.collected().commits, 1)
        assert.strictEqual(refused.report.status, "failed")
        assert.include(refused.error?.message ?? "", "the run's records are committed to out")
        assert.include(refused.error?.message ?? "", "broker said no")
        assert.isUndefined(cluster.committed.get("refused"))
      })
    )
  })

  const live = Layer.unwrap(Effect.map(KafkaBroker, (broker) => NodeKafka.layer({ brokers: broker.brokers }))).pipe(
    Layer.provide(KafkaBroker.layer)
  )
  layer(live, { timeout: 180_000, excludeTestServices: true })("real broker", (it) => {
    it.effect("one part per partition, offsets committed for the group only after the sink committed", () =>
      Effect.gen(function* () {
        const topic = uniqueTopic("split")
        yield* KafkaClient.KafkaClient.use((c) => c.createTopic(topic, { partitions: 3 }))
        // 600 records without a key: the producer spreads them over the partitions in turn.
        yield* KafkaClient.KafkaClient.use((c) =>
          Effect.scoped(
            Effect.flatMap(c.producer({ compression: "none" }), (producer) =>
              producer.send(
                topic,
                events(600).map((e) => ({ key: null, value: new TextEncoder().encode(JSON.stringify(e)) }))
              )
            )
          )
        )
        yield* checks(topic)
      })
    )
  })

  // A config run as a durable workflow (the in-memory engine): the parts are the topic's partitions, and the group's
  // offsets are committed by the finish, to the parts' ends.
  const counting = countingStaging()
  const workflows = Cluster.layerWorkflows.pipe(
    Layer.provideMerge(WorkflowEngine.layerMemory),
    Layer.provideMerge(Layer.succeed(Split.Staging, counting.shape)),
    Layer.provide(pipelines),
    Layer.provideMerge(live),
    Layer.provideMerge(KafkaBroker.layer)
  )
  layer(workflows, { timeout: 180_000, excludeTestServices: true })("a cluster run", (it) => {
    it.effect("reads the partitions as parts and commits the group's offsets after the sink", () =>
      Effect.gen(function* () {
        const broker = yield* KafkaBroker
        const topic = uniqueTopic("split-run")
        const groupId = `run-${topic}`
        yield* KafkaClient.KafkaClient.use((c) => c.createTopic(topic, { partitions: 3 }))
        yield* produce(topic, events(300))
        const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-kafka-split-"))
        const text = JSON.stringify({
          name: "kafka-split",
          connections: { events: { type: "kafka", brokers: broker.brokers } },
          source: { type: "kafka", connection: "events", topics: [topic], group_id: groupId, value: { type: "json" } },
          transforms: [
            {
              type: "aggregate",
              group_by: ["k"],
              fields: { n: { fn: "count" }, total: { fn: "sum", field: "amount" } }
            }
          ],
          sink: { type: "file", path: nodePath.join(dir, "totals"), format: { type: "jsonl" }, mode: "overwrite" }
        })
        const outcome = yield* Cluster.EtlRun.execute({
          runId: `kafka-${crypto.randomUUID()}`,
          file: "kafka-split.json",
          text,
          schemas: "",
          partBytes: 1
        })
        assert.isNull(outcome.error, outcome.error?.message)
        const report = JSON.parse(outcome.report!) as RunReport
        assert.strictEqual(report.records.read, 300)
        assert.strictEqual(report.records.written, 11)
        assert.isTrue(report.reconciliation.ok)
        // Split by partition: the parts staged their partial groups (a run read whole stages nothing). The key decides
        // the partition, so each of the 11 groups was staged once, by the part of its partition.
        assert.strictEqual(counting.counted.records, 11)
        const lines = fs
          .readdirSync(nodePath.join(dir, "totals"))
          .filter((f) => f.endsWith(".jsonl"))
          .flatMap((f) => fs.readFileSync(nodePath.join(dir, "totals", f), "utf8").split("\n"))
          .filter((l) => l !== "")
          .map((l) => JSON.parse(l) as { readonly n: number })
        assert.strictEqual(
          lines.reduce((sum, l) => sum + l.n, 0),
          300
        )
        const ends = yield* KafkaClient.KafkaClient.use((c) => c.partitionOffsets(topic))
        assert.deepStrictEqual(
          yield* committed(topic, groupId),
          ends.map((e) => `${e.partition}@${e.high === "0" ? "-" : e.high}`)
        )
        fs.rmSync(dir, { recursive: true, force: true })
      })
    )
  })
})
