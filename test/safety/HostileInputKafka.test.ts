import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, layer } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as File from "../../src/connectors/file/File.ts"
import * as NodeFileStore from "../../src/connectors/file/NodeFileStore.ts"
import * as Kafka from "../../src/connectors/kafka/Kafka.ts"
import { KafkaClient } from "../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../src/connectors/kafka/NodeKafka.ts"
import type * as DeadLetter from "../../src/core/DeadLetter.ts"
import * as RecordSchema from "../../src/core/RecordSchema.ts"
import * as Source from "../../src/core/Source.ts"
import { StopSignal } from "../../src/core/Stop.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import { KafkaBroker, uniqueTopic } from "../support/KafkaBroker.ts"

const Row = Schema.Struct({ id: Schema.Int })
type Row = typeof Row.Type

const client = Layer.unwrap(Effect.map(KafkaBroker, (broker) => NodeKafka.layer({ brokers: broker.brokers }))).pipe(
  Layer.provide(KafkaBroker.layer)
)

const utf8 = new TextEncoder()
const deep = (levels: number) => `${"[".repeat(levels)}1${"]".repeat(levels)}`

const jsonLines = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((f) => f.startsWith("part-"))
    .flatMap((f) => fs.readFileSync(nodePath.join(dir, f), "utf8").split("\n"))
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as unknown)

layer(client, { timeout: 120_000, excludeTestServices: true })("hostile Kafka messages, streaming", (it) => {
  it.effect(
    "a 5,000-level message and one that is not UTF-8 are dead-lettered; the records behind them are written and every offset is committed",
    () =>
      Effect.gen(function* () {
        const topic = uniqueTopic("hostile")
        const group = `g-${crypto.randomUUID().slice(0, 8)}`
        const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-hostile-kafka-"))
        yield* KafkaClient.use((c) => c.createTopic(topic, { partitions: 1 }))
        const good = (from: number, n: number) =>
          Array.from({ length: n }, (_, i) => utf8.encode(JSON.stringify({ id: from + i })))
        const deepMessage = utf8.encode(`{"id":${deep(5000)}}`)
        const notUtf8 = Uint8Array.from([...utf8.encode('{"id":11,"name":"caf'), 0xe9, ...utf8.encode('"}')])
        const messages = [...good(0, 10), deepMessage, notUtf8, ...good(12, 10)]
        yield* Pipeline.from(Source.fromIterable("seed", messages)).pipe(
          Pipeline.to(Kafka.sink<Uint8Array>({ topic, value: { type: "bytes" } })),
          Pipeline.run
        )

        const stop = yield* Deferred.make<void>()
        const run = yield* Pipeline.from(
          Kafka.source<Row>({
            topics: [topic],
            groupId: group,
            start: "earliest",
            bounded: false,
            value: { type: "json" },
            schema: RecordSchema.fromSchema(Row, "row")
          })
        ).pipe(
          Pipeline.to(File.sink<Row>({ path: nodePath.join(dir, "out"), format: { type: "jsonl" } })),
          Pipeline.withDeadLetters(
            File.sink<DeadLetter.DeadLetter>({ path: nodePath.join(dir, "dead"), format: { type: "jsonl" } })
          ),
          Pipeline.withStreaming({ commitInterval: "200 millis", commitRecords: 5 }),
          Pipeline.run,
          Effect.provideService(StopSignal, Deferred.await(stop)),
          Effect.provide(NodeFileStore.layer),
          Effect.forkChild
        )
        const committed = KafkaClient.use((c) => c.committedOffsets(group, topic)).pipe(
          Effect.map((offsets) => offsets.reduce((n, o) => n + Math.max(0, Number(o.offset ?? 0)), 0))
        )
        // Every offset, the hostile ones included, is committed; a run that ends first fails the test at once.
        yield* Effect.raceFirst(
          committed.pipe(
            Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (n) => n >= messages.length })
          ),
          Effect.flatMap(Fiber.join(run), (report) =>
            Effect.die(new Error(`the streaming run ended before committing every offset: ${report.status}`))
          )
        ).pipe(Effect.timeout("60 seconds"))
        yield* Deferred.succeed(stop, undefined)
        const report = yield* Fiber.join(run)
        assert.strictEqual(report.status, "succeeded")
        assert.strictEqual(yield* committed, messages.length)

        assert.deepStrictEqual(
          jsonLines(nodePath.join(dir, "out")).map((r) => (r as Row).id),
          [...Array.from({ length: 10 }, (_, i) => i), ...Array.from({ length: 10 }, (_, i) => 12 + i)]
        )
        const dead = jsonLines(nodePath.join(dir, "dead")) as ReadonlyArray<{
          readonly reason: string
          readonly message: string
          readonly origin: string
          readonly record: { readonly offset: string; readonly value: string }
        }>
        assert.deepStrictEqual(
          dead.map((d) => [d.reason, d.origin, d.message]),
          [
            [
              "decode-error",
              `${topic}/0@10`,
              `${topic}/0@10: invalid JSON: objects and arrays nested deeper than 100 levels`
            ],
            [
              "decode-error",
              `${topic}/0@11`,
              `${topic}/0@11: invalid JSON: not valid UTF-8 (byte 0xE9 at byte 21 of the message)`
            ]
          ]
        )
        assert.deepStrictEqual(
          dead.map((d) => Buffer.from(d.record.value, "base64")),
          [Buffer.from(deepMessage), Buffer.from(notUtf8)]
        )
        fs.rmSync(dir, { recursive: true, force: true })
      })
  )
})
