import { describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as fc from "fast-check"
import { assert } from "vitest"
import * as AvroLogical from "../../src/schema/AvroLogical.ts"

const money: AvroLogical.DecimalSpec = { precision: 18, scale: 2 }

const decimalText = (value: unknown): string => {
  assert.isTrue(BigDecimal.isBigDecimal(value), `expected a BigDecimal, got ${String(value)}`)
  const d = value as BigDecimal.BigDecimal
  return `${d.value}e-${d.scale}`
}

const message = (value: unknown): string => {
  assert.instanceOf(value, AvroLogical.Invalid)
  return (value as AvroLogical.Invalid).message
}

describe("AvroLogical", () => {
  describe("decimals", () => {
    it("decodes strings and numbers to the schema's scale", () => {
      assert.strictEqual(decimalText(AvroLogical.decodeDecimal("12.3", money)), "1230e-2")
      assert.strictEqual(decimalText(AvroLogical.decodeDecimal("-0.05", money)), "-5e-2")
      assert.strictEqual(decimalText(AvroLogical.decodeDecimal("+007", money)), "700e-2")
      assert.strictEqual(decimalText(AvroLogical.decodeDecimal("1.2300", money)), "123e-2")
      assert.strictEqual(decimalText(AvroLogical.decodeDecimal("1e3", money)), "100000e-2")
      assert.strictEqual(decimalText(AvroLogical.decodeDecimal("125E-2", money)), "125e-2")
      assert.strictEqual(decimalText(AvroLogical.decodeDecimal(12.34, money)), "1234e-2")
      assert.strictEqual(decimalText(AvroLogical.decodeDecimal(".5", money)), "50e-2")
      assert.strictEqual(decimalText(AvroLogical.decodeDecimal("9999999999999999.99", money)), "999999999999999999e-2")
    })

    it("never rounds: too many fractional digits or too many digits are errors", () => {
      assert.strictEqual(
        message(AvroLogical.decodeDecimal("1.234", money)),
        `Expected a decimal string with at most 2 fractional digits, got "1.234"`
      )
      assert.strictEqual(
        message(AvroLogical.decodeDecimal(0.001, money)),
        "Expected a decimal number with at most 2 fractional digits, got 0.001"
      )
      assert.strictEqual(
        message(AvroLogical.decodeDecimal("12345678901234567", money)),
        `Expected a decimal with at most 18 digits (16 before the decimal point), got "12345678901234567"`
      )
      assert.include(message(AvroLogical.decodeDecimal("1e-3", money)), "at most 2 fractional digits")
    })

    it("rejects text that is not a decimal", () => {
      for (const bad of ["", "abc", "1.2.3", "--1", "1,5", " 1", "1e", "+", ".", "0x10"]) {
        assert.include(message(AvroLogical.decodeDecimal(bad, money)), "Expected a decimal string or a finite number")
      }
      assert.include(message(AvroLogical.decodeDecimal(Number.NaN, money)), "got NaN")
      assert.include(message(AvroLogical.decodeDecimal(null, money)), "got null")
    })

    it("checks BigDecimal values without rounding and formats them with the scale", () => {
      assert.strictEqual(AvroLogical.toUnscaled(BigDecimal.fromStringUnsafe("12.3"), money), 1230n)
      assert.strictEqual(AvroLogical.toUnscaled(BigDecimal.make(123000n, 4), money), 1230n)
      assert.include(message(AvroLogical.toUnscaled(BigDecimal.fromStringUnsafe("1.001"), money)), "fractional digits")
      assert.isTrue(AvroLogical.isDecimal(BigDecimal.fromStringUnsafe("-1.5"), money))
      assert.isFalse(AvroLogical.isDecimal(BigDecimal.fromStringUnsafe("1e20"), money))
      assert.strictEqual(AvroLogical.encodeDecimal(BigDecimal.fromStringUnsafe("12.3"), money), "12.30")
      assert.strictEqual(AvroLogical.encodeDecimal(BigDecimal.fromStringUnsafe("-0.05"), money), "-0.05")
      assert.strictEqual(AvroLogical.formatUnscaled(7n, 0), "7")
    })

    it("stores unscaled values as big-endian two's complement", () => {
      assert.deepStrictEqual([...AvroLogical.bigintToBytes(0n)!], [0])
      assert.deepStrictEqual([...AvroLogical.bigintToBytes(255n)!], [0, 255])
      assert.deepStrictEqual([...AvroLogical.bigintToBytes(-1n)!], [255])
      assert.deepStrictEqual([...AvroLogical.bigintToBytes(-129n)!], [255, 127])
      assert.deepStrictEqual([...AvroLogical.bigintToBytes(-2n, 4)!], [255, 255, 255, 254])
      assert.strictEqual(AvroLogical.bigintToBytes(1n << 40n, 4), undefined)
      fc.assert(
        fc.property(fc.bigInt({ min: -(1n << 100n), max: 1n << 100n }), (n) => {
          assert.strictEqual(AvroLogical.bytesToBigint(AvroLogical.bigintToBytes(n)!), n)
          assert.strictEqual(AvroLogical.bytesToBigint(AvroLogical.bigintToBytes(n, 16)!), n)
        })
      )
    })

    it("round-trips every decimal that fits through its JSON text", () => {
      fc.assert(
        fc.property(fc.bigInt({ min: -(10n ** 18n) + 1n, max: 10n ** 18n - 1n }), (unscaled) => {
          const text = AvroLogical.encodeDecimal(BigDecimal.make(unscaled, 2), money)
          assert.strictEqual(decimalText(AvroLogical.decodeDecimal(text, money)), `${unscaled}e-2`)
        })
      )
    })
  })

  describe("timestamps", () => {
    it("parses ISO-8601 timestamps with a zone, and epoch milliseconds", () => {
      const ms = (text: string) => AvroLogical.parseIsoMillis(text)
      assert.strictEqual(ms("2024-05-01T12:00:00Z"), Date.UTC(2024, 4, 1, 12))
      assert.strictEqual(ms("2024-05-01T12:00Z"), Date.UTC(2024, 4, 1, 12))
      assert.strictEqual(ms("2024-05-01 14:30:00.250+02:00"), Date.UTC(2024, 4, 1, 12, 30, 0, 250))
      assert.strictEqual(ms("2024-05-01T12:00:00.123456-0130"), Date.UTC(2024, 4, 1, 13, 30, 0, 123))
      assert.strictEqual(ms("2024-05-01T12:00:00.1+05"), Date.UTC(2024, 4, 1, 7, 0, 0, 100))
      assert.strictEqual(ms("0001-01-01T00:00:00Z"), -62135596800000)
      assert.strictEqual(ms("+275760-09-13T00:00:00.000Z"), 8.64e15)
      assert.strictEqual(ms("-000001-01-01T00:00:00Z"), new Date("-000001-01-01T00:00:00Z").getTime())
      const date = AvroLogical.decodeTimestamp(1714564800000)
      assert.instanceOf(date, Date)
      assert.strictEqual((date as Date).toISOString(), "2024-05-01T12:00:00.000Z")
    })

    it("rejects local times, impossible dates and other text", () => {
      for (const bad of [
        "2024-05-01T12:00:00",
        "2024-05-01",
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T12:60:00Z",
        "2024-05-01T12:00:00+25:00",
        "yesterday",
        "2024-05-01T12:00:00ZZ",
        "1714564800000"
      ]) {
        assert.strictEqual(AvroLogical.parseIsoMillis(bad), undefined, bad)
      }
      assert.strictEqual(AvroLogical.parseIsoMillis("2024-02-29T00:00:00Z"), Date.UTC(2024, 1, 29))
      assert.include(message(AvroLogical.decodeTimestamp("yesterday")), `got "yesterday"`)
      assert.include(message(AvroLogical.decodeTimestamp(1.5)), "got 1.5")
      assert.include(message(AvroLogical.decodeTimestamp(9e15)), "epoch milliseconds")
    })

    it("agrees with Date on every ISO string that Date produces", () => {
      fc.assert(
        fc.property(fc.date({ noInvalidDate: true }), (date) => {
          assert.strictEqual(AvroLogical.parseIsoMillis(date.toISOString()), date.getTime())
        })
      )
    })

    it("knows which dates fit timestamp-micros", () => {
      assert.isTrue(AvroLogical.isMicrosDate(new Date("2200-01-01T00:00:00Z")))
      assert.isFalse(AvroLogical.isMicrosDate(new Date("3000-01-01T00:00:00Z")))
      assert.isFalse(AvroLogical.isValidDate(new Date(Number.NaN)))
    })
  })

  describe("dates", () => {
    it("converts between YYYY-MM-DD and days since the epoch", () => {
      assert.strictEqual(AvroLogical.dateToDays("1970-01-01"), 0)
      assert.strictEqual(AvroLogical.dateToDays("1969-12-31"), -1)
      assert.strictEqual(AvroLogical.dateToDays("2024-02-29"), 19782)
      assert.strictEqual(AvroLogical.daysToDate(19782), "2024-02-29")
      assert.strictEqual(AvroLogical.daysToDate(AvroLogical.DATE_DAYS_RANGE[0]), "0000-01-01")
      assert.strictEqual(AvroLogical.daysToDate(AvroLogical.DATE_DAYS_RANGE[1] + 1), undefined)
      assert.strictEqual(AvroLogical.dateToDays("2023-02-29"), undefined)
      assert.strictEqual(AvroLogical.dateToDays("2024-5-1"), undefined)
      assert.include(message(AvroLogical.decodeDate("2024-13-01")), `Expected a date "YYYY-MM-DD", got "2024-13-01"`)
      fc.assert(
        fc.property(
          fc.integer({ min: AvroLogical.DATE_DAYS_RANGE[0], max: AvroLogical.DATE_DAYS_RANGE[1] }),
          (days) => {
            assert.strictEqual(AvroLogical.dateToDays(AvroLogical.daysToDate(days)!), days)
          }
        )
      )
    })
  })

  describe("uuids and bytes", () => {
    it("accepts UUIDs in 8-4-4-4-12 hex form only", () => {
      assert.isTrue(AvroLogical.isUuid("0b6f3e4e-6f9c-4c9b-9f5e-2f3a4b5c6d7e"))
      assert.isTrue(AvroLogical.isUuid("0B6F3E4E-6F9C-4C9B-9F5E-2F3A4B5C6D7E"))
      assert.isTrue(AvroLogical.isUuid("00000000-0000-0000-0000-000000000000"))
      for (const bad of ["0b6f3e4e6f9c4c9b9f5e2f3a4b5c6d7e", "0b6f3e4e-6f9c-4c9b-9f5e-2f3a4b5c6d7g", "x", 42]) {
        assert.isFalse(AvroLogical.isUuid(bad))
      }
      assert.strictEqual(message(AvroLogical.decodeUuid("nope")), `Expected a UUID (8-4-4-4-12 hex digits), got "nope"`)
      fc.assert(fc.property(fc.uuid(), (id) => AvroLogical.isUuid(id)))
    })

    it("decodes strict base64 to plain Uint8Arrays", () => {
      const bytes = AvroLogical.decodeBase64("AAECAw==")
      assert.deepStrictEqual(bytes, new Uint8Array([0, 1, 2, 3]))
      assert.strictEqual(Object.getPrototypeOf(bytes), Uint8Array.prototype)
      assert.include(message(AvroLogical.decodeBase64("AAECAw")), "Expected a base64 string")
      assert.include(message(AvroLogical.decodeBase64("not base64!")), "Expected a base64 string")
      assert.strictEqual(AvroLogical.encodeBase64(new Uint8Array([255, 0])), "/wA=")
      assert.deepStrictEqual(AvroLogical.bytesFromCodePoints("\u00ff\u0000"), new Uint8Array([255, 0]))
      assert.strictEqual(AvroLogical.bytesToCodePoints(new Uint8Array([255, 0])), "\u00ff\u0000")
    })
  })
})
