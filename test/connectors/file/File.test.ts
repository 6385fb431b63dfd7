import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as File from "../../../src/connectors/file/File.ts"
import * as FileStoreModule from "../../../src/connectors/file/FileStore.ts"
import { FileStore } from "../../../src/connectors/file/FileStore.ts"
import * as NodeFileStore from "../../../src/connectors/file/NodeFileStore.ts"
import type { DeadLetter } from "../../../src/core/DeadLetter.ts"
import { LoadError } from "../../../src/core/Errors.ts"
import * as RecordSchema from "../../../src/core/RecordSchema.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import { makeRunContext } from "../../../src/core/Stage.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"

const Row = Schema.Struct({ id: Schema.Int, name: Schema.String })
type Row = typeof Row.Type
const rows: ReadonlyArray<Row> = Array.from({ length: 10 }, (_, i) => ({ id: i, name: `name ${i}, "quoted"` }))

const readAll = <A>(source: ReturnType<typeof File.source<A>>) =>
  Effect.gen(function* () {
    const out = Sink.collect<A>("out")
    const dead = Sink.collect<DeadLetter>("dead")
    const report = yield* Pipeline.from(source).pipe(Pipeline.to(out), Pipeline.withDeadLetters(dead), Pipeline.run)
    return { records: out.collected().records, dead: dead.collected().records, report }
  })

const text = (files: FileStoreModule.MemoryFiles, path: string) =>
  new TextDecoder().decode(FileStoreModule.contents(files).get(path))
const visible = (files: FileStoreModule.MemoryFiles) => Array.from(FileStoreModule.contents(files).keys())

