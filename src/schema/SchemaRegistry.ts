/**
 * The schema registry: the Avro schemas a deployment knows (the `*.avsc` files of `schemas/`), each loaded, validated
 * and compiled once, and found by file base name (`transaction`) or Avro full name (`com.effectetl.Transaction`).
 * An entry carries everything a stage needs: the Avro JSON, the `effect/Schema` codec, the avsc `Type` for binary
 * formats, and a fast validator.
 *
 * @example
 * ```ts
 * const program = Effect.gen(function* () {
 *   const registry = yield* SchemaRegistry.SchemaRegistry
 *   const transaction = yield* registry.get("transaction")
 *   return transaction.validate(JSON.parse(line))
 * }).pipe(Effect.provide(SchemaRegistry.layer("schemas")))
 * ```
 */
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import type avro from "avsc"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Schema from "effect/Schema"
import * as AvroBridge from "./AvroBridge.ts"
import * as AvroSchema from "./AvroSchema.ts"

/** One schema of the registry. */
export interface Entry {
  /** The registry name: the file base name (`transaction` for `transaction.avsc`), or the `layerMemory` key. */
  readonly name: string
  /** The Avro full name of a named schema (`com.effectetl.Transaction`), also accepted by `get`. */
  readonly fullName: string | undefined
  /** The `.avsc` file it was loaded from; `undefined` for `layerMemory`. */
  readonly file: string | undefined
  /** The Avro schema, as written in the file. */
  readonly avro: AvroSchema.Schema
  /** The `effect/Schema` codec between JSON and records (see `AvroBridge.toSchema`). */
  readonly schema: Schema.Codec<unknown, unknown>
  /** The avsc type for Avro binary and container files, reading and writing the same records. */
  readonly avroType: avro.Type
  /** The fast per-record validator of {@link schema} (see `AvroBridge.makeValidator`). */
  readonly validate: AvroBridge.Validator<unknown>
}

/** No schema has the requested name; `available` lists the names that would have worked. */
export class SchemaNotFound extends Data.TaggedError("SchemaNotFound")<{
  readonly name: string
  readonly available: ReadonlyArray<string>
  readonly message: string
}> {}

/**
 * The registry could not be built: the directory or a file could not be read, a file is not a valid Avro schema, or
 * two files claim the same name. `file` names the culprit; `cause` is the underlying error (an `AvroSchemaError` for
 * invalid schemas).
 */
export class SchemaRegistryError extends Data.TaggedError("SchemaRegistryError")<{
  readonly file: string | undefined
  readonly message: string
  readonly cause?: unknown
}> {}

/** The registry's operations. */
export interface Service {
  /** Every entry, sorted by name. */
  readonly list: Effect.Effect<ReadonlyArray<Entry>>
  /** The entry with this file base name or Avro full name. */
  readonly get: (name: string) => Effect.Effect<Entry, SchemaNotFound>
}

/** The schema registry service. */
export class SchemaRegistry extends Context.Service<SchemaRegistry, Service>()("effect-etl/schema/SchemaRegistry") {}

/** A schema to register: its registry name, where it came from, and its parsed Avro JSON. */
export interface Source {
  readonly name: string
  readonly file: string | undefined
  readonly avro: AvroSchema.Schema
}

const entryOf = (source: Source): Entry => {
  const schema = AvroBridge.toSchema(source.avro)
  return {
    name: source.name,
    fullName: AvroSchema.fullName(source.avro),
    file: source.file,
    avro: source.avro,
    schema,
    avroType: AvroBridge.toAvroType(source.avro),
    validate: AvroBridge.makeValidator(schema)
  }
}

const describe = (entry: Entry): string =>
  entry.file ?? (entry.fullName === undefined ? `"${entry.name}"` : `"${entry.name}" (${entry.fullName})`)

/**
 * Builds the registry's operations from already-validated schemas. Fails when two schemas would answer to the same
 * name.
 */
export const make = (sources: ReadonlyArray<Source>): Effect.Effect<Service, SchemaRegistryError> =>
  Effect.gen(function* () {
    const entries = sources.map(entryOf).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    const index = new Map<string, Entry>()
    for (const entry of entries) {
      for (const key of new Set([entry.name, ...(entry.fullName === undefined ? [] : [entry.fullName])])) {
        const other = index.get(key)
        if (other !== undefined) {
          return yield* new SchemaRegistryError({
            file: entry.file,
            message: `Two schemas are both named "${key}": ${describe(other)} and ${describe(entry)}`
          })
        }
        index.set(key, entry)
      }
    }
    const available = [...index.keys()].sort()
    return {
      list: Effect.succeed(entries),
      get: Effect.fn("SchemaRegistry.get")(function* (name: string) {
        const entry = index.get(name)
        if (entry !== undefined) return entry
        return yield* new SchemaNotFound({
          name,
          available,
          message:
            available.length === 0
              ? `No schema named "${name}": the registry is empty`
              : `No schema named "${name}"; available: ${available.join(", ")}`
        })
      })
    }
  })

