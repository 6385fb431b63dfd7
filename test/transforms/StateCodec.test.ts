import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import fc from "fast-check"
import * as Accumulators from "../../src/transforms/internal/Accumulators.ts"
import { decode, encode } from "../../src/transforms/internal/StateCodec.ts"
import { keyOf, NULL_KEY } from "../../src/transforms/internal/Values.ts"

const decimal = fc
  .tuple(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), fc.integer({ min: 0, max: 12 }))
  .map(([v, s]) => BigDecimal.make(v, s))

const scalar = fc.oneof(
  fc.string(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.bigInt(),
  fc.date({ noInvalidDate: true }),
  decimal,
  fc.uint8Array({ maxLength: 8 })
)

const value = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    scalar,
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(fc.string(), tie("value"), { maxKeys: 3 })
  )
})).value

describe("StateCodec", () => {
  it("decode(JSON(encode(v))) is v again, with the same grouping key", () => {
    fc.assert(
      fc.property(value, (v) => {
        const back = decode(JSON.parse(JSON.stringify(encode(v))))
        assert.deepStrictEqual(keyOf(back), keyOf(v))
        if (typeof v !== "object" || v === null || v instanceof Date || v instanceof Uint8Array) {
          if (typeof v === "number" && Number.isNaN(v)) assert.isTrue(Number.isNaN(back as number))
          else if (BigDecimal.isBigDecimal(v)) assert.isTrue(BigDecimal.equals(v, back as BigDecimal.BigDecimal))
          else assert.deepStrictEqual(back, v)
        }
      })
    )
  })

  it("keeps objects that look like tags apart from tags, and the key of NULL", () => {
    const tricky = { $date: 5 }
    assert.deepStrictEqual(decode(JSON.parse(JSON.stringify(encode(tricky)))), tricky)
    assert.strictEqual(decode(encode(NULL_KEY)), NULL_KEY)
    assert.strictEqual(decode(encode(Number.POSITIVE_INFINITY)), Number.POSITIVE_INFINITY)
    // A field named __proto__ (JSON data can have one) stays a field, and sets no prototype.
    const proto = JSON.parse('{"__proto__": [1], "a": 2}') as Record<string, unknown>
    const back = decode(JSON.parse(JSON.stringify(encode(proto)))) as Record<string, unknown>
    assert.deepStrictEqual(Object.keys(back), ["__proto__", "a"])
    assert.deepStrictEqual(Object.getOwnPropertyDescriptor(back, "__proto__")?.value, [1])
    assert.strictEqual(Object.getPrototypeOf(back), Object.prototype)
  })
})

const specs: ReadonlyArray<Accumulators.AggSpec> = [
  { kind: "count", field: undefined },
  { kind: "count", field: "x" },
  { kind: "countDistinct", field: "x" },
  { kind: "sum", field: "x" },
  { kind: "avg", field: "x" },
  { kind: "min", field: "x" },
  { kind: "max", field: "x" },
  { kind: "first", field: "x" },
  { kind: "last", field: "x" },
  { kind: "percentile", field: "x", quantile: 0.9 }
]

const numberOrDecimal = fc.oneof(fc.double({ min: -1e6, max: 1e6, noNaN: true }), decimal, fc.constant(null))

describe("accumulators saved and loaded", () => {
  it("give the same result, and merge the same, as the accumulators they came from", () => {
    fc.assert(
      fc.property(
        fc.array(numberOrDecimal, { maxLength: 40 }),
        fc.array(numberOrDecimal, { maxLength: 40 }),
        (a, b) => {
          for (const spec of specs) {
            const make = Accumulators.factory(spec)
            const values = spec.kind === "percentile" ? a.filter((v) => typeof v === "number") : a
            const more = spec.kind === "percentile" ? b.filter((v) => typeof v === "number") : b
            const original = make()
            values.forEach((v, i) => {
              original.add(v, i)
            })
            const restored = make()
            restored.load(JSON.parse(JSON.stringify(original.save())))
            const same = (x: unknown, y: unknown) =>
              BigDecimal.isBigDecimal(x) && BigDecimal.isBigDecimal(y)
                ? BigDecimal.equals(x, y)
                : assert.deepStrictEqual(x, y) === undefined
            assert.isTrue(same(restored.result(), original.result()), `${spec.kind} result`)
            const tail = make()
            more.forEach((v, i) => {
              tail.add(v, values.length + i)
            })
            original.merge(tail)
            restored.merge(tail)
            assert.isTrue(same(restored.result(), original.result()), `${spec.kind} merged`)
          }
        }
      ),
      { numRuns: 40 }
    )
  })
})
