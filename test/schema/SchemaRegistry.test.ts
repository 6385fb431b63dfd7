import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import { fileURLToPath } from "node:url"
import { describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { assert } from "vitest"
import * as SchemaRegistry from "../../src/schema/SchemaRegistry.ts"

const schemasDirectory = fileURLToPath(new URL("../../schemas", import.meta.url))

const tempDirectory = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(nodePath.join(os.tmpdir(), "effect-etl-schemas-"))),
  (directory) => Effect.promise(() => fs.rm(directory, { recursive: true, force: true }))
)

const write = (directory: string, name: string, content: string) =>
  Effect.promise(() => fs.writeFile(nodePath.join(directory, name), content))

const buildError = (layer: Layer.Layer<SchemaRegistry.SchemaRegistry, SchemaRegistry.SchemaRegistryError>) =>
  Effect.flip(Layer.build(layer))

const point = { type: "record", name: "Point", namespace: "geo", fields: [{ name: "x", type: "double" }] }

describe("SchemaRegistry", () => {
  it.effect("loads every .avsc of the schemas directory, sorted by name", () =>
    Effect.gen(function* () {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const entries = yield* registry.list
      const files = (yield* Effect.promise(() => fs.readdir(schemasDirectory))).filter((f) => f.endsWith(".avsc"))
      assert.deepStrictEqual(
        entries.map((entry) => entry.name),
        files.map((f) => f.slice(0, -".avsc".length)).sort()
      )
      const contracts = entries.filter((entry) => ["transaction", "user-event", "user-summary"].includes(entry.name))
      assert.deepStrictEqual(
        contracts.map((entry) => [entry.name, entry.fullName]),
        [
          ["transaction", "com.effectetl.Transaction"],
          ["user-event", "com.effectetl.UserEvent"],
          ["user-summary", "com.effectetl.UserSummary"]
        ]
      )
      for (const entry of entries) {
        assert.strictEqual(entry.file, nodePath.join(schemasDirectory, `${entry.name}.avsc`))
      }
    }).pipe(Effect.provide(SchemaRegistry.layer(schemasDirectory)))
  )

  it.effect("finds a schema by file base name and by Avro full name, ready to use", () =>
    Effect.gen(function* () {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const byFile = yield* registry.get("transaction")
      const byName = yield* registry.get("com.effectetl.Transaction")
      assert.strictEqual(byFile, byName)
      const json = {
        transactionId: "0b6f3e4e-6f9c-4c9b-9f5e-2f3a4b5c6d7e",
        userId: "u",
        amount: "1.50",
        currency: "EUR",
        status: "failed",
        eventTime: 0
      }
      const result = byFile.validate(json)
      assert.isTrue(result.ok)
      if (result.ok) {
        const decoded = Schema.decodeUnknownSync(byFile.schema)(json)
        assert.deepStrictEqual(byFile.avroType.fromBuffer(byFile.avroType.toBuffer(result.value)), decoded)
      }
    }).pipe(Effect.provide(SchemaRegistry.layer(schemasDirectory)))
  )

  it.effect("fails get with SchemaNotFound listing the available names", () =>
    Effect.gen(function* () {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const error = yield* Effect.flip(registry.get("transactions"))
      assert.strictEqual(error._tag, "SchemaNotFound")
      assert.strictEqual(error.name, "transactions")
      for (const name of ["transaction", "com.effectetl.Transaction", "user-event", "com.effectetl.UserSummary"]) {
        assert.include(error.available, name)
      }
      assert.deepStrictEqual(error.available, [...error.available].sort())
      assert.strictEqual(error.message, `No schema named "transactions"; available: ${error.available.join(", ")}`)
    }).pipe(Effect.provide(SchemaRegistry.layer(schemasDirectory)))
  )

  it.effect("serves schemas given in memory", () =>
    Effect.gen(function* () {
      const registry = yield* SchemaRegistry.SchemaRegistry
      const entry = yield* registry.get("geo.Point")
      assert.strictEqual(entry.name, "point")
      assert.strictEqual(entry.file, undefined)
      assert.deepStrictEqual(entry.validate({ x: 1 }), { ok: true, value: { x: 1 } })
      assert.deepStrictEqual(entry.validate({ x: "1" }), {
        ok: false,
        message: `x: Expected a finite number (double), got "1"`
      })
      const names = (yield* registry.list).map((e) => e.name)
      assert.deepStrictEqual(names, ["point", "tags"])
      const missing = yield* Effect.flip(registry.get("nope"))
      assert.include(missing.message, "available: geo.Point, point, tags")
    }).pipe(Effect.provide(SchemaRegistry.layerMemory({ point, tags: { type: "array", items: "string" } })))
  )

  it.effect("fails the memory layer on an invalid schema, naming it", () =>
    Effect.gen(function* () {
      const error = yield* buildError(
        SchemaRegistry.layerMemory({ broken: { type: "record", name: "B", fields: [{ name: "a", type: "strng" }] } })
      )
      assert.strictEqual(error._tag, "SchemaRegistryError")
      assert.include(error.message, "memory:broken")
      assert.include(error.message, `at a: unknown type "strng"`)
    })
  )

  it.effect("fails on a malformed .avsc file, naming the file", () =>
    Effect.gen(function* () {
      const directory = yield* tempDirectory
      yield* write(directory, "good.avsc", JSON.stringify(point))
      yield* write(directory, "broken.avsc", `{ "type": "record", "name": "Broken", "fields": [ { "name": "a" } }`)
      const error = yield* buildError(SchemaRegistry.layer(directory))
      assert.strictEqual(error._tag, "SchemaRegistryError")
      assert.strictEqual(error.file, nodePath.join(directory, "broken.avsc"))
      assert.include(error.message, nodePath.join(directory, "broken.avsc"))
      assert.include(error.message, "not valid JSON")
    })
  )

  it.effect("fails on a schema file that is valid JSON but not a valid schema, naming file and field", () =>
    Effect.gen(function* () {
      const directory = yield* tempDirectory
      yield* write(
        directory,
        "money.avsc",
        JSON.stringify({
          type: "record",
          name: "Money",
          fields: [{ name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 2, scale: 5 } }]
        })
      )
      const error = yield* buildError(SchemaRegistry.layer(directory))
      assert.include(error.message, `${nodePath.join(directory, "money.avsc")} at amount: decimal "scale"`)
    })
  )

  it.effect("fails when two files define the same Avro name", () =>
    Effect.gen(function* () {
      const directory = yield* tempDirectory
      yield* write(directory, "a.avsc", JSON.stringify(point))
      yield* write(directory, "b.avsc", JSON.stringify(point))
      const error = yield* buildError(SchemaRegistry.layer(directory))
      assert.include(error.message, `Two schemas are both named "geo.Point"`)
      assert.include(error.message, nodePath.join(directory, "a.avsc"))
      assert.include(error.message, nodePath.join(directory, "b.avsc"))
    })
  )

  it.effect("fails when the directory cannot be read, and ignores other files", () =>
    Effect.gen(function* () {
      const missing = yield* buildError(SchemaRegistry.layer("/nonexistent/effect-etl/schemas"))
      assert.include(missing.message, "Cannot read the schema directory /nonexistent/effect-etl/schemas")
      const directory = yield* tempDirectory
      yield* write(directory, "notes.txt", "not a schema")
      const registry = yield* SchemaRegistry.SchemaRegistry.pipe(Effect.provide(SchemaRegistry.layer(directory)))
      assert.deepStrictEqual(yield* registry.list, [])
      const error = yield* Effect.flip(registry.get("x"))
      assert.strictEqual(error.message, `No schema named "x": the registry is empty`)
    })
  )
})
