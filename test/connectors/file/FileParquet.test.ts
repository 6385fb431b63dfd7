import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import parquetjs from "@dsnp/parquetjs"
import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import * as File from "../../../src/connectors/file/File.ts"
import * as FileStore from "../../../src/connectors/file/FileStore.ts"
import * as NodeFileStore from "../../../src/connectors/file/NodeFileStore.ts"
import type { DeadLetter } from "../../../src/core/DeadLetter.ts"
import type * as RecordSchema from "../../../src/core/RecordSchema.ts"
import * as Sink from "../../../src/core/Sink.ts"
import * as Source from "../../../src/core/Source.ts"
import { makeRunContext } from "../../../src/core/Stage.ts"
import * as Format from "../../../src/formats/Format.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"

const root = nodePath.resolve(import.meta.dirname, "../../..")

const avro = {
  type: "record",
  name: "Payment",
  namespace: "test",
  fields: [
    { name: "id", type: "long" },
    { name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 18, scale: 2 } },
    { name: "at", type: { type: "long", logicalType: "timestamp-micros" } },
    { name: "note", type: ["null", "string"] },
    { name: "tags", type: { type: "array", items: "string" } },
    {
      name: "payer",
      type: {
        type: "record",
        name: "Payer",
        fields: [
          { name: "name", type: "string" },
          { name: "country", type: ["null", "string"] }
        ]
      }
    }
  ]
}

interface Payment {
  readonly id: number
  readonly amount: BigDecimal.BigDecimal
  readonly at: Date
  readonly note: string | null
  readonly tags: ReadonlyArray<string>
  readonly payer: { readonly name: string; readonly country: string | null }
}

const payments: ReadonlyArray<Payment> = Array.from({ length: 25 }, (_, i) => ({
  id: Number.MAX_SAFE_INTEGER - i,
  amount: BigDecimal.make(BigInt(i * 1234 - 5000), 2),
  at: new Date(Date.UTC(2026, 11, 5, 12, 0, i)),
  note: i % 3 === 0 ? null : `payment ${i}`,
  tags: i % 2 === 0 ? [] : ["a", `t${i}`],
  payer: { name: `payer ${i}`, country: i % 4 === 0 ? null : "FR" }
}))

// Records are typed by the Avro schema (as for Avro files): validate passes them through.
const schema: RecordSchema.RecordSchema<Payment> = {
  name: "payment",
  fields: avro.fields.map((f) => f.name),
  validate: (input) => ({ ok: true, value: input as Payment }),
  avro
}

const readAll = <A>(source: ReturnType<typeof File.source<A>>) =>
  Effect.gen(function* () {
    const out = Sink.collect<A>("out")
    const dead = Sink.collect<DeadLetter>("dead")
    const report = yield* Pipeline.from(source).pipe(Pipeline.to(out), Pipeline.withDeadLetters(dead), Pipeline.run)
    return { records: out.collected().records, dead: dead.collected().records, report }
  })

const write = (path: string, data: ReadonlyArray<Payment>, mode: "append" | "overwrite", format: Format.FormatSpec) =>
  Pipeline.from(Source.fromIterable("payments", data, { batchSize: 7 })).pipe(
    Pipeline.to(File.sink<Payment>({ path, format, mode, schema, maxRecordsPerFile: 10 })),
    Pipeline.run
  )

const readWithParquetjs = async (path: string): Promise<Array<Record<string, unknown>>> => {
  const reader = await parquetjs.ParquetReader.openFile(path)
  const cursor = reader.getCursor()
  const rows: Array<Record<string, unknown>> = []
  for (let row = await cursor.next(); row !== null; row = await cursor.next()) rows.push(row as Record<string, unknown>)
  await reader.close()
  return rows
}

const tmp = () => fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-parquet-"))

