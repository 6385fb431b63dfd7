import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import fc from "fast-check"
import * as File from "../../../src/connectors/file/File.ts"
import * as FileStoreModule from "../../../src/connectors/file/FileStore.ts"
import * as LineRanges from "../../../src/connectors/internal/LineRanges.ts"
import type { DeadLetter } from "../../../src/core/DeadLetter.ts"
import * as RecordSchema from "../../../src/core/RecordSchema.ts"
import { makeRunContext, type SplitPart } from "../../../src/core/Stage.ts"
import * as Format from "../../../src/formats/Format.ts"

const encoder = new TextEncoder()

/** The ranges of a text cut in chunks of the given sizes. */
const cut = (text: string, target: number, chunk: number) => {
  const bytes = encoder.encode(text)
  const cutter = new LineRanges.Cutter(bytes.length, target)
  for (let i = 0; i < bytes.length; i += chunk) cutter.push(bytes.subarray(i, i + chunk))
  return { bytes, ranges: cutter.ranges() }
}

const isBlank = (line: string) => /^[ \t\r]*$/.test(line)

const line = fc.oneof(
  { weight: 6, arbitrary: fc.json() },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "\t \r", "{not json") },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 20 }).map((s) => s.replace(/\n/g, " ")) }
)

describe("LineRanges", () => {
  it("cuts at line starts, covers the file, and counts the lines and non-blank lines before each range", () => {
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 60 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 64 }),
        (lines, endsWithNewline, target, chunk) => {
          const text = lines.join("\n") + (endsWithNewline && lines.length > 0 ? "\n" : "")
          const { bytes, ranges } = cut(text, target, chunk)
          assert.strictEqual(ranges[0]!.start, 0)
          assert.strictEqual(ranges.at(-1)!.end, bytes.length)
          for (let i = 0; i < ranges.length; i++) {
            const range = ranges[i]!
            if (i > 0) {
              assert.strictEqual(range.start, ranges[i - 1]!.end)
              assert.isTrue(range.start > ranges[i - 1]!.start, "ranges are not empty")
              assert.strictEqual(bytes[range.start - 1], 10, "a range starts after a newline")
            }
            const before = new TextDecoder().decode(bytes.subarray(0, range.start))
            const whole = before.split("\n").slice(0, -1)
            assert.strictEqual(range.lines, whole.length)
            assert.strictEqual(range.records, whole.filter((l) => !isBlank(l)).length)
          }
          // Every range but the last reaches its target size.
          for (const range of ranges.slice(0, -1)) assert.isTrue(range.end - range.start >= Math.min(target, 1))
        }
      )
    )
  })

  it("a file without newlines, or smaller than the target, is one range", () => {
    assert.deepStrictEqual(cut('{"a":1}', 1, 3).ranges, [{ start: 0, end: 7, lines: 0, records: 0 }])
    assert.deepStrictEqual(cut('{"a":1}\n{"a":2}\n', 100, 5).ranges, [{ start: 0, end: 16, lines: 0, records: 0 }])
  })
})

/** Decodes CSV text (lenient): the records, and the lines of the rejected ones. */
const decodeCsv = (bytes: Uint8Array, options: { header?: ReadonlyArray<string> | undefined; linesBefore?: number }) =>
  Effect.runSync(
    Stream.runCollect(
      Stream.make(bytes).pipe(
        Format.decoder(
          { type: "csv", ...(options.header === undefined ? {} : { header: options.header }) },
          { onError: "collect", ...(options.linesBefore === undefined ? {} : { linesBefore: options.linesBefore }) }
        )
      )
    )
  )

const csvField = fc.oneof(
  fc.constantFrom("", "a", "12", " ", "x y"),
  fc.string({ maxLength: 6 }).map((t) => `"${t.replace(/"/g, '""')}"`),
  fc.constantFrom('"multi\nline"', '"with, comma"', '"crlf\r\ninside"', 'un"quoted', '"bad"x')
)

describe("LineRanges over CSV", () => {
  it("ranges read with the header's names and the lines before them give the records and rejects of a whole read", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(csvField, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 40 }),
        fc.constantFrom("\n", "\r\n"),
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 1, max: 50 }),
        (rows, eol, target, chunk) => {
          const text = `id,name,extra\n${rows.map((fields) => fields.join(",")).join(eol)}${eol}`
          const bytes = encoder.encode(text)
          const cutter = new LineRanges.Cutter(bytes.length, target, { delimiter: 44, header: true })
          for (let i = 0; i < bytes.length; i += chunk) cutter.push(bytes.subarray(i, i + chunk))
          const ranges = cutter.ranges()
          const whole = decodeCsv(bytes, {})
          const records: Array<unknown> = []
          const lines: Array<number> = []
          for (const range of ranges) {
            const part = decodeCsv(bytes.subarray(range.start, range.end), {
              header: range.start === 0 ? undefined : ["id", "name", "extra"],
              linesBefore: range.lines
            })
            for (const batch of part) {
              records.push(...batch.records)
              lines.push(...batch.errors.map((e) => e.line))
            }
          }
          assert.deepStrictEqual(
            records,
            whole.flatMap((b) => b.records)
          )
          assert.deepStrictEqual(
            lines,
            whole.flatMap((b) => b.errors.map((e) => e.line))
          )
          // Records before each range: what the whole read decoded (or rejected) before it.
          let seen = 0
          for (const range of ranges) {
            assert.strictEqual(range.records, seen)
            const part = decodeCsv(bytes.subarray(range.start, range.end), {
              header: range.start === 0 ? undefined : ["id", "name", "extra"]
            })
            seen += part.reduce((sum, b) => sum + b.records.length + b.errors.length, 0)
          }
        }
      )
    )
  })
})

