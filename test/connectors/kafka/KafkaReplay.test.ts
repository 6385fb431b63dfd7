import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Build from "../../../src/config/Build.ts"
import * as Load from "../../../src/config/Load.ts"
import * as Replay from "../../../src/config/Replay.ts"
import * as FileStore from "../../../src/connectors/file/FileStore.ts"
import * as KafkaClient from "../../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../../src/connectors/kafka/NodeKafka.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"
import { KafkaBroker, uniqueTopic } from "../../support/KafkaBroker.ts"
import { lookup } from "../../support/ReplayFixture.ts"

const live = Layer.unwrap(Effect.map(KafkaBroker, (broker) => NodeKafka.layer({ brokers: broker.brokers }))).pipe(
  Layer.provideMerge(KafkaBroker.layer)
)

interface Letter {
  readonly stage: string
  readonly reason: string
  readonly record: unknown
  readonly origin?: string
}

layer(live, { timeout: 180_000, excludeTestServices: true })("replay of Kafka dead letters", (it) => {
  it.effect(
    "reads the dead-letter topic up to its end, upserts the records that now pass, keeps the rest in a new topic with their topic/partition@offset",
    () =>
      Effect.gen(function* () {
        const { brokers } = yield* KafkaBroker
        const [input, dead, dead2, out] = ["replay-in", "replay-dead", "replay-dead2", "replay-out"].map(uniqueTopic)
        const connections = { events: { type: "kafka", brokers } }
        const messages = [
          JSON.stringify({ id: "a", amount: 10, currency: "EUR" }),
          JSON.stringify({ id: "b", amount: 60, currency: "EUR" }),
          '{"id": "c", "amount": 1',
          JSON.stringify({ id: "f", amount: 70, currency: "usd" })
        ]
        yield* KafkaClient.KafkaClient.use((c) =>
          Effect.gen(function* () {
            for (const topic of [input!, dead!, dead2!, out!]) yield* c.createTopic(topic, { partitions: 1 })
            yield* Effect.scoped(
              Effect.flatMap(c.producer({ compression: "none" }), (producer) =>
                producer.send(
                  input!,
                  messages.map((m) => ({ key: null, value: new TextEncoder().encode(m) }))
                )
              )
            )
          })
        )
        const configWith = (maxAmount: number) => ({
          name: "payments",
          connections,
          source: {
            type: "kafka",
            connection: "events",
            topics: [input],
            group_id: uniqueTopic("payments"),
            start: "earliest",
            value: { type: "json" },
            schema: "txn"
          },
          transforms: [
            { type: "derive", fields: { amount: "amount * 2.0" } },
            {
              type: "validate",
              rules: [
                { rule: "range", field: "amount", max: maxAmount },
                { rule: "pattern", field: "currency", regex: "^[A-Z]{3}$" }
              ]
            }
          ],
          sink: {
            type: "kafka",
            connection: "events",
            topic: out,
            mode: "upsert",
            key: ["id"],
            value: { type: "json" }
          },
          dead_letters: { type: "kafka", connection: "events", topic: dead, value: { type: "json" } },
          retry: { attempts: 1 }
        })
        const readTopic = (topic: string) =>
          Effect.gen(function* () {
            const config = yield* Load.decode("read.json", {
              name: "read",
              connections,
              source: {
                type: "kafka",
                connection: "events",
                topics: [topic],
                group_id: uniqueTopic("reader"),
                start: "earliest",
                value: { type: "json" }
              },
              sink: { type: "file", path: "copy", format: { type: "jsonl" } }
            })
            const files = FileStore.memory()
            yield* Pipeline.run(yield* Build.build(config, { file: "read.json", schema: lookup })).pipe(
              Effect.provide(Layer.merge(Build.connections(config), FileStore.layerMemory(files)))
            )
            return Array.from(FileStore.contents(files).entries())
              .filter(([path]) => path.startsWith("copy/") && path.endsWith(".jsonl"))
              .flatMap(([, bytes]) => new TextDecoder().decode(bytes).trim().split("\n"))
              .filter((line) => line !== "")
              .map((line) => JSON.parse(line) as Record<string, unknown>)
          })

        const original = yield* Load.decode("p.json", configWith(100))
        const first = yield* Pipeline.run(yield* Build.build(original, { file: "p.json", schema: lookup })).pipe(
          Effect.provide(Layer.merge(Build.connections(original), FileStore.layerMemory()))
        )
        assert.deepStrictEqual([first.records.written, first.records.deadLettered], [1, 3])
        const before = (yield* readTopic(dead!)) as unknown as ReadonlyArray<Letter>
        assert.strictEqual(before.length, 3)
        assert.deepStrictEqual(
          before.filter((l) => l.reason === "decode-error").map((l) => l.origin),
          [`${input}/0@2`]
        )

        const fixed = yield* Load.decode("p.json", configWith(1000))
        const replay = yield* Replay.build(fixed, {
          file: "p.json",
          schema: lookup,
          from: `events:${dead}`,
          deadLetters: `events:${dead2}`
        })
        const report = yield* Pipeline.run(replay.pipeline).pipe(
          Effect.provide(Layer.merge(Build.connections(fixed), FileStore.layerMemory()))
        )
        assert.isTrue(report.reconciliation.ok)
        assert.deepStrictEqual([report.records.read, report.records.written, report.records.deadLettered], [3, 1, 2])

        const written = yield* readTopic(out!)
        assert.deepStrictEqual(written.map((r) => [r.id, r.amount]).sort(), [
          ["a", 20],
          ["b", 120]
        ])
        const still = (yield* readTopic(dead2!)) as unknown as ReadonlyArray<Letter>
        assert.deepStrictEqual(still.map((l) => [l.stage, l.reason, l.origin ?? null]).sort(), [
          ["source", "decode-error", `${input}/0@2`],
          ["validate", "rule:currency-pattern", null]
        ])
        assert.deepStrictEqual((still.find((l) => l.stage === "validate")!.record as { amount: number }).amount, 140)
      })
  )
})