describe("File connector with Parquet", () => {
  it("knows .parquet files and names their parts", () => {
    assert.deepStrictEqual(Format.fromPath("out/part-00001.PARQUET"), { type: "parquet" })
    assert.strictEqual(Format.fromPath("out/part-00001.parquet.gz"), undefined)
    assert.strictEqual(Format.extension({ type: "parquet", compression: "zstd" }), ".parquet")
    assert.strictEqual(
      Format.describe({ type: "parquet", compression: "zstd", rowGroupBytes: 1024 }),
      "parquet (zstd, row groups of 1024 bytes)"
    )
  })

  it.effect("overwrite then append round-trip every value on disk, the parts read by @dsnp/parquetjs too", () => {
    const dir = nodePath.join(tmp(), "payments")
    return Effect.gen(function* () {
      const first = yield* write(dir, payments, "overwrite", { type: "parquet", compression: "gzip" })
      assert.strictEqual(first.records.written, payments.length)
      const parts = fs.readdirSync(dir).filter((f) => f.endsWith(".parquet"))
      assert.strictEqual(parts.length, 3)
      const { records, dead, report } = yield* readAll(File.source({ path: dir, schema }))
      assert.deepStrictEqual(records, payments)
      assert.deepStrictEqual(dead, [])
      assert.strictEqual(report.records.read, payments.length)
      const sourceBytes = report.stages.find((s) => s.kind === "source")?.bytes ?? 0
      const fileBytes = parts.reduce((n, f) => n + fs.statSync(nodePath.join(dir, f)).size, 0)
      assert.isAbove(sourceBytes, 0)
      assert.isAtMost(sourceBytes, fileBytes)

      const independent = yield* Effect.promise(async () => {
        const rows: Array<Record<string, unknown>> = []
        for (const part of parts.sort()) rows.push(...(await readWithParquetjs(nodePath.join(dir, part))))
        return rows
      })
      assert.deepStrictEqual(
        independent.map((r) => [Number(r.id as bigint), r.at, r.note ?? null]),
        payments.map((p) => [p.id, p.at, p.note])
      )

      yield* write(dir, payments.slice(0, 4), "append", { type: "parquet" })
      const appended = yield* readAll(File.source({ path: dir, schema }))
      assert.strictEqual(appended.records.length, payments.length + 4)
      yield* write(dir, payments.slice(5, 7), "overwrite", { type: "parquet", compression: "none" })
      assert.deepStrictEqual((yield* readAll(File.source({ path: dir, schema }))).records, payments.slice(5, 7))
    }).pipe(Effect.provide(NodeFileStore.layer))
  })

  it.effect("reads a file @dsnp/parquetjs wrote, with the schema and without one", () =>
    Effect.gen(function* () {
      const dir = tmp()
      const path = nodePath.join(dir, "written.parquet")
      yield* Effect.promise(async () => {
        const written = new parquetjs.ParquetSchema({
          id: { type: "INT64" },
          amount: { type: "DECIMAL", precision: 18, scale: 2, typeLength: 8 },
          at: { type: "TIMESTAMP_MICROS" },
          note: { type: "UTF8", optional: true },
          tags: { type: "UTF8", repeated: true },
          payer: { fields: { name: { type: "UTF8" }, country: { type: "UTF8", optional: true } } }
        })
        const writer = await parquetjs.ParquetWriter.openFile(written, path)
        for (const p of payments.slice(0, 3)) {
          const unscaled = BigInt.asUintN(64, BigDecimal.scale(p.amount, 2).value)
          const amount = Buffer.alloc(8)
          amount.writeBigUInt64BE(unscaled)
          await writer.appendRow({
            id: BigInt(p.id),
            amount,
            at: p.at,
            ...(p.note === null ? {} : { note: p.note }),
            tags: [...p.tags],
            payer: p.payer.country === null ? { name: p.payer.name } : p.payer
          })
        }
        await writer.close()
      })
      const withSchema = yield* readAll(File.source({ path, schema }))
      assert.deepStrictEqual(withSchema.records, payments.slice(0, 3))
      const without = yield* readAll(File.source<Record<string, unknown>>({ path: dir }))
      assert.deepStrictEqual(without.records, payments.slice(0, 3) as ReadonlyArray<unknown>)
    }).pipe(Effect.provide(NodeFileStore.layer))
  )

  it.effect(
    "a split with withinFiles cuts a big Parquet file into ranges of row groups that read back in order",
    () => {
      const files = FileStore.memory()
      const many = Array.from({ length: 8 }, (_, copy) => payments.map((p) => ({ ...p, id: p.id - copy * 100 }))).flat()
      return Effect.gen(function* () {
        yield* Pipeline.from(Source.fromIterable("payments", many, { batchSize: 50 })).pipe(
          Pipeline.to(File.sink<Payment>({ path: "lake/p", format: { type: "parquet", rowGroupRows: 20 }, schema })),
          Pipeline.run
        )
        const source = File.source({ path: "lake/p", schema })
        const [file] = yield* FileStore.FileStore.use((store) => store.list("lake/p"))
        const whole = yield* source.split!({ targetBytes: file!.size / 6, withinFiles: true })
        assert.isAbove(whole.length, 2)
        for (const part of whole) assert.match(part.id, /^lake\/p\/part-.*\.parquet#\d+$/)
        assert.strictEqual((yield* source.split!({ targetBytes: file!.size / 6 })).length, 1)
        const records: Array<Payment> = []
        for (const part of whole) {
          const batches = yield* Stream.runCollect(
            source.batches({ ...makeRunContext({ runId: "r", pipeline: "p", now: () => 0 }), parts: [part] })
          )
          records.push(...batches.flatMap((b) => b.records))
        }
        assert.deepStrictEqual(records, many)
      }).pipe(Effect.provide(FileStore.layerMemory(files)))
    }
  )

  it.effect("a file that is not Parquet or whose columns do not fit the schema fails the run naming it", () => {
    const files = FileStore.memory({ "in/bad.parquet": "id,name\n1,a\n" })
    return Effect.gen(function* () {
      const exit = yield* Effect.exit(readAll(File.source({ path: "in", schema })))
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(exit), "in/bad.parquet: not a Parquet file")
      yield* write("out/p", payments.slice(0, 2), "overwrite", { type: "parquet" })
      const other = {
        ...schema,
        avro: { type: "record", name: "Other", fields: [{ name: "amount", type: "double" }] }
      }
      const mismatch = yield* Effect.exit(readAll(File.source({ path: "out/p", schema: other })))
      assert.include(
        String(mismatch),
        'column "amount": the reader schema expects double, the file has INT64 DECIMAL(18, 2)'
      )
    }).pipe(Effect.provide(FileStore.layerMemory(files)))
  })

  it.effect("a Parquet sink without a schema fails with a message saying so", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        Pipeline.from(Source.fromIterable("rows", [{ id: 1 }])).pipe(
          Pipeline.to(File.sink({ path: "out/x", format: { type: "parquet" } })),
          Pipeline.run
        )
      )
      assert.include(String(exit), "encoding Parquet needs the Avro record schema of the records")
    }).pipe(Effect.provide(FileStore.layerMemory(FileStore.memory())))
  )

  it("a JSON config writes Parquet (zstd, small row groups) and another reads it back to JSON Lines", () => {
    const dir = tmp()
    const quickstart = JSON.parse(fs.readFileSync(nodePath.join(root, "examples/quickstart.json"), "utf8")) as Record<
      string,
      Record<string, unknown>
    >
    const toParquet = {
      ...quickstart,
      sink: {
        ...quickstart.sink,
        path: nodePath.join(dir, "settled"),
        format: { type: "parquet", compression: "zstd", row_group_bytes: 4096, row_group_rows: 50 }
      },
      dead_letters: { ...quickstart.dead_letters, path: nodePath.join(dir, "dead") },
      quality: { max_rejected_ratio: 0.1 }
    }
    const back = {
      name: "back",
      source: { type: "file", path: nodePath.join(dir, "settled"), schema: "settled-transaction" },
      sink: { type: "file", path: nodePath.join(dir, "back"), format: { type: "jsonl" }, mode: "overwrite" }
    }
    const run = (config: unknown, file: string) => {
      fs.writeFileSync(nodePath.join(dir, file), JSON.stringify(config))
      const result = spawnSync(
        process.execPath,
        [nodePath.join(root, "src/main.ts"), "run", nodePath.join(dir, file)],
        {
          cwd: root,
          encoding: "utf8",
          env: { ...process.env, NO_COLOR: "1" }
        }
      )
      assert.strictEqual(result.status, 0, result.stderr.split("\n").slice(-5).join("\n"))
      return JSON.parse(result.stdout) as { records: { read: number; written: number } }
    }
    const written = run(toParquet, "to-parquet.json")
    assert.isAbove(written.records.written, 0)
    const read = run(back, "back.json")
    assert.strictEqual(read.records.read, written.records.written)
    const lines = fs
      .readdirSync(nodePath.join(dir, "back"))
      .filter((f) => f.endsWith(".jsonl"))
      .flatMap((f) =>
        fs
          .readFileSync(nodePath.join(dir, "back", f), "utf8")
          .trim()
          .split("\n")
      )
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.strictEqual(lines.length, written.records.written)
    for (const line of lines) {
      assert.strictEqual(line.status, "settled")
      assert.match(String(line.amount), /^\d+\.\d\d$/)
      assert.match(String(line.eventTime), /^\d{4}-\d\d-\d\dT/)
    }
    const missingSchema = { ...toParquet, sink: { ...toParquet.sink, schema: undefined } }
    fs.writeFileSync(nodePath.join(dir, "no-schema.json"), JSON.stringify(missingSchema))
    const refused = spawnSync(
      process.execPath,
      [nodePath.join(root, "src/main.ts"), "validate", nodePath.join(dir, "no-schema.json")],
      { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } }
    )
    assert.strictEqual(refused.status, 2)
    assert.include(refused.stderr, "A parquet sink needs the schema of the records it writes")
  })
})
