import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import avro from "avsc"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import * as AvroFile from "../../src/formats/AvroFile.ts"
import * as FormatError from "../../src/formats/FormatError.ts"
import * as AvroBridge from "../../src/schema/AvroBridge.ts"
import * as AvroFast from "../../src/schema/AvroFast.ts"
import type * as AvroSchema from "../../src/schema/AvroSchema.ts"

const splitAt = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b)
  const chunks: Array<Uint8Array> = []
  let start = 0
  for (const point of points) {
    if (point > start && point < bytes.length) {
      chunks.push(bytes.subarray(start, point))
      start = point
    }
  }
  chunks.push(bytes.subarray(start))
  return chunks
}

const schema = {
  type: "record",
  name: "Transaction",
  namespace: "test",
  fields: [
    { name: "id", type: "string" },
    { name: "amount", type: "double" },
    { name: "count", type: "int" },
    { name: "seq", type: "long" },
    { name: "settled", type: "boolean" },
    { name: "note", type: ["null", "string"], default: null },
    { name: "payload", type: "bytes" },
    { name: "tags", type: { type: "array", items: "string" } },
    { name: "status", type: { type: "enum", name: "Status", symbols: ["SETTLED", "PENDING"] } }
  ]
} as const

const type = avro.Type.forSchema(schema as unknown as Parameters<typeof avro.Type.forSchema>[0])

const transaction = fc.record({
  id: fc.string({ unit: "grapheme", maxLength: 12 }),
  amount: fc.double({ noNaN: true }),
  count: fc.integer(),
  // avsc's default long type is exact only within ±2^52 (it corrupts -(2^52 + 1) on its own).
  seq: fc
    .double({ min: -(2 ** 52), max: 2 ** 52, noNaN: true })
    .map(Math.trunc)
    .map((n) => (Object.is(n, -0) ? 0 : n)),
  settled: fc.boolean(),
  note: fc.option(fc.string({ maxLength: 10 }), { nil: null }),
  payload: fc.uint8Array({ maxLength: 20 }).map((bytes) => Buffer.from(bytes)),
  tags: fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
  status: fc.constantFrom("SETTLED", "PENDING")
})

const plain = (batches: ReadonlyArray<ReadonlyArray<unknown>>): Array<unknown> =>
  batches.flat().map((record) => ({ ...(record as object) }))

const encode = (
  batches: ReadonlyArray<ReadonlyArray<unknown>>,
  options?: AvroFile.EncodeOptions,
  avroType: AvroFile.Type = type
): Effect.Effect<Buffer, FormatError.FormatError> =>
  Effect.map(Stream.runCollect(Stream.fromIterable(batches).pipe(AvroFile.encode(avroType, options))), (chunks) =>
    Buffer.concat(chunks)
  )

const encodeSync = (
  batches: ReadonlyArray<ReadonlyArray<unknown>>,
  options?: AvroFile.EncodeOptions,
  avroType: AvroFile.Type = type
): Buffer =>
  Buffer.concat(
    Effect.runSync(Stream.runCollect(Stream.fromIterable(batches).pipe(AvroFile.encode(avroType, options))))
  )

const decodeExit = (chunks: ReadonlyArray<Uint8Array>, readerType?: AvroFile.Type, options?: AvroFile.DecodeOptions) =>
  Effect.runSyncExit(Stream.runCollect(Stream.fromIterable(chunks).pipe(AvroFile.decode(readerType, options))))

const decodeSync = (
  chunks: ReadonlyArray<Uint8Array>,
  readerType?: AvroFile.Type,
  options?: AvroFile.DecodeOptions
) => {
  const exit = decodeExit(chunks, readerType, options)
  if (Exit.isFailure(exit)) assert.fail(String(exit.cause))
  return Exit.isSuccess(exit) ? exit.value : []
}

const failure = (exit: Exit.Exit<unknown, unknown>): FormatError.FormatError => {
  assert.isTrue(Exit.isFailure(exit))
  const reason = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
  const error = reason?._tag === "Fail" ? reason.error : undefined
  assert.instanceOf(error, FormatError.FormatError)
  return error as FormatError.FormatError
}

