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

/** Unscaled values around 2^52, where the sum of decimals moves from doubles to bigints, and far beyond. */
const edgeDecimal = fc
  .tuple(
    fc.oneof(
      fc.bigInt({ min: -(2n ** 52n) - 8n, max: -(2n ** 52n) + 8n }),
      fc.bigInt({ min: 2n ** 52n - 8n, max: 2n ** 52n + 8n }),
      fc.bigInt({ min: -(2n ** 51n), max: 2n ** 51n }),
      fc.bigInt({ min: -1000n, max: 1000n }),
      fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n })
    ),
    fc.oneof({ arbitrary: fc.constant(2), weight: 4 }, { arbitrary: fc.integer({ min: 0, max: 6 }), weight: 1 })
  )
  .map(([v, s]) => BigDecimal.make(v, s))

describe("the sum of decimals", () => {
  it("is the exact sum, however the values are split, merged, saved and loaded", () => {
    fc.assert(
      fc.property(
        fc.array(edgeDecimal, { maxLength: 60 }),
        fc.nat(60),
        fc.nat(60),
        fc.boolean(),
        (values, cut, savedAt, mergedOnce) => {
          const make = Accumulators.factory({ kind: "sum", field: "x" })
          const at = Math.min(cut, values.length)
          const head = make()
          const tail = make()
          values.forEach((v, i) => {
            if (i === savedAt) {
              const state = JSON.parse(JSON.stringify(head.save()))
              head.load(state)
            }
            ;(i < at ? head : tail).add(v, i)
          })
          if (mergedOnce) head.merge(tail)
          else for (const v of values.slice(at)) head.add(v, 0)
          const expected = values.length === 0 ? null : BigDecimal.sumAll(values)
          const got = head.result()
          if (expected === null) assert.isNull(got)
          else assert.isTrue(BigDecimal.equals(got as BigDecimal.BigDecimal, expected), `${String(got)}`)
          const avg = Accumulators.factory({ kind: "avg", field: "x" })()
          for (const v of values) avg.add(v, 0)
          assert.strictEqual(
            avg.result(),
            expected === null ? null : BigDecimal.toNumberUnsafe(expected) / values.length
          )
        }
      ),
      { numRuns: 500 }
    )
  })
})
