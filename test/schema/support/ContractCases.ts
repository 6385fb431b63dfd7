/**
 * The shipped record schemas' contracts, for the tests that check them (Avro, JSON, the effect codecs) and the tests
 * that check what is derived from them (DDL, JSON Schema, TypeScript): a valid record, random valid records, and
 * invalid ones with the message each gets.
 */
import type { Schema } from "effect"
import * as BigDecimal from "effect/BigDecimal"
import * as fc from "fast-check"
import * as Contracts from "../../../src/schema/Contracts.ts"

export interface Contract {
  readonly file: string
  readonly name: string
  readonly typed: Schema.Top
  readonly valid: Record<string, unknown>
  readonly record: Record<string, unknown>
  readonly arbitrary: fc.Arbitrary<Record<string, unknown>>
  readonly invalid: ReadonlyArray<readonly [description: string, patch: object, message: string]>
}

export const uuid = "0b6f3e4e-6f9c-4c9b-9f5e-2f3a4b5c6d7e"
const at = "2024-05-01T12:00:00.000Z"

// Valid Unicode text: Avro strings are UTF-8, so lone surrogates cannot round-trip.
const text = fc.string({ unit: "grapheme", maxLength: 20 })
const nullable = <A>(arbitrary: fc.Arbitrary<A>) => fc.option(arbitrary, { nil: null })
const date = fc.date({ noInvalidDate: true })
const money = fc.bigInt({ min: -(10n ** 18n) + 1n, max: 10n ** 18n - 1n }).map((v) => BigDecimal.make(v, 2))
const currency = fc.stringMatching(/^[A-Z]{3}$/)
// fast-check builds records and dictionaries without a prototype; records are plain objects.
const plain = <A extends object>(value: A): A => ({ ...value })

export const contracts: ReadonlyArray<Contract> = [
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