const sample = Array.from({ length: 500 }, (_, i) => ({
  id: `tx-${i}`,
  amount: i / 4,
  count: i,
  seq: i * 1_000_003,
  settled: i % 2 === 0,
  note: i % 3 === 0 ? null : `note ${i}`,
  payload: Buffer.from([i % 256]),
  tags: i % 5 === 0 ? [] : ["a", "b"],
  status: i % 2 === 0 ? "SETTLED" : "PENDING"
}))

const tmpDir = (): string => Fs.mkdtempSync(Path.join(Os.tmpdir(), "avrofile-test-"))

const writeWithAvsc = (path: string, records: ReadonlyArray<unknown>, options: Record<string, unknown>) =>
  Effect.callback<void>((resume) => {
    const encoder = avro.createFileEncoder(path, schema as never, options)
    // createFileEncoder pipes into a file stream it does not return; the file is complete when that stream closes.
    const file = (encoder as unknown as { _readableState: { pipes: Array<Fs.WriteStream> } })._readableState.pipes[0]!
    file.on("close", () => resume(Effect.void))
    encoder.on("error", (error: Error) => resume(Effect.die(error)))
    for (const record of records) encoder.write(record)
    encoder.end()
  })

const readWithAvsc = (path: string) =>
  Effect.callback<Array<unknown>>((resume) => {
    const records: Array<unknown> = []
    avro
      .createFileDecoder(path)
      .on("data", (record: unknown) => records.push(record))
      .on("error", (error: Error) => resume(Effect.die(error)))
      .on("end", () => resume(Effect.succeed(records)))
  })

