import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as fc from "fast-check"
import * as JsonValue from "../../src/formats/JsonValue.ts"

describe("JsonValue", () => {
  it("formats dates exactly like toISOString, including far years and runs of the same day", () =>
    fc.assert(
      fc.property(fc.date({ noInvalidDate: true }), fc.integer({ min: 0, max: 86_399_999 }), (date, offset) => {
        assert.strictEqual(JsonValue.isoString(date), date.toISOString())
        const sameDay = new Date(Math.floor(date.getTime() / 86_400_000) * 86_400_000 + offset)
        if (!Number.isNaN(sameDay.getTime())) assert.strictEqual(JsonValue.isoString(sameDay), sameDay.toISOString())
      }),
      { numRuns: 1000 }
    ))

  it("formats an invalid date as null", () => {
    assert.strictEqual(JsonValue.isoString(new Date(Number.NaN)), null)
    assert.strictEqual(JsonValue.stringify({ at: new Date(Number.NaN) }), '{"at":null}')
  })

  it("converts typed values and returns untouched values as they are", () => {
    const plain = { a: 1, b: ["x", null], c: { d: true } }
    assert.strictEqual(JsonValue.toJson(plain), plain)
    const typed = { a: 1, when: [new Date(0)], n: 5n, d: BigDecimal.make(1n, 0), bytes: Uint8Array.of(104, 105) }
    assert.deepStrictEqual(JsonValue.toJson(typed), {
      a: 1,
      when: ["1970-01-01T00:00:00.000Z"],
      n: "5",
      d: "1",
      bytes: "aGk="
    })
    assert.deepStrictEqual(typed.when, [new Date(0)])
  })

  it("renders undefined as null at the top level and leaves cycles to JSON.stringify", () => {
    assert.strictEqual(JsonValue.stringify(undefined), "null")
    const cyclic: Array<unknown> = []
    cyclic.push(cyclic)
    assert.throws(() => JsonValue.stringify(cyclic), /circular/)
  })
})

describe("JsonValue.parse", () => {
  it("reads escaped keys correctly after a key ending in a backslash (V8 bug nodejs/node#63785)", () => {
    JsonValue.parse(String.raw`{"h":[],"\\":0}`)
    JsonValue.parse(String.raw`{"a\\":1}`)
    assert.deepStrictEqual(Object.keys(JsonValue.parse(String.raw`{"h":1,"\"":2}`) as object), ["h", '"'])
    assert.deepStrictEqual(JsonValue.parse(String.raw`{"a\"":1}`), { 'a"': 1 })
    assert.deepStrictEqual(JsonValue.parse(String.raw` {"x" : [ {"k\"\\":"v\"" } , -1.5e3, true, null, false ] } `), {
      x: [{ 'k"\\': 'v"' }, -1500, true, null, false]
    })
  })

  it("keeps __proto__ keys as own properties, like JSON.parse", () => {
    const parsed = JsonValue.parse(String.raw`{"__proto__":{"x":1},"k\n":2}`) as Record<string, unknown>
    assert.strictEqual(Object.getPrototypeOf(parsed), Object.prototype)
    assert.deepStrictEqual(Object.keys(parsed), ["__proto__", "k\n"])
  })

  it("fails like JSON.parse on invalid texts, escaped keys or not", () => {
    assert.throws(() => JsonValue.parse(String.raw`{"a\"":}`), SyntaxError)
    assert.throws(() => JsonValue.parse("{oops}"), SyntaxError)
  })

  it("reads back any JSON text exactly", () =>
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value)
        // Compared through JSON.stringify: JSON.parse itself may already be poisoned in this process.
        assert.strictEqual(JSON.stringify(JsonValue.parse(text)), text)
        assert.strictEqual(JSON.stringify(JsonValue.parse(JSON.stringify(value, null, 2))), text)
      }),
      { numRuns: 500 }
    ))
})

describe("decimalText", () => {
  it("keeps the digits of the scale", () => {
    const text = (s: string, scale: number) =>
      JsonValue.decimalText(BigDecimal.scale(BigDecimal.fromStringUnsafe(s), scale))
    assert.deepStrictEqual(
      [text("12.5", 2), text("-0.05", 2), text("0", 2), text("1200", 0), text("7", 3)],
      ["12.50", "-0.05", "0.00", "1200", "7.000"]
    )
    assert.strictEqual(JsonValue.decimalText(BigDecimal.make(12n, -2)), "1200")
  })
})
