import * as fs from "node:fs"
import { describe, it } from "@effect/vitest"
import type avro from "avsc"
import { Effect, Schema } from "effect"
import * as BigDecimal from "effect/BigDecimal"
import * as fc from "fast-check"
import { assert } from "vitest"
import * as AvroBridge from "../../src/schema/AvroBridge.ts"
import * as AvroSchema from "../../src/schema/AvroSchema.ts"
import * as Contracts from "../../src/schema/Contracts.ts"

const canonical = (value: unknown): unknown => {
  if (value instanceof Date) return { date: value.toISOString() }
  if (BigDecimal.isBigDecimal(value)) return { decimal: `${value.value}e-${value.scale}` }
  if (Array.isArray(value)) return value.map(canonical)
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = { plain: Object.getPrototypeOf(value) === Object.prototype }
    for (const [k, v] of Object.entries(value)) out[k] = canonical(v)
    return out
  }
  return value
}

const assertSame = (actual: unknown, expected: unknown) =>
  assert.deepStrictEqual(canonical(actual), canonical(expected))

const load = (file: string): AvroSchema.Schema =>
  Effect.runSync(
    AvroSchema.parse(fs.readFileSync(new URL(`../../schemas/${file}.avsc`, import.meta.url), "utf8"), { file })
  )

interface Contract {
  readonly file: string
  readonly name: string
  readonly typed: Schema.Top
  readonly valid: Record<string, unknown>
  readonly record: Record<string, unknown>
  readonly arbitrary: fc.Arbitrary<Record<string, unknown>>
  readonly invalid: ReadonlyArray<readonly [description: string, patch: object, message: string]>
}

const uuid = "0b6f3e4e-6f9c-4c9b-9f5e-2f3a4b5c6d7e"
const at = "2024-05-01T12:00:00.000Z"

// Valid Unicode text: Avro strings are UTF-8, so lone surrogates cannot round-trip.
const text = fc.string({ unit: "grapheme", maxLength: 20 })
const nullable = <A>(arbitrary: fc.Arbitrary<A>) => fc.option(arbitrary, { nil: null })
const date = fc.date({ noInvalidDate: true })
const money = fc.bigInt({ min: -(10n ** 18n) + 1n, max: 10n ** 18n - 1n }).map((v) => BigDecimal.make(v, 2))
const currency = fc.stringMatching(/^[A-Z]{3}$/)
// fast-check builds records and dictionaries without a prototype; records are plain objects.
const plain = <A extends object>(value: A): A => ({ ...value })

