import { isUtf8 } from "node:buffer"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import avro from "avsc"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import * as File from "../../src/connectors/file/File.ts"
import * as NodeFileStore from "../../src/connectors/file/NodeFileStore.ts"
import * as DeadLetter from "../../src/core/DeadLetter.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as AvroFile from "../../src/formats/AvroFile.ts"
import * as Csv from "../../src/formats/Csv.ts"
import * as FormatError from "../../src/formats/FormatError.ts"
import * as Jsonl from "../../src/formats/Jsonl.ts"
import * as JsonValue from "../../src/formats/JsonValue.ts"
import * as Payload from "../../src/formats/Payload.ts"
import * as Utf8 from "../../src/formats/Utf8.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Rule from "../../src/transforms/Rule.ts"

const avroType = (schema: unknown): AvroFile.Type =>
  avro.Type.forSchema(schema as Parameters<typeof avro.Type.forSchema>[0], { registry: {} })

const root = nodePath.resolve(import.meta.dirname, "../..")

const cli = (args: ReadonlyArray<string>) => {
  const result = spawnSync(process.execPath, [nodePath.join(root, "src/main.ts"), ...args], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" }
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const tmp = () => fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-hostile-"))

const deep = (levels: number, inner = "1") => `${"[".repeat(levels)}${inner}${"]".repeat(levels)}`

const transaction = (i: number) => ({
  transactionId: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
  userId: `u${i}`,
  amount: "12.30",
  currency: "EUR",
  status: "settled",
  eventTime: "2026-11-01T00:00:00.000Z",
  merchant: "Café Ünïcode 日本",
  category: "food"
})

const linesOf = (dir: string): Array<string> =>
  fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl"))
    .sort()
    .flatMap((f) => fs.readFileSync(nodePath.join(dir, f), "utf8").split("\n"))
    .filter((line) => line.length > 0)

interface Letter {
  readonly stage: string
  readonly reason: string
  readonly message: string
  readonly record: unknown
  readonly origin?: string
}

const pipelineConfig = (dir: string, source: Record<string, unknown>) => {
  const file = nodePath.join(dir, "pipeline.json")
  fs.writeFileSync(
    file,
    JSON.stringify({
      name: "hostile",
      source: { type: "file", path: nodePath.join(dir, "in"), schema: "transaction", ...source },
      sink: { type: "file", path: nodePath.join(dir, "out"), format: { type: "jsonl" }, mode: "overwrite" },
      dead_letters: { type: "file", path: nodePath.join(dir, "dead"), format: { type: "jsonl" }, mode: "overwrite" }
    })
  )
  return file
}

interface Report {
  readonly status: string
  readonly records: { readonly read: number; readonly written: number; readonly deadLettered: number }
}

const runConfig = (file: string): Report => {
  const { code, stdout, stderr } = cli(["run", file, "--quiet"])
  assert.strictEqual(code, 0, stderr)
  return JSON.parse(stdout) as Report
}

const bytes = (...parts: ReadonlyArray<string | ReadonlyArray<number> | Uint8Array>): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p))))