const readError = (file: string, what: string) => (cause: unknown) =>
  new SchemaRegistryError({
    file,
    message: `Cannot read ${what} ${file}: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause
  })

const invalid = (error: AvroSchema.AvroSchemaError) =>
  new SchemaRegistryError({ file: error.file, message: error.message, cause: error })

/** Reads and validates every `*.avsc` file of a directory (not recursive), in name order. */
export const loadDirectory = Effect.fn("SchemaRegistry.loadDirectory")(function* (directory: string) {
  const names = yield* Effect.tryPromise({
    try: () => fs.readdir(directory, { withFileTypes: true }),
    catch: readError(directory, "the schema directory")
  })
  const files = names
    .filter((entry) => entry.name.endsWith(".avsc") && !entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
  return yield* Effect.forEach(files, (fileName) => {
    const file = nodePath.join(directory, fileName)
    return Effect.tryPromise({ try: () => fs.readFile(file, "utf8"), catch: readError(file, "the schema file") }).pipe(
      Effect.flatMap((text) => Effect.mapError(AvroSchema.parse(text, { file }), invalid)),
      Effect.map((avro): Source => ({ name: fileName.slice(0, -".avsc".length), file, avro }))
    )
  })
})

/**
 * The registry of the `*.avsc` files in `directory`, loaded once when the layer is built. A missing directory, an
 * unreadable or invalid file, or two files with the same name fail the layer with a `SchemaRegistryError` naming the
 * file.
 */
export const layer = (directory: string): Layer.Layer<SchemaRegistry, SchemaRegistryError> =>
  Layer.effect(SchemaRegistry, Effect.flatMap(loadDirectory(directory), make))

/**
 * A registry of schemas given in code, keyed by registry name. Invalid schemas fail the layer with a
 * `SchemaRegistryError` naming the key (`memory:<name>`).
 *
 * @example
 * ```ts
 * const test = SchemaRegistry.layerMemory({ transaction: { type: "record", name: "Transaction", fields: [...] } })
 * ```
 */
export const layerMemory = (
  schemas: Readonly<Record<string, unknown>>
): Layer.Layer<SchemaRegistry, SchemaRegistryError> =>
  Layer.effect(
    SchemaRegistry,
    Effect.forEach(Object.entries(schemas), ([name, json]) =>
      AvroSchema.validate(json, { file: `memory:${name}` }).pipe(
        Effect.mapError(invalid),
        Effect.map((avro): Source => ({ name, file: undefined, avro }))
      )
    ).pipe(Effect.flatMap(make))
  )

/** A directory of `*.avsc` files for {@link layerDirectories}. */
export interface Directory {
  readonly path: string
  /** A missing optional directory adds no schemas; a missing required one fails the layer. Default false. */
  readonly optional?: boolean
}

const exists = (path: string) =>
  Effect.promise(() =>
    fs.stat(path).then(
      (s) => s.isDirectory(),
      () => false
    )
  )

/**
 * The registry of several schema directories, loaded once when the layer is built. A schema of a later directory
 * replaces one of an earlier directory with the same registry name or Avro full name, so a project's own `schemas/`
 * can override the schemas that ship with effect-etl. A directory given twice is read once.
 *
 * @example
 * SchemaRegistry.layerDirectories([{ path: builtInSchemas, optional: true }, { path: "schemas", optional: true }])
 */
export const layerDirectories = (
  directories: ReadonlyArray<Directory>
): Layer.Layer<SchemaRegistry, SchemaRegistryError> =>
  Layer.effect(
    SchemaRegistry,
    Effect.gen(function* () {
      const seen = new Set<string>()
      let sources: Array<Source> = []
      for (const directory of directories) {
        const resolved = nodePath.resolve(directory.path)
        if (seen.has(resolved)) continue
        seen.add(resolved)
        if (directory.optional === true && !(yield* exists(resolved))) continue
        const loaded = yield* loadDirectory(directory.path)
        const replaced = new Set(loaded.flatMap((source) => [source.name, ...fullNameOf(source)]))
        sources = [
          ...sources.filter((source) => !replaced.has(source.name) && !fullNameOf(source).some((n) => replaced.has(n))),
          ...loaded
        ]
      }
      return yield* make(sources)
    })
  )

const fullNameOf = (source: Source): ReadonlyArray<string> => {
  const fullName = AvroSchema.fullName(source.avro)
  return fullName === undefined ? [] : [fullName]
}
