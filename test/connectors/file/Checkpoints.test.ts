import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Checkpoints from "../../../src/connectors/file/Checkpoints.ts"
import * as File from "../../../src/connectors/file/File.ts"
import { type FileError, reasons } from "../../../src/connectors/file/FileError.ts"
import * as FileStoreModule from "../../../src/connectors/file/FileStore.ts"
import * as Kafka from "../../../src/connectors/kafka/Kafka.ts"
import * as KafkaClient from "../../../src/connectors/kafka/KafkaClient.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"

const produce = (cluster: KafkaClient.MemoryCluster, from: number, to: number) =>
  Effect.gen(function* () {
    const producer = yield* KafkaClient.KafkaClient.use((c) => c.producer({ compression: "none" }))
    const messages = []
    for (let i = from; i < to; i++)
      messages.push({ key: null, value: new TextEncoder().encode(JSON.stringify({ id: i })) })
    yield* producer.send("events", messages)
  }).pipe(Effect.scoped, Effect.provide(KafkaClient.layerMemory(cluster)))

const pipeline = (groupId: string) =>
  Pipeline.from(Kafka.source({ topics: ["events"], groupId, start: "earliest", value: { type: "json" } })).pipe(
    Pipeline.to(File.sink({ path: "out", format: { type: "jsonl" } })),
    Pipeline.named("events-to-files")
  )

const partLines = (files: FileStoreModule.MemoryFiles) => {
  const seen = FileStoreModule.contents(files)
  return [...seen.keys()]
    .filter((p) => p.startsWith("out/part-"))
    .flatMap((p) => new TextDecoder().decode(seen.get(p)).split("\n"))
    .filter((l) => l !== "")
}