describe("File connector (memory store)", () => {
  it.effect("reads JSON Lines with a schema; bad lines and invalid records become dead letters naming the file", () => {
    const files = FileStoreModule.memory({
      "in/a.jsonl": '{"id":1,"name":"a"}\n{"id":"x","name":"b"}\nnot json\n',
      "in/b.jsonl": '{"id":2,"name":"c"}\n'
    })
    return Effect.gen(function* () {
      const { records, dead, report } = yield* readAll(
        File.source({ path: "in", schema: RecordSchema.fromSchema(Row, "row") })
      )
      assert.deepStrictEqual(records, [
        { id: 1, name: "a" },
        { id: 2, name: "c" }
      ])
      assert.strictEqual(dead.length, 2)
      const decodeError = dead.find((d) => d.reason === "decode-error")!
      assert.strictEqual(decodeError.origin, "in/a.jsonl:3")
      assert.include(decodeError.message, "in/a.jsonl")
      const invalid = dead.find((d) => d.reason === "invalid-record")!
      assert.strictEqual(invalid.message, "in/a.jsonl record 2: id: Expected number")
      assert.strictEqual(invalid.origin, "in/a.jsonl#2")
      assert.strictEqual(report.records.read, 4)
      assert.strictEqual(report.records.rejected, 2)
    }).pipe(Effect.provide(FileStoreModule.layerMemory(files)))
  })

  it.effect("writes and reads back every format, with gzip", () => {
    const files = FileStoreModule.memory()
    const avro = {
      type: "record",
      name: "Row",
      fields: [
        { name: "id", type: "int" },
        { name: "name", type: "string" }
      ]
    }
    const schema: RecordSchema.RecordSchema<Row> = { ...RecordSchema.fromSchema(Row, "row"), avro }
    return Effect.gen(function* () {
      for (const format of [
        { type: "jsonl" },
        { type: "csv", columns: { id: "integer" } },
        { type: "avro", codec: "deflate" },
        { type: "jsonl", compression: "gzip" }
      ] as const) {
        const dir = `out/${format.type}-${"compression" in format ? "gz" : "plain"}`
        yield* Pipeline.from(Source.fromIterable("rows", rows, { batchSize: 3 })).pipe(
          Pipeline.to(File.sink<Row>({ path: dir, format, mode: "overwrite", schema })),
          Pipeline.run
        )
        const { records } = yield* readAll(File.source({ path: dir, format, schema }))
        assert.deepStrictEqual(
          records.map((r) => ({ ...r })),
          rows,
          dir
        )
      }
    }).pipe(Effect.provide(FileStoreModule.layerMemory(files)))
  })

  it.effect("append adds part files; overwrite replaces them; both leave _SUCCESS", () => {
    const files = FileStoreModule.memory()
    const write = (mode: "append" | "overwrite", data: ReadonlyArray<Row>) =>
      Pipeline.from(Source.fromIterable("rows", data)).pipe(
        Pipeline.to(File.sink<Row>({ path: "out/t", format: { type: "jsonl" }, mode, maxRecordsPerFile: 4 })),
        Pipeline.run
      )
    const parts = () => visible(files).filter((k) => k.startsWith("out/t/part-"))
    return Effect.gen(function* () {
      const first = yield* write("append", rows)
      assert.strictEqual(parts().length, 3)
      const written = first.sink!.details!.files as Array<string>
      assert.deepStrictEqual(written, written.slice().sort())
      yield* write("append", rows.slice(0, 2))
      assert.strictEqual(parts().length, 4)
      assert.isTrue(visible(files).includes("out/t/_SUCCESS"))
      yield* write("overwrite", rows.slice(0, 1))
      assert.strictEqual(parts().length, 1)
      assert.strictEqual(text(files, parts()[0]!), '{"id":0,"name":"name 0, \\"quoted\\""}\n')
      assert.isTrue(visible(files).includes("out/t/_SUCCESS"))
      assert.deepStrictEqual(
        Array.from(files.files.keys()).filter((k) => /staging|\.link-|\.trash-/.test(k)),
        []
      )
      // the current generation, and the one it replaced (kept for readers until the next run)
      assert.deepStrictEqual(new Set(Array.from(files.files.keys(), (k) => k.split("/")[1])).size, 2)
    }).pipe(Effect.provide(FileStoreModule.layerMemory(files)))
  })

  it.effect("a failed overwrite leaves the old data and no staging files", () => {
    const files = FileStoreModule.memory({ "out/t/part-old.jsonl": '{"id":99,"name":"old"}\n' })
    let calls = 0
    const failing = Source.make<Row, LoadError>({
      name: "failing",
      type: "memory",
      description: "fails after one batch",
      bounded: true,
      batches: () =>
        Stream.suspend(() => {
          calls++
          return Stream.concat(
            Stream.make({ records: rows, deadLetters: [], ack: Effect.void }),
            Stream.fail(new LoadError({ stage: "failing", message: "disk on fire", retryable: false }))
          )
        })
    })
    return Effect.gen(function* () {
      const error = yield* Pipeline.from(failing).pipe(
        Pipeline.to(File.sink<Row>({ path: "out/t", format: { type: "jsonl" }, mode: "overwrite" })),
        Pipeline.run,
        Effect.flip
      )
      assert.strictEqual(error._tag, "LoadError")
      assert.strictEqual(calls, 1)
      assert.deepStrictEqual(Array.from(files.files.keys()), ["out/t/part-old.jsonl"])
    }).pipe(Effect.provide(FileStoreModule.layerMemory(files)))
  })

  it.effect("refuses to overwrite a file that stands where the output directory should be", () => {
    const files = FileStoreModule.memory({ "out/t": "precious" })
    return Effect.gen(function* () {
      const error = yield* Pipeline.from(Source.fromIterable("rows", rows)).pipe(
        Pipeline.to(File.sink<Row>({ path: "out/t", format: { type: "jsonl" }, mode: "overwrite" })),
        Pipeline.run,
        Effect.flip
      )
      assert.strictEqual(error._tag, "LoadError")
      assert.include(error.message, "Cannot write to out/t: it is a file")
      assert.strictEqual(text(files, "out/t"), "precious")
      assert.deepStrictEqual(Array.from(files.files.keys()), ["out/t"])
    }).pipe(Effect.provide(FileStoreModule.layerMemory(files)))
  })

  it.effect("reads empty unquoted CSV fields as null and a quoted empty field as an empty string", () => {
    const files = FileStoreModule.memory({ "in/a.csv": 'id,name\n1,\n2,""\n' })
    return Effect.gen(function* () {
      const { records } = yield* readAll(File.source<Record<string, unknown>>({ path: "in/a.csv" }))
      assert.deepStrictEqual(records, [
        { id: "1", name: null },
        { id: "2", name: "" }
      ])
    }).pipe(Effect.provide(FileStoreModule.layerMemory(files)))
  })

  it.effect("removes the staging a killed run left behind, and not that of a run that may still be going", () => {
    const files = FileStoreModule.memory({
      "out/.t.staging-0badcafe.dead-run/part-0badcafe-00000.jsonl": "{}\n",
      "out/t/.staging-0badcafe.dead-run/part-0badcafe-00000.jsonl": "{}\n",
      "out/.t.staging-12345678.live-run/part-12345678-00000.jsonl": "{}\n"
    })
    files.endedWriters.add("dead-run")
    return Effect.gen(function* () {
      yield* Pipeline.from(Source.fromIterable("rows", rows)).pipe(
        Pipeline.to(File.sink<Row>({ path: "out/t", format: { type: "jsonl" }, mode: "overwrite" })),
        Pipeline.run
      )
      const keys = Array.from(files.files.keys())
      assert.isFalse(keys.some((k) => k.includes("dead-run")))
      assert.isTrue(keys.includes("out/.t.staging-12345678.live-run/part-12345678-00000.jsonl"))
      assert.isTrue(visible(files).includes("out/t/_SUCCESS"))
    }).pipe(Effect.provide(FileStoreModule.layerMemory(files)))
  })

  it.effect(
    "tells its input size as the sum of the files' sizes, and its batches carry the bytes they were read from",
    () => {
      const a = Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: i, name: `a${i}` })).join("\n")
      const files = FileStoreModule.memory({ "in/a.jsonl": `${a}\n`, "in/b.jsonl": '{"id":1,"name":"b"}\n' })
      const bytes = new TextEncoder().encode(a).length + 1 + 20
      return Effect.gen(function* () {
        const source = File.source<Row>({ path: "in", batchSize: 7 })
        assert.deepStrictEqual(yield* source.size!, { bytes })
        const batches = yield* Stream.runCollect(
          source.batches(makeRunContext({ runId: "r", pipeline: "p", now: () => 0 }))
        )
        assert.isAbove(batches.length, 2)
        assert.strictEqual(
          batches.reduce((sum, batch) => sum + (batch.bytes ?? 0), 0),
          bytes
        )
      }).pipe(Effect.provide(FileStoreModule.layerMemory(files)))
    }
  )

  it.effect("a glob that matches nothing is an error naming the pattern", () =>
    Effect.gen(function* () {
      const error = yield* readAll(File.source({ path: "in/*.csv" })).pipe(Effect.flip)
      assert.strictEqual(error._tag, "ExtractError")
      assert.include(error.message, "No files match in/*.csv")
    }).pipe(Effect.provide(FileStoreModule.layerMemory(FileStoreModule.memory())))
  )
})