describe("AvroFile", () => {
  it("round-trips records with both codecs, any block size and any chunking, with the same batches", () =>
    fc.assert(
      fc.asyncProperty(
        fc.array(transaction, { maxLength: 40 }),
        fc.constantFrom<AvroFile.Codec>("null", "deflate"),
        fc.integer({ min: 1, max: 400 }),
        fc.integer({ min: 1, max: 9 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 15 }),
        async (records, codec, blockSize, batchSize, cuts) => {
          const bytes = await Effect.runPromise(
            encode([records.slice(0, 7), [], records.slice(7)], { codec, blockSize })
          )
          const whole = decodeSync([bytes], undefined, { batchSize })
          const split = decodeSync(splitAt(bytes, cuts), undefined, { batchSize })
          assert.deepStrictEqual(plain(whole), records)
          assert.deepStrictEqual(
            split.map((b) => b.length),
            whole.map((b) => b.length)
          )
          assert.deepStrictEqual(plain(split), records)
        }
      ),
      { numRuns: 150 }
    ))

  it.effect("decodes files written by avsc's own file encoder (null and deflate)", () =>
    Effect.gen(function* () {
      const dir = tmpDir()
      for (const codec of ["null", "deflate"]) {
        const path = Path.join(dir, `avsc-${codec}.avro`)
        yield* writeWithAvsc(path, sample, { codec, blockSize: 1000 })
        const bytes = Fs.readFileSync(path)
        assert.deepStrictEqual(plain(decodeSync(splitAt(bytes, [0.1, 0.5, 0.77]))), sample)
      }
    })
  )

  it.effect("writes files avsc's own file decoder reads (null and deflate)", () =>
    Effect.gen(function* () {
      const dir = tmpDir()
      for (const codec of ["null", "deflate"] as const) {
        const path = Path.join(dir, `mine-${codec}.avro`)
        Fs.writeFileSync(path, yield* encode([sample.slice(0, 100), sample.slice(100)], { codec, blockSize: 2000 }))
        const records = yield* readWithAvsc(path)
        assert.deepStrictEqual(plain([records]), sample)
      }
    })
  )

  it.effect("compresses with deflate, at the requested level", () =>
    Effect.gen(function* () {
      const plainBytes = encodeSync([sample], { codec: "null" })
      const deflated = yield* encode([sample], { codec: "deflate" })
      const stored = yield* encode([sample], { codec: "deflate", compressionLevel: 0 })
      assert.isBelow(deflated.length, plainBytes.length / 2)
      assert.isAbove(stored.length, plainBytes.length)
      assert.deepStrictEqual(plain(decodeSync([stored])), sample)
    })
  )

  it("resolves the writer schema against a reader type: defaults, promotions, dropped fields", () => {
    const writer = avro.Type.forSchema({
      type: "record",
      name: "Tx",
      fields: [
        { name: "id", type: "string" },
        { name: "amount", type: "float" },
        { name: "legacy", type: "int" }
      ]
    })
    const reader = avro.Type.forSchema({
      type: "record",
      name: "Tx",
      fields: [
        { name: "id", type: "string" },
        { name: "amount", type: "double" },
        { name: "currency", type: "string", default: "EUR" }
      ]
    })
    const bytes = encodeSync([[{ id: "a", amount: 1.5, legacy: 7 }]], {}, writer)
    assert.deepStrictEqual(plain(decodeSync([bytes], reader)), [{ id: "a", amount: 1.5, currency: "EUR" }])
  })

  it("resolves fields named like properties of every object (constructor, toString, ...)", () => {
    const writer = avro.Type.forSchema({
      type: "record",
      name: "Tx",
      fields: [
        { name: "id", type: "string" },
        { name: "constructor", type: "string" },
        { name: "toString", type: "int" }
      ]
    })
    const reader = avro.Type.forSchema({
      type: "record",
      name: "Tx",
      fields: [
        { name: "toString", type: "long" },
        { name: "constructor", type: "string" },
        { name: "id", type: "string" },
        { name: "valueOf", type: "string", default: "v" }
      ]
    })
    const bytes = encodeSync([[{ id: "a", constructor: "c", toString: 7 }]], {}, writer)
    assert.deepStrictEqual(plain(decodeSync([bytes], reader)), [
      { toString: 7, constructor: "c", id: "a", valueOf: "v" }
    ])
  })

  it("fails when the reader type cannot read the writer schema", () => {
    const reader = avro.Type.forSchema({ type: "record", name: "Other", fields: [{ name: "x", type: "int" }] })
    const error = failure(decodeExit([encodeSync([sample.slice(0, 1)])], reader, { source: "tx.avro" }))
    assert.match(error.message, /^tx\.avro: the reader schema cannot read the writer schema: /)
  })

  it("fails on a truncated file, in a block or in the header", () => {
    const bytes = encodeSync([sample], { blockSize: 4000 })
    const block = failure(decodeExit([bytes.subarray(0, bytes.length - 5)], undefined, { source: "cut.avro" }))
    assert.match(
      block.message,
      /^cut\.avro byte \d+: truncated Avro file: the input ends inside block \d+ \(\d+ bytes left\)$/
    )
    const header = failure(decodeExit([bytes.subarray(0, 40)], undefined, { source: "cut.avro" }))
    assert.strictEqual(header.message, "cut.avro: truncated Avro file: the input ends inside the header (40 bytes)")
    assert.strictEqual(
      failure(decodeExit([])).message,
      "avro: truncated Avro file: the input ends inside the header (0 bytes)"
    )
  })

  it("fails on a bad sync marker", () => {
    const marker = Buffer.alloc(16, 7)
    const bytes = Buffer.from(encodeSync([sample], { blockSize: 4000, syncMarker: marker }))
    const firstBlockEnd = bytes.indexOf(marker, bytes.indexOf(marker) + 16)
    bytes[firstBlockEnd + 3] = 0
    const error = failure(decodeExit(splitAt(bytes, [0.2]), undefined, { source: "bad.avro" }))
    assert.match(
      error.message,
      /^bad\.avro block 1, byte \d+: invalid sync marker at the end of the block: the file is corrupt$/
    )
    assert.strictEqual(error.block, 1)
  })

  it.effect("fails on an unsupported codec, naming it", () =>
    Effect.gen(function* () {
      const path = Path.join(tmpDir(), "snappy.avro")
      yield* writeWithAvsc(path, sample.slice(0, 3), {
        codec: "snappy",
        codecs: { snappy: (data: Buffer, cb: (e: null, d: Buffer) => void) => cb(null, data) }
      })
      const error = failure(decodeExit([Fs.readFileSync(path)], undefined, { source: "snappy.avro" }))
      assert.strictEqual(error.message, 'snappy.avro: unsupported codec "snappy" (supported: null, deflate)')
    })
  )

  it("fails on bytes that are not an Avro file", () => {
    const error = failure(decodeExit([Buffer.from('{"id": 1}\n')], undefined, { source: "x.jsonl" }))
    assert.strictEqual(error.message, "x.jsonl: not an Avro object container file (bad magic bytes)")
  })

  it("fails on a block whose record count does not match its bytes", () => {
    const bytes = Buffer.from(encodeSync([sample.slice(0, 3)]))
    const headerSize = Effect.runSync(AvroFile.readHeader(Stream.make(bytes))).size
    assert.strictEqual(bytes[headerSize], 6) // zig-zag 3
    bytes[headerSize] = 8
    assert.match(
      failure(decodeExit([bytes])).message,
      /^block 1, byte \d+: corrupt block: record 4 of 4 runs past the end of the block$/
    )
    bytes[headerSize] = 4
    assert.match(failure(decodeExit([bytes])).message, /corrupt block: \d+ bytes left after its 2 records$/)
  })

  it.effect("fails on a corrupt deflate block", () =>
    Effect.gen(function* () {
      const bytes = Buffer.from(yield* encode([sample], { codec: "deflate" }))
      const headerSize = (yield* AvroFile.readHeader(Stream.make(bytes))).size
      for (let i = headerSize + 6; i < headerSize + 40; i++) bytes[i] = 0xff
      assert.match(failure(decodeExit([bytes])).message, /^block 1, byte \d+: cannot inflate deflate block: /)
    })
  )

  it("reads just the header, pulling only the chunks it needs", () => {
    const bytes = encodeSync([sample], { codec: "null", metadata: { "app.origin": "test" } })
    const chunks = splitAt(bytes, [0.001, 0.002, 0.003, 0.5, 0.7, 0.9])
    let pulled = 0
    const header = Effect.runSync(
      AvroFile.readHeader(
        Stream.fromIterable(chunks, { chunkSize: 1 }).pipe(Stream.tap(() => Effect.sync(() => pulled++)))
      )
    )
    assert.strictEqual(header.codec, "null")
    assert.deepStrictEqual(header.schema, JSON.parse(JSON.stringify(type.schema({ exportAttrs: true }))))
    assert.strictEqual(Buffer.from(header.metadata["app.origin"]!).toString(), "test")
    assert.strictEqual(header.syncMarker.length, 16)
    assert.isBelow(pulled, chunks.length)
  })

  it("writes a header-only file for an empty input", () => {
    const bytes = encodeSync([])
    assert.deepStrictEqual(decodeSync([bytes]), [])
    assert.strictEqual(Effect.runSync(AvroFile.readHeader(Stream.make(bytes))).size, bytes.length)
  })

  it("fails to encode a record that does not match the type, naming the record and the field", () => {
    const bad = { ...sample[1], count: "seven" }
    const exit = Effect.runSyncExit(
      Stream.runCollect(Stream.make([sample[0]], [bad]).pipe(AvroFile.encode(type, { source: "out.avro" })))
    )
    assert.strictEqual(
      failure(exit).message,
      'out.avro record 2: cannot encode record: expected "int" at count, got "seven"'
    )
    // avsc's check throws on a bigint where an int goes: a record error all the same, never a defect.
    const thrown = Effect.runSyncExit(
      Stream.runCollect(Stream.make([{ ...sample[0], count: 7n }]).pipe(AvroFile.encode(type, { source: "out.avro" })))
    )
    assert.match(
      failure(thrown).message,
      /^out\.avro record 1: cannot encode record: .*cannot be checked: Cannot mix BigInt/
    )
    const unchecked = Effect.runSyncExit(
      Stream.runCollect(Stream.make([{ ...sample[0], id: 42 }]).pipe(AvroFile.encode(type, { validate: false })))
    )
    assert.match(failure(unchecked).message, /^record 1: cannot encode record: .*expected "string" at id, got 42\)$/)
  })

  it("fails to encode a string with a lone surrogate, saying so, checked or not", () => {
    const bad = { ...sample[0], id: "tx-\ud83d" }
    for (const validate of [true, false]) {
      const exit = Effect.runSyncExit(
        Stream.runCollect(Stream.make([sample[1], bad]).pipe(AvroFile.encode(type, { source: "out.avro", validate })))
      )
      assert.match(
        failure(exit).message,
        /^out\.avro record 2: cannot encode record: .*lone surrogate \(\\ud83d at index 3\)/,
        String(validate)
      )
    }
  })

  it("rejects a sync marker that is not 16 bytes", () => {
    const exit = Effect.runSyncExit(
      Stream.runCollect(Stream.make(sample).pipe(AvroFile.encode(type, { syncMarker: new Uint8Array(3) })))
    )
    assert.strictEqual(failure(exit).message, "avro: sync marker must be 16 bytes, got 3")
  })
})

