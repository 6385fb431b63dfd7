import { assert, describe, it } from "@effect/vitest"
import avro from "avsc"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import * as Format from "../../src/formats/Format.ts"
import * as FormatError from "../../src/formats/FormatError.ts"

const records = [
  { id: "a", amount: 1.5, ok: true },
  { id: 'b,"c"', amount: -2, ok: false }
]

const avroSchema = {
  type: "record",
  name: "Row",
  fields: [
    { name: "id", type: "string" },
    { name: "amount", type: "double" },
    { name: "ok", type: "boolean" }
  ]
}

const roundTrip = (spec: Format.FormatSpec, encoder?: Format.EncoderOptions, decoder?: Format.DecoderOptions) =>
  Stream.make(records).pipe(
    Format.encoder(spec, encoder),
    Stream.rechunk(1),
    Format.decoder(spec, { ...decoder, onError: "fail" }),
    Stream.runCollect,
    Effect.map((batches) => batches.flat().map((record) => ({ ...(record as object) })))
  )

const failure = (exit: Exit.Exit<unknown, unknown>): FormatError.FormatError => {
  assert.isTrue(Exit.isFailure(exit))
  const reason = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
  const error = reason?._tag === "Fail" ? reason.error : undefined
  assert.instanceOf(error, FormatError.FormatError)
  return error as FormatError.FormatError
}

describe("Format", () => {
  it("detects formats from file extensions", () => {
    assert.deepStrictEqual(Format.fromPath("data/tx.jsonl"), { type: "jsonl", compression: "none" })
    assert.deepStrictEqual(Format.fromPath("tx.NDJSON"), { type: "jsonl", compression: "none" })
    assert.deepStrictEqual(Format.fromPath("s3://b/day=1/part.json.gz"), { type: "jsonl", compression: "gzip" })
    assert.deepStrictEqual(Format.fromPath("out/part-0001.csv.gz"), { type: "csv", compression: "gzip" })
    assert.deepStrictEqual(Format.fromPath("x.tsv"), { type: "csv", delimiter: "\t", compression: "none" })
    assert.deepStrictEqual(Format.fromPath("events.avro"), { type: "avro", compression: "none" })
    assert.strictEqual(Format.fromPath("notes.txt"), undefined)
    assert.strictEqual(Format.fromPath("archive.gz"), undefined)
    assert.strictEqual(Format.fromPath("dir.csv/README"), undefined)
  })

  it("names part files and describes formats", () => {
    assert.strictEqual(Format.extension({ type: "jsonl" }), ".jsonl")
    assert.strictEqual(Format.extension({ type: "csv", compression: "gzip" }), ".csv.gz")
    assert.strictEqual(Format.extension({ type: "csv", delimiter: "\t" }), ".tsv")
    assert.strictEqual(Format.extension({ type: "avro", codec: "deflate" }), ".avro")
    assert.strictEqual(Format.describe({ type: "jsonl", compression: "gzip" }), "jsonl, gzip")
    assert.strictEqual(
      Format.describe({ type: "csv", delimiter: ";", header: false }),
      'csv (delimiter ";", no header)'
    )
    assert.strictEqual(Format.describe({ type: "avro", codec: "deflate" }), "avro (codec deflate)")
  })

  it.effect("round-trips through every format, plain and gzipped", () =>
    Effect.gen(function* () {
      for (const compression of ["none", "gzip"] as const) {
        assert.deepStrictEqual(yield* roundTrip({ type: "jsonl", compression }), records)
        assert.deepStrictEqual(
          yield* roundTrip({ type: "csv", compression, delimiter: ";", columns: { amount: "number", ok: "boolean" } }),
          records
        )
        assert.deepStrictEqual(
          yield* roundTrip(
            { type: "csv", compression, header: ["id", "amount", "ok"] },
            {},
            {
              columns: { amount: "number", ok: "boolean" }
            }
          ),
          records
        )
        for (const codec of ["null", "deflate"] as const) {
          assert.deepStrictEqual(yield* roundTrip({ type: "avro", codec, compression }, { avro: avroSchema }), records)
          const type = avro.Type.forSchema(avroSchema as never)
          assert.deepStrictEqual(
            yield* roundTrip({ type: "avro", codec, compression }, { avro: type }, { avro: avroSchema }),
            records
          )
        }
      }
    })
  )

  it.effect("writes CSV with explicit header names and no header row", () =>
    Effect.gen(function* () {
      const bytes = yield* Stream.runCollect(
        Stream.make(records).pipe(Format.encoder({ type: "csv", header: ["ok", "id"] }))
      )
      assert.strictEqual(Buffer.concat(bytes).toString(), 'true,a\nfalse,"b,""c"""\n')
    })
  )

  it.effect("collects bad records in lenient mode, for every format", () =>
    Effect.gen(function* () {
      const jsonl = yield* Stream.runCollect(
        Stream.make(Buffer.from('{"a":1}\nbad\n')).pipe(
          Format.decoder({ type: "jsonl" }, { source: "f.jsonl", onError: "collect" })
        )
      )
      assert.deepStrictEqual(jsonl[0]!.records, [{ a: 1 }])
      assert.strictEqual(jsonl[0]!.errors[0]!.line, 2)
      const csv = yield* Stream.runCollect(
        Stream.make(Buffer.from("a\n1\nx\n")).pipe(
          Format.decoder({ type: "csv" }, { columns: { a: "integer" }, onError: "collect" })
        )
      )
      assert.deepStrictEqual(csv[0]!.records, [{ a: 1 }])
      assert.strictEqual(csv[0]!.errors[0]!.raw, "x")
      const avroBatches = yield* Stream.make(records).pipe(
        Format.encoder({ type: "avro" }, { avro: avroSchema }),
        Format.decoder({ type: "avro" }, { onError: "collect" }),
        Stream.runCollect
      )
      assert.strictEqual(avroBatches[0]!.records.length, 2)
      assert.deepStrictEqual(avroBatches[0]!.errors, [])
    })
  )

  it.effect("fails clearly when Avro has no schema or an invalid one", () =>
    Effect.gen(function* () {
      const missing = yield* Effect.exit(
        Stream.runCollect(Stream.make(records).pipe(Format.encoder({ type: "avro" }, { source: "out.avro" })))
      )
      assert.strictEqual(failure(missing).message, "out.avro: encoding Avro needs a schema (the avro option)")
      const invalid = yield* Effect.exit(
        Stream.runCollect(Stream.make(records).pipe(Format.encoder({ type: "avro" }, { avro: { type: "nope" } })))
      )
      assert.match(failure(invalid).message, /^avro: invalid Avro schema: /)
    })
  )
})
