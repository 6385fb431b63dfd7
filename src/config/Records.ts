/**
 * Registry schemas as the record schemas that connectors and formats consume (`core/RecordSchema`): the registry
 * entry's fast validator, its field names, its Avro JSON for binary formats, and column types for CSV. `lookup` is
 * the schema lookup a pipeline config is built with (`"schema": "transaction"` in a source or sink).
 */
import * as Effect from "effect/Effect"
import * as ConfigError from "../core/ConfigError.ts"
import * as RecordSchema from "../core/RecordSchema.ts"
import * as AvroSchema from "../schema/AvroSchema.ts"
import type * as SchemaRegistry from "../schema/SchemaRegistry.ts"

/** A record as config-built pipelines see it. */
export type AnyRecord = Readonly<Record<string, unknown>>

/** A simple column type, for formats whose values are all strings (CSV). */
export type ColumnType = "string" | "number" | "integer" | "boolean" | "json"

const nullable = (schema: AvroSchema.Schema): AvroSchema.Schema => {
  const type = AvroSchema.unwrap(schema)
  if (!AvroSchema.isUnion(type)) return type
  const branches = type.filter((branch) => branch !== "null")
  return branches.length === 1 ? AvroSchema.unwrap(branches[0]!) : type
}

/**
 * The column type of an Avro field type: numbers and booleans keep their type, nested values (arrays, maps, records,
 * unions of several types) are JSON, and everything with a string form (strings, enums, uuids, dates, timestamps,
 * decimals, base64 bytes) is a string. A nullable field has the type of its non-null branch.
 */
export const columnType = (schema: AvroSchema.Schema, named: ReadonlyMap<string, AvroSchema.Schema>): ColumnType => {
  const type = nullable(schema)
  if (typeof type === "string") {
    switch (type) {
      case "int":
      case "long":
        return "integer"
      case "float":
      case "double":
        return "number"
      case "boolean":
        return "boolean"
      case "null":
      case "string":
      case "bytes":
        return "string"
      default: {
        const target = named.get(type) ?? [...named].find(([full]) => AvroSchema.shortName(full) === type)?.[1]
        return target === undefined ? "string" : columnType(target, named)
      }
    }
  }
  if (AvroSchema.isUnion(type)) return "json"
  switch (type.type) {
    case "record":
    case "array":
    case "map":
      return "json"
    default:
      return "string"
  }
}

const namedTypes = (
  schema: AvroSchema.Schema,
  namespace: string | undefined,
  out: Map<string, AvroSchema.Schema>
): Map<string, AvroSchema.Schema> => {
  if (typeof schema === "string") return out
  if (AvroSchema.isUnion(schema)) {
    for (const branch of schema) namedTypes(branch, namespace, out)
    return out
  }
  if (AvroSchema.isNamed(schema)) {
    out.set(AvroSchema.qualify(schema.name, schema.namespace ?? namespace), schema)
    if (schema.type === "record") {
      for (const field of schema.fields) namedTypes(field.type, AvroSchema.namespaceOf(schema, namespace), out)
    }
  } else if (schema.type === "array") namedTypes(schema.items, namespace, out)
  else if (schema.type === "map") namedTypes(schema.values, namespace, out)
  return out
}

/** The record schema of a registry entry. Its column types cover the fields that are not plain strings. */
export const fromEntry = (entry: SchemaRegistry.Entry): RecordSchema.RecordSchema<AnyRecord> => {
  const avro = entry.avro
  const record = typeof avro === "object" && !AvroSchema.isUnion(avro) && avro.type === "record" ? avro : undefined
  const named = namedTypes(avro, undefined, new Map())
  const columns: Record<string, ColumnType> = {}
  for (const field of record?.fields ?? []) {
    const type = columnType(field.type, named)
    if (type !== "string") columns[field.name] = type
  }
  return {
    name: entry.name,
    fields: record?.fields.map((field) => field.name),
    validate: entry.validate as RecordSchema.RecordSchema<AnyRecord>["validate"],
    // The avsc type with effect-etl's logical types, so Avro files read and write Date, BigDecimal, ... records.
    avro: entry.avroType,
    typed: entry.schema,
    avroJson: entry.avro,
    columns
  }
}

/**
 * The schema lookup of a pipeline config: finds `name` in the registry and fails with a `ConfigError` at `path` of
 * `file`, listing the available names, when there is no such schema.
 */
export const lookup =
  (registry: SchemaRegistry.Service, file: string) =>
  (name: string, path: string): Effect.Effect<RecordSchema.RecordSchema<AnyRecord>, ConfigError.ConfigError> =>
    registry.get(name).pipe(
      Effect.map(fromEntry),
      Effect.mapError((error) => ConfigError.single(file, path, error.message))
    )

/**
 * A source's schema with its `unknown_fields` policy applied (the default, "drop", is what schemas do). A policy
 * without a schema is an error at `<path>.unknown_fields`: without a schema no field is unknown.
 */
export const withUnknownFields = (
  schema: RecordSchema.RecordSchema<AnyRecord> | undefined,
  policy: RecordSchema.UnknownFields | undefined,
  file: string,
  path: string
): Effect.Effect<RecordSchema.RecordSchema<AnyRecord> | undefined, ConfigError.ConfigError> => {
  if (policy === undefined) return Effect.succeed(schema)
  if (schema === undefined)
    return Effect.fail(
      ConfigError.single(
        file,
        `${path}.unknown_fields`,
        '"unknown_fields" applies to records checked against a "schema": without one, every field is passed on'
      )
    )
  return Effect.succeed(RecordSchema.withUnknownFields(schema, policy))
}

/**
 * The record schema a file or S3 sink config names, looked up at `path`; an Avro or Parquet sink without one is a
 * ConfigError (their files carry the writer schema, so it must be known).
 */
export const sinkSchema = (
  config: { readonly format: { readonly type: string }; readonly schema?: string | undefined },
  env: {
    readonly file: string
    readonly path: string
    readonly schema: (
      name: string,
      path: string
    ) => Effect.Effect<RecordSchema.RecordSchema<AnyRecord>, ConfigError.ConfigError>
  }
): Effect.Effect<RecordSchema.RecordSchema<AnyRecord> | undefined, ConfigError.ConfigError> => {
  if (config.schema !== undefined) return env.schema(config.schema, `${env.path}.schema`)
  return config.format.type === "avro" || config.format.type === "parquet"
    ? Effect.fail(
        ConfigError.single(
          env.file,
          `${env.path}.schema`,
          `${config.format.type === "avro" ? "An avro" : "A parquet"} sink needs the schema of the records it writes: name one from schemas/ (e.g. "schema": "transaction")`
        )
      )
    : Effect.succeed(undefined)
}