describe("hostile input costs one dead letter, never the run", () => {
  it("a 5,000-level JSON record among good ones is one dead letter naming its file and line; the rest is written", () => {
    const dir = tmp()
    fs.mkdirSync(nodePath.join(dir, "in"))
    const a = Array.from({ length: 40 }, (_, i) => JSON.stringify(transaction(i)))
    a[11] = JSON.stringify(transaction(11)).replace('"Café Ünïcode 日本"', deep(5000, '"x"'))
    a[29] = deep(5000)
    fs.writeFileSync(nodePath.join(dir, "in", "a.jsonl"), `${a.join("\n")}\n`)
    const b = Array.from({ length: 20 }, (_, i) => JSON.stringify(transaction(100 + i)))
    fs.writeFileSync(nodePath.join(dir, "in", "b.jsonl"), `${b.join("\n")}\n`)

    const report = runConfig(pipelineConfig(dir, {}))
    assert.strictEqual(report.status, "succeeded")
    assert.strictEqual(report.records.read, 60)
    assert.strictEqual(report.records.written, 58)
    assert.strictEqual(report.records.deadLettered, 2)
    const written = linesOf(nodePath.join(dir, "out")).map((l) => (JSON.parse(l) as { userId: string }).userId)
    assert.deepStrictEqual(
      written.sort(),
      [...Array.from({ length: 40 }, (_, i) => i).filter((i) => i !== 11 && i !== 29), ...b.map((_, i) => 100 + i)]
        .map((i) => `u${i}`)
        .sort()
    )
    const dead = linesOf(nodePath.join(dir, "dead")).map((l) => JSON.parse(l) as Letter)
    const file = nodePath.join(dir, "in", "a.jsonl")
    assert.deepStrictEqual(
      dead.map((d) => [d.reason, d.origin, d.message, d.record]),
      [
        ["decode-error", `${file}:12`, `${file} line 12: objects and arrays nested deeper than 100 levels`, a[11]],
        ["decode-error", `${file}:30`, `${file} line 30: objects and arrays nested deeper than 100 levels`, a[29]]
      ]
    )
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("JSON Lines and CSV lines that are not valid UTF-8 are dead-lettered with their raw bytes, never altered", () => {
    const dir = tmp()
    fs.mkdirSync(nodePath.join(dir, "in"))
    const good = (i: number) => JSON.stringify(transaction(i))
    const jsonLines = [
      bytes(good(0)),
      bytes(good(1).replace("Café Ünïcode 日本", "Caf"), [0xe9]).subarray(0, -2),
      bytes(good(2).replace("food", "fo"), [0xff], 'o"}'),
      bytes(good(3).replace("food", ""), [0xc0, 0xaf], '"}'),
      bytes(good(4).replace("food", ""), [0xed, 0xa0, 0x80], '"}'),
      bytes(good(5).replace("food", "€"), [0xe2, 0x82], '"}'),
      bytes(good(6))
    ]
    // The Latin-1 line: replace the merchant's closing quote and brace that the subarray cut.
    jsonLines[1] = bytes(good(1).replace('"Café Ünïcode 日本"', '"Caf'), [0xe9], '"')
    fs.writeFileSync(nodePath.join(dir, "in", "a.jsonl"), Buffer.concat(jsonLines.flatMap((l) => [l, bytes("\n")])))
    const header = "transactionId,userId,amount,currency,status,eventTime,merchant,category"
    const row = (i: number, merchant: string | Buffer) =>
      bytes(`${Object.values(transaction(i)).slice(0, 6).join(",")},`, merchant, ",food")
    const csvLines = [
      bytes(header),
      row(10, "ok"),
      row(11, bytes("Caf", [0xe9])),
      row(12, bytes('"quoted ', [0xff], ' field"')),
      row(13, "ök")
    ]
    fs.writeFileSync(nodePath.join(dir, "in", "b.csv"), Buffer.concat(csvLines.flatMap((l) => [l, bytes("\r\n")])))

    const report = runConfig(pipelineConfig(dir, {}))
    assert.strictEqual(report.status, "succeeded")
    assert.strictEqual(report.records.written, 4)
    assert.strictEqual(report.records.deadLettered, 7)
    const out = linesOf(nodePath.join(dir, "out"))
    assert.isFalse(
      out.some((l) => l.includes("\uFFFD")),
      "no record was written with U+FFFD"
    )
    assert.deepStrictEqual(out.map((l) => (JSON.parse(l) as { merchant: string }).merchant).sort(), [
      "Café Ünïcode 日本",
      "Café Ünïcode 日本",
      "ok",
      "ök"
    ])
    const dead = linesOf(nodePath.join(dir, "dead")).map((l) => JSON.parse(l) as Letter)
    const expected = [
      ...[1, 2, 3, 4, 5].map((i) => ({
        origin: `${nodePath.join(dir, "in", "a.jsonl")}:${i + 1}`,
        raw: jsonLines[i]!
      })),
      ...[2, 3].map((i) => ({ origin: `${nodePath.join(dir, "in", "b.csv")}:${i + 1}`, raw: csvLines[i]! }))
    ]
    assert.deepStrictEqual(
      dead.map((d) => [d.reason, d.origin, Buffer.from(d.record as string, "base64").toString("hex")]),
      expected.map((e) => ["decode-error", e.origin, e.raw.toString("hex")])
    )
    for (const d of dead)
      assert.match(d.message, /line \d+: not valid UTF-8 \(byte 0x[0-9A-F]{2} at byte \d+ of the line\)/)
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it.effect(
    "a dead-letter sink given records no encoder can write (5,000 levels, self-referencing) still writes them",
    () =>
      Effect.gen(function* () {
        const dir = tmp()
        const cyclic: Record<string, unknown> = { name: "loop" }
        cyclic.self = cyclic
        const records = [
          { id: 1, payload: JSON.parse(deep(5000)) as unknown },
          { id: 2, payload: cyclic as unknown },
          { id: 3, payload: "fine" as unknown }
        ]
        for (const format of [{ type: "jsonl" }, { type: "csv" }] as const) {
          const out = Sink.collect<{ id: number; payload: unknown }>("out")
          const deadDir = nodePath.join(dir, `dead-${format.type}`)
          const report = yield* Pipeline.from(Source.fromIterable("hostile", records)).pipe(
            Pipeline.validate([
              Rule.check("payload-is-text", (r: { payload: unknown }) => typeof r.payload === "string", {
                message: "payload must be text"
              })
            ]),
            Pipeline.to(out),
            Pipeline.withDeadLetters(File.sink<DeadLetter.DeadLetter>({ path: deadDir, format, mode: "overwrite" })),
            Pipeline.run
          )
          assert.strictEqual(report.status, "succeeded")
          assert.deepStrictEqual(
            out.collected().records.map((r) => r.id),
            [3]
          )
          assert.strictEqual(report.records.deadLettered, 2)
          const part = fs.readdirSync(deadDir).find((f) => f.startsWith("part-"))!
          const text = fs.readFileSync(nodePath.join(deadDir, part), "utf8")
          if (format.type === "jsonl") {
            const dead = text
              .trim()
              .split("\n")
              .map((l) => JSON.parse(l) as Letter)
            assert.deepStrictEqual(
              dead.map((d) => d.reason),
              ["rule:payload-is-text", "rule:payload-is-text"]
            )
            assert.strictEqual(dead[0]!.record, `{"id":1,"payload":${deep(5000)}}`)
            assert.deepStrictEqual(JSON.parse(dead[1]!.record as string), {
              id: 2,
              payload: { name: "loop", self: "[Circular]" }
            })
            for (const d of dead)
              assert.include(d.message, "payload must be text (the record nests deeper than 100 levels")
          } else {
            assert.include(text, deep(5000))
            assert.include(text, "[Circular]")
          }
        }
        fs.rmSync(dir, { recursive: true, force: true })
      }).pipe(Effect.provide(NodeFileStore.layer))
  )

  it.effect("a line or record longer than the limit is one dead letter with its start; reading goes on after it", () =>
    Effect.gen(function* () {
      const dir = tmp()
      fs.writeFileSync(
        nodePath.join(dir, "a.jsonl"),
        `{"id":1}\n{"id":"${"x".repeat(50_000)}"}\n{"id":3}\n${deep(400)}\n{"id":5}`
      )
      fs.writeFileSync(
        nodePath.join(dir, "b.csv"),
        `id,note\n6,ok\n7,"${"y".repeat(50_000)}"\n8,fine\n9,"never closed\n10,x\n`
      )
      const out = Sink.collect<unknown>("out")
      const dead = Sink.collect<DeadLetter.DeadLetter>("dead")
      const report = yield* Pipeline.from(
        File.source({ path: nodePath.join(dir, "*.jsonl"), format: { type: "jsonl", maxRecordLength: 1000 } })
      ).pipe(Pipeline.to(out), Pipeline.withDeadLetters(dead), Pipeline.run)
      const csvOut = Sink.collect<unknown>("out")
      const csvReport = yield* Pipeline.from(
        File.source({ path: nodePath.join(dir, "*.csv"), format: { type: "csv", maxRecordLength: 1000 } })
      ).pipe(Pipeline.to(csvOut), Pipeline.withDeadLetters(dead), Pipeline.run)
      assert.strictEqual(report.status, "succeeded")
      assert.strictEqual(csvReport.status, "succeeded")
      assert.deepStrictEqual(out.collected().records, [{ id: 1 }, { id: 3 }, { id: 5 }])
      assert.deepStrictEqual(csvOut.collected().records, [
        { id: "6", note: "ok" },
        { id: "8", note: "fine" }
      ])
      const a = nodePath.join(dir, "a.jsonl")
      const b = nodePath.join(dir, "b.csv")
      assert.deepStrictEqual(
        dead.collected().records.map((d) => [d.origin, d.message, typeof d.record === "string" && d.record.length]),
        [
          [`${a}:2`, `${a} line 2: line longer than 1000 characters`, 201],
          [`${a}:4`, `${a} line 4: objects and arrays nested deeper than 100 levels`, 801],
          [`${b}:3`, `${b} line 3: record longer than 1000 characters`, 201],
          [`${b}:5`, `${b} line 5: unterminated quoted field at end of input`, '9,"never closed\n10,x\n"'.length]
        ]
      )
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(NodeFileStore.layer))
  )

  it.effect("a JSON column nested 10,000 levels deep in a CSV file is one dead letter; the rest is written", () =>
    Effect.gen(function* () {
      const dir = tmp()
      fs.writeFileSync(nodePath.join(dir, "a.csv"), `id,doc\n1,"{""a"":[1]}"\n2,${deep(10_000)}\n3,[]\n`)
      const dead = Sink.collect<DeadLetter.DeadLetter>("dead")
      const report = yield* Pipeline.from(
        File.source({
          path: nodePath.join(dir, "a.csv"),
          format: { type: "csv", columns: { id: "integer", doc: "json" } }
        })
      ).pipe(
        Pipeline.to(File.sink({ path: nodePath.join(dir, "out"), format: { type: "jsonl" } })),
        Pipeline.withDeadLetters(dead),
        Pipeline.run
      )
      assert.strictEqual(report.status, "succeeded")
      assert.deepStrictEqual(
        linesOf(nodePath.join(dir, "out")).map((l) => JSON.parse(l) as unknown),
        [
          { id: 1, doc: { a: [1] } },
          { id: 3, doc: [] }
        ]
      )
      assert.deepStrictEqual(
        dead.collected().records.map((d) => d.message),
        [
          `${nodePath.join(dir, "a.csv")} line 3, column "doc": invalid JSON: objects and arrays nested deeper than 100 levels`
        ]
      )
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(NodeFileStore.layer))
  )

  it.effect("an Avro block that does not decode is one dead letter holding its bytes; the other blocks are read", () =>
    // One record per block: block 2 holds record 1.
    Effect.gen(function* () {
      const dir = tmp()
      const schema = {
        type: "record",
        name: "Row",
        fields: [
          { name: "id", type: "int" },
          { name: "name", type: "string" }
        ]
      }
      const type = avroType(schema)
      const rows = Array.from({ length: 30 }, (_, i) => ({ id: i, name: `row ${i}` }))
      const file = Buffer.concat(
        yield* Stream.runCollect(
          Stream.make(rows.slice(0, 10), rows.slice(10, 20), rows.slice(20)).pipe(
            AvroFile.encode(type, { codec: "null", blockSize: 1 })
          )
        )
      )
      const header = yield* AvroFile.readHeader(Stream.make(new Uint8Array(file)))
      const marker = Buffer.from(header.syncMarker)
      const second = file.indexOf(marker, header.size) + marker.length
      const third = file.indexOf(marker, second)
      // Block 2: keep its count and size, make its records garbage.
      file.fill(0xff, second + 2, third)
      const path = nodePath.join(dir, "rows.avro")
      fs.writeFileSync(path, file)
      const out = Sink.collect<{ id: number }>("out")
      const dead = Sink.collect<DeadLetter.DeadLetter>("dead")
      const report = yield* Pipeline.from(File.source<{ id: number }>({ path })).pipe(
        Pipeline.to(out),
        Pipeline.withDeadLetters(dead),
        Pipeline.run
      )
      assert.strictEqual(report.status, "succeeded")
      assert.deepStrictEqual(
        out.collected().records.map((r) => r.id),
        rows.filter((r) => r.id !== 1).map((r) => r.id)
      )
      const [letter] = dead.collected().records
      assert.strictEqual(dead.collected().records.length, 1)
      assert.strictEqual(letter!.origin, `${path}#block2`)
      assert.match(letter!.message, /block 2, byte \d+: corrupt /)
      assert.deepStrictEqual(Buffer.from(letter!.record as Uint8Array), file.subarray(second + 2, third))
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(NodeFileStore.layer))
  )

  it("an Avro writer schema whose array items take no bytes is refused before a few bytes can claim 2^26 items", () => {
    const type = avroType({ type: "array", items: "null" })
    const header = Effect.runSync(
      Stream.runCollect(Stream.make([[null]]).pipe(AvroFile.encode(type, { codec: "null" })))
    )
    const file = Buffer.concat(header)
    const headerSize = Effect.runSync(AvroFile.readHeader(Stream.make(new Uint8Array(file)))).size
    const marker = file.subarray(headerSize - 16, headerSize)
    const item = Buffer.from(avroType("long").toBuffer(2 ** 26))
    const block = Buffer.concat([item, Buffer.from([0])])
    const count = Buffer.from(avroType("long").toBuffer(1))
    const size = Buffer.from(avroType("long").toBuffer(block.length))
    const hostile = Buffer.concat([file.subarray(0, headerSize), count, size, block, marker])
    const started = performance.now()
    const exit = Effect.runSyncExit(Stream.runCollect(Stream.make(new Uint8Array(hostile)).pipe(AvroFile.decode())))
    assert.isTrue(Exit.isFailure(exit))
    const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
    assert.instanceOf(error, FormatError.FormatError)
    assert.include(
      (error as FormatError.FormatError).message,
      "unsupported writer schema: the top-level array has items of zero bytes"
    )
    assert.isBelow(performance.now() - started, 2000)
  })
})

// Bytes that stress text decoders: valid UTF-8 of every width, invalid and truncated sequences, line breaks, quotes,
// brackets and JSON fragments.
const hostileBytes = fc
  .array(
    fc.oneof(
      fc.uint8Array({ maxLength: 8 }),
      fc
        .constantFrom(
          [0x0a],
          [0x0d, 0x0a],
          [0x22],
          [0x2c],
          [0xff],
          [0xc0, 0xaf],
          [0xed, 0xa0, 0x80],
          [0xe2, 0x82],
          [0xf0, 0x9f, 0x8e, 0x89],
          [0xef, 0xbb, 0xbf],
          [0xc3, 0xa9]
        )
        .map((b) => Uint8Array.from(b)),
      fc
        .oneof(fc.json({ maxDepth: 3 }), fc.constantFrom("[[[[", "]]]", '{"a":', "null", "\\"), fc.string())
        .map((s) => new TextEncoder().encode(s))
    ),
    { maxLength: 40 }
  )
  .map((parts) => Buffer.concat(parts))

const chunked = (data: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => Math.floor(c * data.length)))].sort((x, y) => x - y)
  const chunks: Array<Uint8Array> = []
  let start = 0
  for (const point of points)
    if (point > start && point < data.length) {
      chunks.push(data.subarray(start, point))
      start = point
    }
  chunks.push(data.subarray(start))
  return chunks
}

const hasReplacementCharacter = (data: Uint8Array) => Buffer.from(data).includes(Buffer.from([0xef, 0xbf, 0xbd]))

/** The lines of JSON Lines bytes that are not blank, counted without a JSON Lines decoder. */
const nonBlankLines = (data: Uint8Array): number => {
  const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
  let count = 0
  let start = 0
  while (start < data.length) {
    const lineBreak = data.indexOf(0x0a, start)
    const end = lineBreak === -1 ? data.length : lineBreak
    let text: string | undefined
    try {
      text = fatal.decode(
        data.subarray(start === 0 && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf ? 3 : start, end)
      )
    } catch {
      text = undefined
    }
    if (text === undefined || !/^[ \t\r]*$/.test(text)) count++
    start = end + 1
  }
  return count
}

// Small limits make long lines, cut into parts, common.
const limit = fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constant(64))

const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 10 })

const lenient = (
  decode: (chunks: Stream.Stream<Uint8Array>) => Stream.Stream<FormatError.LenientBatch, FormatError.FormatError>,
  chunks: ReadonlyArray<Uint8Array>
) => Effect.runSyncExit(Stream.runCollect(decode(Stream.fromIterable(chunks))))

const flatten = (batches: ReadonlyArray<FormatError.LenientBatch>) => ({
  records: batches.flatMap((b) => b.records),
  errors: batches.flatMap((b) =>
    b.errors.map((e) => ({ ...e, bytes: e.bytes && Buffer.from(e.bytes).toString("hex") }))
  )
})

describe("decoders under random bytes: records or dead letters, never a throw", () => {
  it("JSON Lines never fails in lenient mode and gives the same records and rejects however the bytes are chunked", () =>
    fc.assert(
      fc.property(hostileBytes, cuts, fc.integer({ min: 1, max: 6 }), limit, (data, at, maxDepth, maxLineLength) => {
        const decode = (s: Stream.Stream<Uint8Array>) =>
          s.pipe(Jsonl.decode({ onError: "collect", maxDepth, maxLineLength, batchSize: 3 }))
        const whole = lenient(decode, [data])
        const split = lenient(decode, chunked(data, at))
        assert.isTrue(Exit.isSuccess(whole) && Exit.isSuccess(split))
        if (!Exit.isSuccess(whole) || !Exit.isSuccess(split)) return
        assert.deepStrictEqual(flatten(split.value), flatten(whole.value))
        const { records, errors } = flatten(whole.value)
        assert.strictEqual(records.length + errors.length, nonBlankLines(data), "every line is a record or a reject")
        for (const record of records) assert.isFalse(JsonValue.valueExceedsDepth(record, maxDepth))
        for (const error of errors) {
          if (error.bytes === undefined) continue
          assert.notStrictEqual(Utf8.firstInvalid(Buffer.from(error.bytes, "hex")), -1)
          assert.isTrue(Buffer.from(data).includes(Buffer.from(error.bytes, "hex")))
        }
        if (!hasReplacementCharacter(data)) for (const r of records) assert.notInclude(JSON.stringify(r), "\uFFFD")
      }),
      { numRuns: 300 }
    ))

  it("CSV never fails in lenient mode (named columns) and gives the same records however the bytes are chunked", () =>
    fc.assert(
      fc.property(hostileBytes, cuts, limit, (data, at, maxRecordLength) => {
        const decode = (s: Stream.Stream<Uint8Array>) =>
          s.pipe(
            Csv.decode({
              onError: "collect",
              header: ["a", "b"],
              columns: { b: "json" },
              maxDepth: 3,
              maxRecordLength,
              batchSize: 3
            })
          )
        const whole = lenient(decode, [data])
        const split = lenient(decode, chunked(data, at))
        assert.isTrue(Exit.isSuccess(whole) && Exit.isSuccess(split))
        if (!Exit.isSuccess(whole) || !Exit.isSuccess(split)) return
        assert.deepStrictEqual(flatten(split.value), flatten(whole.value))
        if (!hasReplacementCharacter(data))
          for (const r of flatten(whole.value).records) assert.notInclude(JSON.stringify(r), "\uFFFD")
      }),
      { numRuns: 300 }
    ))

  it("Avro decoding of random or corrupted bytes ends in records or a FormatError, never a defect", async () => {
    const type = avroType({
      type: "record",
      name: "R",
      fields: [
        { name: "s", type: "string" },
        { name: "xs", type: { type: "array", items: "long" } },
        { name: "next", type: ["null", "R"] }
      ]
    })
    const valid = Buffer.concat(
      await Effect.runPromise(
        Stream.runCollect(
          Stream.make(
            Array.from({ length: 20 }, (_, i) => ({ s: `s${i}`, xs: [i, -i], next: { s: "n", xs: [], next: null } }))
          ).pipe(AvroFile.encode(type, { codec: "deflate", blockSize: 64 }))
        )
      )
    )
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc
            .array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 })
            .map((edits) => {
              const copy = Buffer.from(valid)
              for (const [at, value] of edits) copy[at] = value
              return new Uint8Array(copy)
            })
        ),
        cuts,
        (data, at) => {
          const input = Stream.fromIterable(chunked(data, at))
          const exits: ReadonlyArray<Exit.Exit<unknown, FormatError.FormatError>> = [
            Effect.runSyncExit(Stream.runCollect(input.pipe(AvroFile.decode(undefined, { onError: "collect" })))),
            Effect.runSyncExit(Stream.runCollect(input.pipe(AvroFile.decode())))
          ]
          for (const exit of exits)
            if (Exit.isFailure(exit)) assert.instanceOf(Cause.squash(exit.cause), FormatError.FormatError)
        }
      ),
      { numRuns: 300 }
    )
  })

  it("Kafka JSON and string payloads decode random bytes to a value or a reason, never a throw", () =>
    fc.assert(
      fc.property(hostileBytes, (data) => {
        for (const codec of [Payload.compile({ type: "json", maxDepth: 3 }), Payload.compile({ type: "string" })]) {
          const decoded = codec.decode(data)
          if (decoded.ok) assert.isFalse(JsonValue.valueExceedsDepth(decoded.value, 3))
          else assert.isString(decoded.message)
        }
      }),
      { numRuns: 300 }
    ))

  it("every dead letter becomes encodable: JSON round-trips, and deep or cyclic records become their JSON text", () =>
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 6 }),
        fc.integer({ min: 0, max: 300 }),
        fc.boolean(),
        (value, depth, loop) => {
          let record: unknown = value
          for (let i = 0; i < depth; i++) record = i % 2 === 0 ? [record] : { k: record }
          if (loop && typeof record === "object" && record !== null) (record as Record<string, unknown>).loop = record
          const letter = DeadLetter.encodable({ stage: "s", reason: "r", message: "m", record })
          const text = JsonValue.stringify(letter)
          assert.deepStrictEqual(JSON.parse(text) as unknown, JSON.parse(JSON.stringify(JsonValue.toJson(letter))))
          if (letter.record === record)
            assert.deepStrictEqual(JSON.parse(JsonValue.stringify(record)), JSON.parse(JSON.stringify(record)))
          else {
            assert.isString(letter.record)
            JSON.parse(letter.record as string)
          }
          if (!loop)
            assert.deepStrictEqual(JSON.parse(JsonValue.stringifySafe(record)), JSON.parse(JSON.stringify(record)))
        }
      ),
      { numRuns: 300 }
    ))

  it("the depth check before parsing agrees with the depth of the parsed value", () =>
    fc.assert(
      fc.property(fc.json({ maxDepth: 8 }), fc.integer({ min: 0, max: 9 }), (text, max) => {
        assert.strictEqual(JsonValue.exceedsDepth(text, max), JsonValue.valueExceedsDepth(JSON.parse(text), max))
      }),
      { numRuns: 500 }
    ))

  it("firstInvalid and buffer.isUtf8 agree with TextDecoder's fatal mode", () => {
    const fatal = new TextDecoder("utf-8", { fatal: true })
    fc.assert(
      fc.property(hostileBytes, (data) => {
        let valid = true
        try {
          fatal.decode(data)
        } catch {
          valid = false
        }
        assert.strictEqual(Utf8.firstInvalid(data) === -1, valid)
        assert.strictEqual(isUtf8(data), valid)
      }),
      { numRuns: 1000 }
    )
  })
})