const Row = Schema.Struct({ id: Schema.Int, name: Schema.String })
type Row = typeof Row.Type

/** The records and dead letters a file source gives, whole or for some parts. */
const read = (source: ReturnType<typeof File.source<Row>>, parts?: ReadonlyArray<SplitPart>) =>
  Effect.map(
    Stream.runCollect(
      source.batches({
        ...makeRunContext({ runId: "r", pipeline: "p", now: () => 0 }),
        ...(parts === undefined ? {} : { parts })
      })
    ),
    (batches) => ({
      records: batches.flatMap((b) => b.records),
      dead: batches.flatMap((b) => (b.deadLetters ?? []) as ReadonlyArray<DeadLetter>)
    })
  )

describe("File source in ranges of lines", () => {
  const lines: Array<string> = []
  for (let i = 1; i <= 8000; i++) {
    if (i % 37 === 0) lines.push("{broken")
    else if (i % 53 === 0) lines.push("")
    else if (i % 41 === 0) lines.push(JSON.stringify({ id: "x", name: `bad ${i}` }))
    else lines.push(JSON.stringify({ id: i, name: `row ${i}` }))
  }
  const files = FileStoreModule.memory({ "in/big.jsonl": `${lines.join("\n")}\n` })
  const source = File.source({ path: "in/big.jsonl", schema: RecordSchema.fromSchema(Row) })

  it.effect(
    "a split with withinFiles cuts a big JSON Lines file into ranges; read one by one they give the records in order, and dead letters naming the lines and records a whole read names",
    () =>
      Effect.gen(function* () {
        const whole = yield* read(source)
        const parts = yield* source.split!({ targetBytes: 1000, withinFiles: true })
        assert.isAbove(parts.length, 2)
        for (const part of parts) assert.match(part.id, /^in\/big\.jsonl@\d+$/)
        const records: Array<Row> = []
        const dead: Array<DeadLetter> = []
        for (const part of parts) {
          const one = yield* read(source, [part])
          records.push(...one.records)
          dead.push(...one.dead)
        }
        assert.deepStrictEqual(records, whole.records)
        // Within a batch, dead letters of lines that did not parse come before those of invalid records.
        const byOrigin = (letters: ReadonlyArray<DeadLetter>) =>
          letters.map((d) => [d.reason, d.origin, d.message]).sort((a, b) => (a[1]! < b[1]! ? -1 : 1))
        assert.deepStrictEqual(byOrigin(dead), byOrigin(whole.dead))
        assert.strictEqual(dead.length, whole.dead.length)
        assert.isTrue(whole.dead.some((d) => d.origin === "in/big.jsonl:37"))
        assert.isTrue(whole.dead.some((d) => d.reason === "invalid-record"))
      }).pipe(Effect.provide(FileStoreModule.layerMemory(files)))
  )

  it.effect("without withinFiles, or for a compressed or Avro file, a file stays one part", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* source.split!({ targetBytes: 1000 })).length, 1)
      for (const format of [{ type: "jsonl", compression: "gzip" }, { type: "avro" }] as const) {
        const other = File.source({ path: "in/big.jsonl", format })
        assert.strictEqual((yield* other.split!({ targetBytes: 1000, withinFiles: true })).length, 1)
      }
    }).pipe(Effect.provide(FileStoreModule.layerMemory(files)))
  )

  it.effect(
    "a big CSV file is cut into ranges of records; read one by one with the header's names they give the records and dead letters of a whole read",
    () =>
      Effect.gen(function* () {
        const rows = ["id,name"]
        for (let i = 1; i <= 6000; i++) {
          if (i % 97 === 0) rows.push(`${i},"a name with a\nline break, and a comma"`)
          else if (i % 89 === 0) rows.push(`x${i},"bad id"`)
          else if (i % 83 === 0) rows.push(`${i},two,many`)
          else rows.push(`${i},"row ${i}"`)
        }
        const csvFiles = FileStoreModule.memory({ "in/big.csv": `${rows.join("\r\n")}\r\n` })
        const csv = File.source({ path: "in/big.csv", schema: RecordSchema.fromSchema(Row) })
        const provided = <A, E>(effect: Effect.Effect<A, E, FileStoreModule.FileStore>) =>
          Effect.provide(effect, FileStoreModule.layerMemory(csvFiles))
        const whole = yield* provided(read(csv))
        const parts = yield* provided(csv.split!({ targetBytes: 1000, withinFiles: true }))
        assert.isAbove(parts.length, 1)
        const records: Array<Row> = []
        const dead: Array<DeadLetter> = []
        for (const part of parts) {
          const one = yield* provided(read(csv, [part]))
          records.push(...one.records)
          dead.push(...one.dead)
        }
        assert.strictEqual(records.length, whole.records.length)
        assert.deepStrictEqual(records, whole.records)
        const byOrigin = (letters: ReadonlyArray<DeadLetter>) =>
          letters.map((d) => [d.reason, d.origin, d.message]).sort((a, b) => (a[1]! < b[1]! ? -1 : 1))
        assert.deepStrictEqual(byOrigin(dead), byOrigin(whole.dead))
        assert.isAbove(whole.dead.length, 100)
      })
  )
})