describe("File connector (local disk)", () => {
  it.effect("reads a glob of gzip files and writes part files atomically on disk", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.promise(() => fs.mkdtemp(nodePath.join(os.tmpdir(), "effect-etl-file-")))
      const store = yield* FileStore
      yield* store.write(
        nodePath.join(dir, "in", "a.jsonl.gz"),
        Stream.fromEffect(
          Effect.promise(async () => {
            const zlib = await import("node:zlib")
            return new Uint8Array(zlib.gzipSync('{"id":1,"name":"a"}\n{"id":2,"name":"b"}\n'))
          })
        )
      )
      const out = nodePath.join(dir, "out")
      const report = yield* Pipeline.from(File.source<Row>({ path: nodePath.join(dir, "in", "*.jsonl.gz") })).pipe(
        Pipeline.to(File.sink<Row>({ path: out, format: { type: "csv" }, mode: "overwrite" })),
        Pipeline.run
      )
      assert.strictEqual(report.records.written, 2)
      const gz = (yield* Effect.promise(() => fs.stat(nodePath.join(dir, "in", "a.jsonl.gz")))).size
      assert.deepStrictEqual(yield* File.source<Row>({ path: nodePath.join(dir, "in", "*.jsonl.gz") }).size!, {
        bytes: gz
      })
      const names = (yield* Effect.promise(() => fs.readdir(out))).sort()
      assert.strictEqual(names.length, 2)
      assert.strictEqual(names[0], "_SUCCESS")
      const csv = yield* Effect.promise(() => fs.readFile(nodePath.join(out, names[1]!), "utf8"))
      assert.strictEqual(csv, "id,name\n1,a\n2,b\n")
      const siblings = yield* Effect.promise(() => fs.readdir(dir))
      assert.deepStrictEqual(siblings.filter((n) => !/^\.out\.gen-[0-9a-f]{8}\./.test(n)).sort(), ["in", "out"])
      assert.strictEqual(siblings.length, 3)
      assert.match(yield* Effect.promise(() => fs.readlink(out)), /^\.out\.gen-[0-9a-f]{8}\./)
      const missing = yield* store.read(nodePath.join(dir, "nope.jsonl")).pipe(Stream.runDrain, Effect.flip)
      assert.strictEqual(missing.reason._tag, "NotFound")
      assert.include(missing.message, "no such file or directory")
      yield* Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
    }).pipe(Effect.provide(Layer.succeed(FileStore, FileStore.of(NodeFileStore.make))))
  )

  it("classifies errno codes", () => {
    assert.strictEqual(NodeFileStore.classifyError({ code: "ENOENT" })._tag, "NotFound")
    assert.strictEqual(NodeFileStore.classifyError({ code: "EMFILE" }).retryable, true)
    assert.strictEqual(NodeFileStore.classifyError({ code: "EACCES" }).retryable, false)
    assert.strictEqual(NodeFileStore.classifyError(new Error("x"))._tag, "Unknown")
  })
})