const contracts: ReadonlyArray<Contract> = [
  {
    file: "transaction",
    name: "Transaction",
    typed: Contracts.Transaction,
    valid: {
      transactionId: uuid,
      userId: "user-1",
      amount: "12.3",
      currency: "EUR",
      status: "settled",
      eventTime: at,
      merchant: "ACME"
    },
    record: {
      transactionId: uuid,
      userId: "user-1",
      amount: BigDecimal.make(1230n, 2),
      currency: "EUR",
      status: "settled",
      eventTime: new Date(at),
      merchant: "ACME",
      category: null
    },
    arbitrary: fc
      .record({
        transactionId: fc.uuid(),
        userId: text,
        amount: money,
        currency,
        status: fc.constantFrom("pending", "settled", "failed", "refunded"),
        eventTime: date,
        merchant: nullable(text),
        category: nullable(text)
      })
      .map(plain),
    invalid: [
      ["missing required field", { userId: undefined }, "userId: Missing required field (expected a string)"],
      ["wrong type", { userId: 42 }, "userId: Expected a string, got 42"],
      [
        "bad enum symbol",
        { status: "done" },
        `status: Expected one of "pending", "settled", "failed", "refunded", got "done"`
      ],
      ["bad uuid", { transactionId: "tx-1" }, `transactionId: Expected a UUID (8-4-4-4-12 hex digits), got "tx-1"`],
      [
        "too many decimal digits",
        { amount: "1.234" },
        `amount: Expected a decimal string with at most 2 fractional digits, got "1.234"`
      ],
      [
        "too many integer digits",
        { amount: "12345678901234567" },
        `amount: Expected a decimal with at most 18 digits (16 before the decimal point), got "12345678901234567"`
      ],
      [
        "bad timestamp",
        { eventTime: "2024-05-01 12:00" },
        `eventTime: Expected an ISO-8601 timestamp with a time zone (e.g. "2024-05-01T12:00:00Z") or epoch milliseconds, got "2024-05-01 12:00"`
      ],
      ["wrong type in an optional field", { merchant: 7 }, "merchant: Expected a string, got 7"]
    ]
  },
  {
    file: "user-event",
    name: "UserEvent",
    typed: Contracts.UserEvent,
    valid: { eventId: uuid, userId: "user-1", eventType: "click", eventTime: 1714564800000, properties: { page: "/" } },
    record: {
      eventId: uuid,
      userId: "user-1",
      eventType: "click",
      eventTime: new Date(at),
      sessionId: null,
      properties: { page: "/" },
      source: "unknown",
      device: null
    },
    arbitrary: fc
      .record({
        eventId: fc.uuid(),
        userId: text,
        eventType: fc.constantFrom("page_view", "click", "signup", "login", "logout", "purchase"),
        eventTime: date,
        sessionId: nullable(text),
        // avsc reads maps into plain objects, where a "__proto__" key cannot be an own property.
        properties: fc
          .dictionary(
            text.filter((k) => k !== "__proto__"),
            text,
            { maxKeys: 5 }
          )
          .map(plain),
        source: fc.constantFrom("web", "ios", "android", "backend", "unknown"),
        device: nullable(fc.constantFrom("desktop", "mobile", "tablet"))
      })
      .map(plain),
    invalid: [
      ["missing required field", { eventType: undefined }, "eventType: Missing required field"],
      ["wrong type", { properties: { page: 1 } }, "properties.page: Expected a string, got 1"],
      ["bad enum symbol", { eventType: "scroll" }, `eventType: Expected one of "page_view", "click"`],
      ["bad uuid", { eventId: "123" }, `eventId: Expected a UUID (8-4-4-4-12 hex digits), got "123"`],
      ["bad timestamp", { eventTime: "2024-02-30T00:00:00Z" }, `eventTime: Expected an ISO-8601 timestamp`],
      ["fractional epoch millis", { eventTime: 1.5 }, "eventTime: Expected an ISO-8601 timestamp"]
    ]
  },
  {
    file: "user-summary",
    name: "UserSummary",
    typed: Contracts.UserSummary,
    valid: {
      userId: "user-1",
      windowStart: "2024-05-01T00:00:00Z",
      windowEnd: "2024-05-02T00:00:00Z",
      transactionCount: 3,
      totalAmount: 30.75,
      avgAmount: 10.25,
      currency: "USD"
    },
    record: {
      userId: "user-1",
      windowStart: new Date("2024-05-01T00:00:00Z"),
      windowEnd: new Date("2024-05-02T00:00:00Z"),
      transactionCount: 3,
      totalAmount: BigDecimal.make(3075n, 2),
      avgAmount: 10.25,
      currency: "USD",
      lastEventTime: null
    },
    arbitrary: fc
      .record({
        userId: text,
        windowStart: date,
        windowEnd: date,
        transactionCount: fc.maxSafeInteger(),
        totalAmount: money,
        // JSON has no -0.
        avgAmount: fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => (Object.is(n, -0) ? 0 : n)),
        currency,
        lastEventTime: nullable(date)
      })
      .map(plain),
    invalid: [
      ["missing required field", { windowEnd: undefined }, "windowEnd: Missing required field"],
      ["wrong type", { avgAmount: "10" }, `avgAmount: Expected a finite number (double), got "10"`],
      ["fractional count", { transactionCount: 1.5 }, "transactionCount: Expected a long (integer), got 1.5"],
      [
        "count beyond 2^53",
        { transactionCount: 2 ** 60 },
        "transactionCount: Expected a long within ±9007199254740991"
      ],
      [
        "too many decimal digits",
        { totalAmount: 0.125 },
        "totalAmount: Expected a decimal number with at most 2 fractional digits, got 0.125"
      ],
      ["bad timestamp", { lastEventTime: "soon" }, `lastEventTime: Expected an ISO-8601 timestamp`]
    ]
  }
]

