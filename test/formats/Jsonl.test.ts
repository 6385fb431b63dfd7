import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import * as FormatError from "../../src/formats/FormatError.ts"
import * as Jsonl from "../../src/formats/Jsonl.ts"

const utf8 = new TextEncoder()

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

const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => Buffer.concat(chunks)

const text = (chunks: ReadonlyArray<Uint8Array>): string => Buffer.concat(chunks).toString("utf8")

const decodeSync = (chunks: ReadonlyArray<Uint8Array>, options?: Jsonl.DecodeOptions & { onError?: "fail" }) =>
  Effect.runSync(Stream.runCollect(Stream.fromIterable(chunks).pipe(Jsonl.decode(options))))

const failure = (exit: Exit.Exit<unknown, unknown>): FormatError.FormatError => {
  assert.isTrue(Exit.isFailure(exit))
  const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
  assert.strictEqual(error?._tag, "Fail")
  const value = error?._tag === "Fail" ? error.error : undefined
  assert.instanceOf(value, FormatError.FormatError)
  return value as FormatError.FormatError
}

// Strings rich in the characters that break naive codecs.
const nastyString = fc
  .array(
    fc.oneof(
      fc.constantFrom('"', ",", "\n", "\r\n", "\r", "\\", " ", "\t", "{", "}", "é", "日本", "🎉", "\u2028", ""),
      fc.string({ unit: "grapheme", maxLength: 6 })
    ),
    { maxLength: 8 }
  )
  .map((parts) => parts.join(""))

const jsonNumber = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => (Object.is(n, -0) ? 0 : n))
)

const record = fc.dictionary(
  nastyString.filter((key) => key !== "__proto__"),
  fc.oneof(nastyString, jsonNumber, fc.boolean(), fc.constant(null), fc.array(jsonNumber, { maxLength: 3 })),
  { maxKeys: 6 }
)

