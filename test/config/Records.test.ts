import { fileURLToPath } from "node:url"
import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { assert } from "vitest"
import * as Records from "../../src/config/Records.ts"
import * as SchemaRegistry from "../../src/schema/SchemaRegistry.ts"

const schemasDirectory = fileURLToPath(new URL("../../schemas", import.meta.url))

describe("Records", () => {
  it.effect("turns a registry entry into a record schema with fields, validator and column types", () =>
    Effect.gen(function* () {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const summary = Records.fromEntry(yield* registry.get("user-summary"))
      assert.strictEqual(summary.name, "user-summary")
      assert.deepStrictEqual(summary.fields, [
        "userId",
        "windowStart",
        "windowEnd",
        "transactionCount",
        "totalAmount",
        "avgAmount",
        "currency",
        "lastEventTime"
      ])
      assert.deepStrictEqual(summary.columns, { transactionCount: "integer", avgAmount: "number" })
      const event = Records.fromEntry(yield* registry.get("user-event"))
      assert.deepStrictEqual(event.columns, { properties: "json" })
      const result = summary.validate({ userId: "u", windowStart: 0, windowEnd: 1 })
      assert.deepStrictEqual(result, {
        ok: false,
        message: "transactionCount: Missing required field (expected a long (integer))"
      })
    }).pipe(Effect.provide(SchemaRegistry.layer(schemasDirectory)))
  )

  it.effect("gives each Avro type a column type", () =>
    Effect.gen(function* () {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const kinds = Records.fromEntry(yield* registry.get("kinds"))
      assert.deepStrictEqual(kinds.columns, {
        i: "integer",
        n: "number",
        b: "boolean",
        maybe: "integer",
        arr: "json",
        rec: "json",
        either: "json",
        again: "json"
      })
    }).pipe(
      Effect.provide(
        SchemaRegistry.layerMemory({
          kinds: {
            type: "record",
            name: "Kinds",
            fields: [
              { name: "i", type: "int" },
              { name: "n", type: "float" },
              { name: "b", type: "boolean" },
              { name: "s", type: "string" },
              { name: "maybe", type: ["null", "long"], default: null },
              { name: "arr", type: { type: "array", items: "int" } },
              { name: "rec", type: { type: "record", name: "Inner", fields: [] } },
              { name: "either", type: ["int", "string"] },
              { name: "again", type: "Inner" },
              { name: "color", type: { type: "enum", name: "Color", symbols: ["red"] } },
              { name: "day", type: { type: "int", logicalType: "date" } }
            ]
          }
        })
      )
    )
  )

  it.effect("looks schemas up for pipeline configs, failing with a ConfigError at the path", () =>
    Effect.gen(function* () {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const lookup = Records.lookup(registry, "pipelines/daily.json")
      const found = yield* lookup("com.effectetl.Transaction", "$.source.schema")
      assert.strictEqual(found.name, "transaction")
      const error = yield* Effect.flip(lookup("transactions", "$.source.schema"))
      assert.strictEqual(error._tag, "ConfigError")
      assert.deepStrictEqual(
        error.issues.map((issue) => issue.path),
        ["$.source.schema"]
      )
      assert.include(error.message, `No schema named "transactions"; available:`)
    }).pipe(Effect.provide(SchemaRegistry.layer(schemasDirectory)))
  )
})
