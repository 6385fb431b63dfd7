import { assert, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import * as Expression from "../../src/expr/Expression.ts"

const txn = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  transactionId: "tx-0001",
  userId: "u42",
  amount: 123.45,
  currency: "EUR",
  status: "settled",
  eventTime: new Date("2026-02-01T12:00:00Z"),
  ...overrides
})

const fields = ["transactionId", "userId", "amount", "currency", "status", "eventTime"]

const compiled = (source: string, options?: Expression.CompileOptions): Expression.Compiled =>
  Result.getOrThrow(Expression.compileResult(source, options))

const predicate = (source: string, options?: Expression.CompileOptions): Expression.Predicate =>
  Result.getOrThrow(Expression.compilePredicateResult(source, options))

const compileError = (source: string, options?: Expression.CompileOptions): Expression.ExpressionError => {
  const r = Expression.compileResult(source, options)
  if (Result.isSuccess(r)) throw new Error(`expected ${source} to be rejected`)
  return r.failure
}

const failure = (v: unknown): Expression.EvaluationFailure => {
  if (!Expression.isFailure(v)) throw new Error(`expected an EvaluationFailure, got ${String(v)}`)
  return v
}

describe("Expression", () => {
  describe("filters", () => {
    it.effect("keeps settled records above the threshold, with double or int literals", () =>
      Effect.gen(function* () {
        const withDouble = yield* Expression.compilePredicate(`amount > 100.0 && status == "settled"`, {
          variables: fields
        })
        const withInt = yield* Expression.compilePredicate(`amount > 100 && status == "settled"`)
        const records = [
          txn(),
          txn({ amount: 99.99 }),
          txn({ status: "pending" }),
          txn({ amount: 100 }),
          txn({ amount: 101 })
        ]
        assert.deepStrictEqual(records.map(withDouble), [true, false, false, false, true])
        assert.deepStrictEqual(records.map(withInt), [true, false, false, false, true])
      })
    )

    it("compares whole-number fields with int literals, in lists too", () => {
      const record = { qty: 5, amount: 100 }
      assert.strictEqual(predicate("qty == 5")(record), true)
      assert.strictEqual(predicate("qty == 5.0")(record), true)
      assert.strictEqual(predicate("qty in [1, 5]")(record), true)
      assert.strictEqual(predicate("amount >= 100 && amount <= 100.0")(record), true)
    })

    it("runs string functions, in, ternary and macros", () => {
      const record = txn({ tags: ["vip", "eu"], items: [{ qty: 1 }, { qty: 3 }] })
      assert.strictEqual(predicate(`userId.startsWith("u4") && currency in ["EUR", "USD"]`)(record), true)
      assert.strictEqual(predicate(`userId.matches("^u[0-9]+$") && transactionId.contains("0001")`)(record), true)
      assert.strictEqual(predicate(`"vip" in tags && items.exists(i, i.qty > 2)`)(record), true)
      assert.strictEqual(predicate(`items.all(i, i.qty > 2)`)(record), false)
      assert.strictEqual(compiled(`amount > 100 ? "large" : "small"`).evaluate(record), "large")
      assert.strictEqual(compiled(`status.upperAscii() + "/" + currency.lowerAscii()`).evaluate(record), "SETTLED/eur")
      assert.deepStrictEqual(compiled("items.map(i, i.qty * 2)").evaluate(record), [2, 6])
      assert.strictEqual(
        compiled("cel.bind(t, amount * 2, t > 200.0 ? t : 0.0)", { variables: fields }).evaluate(record),
        246.9
      )
    })

    it("compares Date fields as CEL timestamps", () => {
      const isAfter = predicate(`eventTime > timestamp("2026-01-01T00:00:00Z")`, { variables: fields })
      assert.strictEqual(isAfter(txn()), true)
      assert.strictEqual(isAfter(txn({ eventTime: new Date("2025-12-31T23:59:59Z") })), false)
      assert.strictEqual(predicate(`eventTime.getHours("Europe/Berlin") == 13`)(txn()), true)
    })

    it("reads BigDecimal fields as doubles", () => {
      const record = {
        price: BigDecimal.fromStringUnsafe("19.99"),
        nested: { fee: BigDecimal.fromStringUnsafe("0.5") }
      }
      assert.strictEqual(predicate("price > 19.98 && price < 20")(record), true)
      assert.strictEqual(predicate("nested.fee == 0.5")(record), true)
      assert.strictEqual(compiled("price * 2").evaluate(record), 39.98)
      assert.isTrue(Equal.equals(record.price, BigDecimal.fromStringUnsafe("19.99")))
      assert.isTrue(BigDecimal.isBigDecimal(record.nested.fee))
      const collections = {
        prices: [BigDecimal.fromStringUnsafe("1.5"), BigDecimal.fromStringUnsafe("2.5")],
        byCurrency: new Map([["EUR", BigDecimal.fromStringUnsafe("3.25")]])
      }
      assert.strictEqual(predicate(`prices.exists(p, p > 2.0) && byCurrency["EUR"] == 3.25`)(collections), true)
    })

    it("handles null fields, nested maps and has()", () => {
      const record = { discount: null, customer: { address: { country: "DE" }, name: "Ada" } }
      assert.strictEqual(predicate("discount == null")(record), true)
      assert.strictEqual(predicate(`customer.address.country == "DE"`)(record), true)
      assert.strictEqual(predicate("has(customer.address) && !has(customer.email)")(record), true)
      assert.strictEqual(predicate(`"name" in customer`)(record), true)
      assert.strictEqual(compiled(`has(customer.email) ? customer.email : "none"`).evaluate(record), "none")
    })

    it("reads bytes from Uint8Array and Buffer fields", () => {
      assert.strictEqual(compiled("size(payload)").evaluate({ payload: new Uint8Array([1, 2, 3]) }), 3)
      assert.strictEqual(compiled("payload.string()").evaluate({ payload: Buffer.from("hi") }), "hi")
    })
  })

  describe("derived fields", () => {
    it("derives doubles from number fields, also with int literals", () => {
      const gross = compiled("amount * 1.2", { variables: fields })
      assert.strictEqual(gross.evaluate(txn({ amount: 100 })), 120)
      assert.strictEqual(compiled("amount + 1").evaluate(txn()), 124.45)
      assert.strictEqual(compiled("2 * amount - 1").evaluate(txn({ amount: 10 })), 19)
      assert.strictEqual(compiled("amount / 4").evaluate(txn({ amount: 10 })), 2.5)
    })

    it("returns CEL ints as numbers when safe, as bigints otherwise", () => {
      assert.strictEqual(compiled("1 + 2").evaluate({}), 3)
      assert.strictEqual(compiled("size(userId)").evaluate(txn()), 3)
      assert.strictEqual(compiled("int(amount)").evaluate(txn()), 123)
      assert.strictEqual(compiled("9007199254740993").evaluate({}), 9007199254740993n)
      assert.strictEqual(compiled("big + 1").evaluate({ big: 2n ** 60n }), 2n ** 60n + 1n)
      assert.strictEqual(compiled("uint(7)").evaluate({}), 7)
    })

    it("returns timestamps as Date and durations as Duration", () => {
      const later = compiled(`eventTime + duration("1h30m")`).evaluate(txn())
      assert.instanceOf(later, Date)
      assert.strictEqual((later as Date).toISOString(), "2026-02-01T13:30:00.000Z")
      const d = compiled(`duration("90m")`).evaluate({})
      assert.isTrue(Duration.isDuration(d))
      assert.strictEqual(Duration.toMillis(d as Duration.Duration), 90 * 60_000)
    })

    it("converts lists and maps deeply", () => {
      assert.deepStrictEqual(compiled(`{"n": 1, "xs": [1, 2.5, "a"], "t": amount > 1}`).evaluate(txn()), {
        n: 1,
        xs: [1, 2.5, "a"],
        t: true
      })
      const record = { nested: { a: { b: 1 } } }
      assert.strictEqual(compiled("nested").evaluate(record), record.nested)
    })

    it("exposes the referenced fields and the checked output type", () => {
      const c = compiled(`amount > 100.0 && status == "settled"`, { variables: fields })
      assert.deepStrictEqual([...c.fields].sort(), ["amount", "status"])
      assert.strictEqual(c.outputType, "bool")
      assert.strictEqual(c.source, `amount > 100.0 && status == "settled"`)
      assert.strictEqual(compiled("amount + 1").outputType, "dyn")
      assert.deepStrictEqual(compiled("items.exists(i, i > 1)", { variables: ["items"] }).fields, ["items"])
    })
  })

  describe("compile errors", () => {
    it.effect("fails with a tagged error naming the expression and the position of a syntax error", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Expression.compile("amount >> 3"))
        assert.strictEqual(error._tag, "ExpressionError")
        assert.strictEqual(error.reason, "SyntaxError")
        assert.strictEqual(error.message, `Invalid expression "amount >> 3": Syntax error at 1:9: Unexpected token: GT`)
        assert.strictEqual(error.line, 1)
        assert.strictEqual(error.column, 9)
        assert.strictEqual(error.expression, "amount >> 3")
      })
    )

    it("reports unterminated strings and incomplete expressions", () => {
      assert.strictEqual(
        compileError(`status == "settled`).message,
        `Invalid expression "status == \\"settled": Syntax error at 1:11: Unterminated string`
      )
      assert.strictEqual(
        compileError("amount >").message,
        `Invalid expression "amount >": Syntax error at 1:9: Unexpected token: EOF`
      )
    })

    it("names an unknown field, suggests the closest and lists the known ones", () => {
      const error = compileError(`amount > 100 && stauts == "settled"`, { variables: fields })
      assert.strictEqual(error.reason, "UnknownField")
      assert.strictEqual(
        error.message,
        `Invalid expression "amount > 100 && stauts == \\"settled\\"": Unknown field "stauts" at 1:17 (did you mean "status"?). ` +
          "Known fields: transactionId, userId, amount, currency, status, eventTime"
      )
      assert.strictEqual(
        compileError("discount > 0", { variables: ["amount"] }).message,
        `Invalid expression "discount > 0": Unknown field "discount" at 1:1. Known fields: amount`
      )
    })

    it("positions errors on later lines of multi-line expressions", () => {
      const error = compileError('amount > 100\n  && curency == "EUR"', { variables: fields })
      assert.strictEqual(error.line, 2)
      assert.strictEqual(error.column, 6)
      assert.include(error.message, `Unknown field "curency" at 2:6 (did you mean "currency"?)`)
    })

    it("ignores declared field names that CEL cannot reference", () => {
      const c = compiled("amount > 1", { variables: ["amount", "event-time", "int", "cel", "as", ""] })
      assert.strictEqual(c.evaluate({ amount: 2, "event-time": 1 }), true)
    })

    it("reports type errors found by the checker", () => {
      assert.strictEqual(
        compileError(`1 + "a"`).message,
        `Invalid expression "1 + \\"a\\"": Type error at 1:1: no such overload: int + string`
      )
      assert.strictEqual(compileError("nosuchfn(amount)").reason, "TypeError")
    })

    it.effect("rejects a condition whose type is known not to be bool", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Expression.compilePredicate(`amount * 1.2`))
        assert.strictEqual(error.reason, "NotBoolean")
        assert.strictEqual(
          error.message,
          `Invalid expression "amount * 1.2": Type error: a condition must return bool, but this returns double`
        )
        const result = Expression.compilePredicateResult(`"settled"`)
        assert.isTrue(Result.isFailure(result))
      })
    )
  })

  describe("evaluation errors are values", () => {
    it("reports division by zero", () => {
      const f = failure(compiled("int(amount) / 0").evaluate(txn()))
      assert.strictEqual(f._tag, "EvaluationFailure")
      assert.strictEqual(f.code, "division_by_zero")
      assert.strictEqual(f.error, `Expression "int(amount) / 0" failed at 1:1: division by zero`)
      assert.strictEqual(f.expression, "int(amount) / 0")
    })

    it("reports a field missing from the record", () => {
      const f = failure(predicate("discount > 0")(txn()))
      assert.strictEqual(f.code, "missing_field")
      assert.strictEqual(f.error, `Expression "discount > 0" failed at 1:1: missing field "discount"`)
      const declared = failure(predicate(`amount > 1 && status == "x"`, { variables: fields })({ amount: 2 }))
      assert.strictEqual(
        declared.error,
        `Expression "amount > 1 && status == \\"x\\"" failed at 1:15: missing field "status"`
      )
      assert.strictEqual(failure(compiled("customer.email").evaluate({ customer: {} })).code, "no_such_key")
    })

    it("reports a condition that returns a non-bool for a record", () => {
      const p = predicate("status", { variables: fields })
      const f = failure(p(txn()))
      assert.strictEqual(f.code, "not_boolean")
      assert.strictEqual(f.error, `Expression "status" must return bool, got string "settled"`)
      assert.strictEqual(f.cause, "settled")
      assert.strictEqual(p(txn({ status: true })), true)
      assert.strictEqual(
        failure(predicate("amount")(txn())).error,
        `Expression "amount" must return bool, got double 123.45`
      )
    })

    it("treats names inherited from Object.prototype as missing fields", () => {
      assert.strictEqual(failure(compiled("constructor").evaluate({ amount: 1 })).code, "missing_field")
      assert.strictEqual(compiled("toString == 'x'").evaluate({ toString: "x" }), true)
    })

    it("reports operations the values do not support", () => {
      assert.strictEqual(failure(compiled("status + 1").evaluate(txn())).code, "no_such_overload")
      assert.strictEqual(
        failure(compiled("when > 1").evaluate({ when: new URL("https://x.test") })).code,
        "unsupported_type"
      )
    })

    it("keeps going over a batch with failing records", () => {
      const keep = predicate("amount / qty > 10.0")
      const results = [{ amount: 100, qty: 2 }, { amount: 100 }, { amount: 100, qty: 20 }].map(keep)
      assert.strictEqual(results[0], true)
      assert.strictEqual(failure(results[1]).code, "missing_field")
      assert.strictEqual(results[2], false)
    })
  })

  describe("properties", () => {
    const ab = compiled("a > b", { variables: ["a", "b"] })
    const sum = compiled("a + b", { variables: ["a", "b"] })

    it("compares random doubles like JS", () => {
      fc.assert(
        fc.property(fc.double(), fc.double(), (a, b) => {
          assert.strictEqual(ab.evaluate({ a, b }), a > b)
        })
      )
    })

    it("adds random doubles like JS", () => {
      fc.assert(
        fc.property(fc.double(), fc.double(), (a, b) => {
          assert.isTrue(Object.is(sum.evaluate({ a, b }), a + b))
        })
      )
    })

    it("mixes doubles with int literals like JS", () => {
      fc.assert(
        fc.property(fc.double(), fc.integer({ min: 0, max: 2 ** 31 }), (a, n) => {
          assert.strictEqual(compiled(`a > ${n}`).evaluate({ a }), a > n)
          assert.strictEqual(compiled(`a >= -${n}`).evaluate({ a }), a >= -n)
          assert.isTrue(Object.is(compiled(`a + ${n}`).evaluate({ a }), a + n))
        })
      )
    })

    it("adds int literals exactly, returning numbers", () => {
      fc.assert(
        fc.property(fc.integer(), fc.integer(), (x, y) => {
          assert.strictEqual(compiled(`${x} + ${y}`).evaluate({}), x + y)
        })
      )
    })
  })
})