const ledger = {
  type: "record",
  name: "Ledger",
  namespace: "test.fast",
  fields: [
    { name: "seq", type: "long" },
    { name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 12, scale: 2 } },
    { name: "at", type: { type: "long", logicalType: "timestamp-micros" } },
    { name: "note", type: ["null", "string"], default: null },
    { name: "tags", type: { type: "map", values: { type: "array", items: "int" } } }
  ]
} as unknown as AvroSchema.Schema
const ledgerType = AvroBridge.toAvroType(ledger)
const entry = (i: number) => ({
  // Longs beyond ±2^52 are written and read by avsc (the fast path bails on them), in the middle of a block.
  seq: i % 7 === 3 ? Number.MAX_SAFE_INTEGER - i : i,
  amount: BigDecimal.make(BigInt(i * 1234 - 50_000), 2),
  at: new Date(Date.UTC(2026, 0, 1) - i * 999),
  note: i % 2 === 0 ? null : `é ${i}`,
  tags: i % 3 === 0 ? {} : { [`k${i}`]: [i, -i] }
})

describe("AvroFile with AvroFast", () => {
  it("reads its own files through the fast path, with the records avsc reads, also where it hands over to avsc", () => {
    assert.isDefined(AvroFast.of(ledgerType))
    const records = Array.from({ length: 50 }, (_, i) => entry(i))
    const bytes = encodeSync([records.slice(0, 20), records.slice(20)], { blockSize: 256 }, ledgerType)
    const fast = decodeSync([bytes], ledgerType)
    // Any type options turn the fast path off: avsc alone.
    const slow = decodeSync([bytes], ledgerType, { typeOptions: {} })
    assert.deepStrictEqual(fast, slow)
    assert.deepStrictEqual(fast.flat(), records)
  })

  it("writes the bytes avsc writes, and stops on an invalid record with avsc's message", () => {
    const records = Array.from({ length: 30 }, (_, i) => entry(i))
    const syncMarker = new Uint8Array(16).fill(7)
    const bytes = encodeSync([records], { syncMarker }, ledgerType)
    const blocks = Buffer.concat(records.map((record) => ledgerType.toBuffer(record)))
    assert.isTrue(bytes.includes(blocks))
    const bad = { ...entry(3), amount: BigDecimal.make(1n, 3) }
    const exit = Effect.runSyncExit(
      Stream.runCollect(Stream.make([entry(1), bad]).pipe(AvroFile.encode(ledgerType, { source: "out.avro" })))
    )
    assert.strictEqual(
      failure(exit).message,
      `out.avro record 2: cannot encode record: ${AvroFile.explainInvalid(ledgerType, bad)}`
    )
  })
})
