import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import * as Csv from "../../src/formats/Csv.ts"
import * as FormatError from "../../src/formats/FormatError.ts"

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

const decode = (input: string | ReadonlyArray<Uint8Array>, options?: Csv.DecodeOptions & { onError?: "fail" }) =>
  Effect.runSyncExit(
    Stream.runCollect(
      Stream.fromIterable(typeof input === "string" ? [utf8.encode(input)] : input).pipe(Csv.decode(options))
    )
  )

const records = (input: string | ReadonlyArray<Uint8Array>, options?: Csv.DecodeOptions & { onError?: "fail" }) => {
  const exit = decode(input, options)
  if (Exit.isFailure(exit)) assert.fail(String(exit.cause))
  return Exit.isSuccess(exit) ? exit.value.flat() : []
}

const failure = (exit: Exit.Exit<unknown, unknown>): FormatError.FormatError => {
  assert.isTrue(Exit.isFailure(exit))
  const reason = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
  const error = reason?._tag === "Fail" ? reason.error : undefined
  assert.instanceOf(error, FormatError.FormatError)
  return error as FormatError.FormatError
}

const encode = (batches: ReadonlyArray<ReadonlyArray<unknown>>, options?: Csv.EncodeOptions): string =>
  Buffer.concat(Effect.runSync(Stream.runCollect(Stream.fromIterable(batches).pipe(Csv.encode(options))))).toString(
    "utf8"
  )

const nastyString = fc
  .array(
    fc.oneof(
      fc.constantFrom('"', ",", ";", "\n", "\r\n", "\r", " ", "\t", '""', "é", "日本", "🎉"),
      fc.string({ unit: "grapheme", maxLength: 6 })
    ),
    { maxLength: 8 }
  )
  .map((parts) => parts.join(""))

const finite = fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => (Object.is(n, -0) ? 0 : n))

const row = fc.record({
  s: fc.option(nastyString, { nil: null }),
  n: fc.option(finite, { nil: null }),
  i: fc.option(fc.maxSafeInteger(), { nil: null }),
  b: fc.option(fc.boolean(), { nil: null }),
  j: fc.option(fc.dictionary(fc.string({ maxLength: 3 }), fc.oneof(fc.integer(), nastyString), { maxKeys: 2 }), {
    nil: null
  }),
  'odd, "name"': fc.option(nastyString, { nil: null })
})

const columns = { n: "number", i: "integer", b: "boolean", j: "json" } as const

