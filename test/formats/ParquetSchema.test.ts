import { Result } from "effect"
import { parquetMetadata } from "hyparquet"
import { parquetWriteBuffer } from "hyparquet-writer"
import { assert, describe, it } from "vitest"
import * as ParquetSchema from "../../src/formats/ParquetSchema.ts"

describe("ParquetSchema.fromAvro", () => {
  it("maps decimals, timestamps with unit and UTC flag, nullable fields, nested records and arrays", () => {
    const result = ParquetSchema.fromAvro({
      type: "record",
      name: "Order",
      fields: [
        { name: "id", type: "long" },
        { name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 18, scale: 2 } },
        { name: "at", type: { type: "long", logicalType: "timestamp-micros" } },
        { name: "local", type: { type: "long", logicalType: "local-timestamp-millis" } },
        { name: "note", type: ["null", "string"] },
        { name: "tags", type: { type: "array", items: "string" } },
        { name: "who", type: { type: "record", name: "Who", fields: [{ name: "n", type: "int" }] } },
        { name: "again", type: ["null", "Who"] }
      ]
    })
    assert.isTrue(Result.isSuccess(result))
    const els = Result.getOrThrow(result)
    assert.deepStrictEqual(
      els.map((e) => [e.name, e.type, e.repetition_type, e.num_children]),
      [
        ["Order", undefined, undefined, 8],
        ["id", "INT64", "REQUIRED", undefined],
        ["amount", "INT64", "REQUIRED", undefined],
        ["at", "INT64", "REQUIRED", undefined],
        ["local", "INT64", "REQUIRED", undefined],
        ["note", "BYTE_ARRAY", "OPTIONAL", undefined],
        ["tags", undefined, "REQUIRED", 1],
        ["list", undefined, "REPEATED", 1],
        ["element", "BYTE_ARRAY", "REQUIRED", undefined],
        ["who", undefined, "REQUIRED", 1],
        ["n", "INT32", "REQUIRED", undefined],
        ["again", undefined, "OPTIONAL", 1],
        ["n", "INT32", "REQUIRED", undefined]
      ]
    )
    assert.deepStrictEqual(els[2]?.logical_type, { type: "DECIMAL", precision: 18, scale: 2 })
    assert.deepStrictEqual(els[3]?.logical_type, { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" })
    assert.deepStrictEqual(els[4]?.logical_type, { type: "TIMESTAMP", isAdjustedToUTC: false, unit: "MILLIS" })
  })

  it("rejects a union of two non-null types, naming the field", () => {
    const result = ParquetSchema.fromAvro({
      type: "record",
      name: "R",
      fields: [{ name: "x", type: ["int", "string"] }]
    })
    assert.isTrue(Result.isFailure(result))
    if (Result.isFailure(result)) assert.strictEqual(result.failure.path, "x")
  })

  it("is a schema a Parquet writer accepts and a reader reads back", () => {
    const schema = Result.getOrThrow(
      ParquetSchema.fromAvro({
        type: "record",
        name: "R",
        fields: [
          { name: "id", type: "long" },
          { name: "note", type: ["null", "string"] }
        ]
      })
    )
    const buf = parquetWriteBuffer({
      schema,
      columnData: [
        { name: "id", data: [1n, 2n] },
        { name: "note", data: ["a", null] }
      ]
    })
    const meta = parquetMetadata(buf)
    assert.deepStrictEqual(
      meta.schema.map((e) => [e.name, e.repetition_type]),
      [
        ["R", undefined],
        ["id", "REQUIRED"],
        ["note", "OPTIONAL"]
      ]
    )
  })
})
