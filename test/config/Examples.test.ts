import * as fs from "node:fs"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import * as Records from "../../src/config/Records.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as SchemaRegistry from "../../src/schema/SchemaRegistry.ts"

const root = nodePath.resolve(import.meta.dirname, "../..")
const examples = fs
  .readdirSync(nodePath.join(root, "examples"))
  .filter((f) => f.endsWith(".json"))
  .sort()

/** Values for the `$env` references the examples make without a default (what a user would export). */
const env = {
  ETL_KAFKA_BROKERS: "127.0.0.1:9092",
  ETL_PG_SCHEMA: "public",
  ETL_PG_URL: "postgres://root@127.0.0.1:5432/test",
  ETL_S3_ENDPOINT: "http://127.0.0.1:9000",
  ETL_S3_ACCESS_KEY: "key",
  ETL_S3_SECRET_KEY: "secret"
}

describe("example configs (contract)", () => {
  it("there are examples for every connector", () => {
    assert.includeMembers(examples, ["quickstart.json", "daily-revenue.json", "postgres-to-mysql.json"])
    assert.isAtLeast(examples.length, 6)
  })

  for (const example of examples)
    it.effect(`${example} decodes with the config Schema and builds a pipeline`, () =>
      Effect.gen(function* () {
        const file = nodePath.join(root, "examples", example)
        const json = yield* Load.parseJson(file, fs.readFileSync(file, "utf8"))
        const { value, sensitive } = yield* Load.resolveReferences(file, json, { env: { ...env, ...process.env } })
        const config = yield* Load.decode(file, value, sensitive)
        const registry = yield* SchemaRegistry.SchemaRegistry
        const pipeline = yield* Build.build(config, { file, schema: Records.lookup(registry, file) })
        assert.strictEqual(pipeline.name, config.name)
        assert.isAbove(Pipeline.describe(pipeline).length, 3)
      }).pipe(Effect.provide(SchemaRegistry.layer(nodePath.join(root, "schemas"))))
    )
})