describe("Csv", () => {
  it("round-trips typed records whatever the chunking and the delimiter, with the same batches", () =>
    fc.assert(
      fc.property(
        fc.array(row, { maxLength: 30 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
        fc.constantFrom(",", ";", "\t", "|"),
        fc.integer({ min: 1, max: 6 }),
        (input, cuts, delimiter, batchSize) => {
          const bytes = utf8.encode(encode([input], { delimiter }))
          const options = { delimiter, columns, emptyAsNull: true, batchSize }
          const whole = decode([bytes], options)
          const split = decode(splitAt(bytes, cuts), options)
          assert.isTrue(Exit.isSuccess(whole))
          assert.deepStrictEqual(split, whole)
          if (Exit.isSuccess(whole)) assert.deepStrictEqual(whole.value.flat(), input)
        }
      ),
      { numRuns: 200 }
    ))

  it("parses RFC 4180: quotes, doubled quotes, quoted newlines, CRLF, empty and trailing fields", () => {
    const input = 'id,text,note\r\n1,"say ""hi"", then\r\nleave",\r\n2,,""\r\n3,plain,x'
    assert.deepStrictEqual(records(input), [
      { id: "1", text: 'say "hi", then\r\nleave', note: "" },
      { id: "2", text: "", note: "" },
      { id: "3", text: "plain", note: "x" }
    ])
    assert.deepStrictEqual(records(input, { emptyAsNull: true })[1], { id: "2", text: null, note: "" })
  })

  it("drops a leading byte-order mark from the header", () => {
    assert.deepStrictEqual(records("\uFEFFid,name\n1,a\n"), [{ id: "1", name: "a" }])
  })

  it("reads every byte split the same way", () => {
    const input = 'a,b\n"x\ny","1"\r\n"q""",2\n'
    const bytes = utf8.encode(input)
    const oneByte = Array.from(bytes, (b) => Uint8Array.of(b))
    assert.deepStrictEqual(records(oneByte), records(input))
  })

  it("types columns: empty unquoted fields are null, quoted strings keep their text", () => {
    const input = 'n,i,b,j,s\n1.5e3,-42,TRUE,"{""k"":[1]}",007\n,,,,\n'
    assert.deepStrictEqual(records(input, { columns: { n: "number", i: "integer", b: "boolean", j: "json" } }), [
      { n: 1500, i: -42, b: true, j: { k: [1] }, s: "007" },
      { n: null, i: null, b: null, j: null, s: "" }
    ])
  })

  it("takes column names from the options or numbers them when there is no header", () => {
    assert.deepStrictEqual(records("1;2\n3;4\n", { delimiter: ";", header: ["x", "y"], columns: { y: "integer" } }), [
      { x: "1", y: 2 },
      { x: "3", y: 4 }
    ])
    assert.deepStrictEqual(records("1,2\n", { header: false }), [{ column1: "1", column2: "2" }])
  })

  it("skips blank lines except in single-column files, where they are empty values", () => {
    assert.deepStrictEqual(records("a,b\n\n1,2\n\r\n"), [{ a: "1", b: "2" }])
    assert.deepStrictEqual(records("a\n1\n\n2\n", { emptyAsNull: true }), [{ a: "1" }, { a: null }, { a: "2" }])
  })

  it("fails on a bad typed number naming the file, the line and the column", () => {
    const input = 'id,amount\n1,"2.5"\n2,\n3,"multi\nline"\n4,12,5\n'
    const error = failure(decode(input, { source: "tx.csv", columns: { amount: "number" } }))
    assert.strictEqual(error.message, 'tx.csv line 4, column "amount": invalid number "multi\\nline"')
    assert.strictEqual(error.line, 4)
    assert.strictEqual(error.column, "amount")
  })

  it("fails on bad integers and booleans too", () => {
    assert.strictEqual(
      failure(decode("a\n1.5\n", { columns: { a: "integer" } })).message,
      'line 2, column "a": invalid integer "1.5"'
    )
    assert.strictEqual(
      failure(decode("a\n9007199254740993\n", { columns: { a: "integer" } })).message,
      'line 2, column "a": integer "9007199254740993" out of the safe range'
    )
    assert.strictEqual(
      failure(decode("a\nyes\n", { columns: { a: "boolean" } })).message,
      'line 2, column "a": invalid boolean "yes"'
    )
    assert.match(failure(decode("a\n{x}\n", { columns: { a: "json" } })).message, /^line 2, column "a": invalid JSON: /)
  })

  it("fails on an unterminated quote, naming the line where the record starts", () => {
    const error = failure(decode('a,b\n1,2\n3,"never closed\nmore\n', { source: "bad.csv" }))
    assert.strictEqual(error.message, "bad.csv line 3: unterminated quoted field at end of input")
  })

  it("fails on a wrong number of fields and on text after a closing quote", () => {
    assert.strictEqual(failure(decode("a,b\n1,2,3\n")).message, "line 2: expected 2 fields, found 3")
    assert.strictEqual(
      failure(decode('a,b\n"1"x,2\n')).message,
      "line 2: quote not followed by a delimiter or line break"
    )
  })

  it("fails on a typed column missing from the header, a duplicate name or a bad delimiter", () => {
    assert.strictEqual(
      failure(decode("a,b\n1,2\n", { columns: { amount: "number" } })).message,
      'line 1: typed column "amount" is not in the header (columns: a, b)'
    )
    assert.strictEqual(failure(decode("a,a\n1,2\n")).message, 'line 1: duplicate column name "a"')
    assert.match(failure(decode("a\n", { delimiter: "::" })).message, /^csv: invalid delimiter "::"/)
  })

  it("collects bad records next to good ones in lenient mode", () => {
    const input = 'id,amount\n1,10\n2,abc\n3,"x"y\n4,1,2\n5,50\n'
    const batches = Effect.runSync(
      Stream.runCollect(
        Stream.make(utf8.encode(input)).pipe(
          Csv.decode({ source: "in.csv", columns: { id: "integer", amount: "number" }, onError: "collect" })
        )
      )
    )
    assert.deepStrictEqual(
      batches.flatMap((b) => b.records),
      [
        { id: 1, amount: 10 },
        { id: 5, amount: 50 }
      ]
    )
    assert.deepStrictEqual(
      batches.flatMap((b) => b.errors),
      [
        { line: 3, message: 'in.csv line 3, column "amount": invalid number "abc"', raw: "2,abc", at: 1 },
        { line: 4, message: "in.csv line 4: quote not followed by a delimiter or line break", raw: "3,xy", at: 1 },
        { line: 5, message: "in.csv line 5: expected 2 fields, found 3", raw: "4,1,2", at: 1 }
      ]
    )
  })

  it("fails on a record longer than maxRecordLength", () => {
    const error = failure(decode(`a\n"${"x".repeat(1000)}`, { maxRecordLength: 100 }))
    assert.strictEqual(error.message, "line 2: record longer than 100 characters (unterminated quoted field?)")
  })

  it("rejects a record that is not valid UTF-8 with its bytes; with CR line breaks only that record", () => {
    for (const lineBreak of ["\n", "\r\n", "\r"]) {
      const bytes = Buffer.concat([
        Buffer.from(`a,b${lineBreak}1,x${lineBreak}2,caf`),
        Buffer.from([0xe9]),
        Buffer.from(`${lineBreak}3,"multi${lineBreak}line"${lineBreak}`)
      ])
      const batches = Effect.runSync(
        Stream.runCollect(Stream.make(new Uint8Array(bytes)).pipe(Csv.decode({ source: "in.csv", onError: "collect" })))
      )
      assert.deepStrictEqual(
        batches.flatMap((b) => b.records),
        [
          { a: "1", b: "x" },
          { a: "3", b: `multi${lineBreak}line` }
        ]
      )
      assert.deepStrictEqual(
        batches.flatMap((b) => b.errors.map((e) => [e.line, e.message, Buffer.from(e.bytes ?? []).toString("latin1")])),
        [[3, "in.csv line 3: not valid UTF-8 (byte 0xE9 at byte 6 of the line)", "2,caf\xe9"]]
      )
    }
  })

  it("fails on bytes that are not valid UTF-8 in strict mode, naming the line", () => {
    const exit = decode([Uint8Array.from([...utf8.encode("a\nok\n"), 0xff, 0x0a])])
    assert.strictEqual(failure(exit).message, "line 3: not valid UTF-8 (byte 0xFF at byte 1 of the line)")
  })

  it("keeps a __proto__ column as an ordinary field", () => {
    const [record] = records("__proto__,a\nx,1\n")
    assert.strictEqual(Object.getPrototypeOf(record), Object.prototype)
    assert.deepStrictEqual(Object.entries(record as object), [
      ["__proto__", "x"],
      ["a", "1"]
    ])
  })

  it("encodes with a header, quoting only when needed, and converts typed values", () => {
    const out = encode([
      [
        {
          id: 1,
          text: 'a "quoted", value',
          empty: "",
          none: null,
          at: new Date("2024-01-02T03:04:05.006Z"),
          price: BigDecimal.make(1999n, 2),
          bytes: new Uint8Array([255, 0]),
          big: 10n ** 20n,
          nested: { tags: ["x", "y,z"] },
          ok: false
        }
      ],
      [{ id: 2, text: "line\nbreak", extra: "dropped" }]
    ])
    assert.strictEqual(
      out,
      "id,text,empty,none,at,price,bytes,big,nested,ok\n" +
        '1,"a ""quoted"", value","",,2024-01-02T03:04:05.006Z,19.99,/wA=,100000000000000000000,"{""tags"":[""x"",""y,z""]}",false\n' +
        '2,"line\nbreak",,,,,,,,\n'
    )
  })

  it("encodes with explicit columns, another delimiter, CRLF and no header", () => {
    assert.strictEqual(
      encode([[{ a: "x;y", b: 1 }]], { delimiter: ";", columns: ["b", "a"], lineEnding: "\r\n", header: false }),
      '1;"x;y"\r\n'
    )
    assert.strictEqual(encode([], { columns: ["a", "b"] }), "a,b\n")
    assert.strictEqual(encode([]), "")
  })
})
