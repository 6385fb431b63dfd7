/**
 * What the commands share: the CLI's failure, printing errors with secrets scrubbed, the schema registry and the
 * services every run gets, and loading a config.
 */
import { fileURLToPath } from "node:url"
import * as Console from "effect/Console"
import { Flag } from "effect/cli"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Runtime from "effect/Runtime"
import * as Build from "../config/Build.ts"
import * as Load from "../config/Load.ts"
import * as Records from "../config/Records.ts"
import * as Replay from "../config/Replay.ts"
import * as NodeFileStore from "../connectors/file/NodeFileStore.ts"
import type { ConfigError } from "../core/ConfigError.ts"
import * as SchemaRegistry from "../schema/SchemaRegistry.ts"
import * as Redaction from "../secrets/Redaction.ts"

/** A failure that ends the CLI with a given exit code; its message has already been written to stderr. */
export class CliFailure extends Data.TaggedError("CliFailure")<{ readonly message: string; readonly exitCode: 1 | 2 }> {
  get ["~effect/Runtime/errorExitCode" satisfies Runtime.errorExitCode](): number {
    return this.exitCode
  }
}

/** Writes a line to stderr with every value the config took from `$env`/`$secret` scrubbed. */
export const printError = (message: string) =>
  Effect.flatMap(Effect.service(Redaction.Secrets), (secrets) => Console.error(secrets.scrub(message)))

export const usage = (message: string) =>
  Effect.andThen(printError(message), Effect.fail(new CliFailure({ message, exitCode: 2 })))

export const configFailure = (error: ConfigError) => usage(error.message)

export const schemasFlag = Flag.String("schemas").pipe(
  Flag.withDescription(
    "The directory of your Avro schemas (*.avsc); default ./schemas when it exists. The schemas that ship with effect-etl are always there too, and yours replace them by name"
  ),
  Flag.withDefault("")
)

/** The schemas that ship with the package (`schemas/` beside `src/` or `dist/`). */
const builtInSchemas = fileURLToPath(new URL("../../schemas", import.meta.url))

/** The registry the CLI uses: the shipped schemas, then the user's directory (`--schemas`, else `./schemas`). */
export const registry = (schemas: string) =>
  SchemaRegistry.layerDirectories([
    { path: builtInSchemas, optional: true },
    schemas === "" ? { path: "schemas", optional: true } : { path: schemas }
  ])
/** The services every CLI run gets: local files and the schema registry over `--schemas`. */
export const services = (schemas: string) => Layer.mergeAll(NodeFileStore.layer, registry(schemas))

/** Loads and builds a config; `connections` is the layer of its declared database connections. */
export const loadConfig = (file: string, schemas: string) =>
  Effect.flatMap(Load.readText(file), (text) => loadConfigText(file, text, schemas))

/** Builds a config from its text (`file` names it in errors): a cluster run's runners get the text of its config. */
export const loadConfigText = (file: string, text: string, schemas: string) =>
  Effect.gen(function* () {
    const { config } = yield* Load.loadText(file, text)
    const registry = yield* SchemaRegistry.SchemaRegistry
    const pipeline = yield* Build.build(config, { file, schema: Records.lookup(registry, file) })
    return {
      pipeline,
      connections: Build.connections(config),
      observability: config.observability,
      threads: config.threads,
      text
    }
  }).pipe(Effect.provide(registry(schemas)))

/** Loads a config and builds the replay of a dead-letter set through its pipeline (see `config/Replay.ts`). */
export const loadReplay = (
  file: string,
  schemas: string,
  options: { readonly from: string; readonly deadLetters: string | undefined; readonly force: boolean }
) =>
  Effect.gen(function* () {
    const text = yield* Load.readText(file)
    const { config } = yield* Load.loadText(file, text)
    const registry = yield* SchemaRegistry.SchemaRegistry
    const replay = yield* Replay.build(config, {
      file,
      schema: Records.lookup(registry, file),
      from: options.from,
      deadLetters: options.deadLetters,
      force: options.force
    })
    return { ...replay, connections: Build.connections(config) }
  }).pipe(Effect.provide(registry(schemas)))
