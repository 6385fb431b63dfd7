import * as fs from "node:fs"
import { describe, it } from "@effect/vitest"
import type avro from "avsc"
import { Effect, Schema } from "effect"
import * as BigDecimal from "effect/BigDecimal"
import * as fc from "fast-check"
import { assert } from "vitest"
import * as AvroBridge from "../../src/schema/AvroBridge.ts"
import * as AvroSchema from "../../src/schema/AvroSchema.ts"
import type * as Contracts from "../../src/schema/Contracts.ts"

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

import { contracts, uuid } from "./support/ContractCases.ts"

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
