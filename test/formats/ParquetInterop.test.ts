import parquetjs from "@dsnp/parquetjs"
import { Result } from "effect"
import { parquetWriteBuffer } from "hyparquet-writer"
import { assert, describe, it } from "vitest"
import * as ParquetSchema from "../../src/formats/ParquetSchema.ts"

describe("ParquetSchema with an independent reader", () => {
  it("a file written with the schema reads back in @dsnp/parquetjs with its values and null", async () => {
    const schema = Result.getOrThrow(
      ParquetSchema.fromAvro({
        type: "record",
        name: "R",
        fields: [
          { name: "id", type: "long" },
          { name: "at", type: { type: "long", logicalType: "timestamp-millis" } },
          { name: "note", type: ["null", "string"] }
        ]
      })
    )
    const buf = parquetWriteBuffer({
      schema,
      columnData: [
        { name: "id", data: [1n, 2n] },
        { name: "at", data: [new Date(1000), new Date(2000)] },
        { name: "note", data: ["a", null] }
      ]
    })
    const reader = await parquetjs.ParquetReader.openBuffer(Buffer.from(buf))
    const cursor = reader.getCursor()
    const rows: Array<unknown> = []
    for (let row = await cursor.next(); row !== null; row = await cursor.next()) rows.push(row)
    await reader.close()
    assert.deepStrictEqual(rows, [
      { id: 1n, at: new Date(1000), note: "a" },
      { id: 2n, at: new Date(2000), note: null }
    ])
  })
})