describe("File connector: an overwritten directory is a link to its current generation", () => {
  const stores = {
    memory: () => ({ root: "work", store: FileStoreModule.makeMemory(FileStoreModule.memory()), done: () => {} }),
    disk: () => {
      const root = fsSync.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-file-"))
      return { root, store: NodeFileStore.make, done: () => fsSync.rmSync(root, { recursive: true, force: true }) }
    }
  }
  for (const [name, make] of Object.entries(stores))
    it.effect(`reads it by its path, by a glob through it and by its parent, each record once (${name})`, () =>
      Effect.suspend(() => {
        const { root, store, done } = make()
        const write = (data: ReadonlyArray<Row>, mode: "append" | "overwrite") =>
          Pipeline.from(Source.fromIterable("rows", data)).pipe(
            Pipeline.to(
              File.sink<Row>({ path: `${root}/out/t`, format: { type: "jsonl" }, mode, maxRecordsPerFile: 3 })
            ),
            Pipeline.run
          )
        return Effect.gen(function* () {
          yield* write(rows, "overwrite")
          yield* write(rows.slice(0, 4), "overwrite")
          yield* write(rows.slice(4, 6), "append")
          assert.strictEqual(yield* store.kind(`${root}/out/t`), "directory")
          assert.match((yield* store.readLink(`${root}/out/t`))!, /^\.t\.gen-[0-9a-f]{8}\./)
          for (const path of [`${root}/out/t`, `${root}/out/*/*.jsonl`, `${root}/out`, `${root}/**/part-*.jsonl`]) {
            const { records } = yield* readAll(File.source<Row>({ path, format: { type: "jsonl" } }))
            assert.deepStrictEqual(records.map((r) => r.id).sort(), [0, 1, 2, 3, 4, 5], path)
          }
          // the append run removed the generation the second overwrite replaced
          assert.strictEqual((yield* store.readDirectory(`${root}/out`)).length, 2)
          done()
        }).pipe(Effect.provide(Layer.succeed(FileStore, FileStore.of(store))))
      })
    )

  it.effect("refuses to write through a link to nothing, naming it", () => {
    const files = FileStoreModule.memory()
    files.links.set("out/t", "elsewhere")
    return Effect.gen(function* () {
      const error = yield* Pipeline.from(Source.fromIterable("rows", rows)).pipe(
        Pipeline.to(File.sink<Row>({ path: "out/t", format: { type: "jsonl" }, mode: "overwrite" })),
        Pipeline.run,
        Effect.flip
      )
      assert.include(error.message, "Cannot write to out/t: it is a symbolic link to elsewhere, which does not exist")
      assert.deepStrictEqual(Array.from(files.files.keys()), [])
    }).pipe(Effect.provide(FileStoreModule.layerMemory(files)))
  })
})