describe("Jsonl", () => {
  it("round-trips records whatever the chunking, with the same batches", () =>
    fc.assert(
      fc.property(
        fc.array(record, { maxLength: 40 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
        fc.integer({ min: 1, max: 7 }),
        (records, cuts, batchSize) => {
          const encoded = concat(Effect.runSync(Stream.runCollect(Stream.fromIterable([records]).pipe(Jsonl.encode()))))
          const whole = decodeSync([encoded], { batchSize })
          const split = decodeSync(splitAt(encoded, cuts), { batchSize })
          assert.deepStrictEqual(whole.flat(), records)
          assert.deepStrictEqual(split, whole)
          for (const batch of whole.slice(0, -1)) assert.strictEqual(batch.length, batchSize)
        }
      ),
      { numRuns: Number(process.env.RUNS ?? 200) }
    ))

  it("splits multi-byte characters across chunks", () => {
    const bytes = utf8.encode('{"s":"日本🎉é"}\n{"s":"x"}\n')
    const oneByteChunks = Array.from(bytes, (b) => Uint8Array.of(b))
    assert.deepStrictEqual(decodeSync(oneByteChunks), [[{ s: "日本🎉é" }, { s: "x" }]])
  })

  it("skips blank lines, accepts CRLF, a byte-order mark and a last line without newline", () => {
    const bytes = utf8.encode('\uFEFF{"a":1}\r\n\r\n   \n\t\r\n{"a":2}\n[3]')
    assert.deepStrictEqual(decodeSync([bytes]), [[{ a: 1 }, { a: 2 }, [3]]])
  })

  it("fails on a malformed line naming the source and the 1-based line", () => {
    const bytes = utf8.encode('{"a":1}\n\n{"a":2}\n{"a":3}}\n{"a":4}\n')
    const exit = Effect.runSyncExit(
      Stream.runCollect(Stream.make(bytes).pipe(Jsonl.decode({ source: "transactions.jsonl" })))
    )
    const error = failure(exit)
    assert.strictEqual(error.line, 4)
    assert.strictEqual(error.file, "transactions.jsonl")
    assert.match(error.message, /^transactions\.jsonl line 4: Unexpected non-whitespace character after JSON/)
  })

  it("emits the full batches read before a malformed line, then fails", () => {
    const bytes = utf8.encode('{"a":1}\n{"a":2}\n{"a":3}\nnope\n')
    const seen: Array<ReadonlyArray<unknown>> = []
    const exit = Effect.runSyncExit(
      Stream.runForEach(Stream.make(bytes).pipe(Jsonl.decode({ batchSize: 2 })), (batch) =>
        Effect.sync(() => seen.push(batch))
      )
    )
    assert.strictEqual(failure(exit).line, 4)
    assert.deepStrictEqual(seen, [[{ a: 1 }, { a: 2 }]])
  })

  it("quotes at most ~200 characters of a long malformed line", () => {
    const long = `{"a": ${"x".repeat(5000)}}`
    const exit = Effect.runSyncExit(Stream.runCollect(Stream.make(utf8.encode(long)).pipe(Jsonl.decode())))
    const error = failure(exit)
    assert.isBelow(error.message.length, 320)
    assert.match(error.message, /^line 1: /)
  })

  it("collects malformed lines next to the good records in lenient mode", () => {
    const bytes = utf8.encode('{"a":1}\n{"a":\r\n{"a":2}\n\n{oops}\n{"a":3}\n')
    const batches = Effect.runSync(
      Stream.runCollect(
        Stream.fromIterable(splitAt(bytes, [0.3, 0.6])).pipe(
          Jsonl.decode({ source: "in.jsonl", onError: "collect", batchSize: 3 })
        )
      )
    )
    assert.deepStrictEqual(
      batches.map((b) => b.records),
      [[{ a: 1 }, { a: 2 }], [{ a: 3 }]]
    )
    const errors = batches.flatMap((b) => b.errors)
    assert.deepStrictEqual(
      errors.map((e) => [e.line, e.raw]),
      [
        [2, '{"a":'],
        [5, "{oops}"]
      ]
    )
    assert.match(errors[0]!.message, /^in\.jsonl line 2: /)
  })

  it("fails on a line longer than maxLineLength, even when it never ends", () => {
    const exit = Effect.runSyncExit(
      Stream.runCollect(
        Stream.fromIterable(Array.from({ length: 10 }, () => utf8.encode("x".repeat(100)))).pipe(
          Jsonl.decode({ maxLineLength: 250 })
        )
      )
    )
    assert.strictEqual(failure(exit).message, "line 1: line longer than 250 characters")
  })

  it("collects a line longer than maxLineLength with its start, skips the rest of it and reads on", () => {
    const chunks = [
      utf8.encode('{"a":1}\n'),
      ...Array.from({ length: 10 }, () => utf8.encode("x".repeat(100))),
      utf8.encode('\n{"a":2}\n')
    ]
    const batches = Effect.runSync(
      Stream.runCollect(Stream.fromIterable(chunks).pipe(Jsonl.decode({ maxLineLength: 250, onError: "collect" })))
    )
    assert.deepStrictEqual(
      batches.flatMap((b) => b.records),
      [{ a: 1 }, { a: 2 }]
    )
    const errors = batches.flatMap((b) => b.errors)
    assert.deepStrictEqual(
      errors.map((e) => [e.line, e.message, e.raw.length]),
      [[2, "line 2: line longer than 250 characters", 201]]
    )
  })

  it("rejects a line that is not valid UTF-8 with its bytes, however the bytes are chunked", () => {
    const bytes = Uint8Array.from([
      ...utf8.encode('\uFEFF{"a":"caf'),
      0xe9,
      ...utf8.encode('"}\r\n{"a":"日本"}\n{"a":"'),
      0xe6,
      0x97,
      ...utf8.encode('"}')
    ])
    for (const chunks of [[bytes], Array.from(bytes, (b) => Uint8Array.of(b))]) {
      const batches = Effect.runSync(
        Stream.runCollect(Stream.fromIterable(chunks).pipe(Jsonl.decode({ source: "in.jsonl", onError: "collect" })))
      )
      assert.deepStrictEqual(
        batches.flatMap((b) => b.records),
        [{ a: "日本" }]
      )
      assert.deepStrictEqual(
        batches.flatMap((b) => b.errors.map((e) => [e.line, e.message, Buffer.from(e.bytes ?? []).toString("hex")])),
        [
          [1, "in.jsonl line 1: not valid UTF-8 (byte 0xE9 at byte 10 of the line)", "7b2261223a22636166e9227d"],
          [3, "in.jsonl line 3: not valid UTF-8 (byte 0xE6 at byte 7 of the line)", "7b2261223a22e697227d"]
        ]
      )
    }
  })

  it("rejects a line nested deeper than maxDepth before parsing it", () => {
    const deep = `${"[".repeat(5000)}${"]".repeat(5000)}`
    const exit = Effect.runSyncExit(
      Stream.runCollect(Stream.make(utf8.encode(`{"a":1}\n${deep}\n`)).pipe(Jsonl.decode({ maxDepth: 64 })))
    )
    assert.strictEqual(failure(exit).message, "line 2: objects and arrays nested deeper than 64 levels")
  })

  it("encodes typed values: Date, BigDecimal, bytes, bigint, nested; drops undefined keys", () => {
    const records = [
      {
        at: new Date("2024-05-01T12:34:56.789Z"),
        price: BigDecimal.make(12345n, 2),
        raw: new Uint8Array([0, 1, 2, 250]),
        big: 2n ** 70n,
        missing: undefined,
        nested: { when: [new Date(0)], n: null, tiny: BigDecimal.make(-5n, 3) }
      }
    ]
    const out = text(Effect.runSync(Stream.runCollect(Stream.make(records).pipe(Jsonl.encode()))))
    assert.strictEqual(
      out,
      '{"at":"2024-05-01T12:34:56.789Z","price":"123.45","raw":"AAEC+g==","big":"1180591620717411303424",' +
        '"nested":{"when":["1970-01-01T00:00:00.000Z"],"n":null,"tiny":"-0.005"}}\n'
    )
  })

  it("writes one chunk per non-empty batch and nothing for an empty input", () => {
    const chunks = Effect.runSync(
      Stream.runCollect(Stream.make([{ a: 1 }, { a: 2 }], [], [{ a: 3 }]).pipe(Jsonl.encode()))
    )
    assert.deepStrictEqual(
      chunks.map((c) => Buffer.from(c).toString()),
      ['{"a":1}\n{"a":2}\n', '{"a":3}\n']
    )
    assert.deepStrictEqual(Effect.runSync(Stream.runCollect(Stream.empty.pipe(Jsonl.encode()))), [])
  })

  it("fails to encode a cyclic record, naming its position", () => {
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    const exit = Effect.runSyncExit(
      Stream.runCollect(Stream.make([{ ok: true }], [{ ok: true }, cyclic]).pipe(Jsonl.encode({ source: "out.jsonl" })))
    )
    assert.match(failure(exit).message, /^out\.jsonl record 3: cannot encode record: Converting circular structure/)
  })
})
