import { spawnSync } from "node:child_process"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"

const root = nodePath.resolve(import.meta.dirname, "../..")
const drivers = ["pg", "pg-copy-streams", "mysql2", "@platformatic/kafka", "@aws-sdk/client-s3"] as const

/**
 * The npm drivers that importing `entry` loads, seen by a resolve hook in a fresh Node process (imports and
 * `require`s alike); `then`, run after the import with the module as `m`, may use it.
 */
const driversLoadedBy = (entry: string, then = ""): ReadonlyArray<string> => {
  const program = `
    import { registerHooks } from "node:module"
    const loaded = new Set()
    const drivers = ${JSON.stringify(drivers)}
    registerHooks({
      resolve(specifier, context, next) {
        if (drivers.includes(specifier)) loaded.add(specifier)
        return next(specifier, context)
      }
    })
    const m = await import(${JSON.stringify(nodePath.join(root, entry))})
    ${then}
    console.log(JSON.stringify([...loaded].sort()))
  `
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", program], { encoding: "utf8", cwd: root })
  assert.strictEqual(result.status, 0, result.stderr)
  return JSON.parse(result.stdout.trim().split("\n").at(-1)!) as ReadonlyArray<string>
}

describe("the package's entry points load only the drivers they need", () => {
  it("the main entry, the core, the typed front door and the transforms load no driver", () => {
    for (const entry of ["src/index.ts", "src/pipeline/Pipeline.ts", "src/core/Flow.ts", "src/transforms/Join.ts"])
      assert.deepStrictEqual(driversLoadedBy(entry), [], entry)
  })

  it("each connector's entry loads its own driver and no other; the SQL drivers only when a layer is built", () => {
    assert.deepStrictEqual(driversLoadedBy("src/connectors/file/index.ts"), [])
    assert.deepStrictEqual(driversLoadedBy("src/connectors/postgres/index.ts"), [])
    assert.deepStrictEqual(driversLoadedBy("src/connectors/mysql/index.ts"), [])
    assert.deepStrictEqual(driversLoadedBy("src/connectors/kafka/index.ts"), ["@platformatic/kafka"])
    assert.deepStrictEqual(driversLoadedBy("src/connectors/s3/index.ts"), ["@aws-sdk/client-s3"])
    // Building a live layer makes a pool (no connection yet): that loads the driver, and only that one.
    const build = (layer: string) => `
      const { Effect, Layer } = await import("effect")
      await Effect.runPromise(Effect.scoped(Layer.build(${layer})))`
    assert.deepStrictEqual(
      driversLoadedBy("src/connectors/postgres/index.ts", build(`m.NodePostgres.layer({ host: "127.0.0.1" })`)),
      ["pg", "pg-copy-streams"]
    )
    assert.deepStrictEqual(
      driversLoadedBy("src/connectors/mysql/index.ts", build(`m.NodeMysql.layer({ host: "127.0.0.1" })`)),
      ["mysql2"]
    )
  })

  it("the config front door loads no driver: each loads when a connection to it is first made", () => {
    assert.deepStrictEqual(driversLoadedBy("src/config/index.ts"), [])
  })
})
