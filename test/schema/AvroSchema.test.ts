import { describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { assert } from "vitest"
import * as AvroSchema from "../../src/schema/AvroSchema.ts"

const record = (fields: ReadonlyArray<unknown>, extra: object = {}) =>
  JSON.stringify({ type: "record", name: "Payment", namespace: "com.example", fields, ...extra })

const parseError = (text: string, file = "schemas/payment.avsc") => AvroSchema.parse(text, { file }).pipe(Effect.flip)

describe("AvroSchema", () => {
  it.effect("parses a valid schema and keeps it as written", () =>
    Effect.gen(function* () {
      const text = record([
        { name: "id", type: { type: "string", logicalType: "uuid" } },
        { name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 10, scale: 2 } },
        { name: "status", type: { type: "enum", name: "Status", symbols: ["open", "closed"] } },
        { name: "previous", type: ["null", "Status"], default: null },
        { name: "tags", type: { type: "array", items: "string" }, default: [] },
        { name: "attributes", type: { type: "map", values: "long" }, default: { a: 1 } },
        { name: "hash", type: { type: "fixed", name: "Sha256", size: 32 } },
        { name: "at", type: { type: "long", logicalType: "time-micros" } }
      ])
      const schema = yield* AvroSchema.parse(text)
      assert.deepStrictEqual(schema, JSON.parse(text))
      assert.strictEqual(AvroSchema.fullName(schema), "com.example.Payment")
    })
  )

  it.effect("names the file, the field and the problem for an unknown type", () =>
    Effect.gen(function* () {
      const error = yield* parseError(record([{ name: "amount", type: "decmal" }]))
      assert.strictEqual(error._tag, "AvroSchemaError")
      assert.strictEqual(error.file, "schemas/payment.avsc")
      assert.strictEqual(error.path, "amount")
      assert.include(error.message, "schemas/payment.avsc")
      assert.include(error.message, `at amount: unknown type "decmal"`)
    })
  )

  it.effect("reports invalid JSON with its line and column", () =>
    Effect.gen(function* () {
      const error = yield* parseError(`{\n  "type": "record",\n  "name": "X",, "fields": []\n}`)
      assert.include(error.message, "not valid JSON")
      assert.include(error.message, "line 3")
    })
  )

  it.effect("checks decimal precision and scale", () =>
    Effect.gen(function* () {
      const scale = yield* parseError(
        record([{ name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 4, scale: 6 } }])
      )
      assert.include(
        scale.message,
        `at amount: decimal "scale" must be an integer between 0 and the precision (4), got 6`
      )
      const precision = yield* parseError(record([{ name: "amount", type: { type: "bytes", logicalType: "decimal" } }]))
      assert.include(precision.message, `decimal needs "precision"`)
      const fixed = yield* parseError(
        record([
          {
            name: "amount",
            type: { type: "fixed", name: "M", size: 4, logicalType: "decimal", precision: 12, scale: 2 }
          }
        ])
      )
      assert.include(fixed.message, "does not fit in fixed(4), which holds 9 digits")
    })
  )

  it.effect("rejects a known logical type on the wrong underlying type", () =>
    Effect.gen(function* () {
      const error = yield* parseError(record([{ name: "at", type: { type: "int", logicalType: "timestamp-millis" } }]))
      assert.include(error.message, `at at: logical type "timestamp-millis" must annotate long, not int`)
    })
  )

  it.effect("checks field defaults against the type, and union defaults against the first branch", () =>
    Effect.gen(function* () {
      const union = yield* parseError(record([{ name: "note", type: ["null", "string"], default: "none" }]))
      assert.include(union.message, `at note: the default "none" does not match the field type`)
      assert.include(union.message, "first branch")
      const enumDefault = yield* parseError(
        record([{ name: "s", type: { type: "enum", name: "S", symbols: ["a"] }, default: "b" }])
      )
      assert.include(enumDefault.message, "expected one of a")
      const int = yield* parseError(record([{ name: "n", type: "int", default: 2 ** 40 }]))
      assert.include(int.message, "expected a 32-bit integer")
    })
  )

  it.effect("rejects duplicate fields, symbols, names and union branches", () =>
    Effect.gen(function* () {
      const field = yield* parseError(
        record([
          { name: "a", type: "string" },
          { name: "a", type: "int" }
        ])
      )
      assert.include(field.message, `two fields named "a"`)
      const symbol = yield* parseError(record([{ name: "s", type: { type: "enum", name: "S", symbols: ["x", "x"] } }]))
      assert.include(symbol.message, `lists the symbol "x" twice`)
      const name = yield* parseError(
        record([
          { name: "a", type: { type: "enum", name: "S", symbols: ["x"] } },
          { name: "b", type: { type: "enum", name: "S", symbols: ["y"] } }
        ])
      )
      assert.include(name.message, `"com.example.S" is defined twice`)
      const branch = yield* parseError(record([{ name: "u", type: ["int", "string", "int"] }]))
      assert.include(branch.message, `two branches of type "int"`)
      const nested = yield* parseError(record([{ name: "u", type: ["int", ["string"]] }]))
      assert.include(nested.message, "cannot directly contain another union")
    })
  )

  it.effect("rejects invalid names and structures with what was expected", () =>
    Effect.gen(function* () {
      const fieldName = yield* parseError(record([{ name: "total-amount", type: "long" }]))
      assert.include(fieldName.message, `field "name" must be a valid Avro name, got "total-amount"`)
      const noFields = yield* parseError(JSON.stringify({ type: "record", name: "R" }))
      assert.include(noFields.message, `record R needs "fields"`)
      const wrapped = yield* parseError(record([{ name: "x", type: { type: "com.example.Other" } }]))
      assert.include(wrapped.message, `unknown "type" "com.example.Other"`)
      const error = yield* parseError(JSON.stringify({ type: "error", name: "E", fields: [] }))
      assert.include(error.message, "only allowed in Avro protocols")
    })
  )

  it.effect("explains every other kind of invalid schema", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [42, "expected a type name, a schema object or a union array, got 42"],
        [[], "a union needs at least one branch"],
        [{ type: "record", name: "1st", fields: [] }, `"name" "1st" is not a valid Avro name`],
        [{ type: "record", name: "R", namespace: 5, fields: [] }, `"namespace" must be a string, got 5`],
        [{ type: "record", name: "R", namespace: "a..b", fields: [] }, `"namespace" "a..b" is not a valid Avro name`],
        [{ type: "record", name: "int", fields: [] }, `cannot be called "int"`],
        [{ type: "record", name: "R", aliases: "S", fields: [] }, `"aliases" must be an array`],
        [
          { type: "record", name: "R", aliases: ["ok", "not ok"], fields: [] },
          `alias "not ok" is not a valid Avro name`
        ],
        [{ type: "record", name: "R", doc: 1, fields: [] }, `"doc" must be a string, got 1`],
        [{ type: "record", name: "R", fields: [1] }, "fields[0]: expected a field object, got 1"],
        [{ type: "record", name: "R", fields: [{ name: "a" }] }, `at a: field "a" needs a "type"`],
        [{ type: "record", name: "R", fields: [{ name: "a", type: "int", doc: [] }] }, `at a: "doc" must be a string`],
        [{ type: "record", name: "R", fields: [{ name: "a", type: "int", order: "up" }] }, `"order" must be`],
        [{ type: "enum", name: "E", symbols: [] }, `enum E needs "symbols"`],
        [{ type: "enum", name: "E", symbols: ["a-b"] }, `invalid symbol "a-b"`],
        [{ type: "enum", name: "E", symbols: ["a"], default: "b" }, `default "b" that is not one of its symbols`],
        [{ type: "fixed", name: "F", size: -1 }, `fixed F needs "size", a non-negative integer, got -1`],
        [{ type: "array" }, `an array needs "items"`],
        [{ type: "map" }, `a map needs "values"`],
        [{ type: "array", items: { type: "map", values: "nope" } }, `at []{}: unknown type "nope"`],
        [{ type: "string", logicalType: 5 }, `"logicalType" must be a string, got 5`],
        [{ type: "string", logicalType: "uuid", doc: "ok" }, ""],
        [{ type: "int", logicalType: "uuid" }, `logical type "uuid" must annotate string, not int`],
        [["null", { type: "record", name: "R", fields: [] }, "R"], `two branches of type "R"`]
      ]
      for (const [json, expected] of cases) {
        const result = yield* Effect.result(AvroSchema.validate(json, { file: "case.avsc" }))
        if (expected === "") assert.isTrue(Result.isSuccess(result), JSON.stringify(json))
        else if (Result.isSuccess(result)) assert.fail(`accepted ${JSON.stringify(json)}`)
        else assert.include(result.failure.message, expected, JSON.stringify(json))
      }
    })
  )

  it.effect("checks defaults of every type", () =>
    Effect.gen(function* () {
      const field = (type: unknown, value: unknown) =>
        Effect.result(AvroSchema.validate({ type: "record", name: "R", fields: [{ name: "f", type, default: value }] }))
      const point = {
        type: "record",
        name: "P",
        fields: [
          { name: "x", type: "int" },
          { name: "y", type: "int", default: 0 }
        ]
      }
      const good: ReadonlyArray<readonly [unknown, unknown]> = [
        ["null", null],
        ["boolean", false],
        ["long", 2 ** 50],
        ["float", 1.5],
        ["bytes", "\u00ff"],
        ["string", ""],
        [{ type: "fixed", name: "F", size: 2 }, "ab"],
        [{ type: "array", items: "int" }, [1, 2]],
        [{ type: "map", values: "string" }, { a: "b" }],
        [point, { x: 1 }],
        [["string", "null"], "x"]
      ]
      for (const [type, value] of good) assert.isTrue(Result.isSuccess(yield* field(type, value)), JSON.stringify(type))
      const bad: ReadonlyArray<readonly [unknown, unknown, string]> = [
        ["null", 0, "expected null"],
        ["boolean", "true", "expected a boolean"],
        ["long", 1.5, "expected an integer"],
        ["double", "1", "expected a number"],
        ["bytes", "\u0100", "code points 0-255"],
        ["string", 1, "expected a string"],
        [{ type: "fixed", name: "F", size: 2 }, "abc", "a string of 2 code points"],
        [{ type: "array", items: "int" }, [1, "2"], "array item: expected a 32-bit integer"],
        [{ type: "array", items: "int" }, {}, "expected an array"],
        [{ type: "map", values: "string" }, { a: 1 }, `map value "a": expected a string`],
        [{ type: "map", values: "string" }, [], "expected an object (map)"],
        [point, { y: 1 }, `field "x" is missing and has no default`],
        [point, { x: "1" }, `field "x": expected a 32-bit integer`],
        [point, 1, "expected an object"]
      ]
      for (const [type, value, expected] of bad) {
        const result = yield* field(type, value)
        if (Result.isSuccess(result)) assert.fail(`accepted ${JSON.stringify(value)} for ${JSON.stringify(type)}`)
        else assert.include(result.failure.message, expected)
      }
    })
  )

  it.effect("resolves references in the enclosing namespace and supports recursive records", () =>
    Effect.gen(function* () {
      const schema = yield* AvroSchema.parse(
        record([
          { name: "value", type: "long" },
          { name: "next", type: ["null", "Payment"], default: null },
          { name: "other", type: ["null", "com.example.Payment"], default: null }
        ])
      )
      assert.strictEqual(AvroSchema.fullName(schema), "com.example.Payment")
    })
  )

  it("validates schemas written in code", () => {
    const schema = AvroSchema.makeUnsafe({ type: "record", name: "T", fields: [{ name: "id", type: "string" }] })
    assert.strictEqual(schema.name, "T")
    assert.throws(() => AvroSchema.makeUnsafe({ type: "record", name: "T", fields: [{ name: "id", type: "text" }] }))
    const result = AvroSchema.validateSync(["null", "string"], { file: "memory:x" })
    assert.isTrue(Result.isSuccess(result))
  })

  it("computes names, namespaces and the capacity of fixed decimals", () => {
    assert.strictEqual(AvroSchema.qualify("T", "a.b"), "a.b.T")
    assert.strictEqual(AvroSchema.qualify("x.T", "a.b"), "x.T")
    assert.strictEqual(AvroSchema.qualify("T", undefined), "T")
    assert.strictEqual(AvroSchema.shortName("com.effectetl.Transaction"), "Transaction")
    assert.strictEqual(AvroSchema.fullName("string"), undefined)
    assert.strictEqual(AvroSchema.maxDecimalPrecision(8), 18)
    assert.strictEqual(AvroSchema.maxDecimalPrecision(16), 38)
    assert.strictEqual(AvroSchema.unwrap({ type: "string" }), "string")
    assert.deepStrictEqual(AvroSchema.unwrap({ type: "string", logicalType: "uuid" }), {
      type: "string",
      logicalType: "uuid"
    })
  })
})