describe("contract schemas", () => {
  for (const contract of contracts) {
    describe(contract.file, () => {
      const avro = load(contract.file)
      const codec = AvroBridge.toSchema(avro)
      const validate = AvroBridge.makeValidator(codec)
      const type: avro.Type = AvroBridge.toAvroType(avro)
      const encode = Schema.encodeSync(codec)
      const decode = Schema.decodeUnknownSync(codec)

      it("is in the com.effectetl namespace", () => {
        assert.strictEqual(AvroSchema.fullName(avro), `com.effectetl.${contract.name}`)
      })

      it("accepts a valid record and fills in the defaults", () => {
        const result = validate(contract.valid)
        assert.isTrue(result.ok, result.ok ? "" : result.message)
        if (result.ok) assertSame(result.value, contract.record)
        assertSame(decode(contract.valid), contract.record)
        assertSame(Schema.decodeUnknownSync(contract.typed as Schema.Decoder<unknown>)(contract.valid), contract.record)
      })

      for (const [description, patch, message] of contract.invalid) {
        it(`rejects a record with a ${description}, naming the field`, () => {
          const input = { ...contract.valid, ...patch }
          const result = validate(input)
          assert.isFalse(result.ok)
          if (!result.ok) assert.include(result.message, message)
          const field = message.slice(0, message.indexOf(":")).split(".")[0]!
          const exit = Schema.decodeUnknownExit(codec)(input)
          assert.strictEqual(exit._tag, "Failure")
          assert.include(String(exit), `["${field}"]`)
          const typed = Schema.decodeUnknownExit(contract.typed as Schema.Decoder<unknown>)(input)
          assert.strictEqual(typed._tag, "Failure")
        })
      }

      it("round-trips through Avro binary", () => {
        assertSame(type.fromBuffer(type.toBuffer(contract.record)), contract.record)
      })

      it("round-trips through JSON", () => {
        assertSame(decode(JSON.parse(JSON.stringify(encode(contract.record)))), contract.record)
      })

      it("round-trips random valid records through Avro binary and JSON", () => {
        fc.assert(
          fc.property(contract.arbitrary, (record) => {
            assertSame(type.fromBuffer(type.toBuffer(record)), record)
            const json = JSON.parse(JSON.stringify(encode(record)))
            assertSame(decode(json), record)
            const result = validate(json)
            assert.isTrue(result.ok)
            if (result.ok) assertSame(result.value, record)
            const typed = contract.typed as Schema.Codec<unknown, unknown>
            assert.deepStrictEqual(Schema.encodeSync(typed)(record), json)
          }),
          { numRuns: 200 }
        )
      })

      it("accepts and rejects the same inputs in the fast validator and the effect codecs", () => {
        const decodeExit = Schema.decodeUnknownExit(codec)
        const decodeTyped = Schema.decodeUnknownExit(contract.typed as Schema.Decoder<unknown>)
        fc.assert(
          fc.property(fc.constantFrom(...Object.keys(contract.record)), fc.jsonValue(), (field, value) => {
            const input = { ...contract.valid, [field]: value }
            const fast = validate(input)
            const exit = decodeExit(input)
            assert.strictEqual(fast.ok, exit._tag === "Success", JSON.stringify(input))
            assert.strictEqual(decodeTyped(input)._tag, exit._tag, JSON.stringify(input))
            if (fast.ok && exit._tag === "Success") assertSame(fast.value, exit.value)
          }),
          { numRuns: 500 }
        )
      })

      it.effect("is exactly the Avro schema of the typed contract", () =>
        Effect.gen(function* () {
          const derived = yield* AvroBridge.fromSchema(contract.typed, {
            name: contract.name,
            namespace: "com.effectetl"
          })
          assert.deepStrictEqual(derived, avro)
        })
      )
    })
  }

  it("types the records of the typed contracts", () => {
    const tx: Contracts.Transaction = {
      transactionId: uuid,
      userId: "u",
      amount: BigDecimal.make(1n, 2),
      currency: "EUR",
      status: "pending",
      eventTime: new Date(0),
      merchant: null,
      category: "travel"
    }
    const summary: Contracts.UserSummary = {
      userId: "u",
      windowStart: new Date(0),
      windowEnd: new Date(1),
      transactionCount: 1,
      totalAmount: tx.amount,
      avgAmount: 0.01,
      currency: tx.currency,
      lastEventTime: tx.eventTime
    }
    const event: Contracts.UserEvent = {
      eventId: uuid,
      userId: "u",
      eventType: "purchase",
      eventTime: new Date(0),
      sessionId: null,
      properties: {},
      source: "web",
      device: null
    }
    // @ts-expect-error: not a status
    const badStatus: Contracts.Transaction["status"] = "done"
    assert.strictEqual([tx, summary, event, badStatus].length, 4)
  })
})
