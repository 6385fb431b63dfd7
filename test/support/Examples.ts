/**
 * Running the example configs of `examples/` in tests: loaded with the test servers' addresses (as `$env` values) and
 * edited to this test's topic, bucket and group names, then run with their declared connections, as the CLI does.
 */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import * as Effect from "effect/Effect"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import * as Records from "../../src/config/Records.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as SchemaRegistry from "../../src/schema/SchemaRegistry.ts"

const root = nodePath.resolve(import.meta.dirname, "../..")

/** The parts of an example config a test edits (topic, bucket and group names). */
export interface ExampleConfig {
  readonly source: Record<string, unknown>
  readonly sink: Record<string, unknown>
  readonly dead_letters: Record<string, unknown>
}

/**
 * Loads an example config with the test servers' addresses and this test's topic and bucket names, and runs it with
 * its declared connections, as the CLI does.
 */
export const runExample = (
  name: string,
  env: Readonly<Record<string, string>>,
  edit: (config: ExampleConfig) => void
) =>
  Effect.gen(function* () {
    const file = nodePath.join(root, "examples", name)
    const parsed = yield* Load.parseJson(file, fs.readFileSync(file, "utf8"))
    const resolved = (yield* Load.resolveEnv(file, parsed, env)) as ExampleConfig
    edit(resolved)
    const config = yield* Load.decode(file, resolved)
    const registry = yield* SchemaRegistry.SchemaRegistry
    const pipeline = yield* Build.build(config, { file, schema: Records.lookup(registry, file) })
    return yield* Pipeline.run(pipeline).pipe(Effect.provide(Build.connections(config), { local: true }))
  }).pipe(Effect.provide(SchemaRegistry.layer(nodePath.join(root, "schemas"))))