describe("file sink manifests (exactly-once appends)", () => {
  it.effect("stores the positions of each commit, and a new run resumes after them, whatever the group", () =>
    Effect.gen(function* () {
      const cluster = KafkaClient.memory({ events: 2 }, { fetchSize: 5 })
      const files = FileStoreModule.memory()
      const layer = Layer.mergeAll(KafkaClient.layerMemory(cluster), FileStoreModule.layerMemory(files))
      yield* produce(cluster, 0, 40)
      yield* Pipeline.run(pipeline("a")).pipe(Effect.provide(layer))
      assert.strictEqual(partLines(files).length, 40)
      const resume = yield* FileStoreModule.FileStore.use((store) =>
        Checkpoints.load(store, "out", "events-to-files")
      ).pipe(Effect.provide(FileStoreModule.layerMemory(files)))
      assert.strictEqual(
        [...resume.values()].reduce((n, v) => n + Number(v), 0),
        40
      )
      // Another pipeline name has nothing stored.
      const other = yield* FileStoreModule.FileStore.use((store) => Checkpoints.load(store, "out", "other")).pipe(
        Effect.provide(FileStoreModule.layerMemory(files))
      )
      assert.strictEqual(other.size, 0)

      const again = yield* Pipeline.run(pipeline("b")).pipe(Effect.provide(layer))
      assert.strictEqual(again.records.read, 0)
      yield* produce(cluster, 40, 55)
      const more = yield* Pipeline.run(pipeline("c")).pipe(Effect.provide(layer))
      assert.strictEqual(more.records.read, 15)
      const ids = partLines(files)
        .map((l) => (JSON.parse(l) as { id: number }).id)
        .sort((a, b) => a - b)
      assert.deepStrictEqual(
        ids,
        Array.from({ length: 55 }, (_, i) => i)
      )
    })
  )

  it.effect("refuses a segment whose partition another process committed further (fenced), and writes nothing", () =>
    Effect.gen(function* () {
      const files = FileStoreModule.memory()
      const sink = File.sink({ path: "out", format: { type: "jsonl" } })
      const commit = (ids: ReadonlyArray<number>, from: string, to: string, fenced = true) =>
        Effect.scoped(
          Effect.gen(function* () {
            const writer = yield* sink.open
            yield* writer.write(ids.map((id) => ({ id })))
            yield* writer.checkpoint!({ pipeline: "p", positions: [{ part: "t/0", from, to }], fenced })
            return yield* writer.commit
          })
        ).pipe(Effect.provide(FileStoreModule.layerMemory(files)))
      yield* commit([0, 1, 2], "0", "3")
      const moved = yield* Effect.flip(commit([1, 2, 3], "1", "4"))
      assert.strictEqual(moved._tag, "FileError")
      assert.deepStrictEqual((moved as FileError).reason, reasons.PositionsMoved)
      assert.include(moved.message, "t/0 from position 1")
      assert.include(moved.message, "up to 3")
      assert.strictEqual(partLines(files).length, 3)
      // Not fenced (a checkpoint of states decides where a run resumes): committed.
      yield* commit([9], "1", "4", false)
      assert.strictEqual(partLines(files).length, 4)
      yield* commit([4], "4", "5")
      assert.strictEqual(partLines(files).length, 5)
    })
  )

  it.effect("finishes a segment whose manifest was written by a run killed before it moved the part files in", () =>
    Effect.gen(function* () {
      const files = FileStoreModule.memory({
        "out/part-old-00000.jsonl": '{"id":0}\n',
        "out/.staging-dead1234.4242@gone/part-dead1234-00000.jsonl": '{"id":1}\n',
        "out/.staging-dead1234.4242@gone/part-dead1234-00001.jsonl": '{"id":2}\n',
        "out/_checkpoints/000000000000001-dead1234.json": JSON.stringify({
          pipeline: "p",
          positions: [{ part: "events/0", from: "1", to: "3" }],
          staging: ".staging-dead1234.4242@gone",
          files: ["part-dead1234-00000.jsonl", "part-dead1234-00001.jsonl"]
        })
      })
      files.endedWriters.add("4242@gone")
      yield* FileStoreModule.FileStore.use((store) => Checkpoints.rollForward(store, "out")).pipe(
        Effect.provide(FileStoreModule.layerMemory(files))
      )
      assert.deepStrictEqual(partLines(files).sort(), ['{"id":0}', '{"id":1}', '{"id":2}'])
      assert.isFalse([...files.files.keys()].some((p) => p.includes(".staging-")))
    })
  )

  it.effect("leaves the staging directory of a writer that is still alive to that writer", () =>
    Effect.gen(function* () {
      const files = FileStoreModule.memory({
        "out/.staging-live1234.1@here/part-live1234-00000.jsonl": '{"id":1}\n',
        "out/_checkpoints/000000000000001-live1234.json": JSON.stringify({
          pipeline: "p",
          positions: [{ part: "events/0", from: "1", to: "2" }],
          staging: ".staging-live1234.1@here",
          files: ["part-live1234-00000.jsonl"]
        })
      })
      yield* FileStoreModule.FileStore.use((store) => Checkpoints.rollForward(store, "out")).pipe(
        Effect.provide(FileStoreModule.layerMemory(files))
      )
      assert.deepStrictEqual(partLines(files), [])
    })
  )

  it.effect("merges many manifests into one per pipeline, keeping the largest positions", () =>
    Effect.gen(function* () {
      const initial: Record<string, string> = {}
      for (let i = 0; i < Checkpoints.KEEP + 6; i++)
        initial[`out/_checkpoints/${String(i).padStart(15, "0")}-t${i}.json`] = JSON.stringify({
          pipeline: i % 2 === 0 ? "even" : "odd",
          positions: [{ part: "events/0", from: String(i * 10), to: String(i * 10 + 10) }],
          staging: "",
          files: []
        })
      const files = FileStoreModule.memory(initial)
      const store = FileStoreModule.layerMemory(files)
      yield* FileStoreModule.FileStore.use((store) => Checkpoints.rollForward(store, "out")).pipe(Effect.provide(store))
      const left = [...files.files.keys()].filter((p) => p.startsWith("out/_checkpoints/") && p.endsWith(".json"))
      assert.strictEqual(left.length, 2)
      const even = yield* FileStoreModule.FileStore.use((store) => Checkpoints.load(store, "out", "even")).pipe(
        Effect.provide(store)
      )
      const odd = yield* FileStoreModule.FileStore.use((store) => Checkpoints.load(store, "out", "odd")).pipe(
        Effect.provide(store)
      )
      const last = Checkpoints.KEEP + 5
      const lastEven = last % 2 === 0 ? last : last - 1
      const lastOdd = last % 2 === 1 ? last : last - 1
      assert.strictEqual(even.get("events/0"), String(lastEven * 10 + 10))
      assert.strictEqual(odd.get("events/0"), String(lastOdd * 10 + 10))
    })
  )

  it.effect("a file in _checkpoints that is not a manifest is a clear error naming it", () =>
    Effect.gen(function* () {
      const files = FileStoreModule.memory({ "out/_checkpoints/x.json": "not json" })
      const error = yield* FileStoreModule.FileStore.use((store) => Checkpoints.load(store, "out", "p")).pipe(
        Effect.provide(FileStoreModule.layerMemory(files)),
        Effect.flip
      )
      assert.include(error.message, "out/_checkpoints/x.json is not a segment manifest")
    })
  )
})

describe("merging manifests", () => {
  it.effect("leaves alone a manifest whose files a live writer is still moving in", () =>
    Effect.gen(function* () {
      const initial: Record<string, string> = {
        "out/.staging-live1234.1@here/part-live1234-00000.jsonl": '{"id":1}\n',
        "out/_checkpoints/000000000000000-live.json": JSON.stringify({
          pipeline: "p",
          positions: [{ part: "events/0", from: "0", to: "1" }],
          staging: ".staging-live1234.1@here",
          files: ["part-live1234-00000.jsonl"]
        })
      }
      for (let i = 1; i <= Checkpoints.KEEP + 2; i++)
        initial[`out/_checkpoints/${String(i).padStart(15, "0")}-t${i}.json`] = JSON.stringify({
          pipeline: "p",
          positions: [{ part: "events/1", from: String(i), to: String(i + 1) }],
          staging: "",
          files: []
        })
      const files = FileStoreModule.memory(initial)
      yield* FileStoreModule.FileStore.use((store) => Checkpoints.rollForward(store, "out")).pipe(
        Effect.provide(FileStoreModule.layerMemory(files))
      )
      const left = [...files.files.keys()].filter((p) => p.startsWith("out/_checkpoints/") && p.endsWith(".json"))
      assert.strictEqual(left.length, 2)
      assert.isTrue(left.includes("out/_checkpoints/000000000000000-live.json"))
    })
  )
})
