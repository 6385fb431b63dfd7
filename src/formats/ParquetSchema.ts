/**
 * The Parquet schema of a record schema: the pipeline's Avro record schema, flattened depth-first into the list of
 * Parquet schema elements that a file footer holds. Column types come from the record schema alone — a decimal keeps
 * its precision and scale (stored in an INT32 up to 9 digits, an INT64 up to 18, bytes beyond, or its `fixed`), a
 * timestamp its unit and whether it is UTC, a union with `null` becomes an optional column, records become groups and
 * arrays and maps the three-level LIST and MAP groups of the Parquet specification.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import type { SchemaElement } from "hyparquet"
import type * as AvroSchema from "../schema/AvroSchema.ts"

/** A record schema that has no Parquet equivalent (a union of two non-null types, a reference to an unknown name). */
export class ParquetSchemaError extends Data.TaggedError("ParquetSchemaError")<{
  readonly path: string
  readonly message: string
}> {}

type Repetition = "REQUIRED" | "OPTIONAL" | "REPEATED"

const isUnion = (schema: AvroSchema.Schema): schema is AvroSchema.UnionSchema => Array.isArray(schema)

const named = (schema: AvroSchema.Schema): string | undefined => {
  if (typeof schema !== "object" || isUnion(schema)) return undefined
  if (schema.type === "record" || schema.type === "enum" || schema.type === "fixed") {
    const s = schema as AvroSchema.NamedSchema
    return s.namespace !== undefined && !s.name.includes(".") ? `${s.namespace}.${s.name}` : s.name
  }
  return undefined
}

const timestamp = (unit: "MILLIS" | "MICROS", utc: boolean): Partial<SchemaElement> => ({
  type: "INT64",
  ...(utc ? { converted_type: unit === "MILLIS" ? "TIMESTAMP_MILLIS" : "TIMESTAMP_MICROS" } : {}),
  logical_type: { type: "TIMESTAMP", isAdjustedToUTC: utc, unit }
})

const decimal = (precision: number, scale: number): Partial<SchemaElement> => ({
  converted_type: "DECIMAL",
  precision,
  scale,
  logical_type: { type: "DECIMAL", precision, scale }
})

/**
 * The Parquet schema elements of an Avro record schema, root first.
 *
 * @example
 * ParquetSchema.fromAvro({ type: "record", name: "Order", fields: [{ name: "id", type: "long" }] })
 * // Result.succeed([{ name: "Order", num_children: 1 }, { name: "id", type: "INT64", repetition_type: "REQUIRED" }])
 */
export const fromAvro = (record: AvroSchema.RecordSchema): Result.Result<Array<SchemaElement>, ParquetSchemaError> => {
  const names = new Map<string, AvroSchema.Schema>()
  const out: Array<SchemaElement> = []
  let failure: ParquetSchemaError | undefined

  const fail = (path: string, message: string): undefined => {
    failure ??= new ParquetSchemaError({ path, message })
  }

  const register = (schema: AvroSchema.Schema): void => {
    const name = named(schema)
    if (name !== undefined) {
      names.set(name, schema)
      const short = name.split(".").pop()
      if (short !== undefined) names.set(short, schema)
    }
  }

  const group = (name: string, repetition: Repetition | undefined, children: number, extra = {}): void => {
    out.push({
      name,
      ...(repetition === undefined ? {} : { repetition_type: repetition }),
      num_children: children,
      ...extra
    })
  }

  const node = (name: string, schema: AvroSchema.Schema, repetition: Repetition, path: string): undefined => {
    if (isUnion(schema)) {
      const branches = schema.filter((b) => b !== "null")
      const [only] = branches
      if (branches.length !== 1 || only === undefined) {
        return fail(path, `a union must be one type or one type and null, got ${JSON.stringify(schema)}`)
      }
      return node(name, only, branches.length < schema.length ? "OPTIONAL" : repetition, path)
    }
    if (typeof schema === "string") {
      const primitive = leafOf(schema)
      if (primitive !== undefined) {
        out.push({ name, repetition_type: repetition, ...primitive })
        return
      }
      const ref = names.get(schema)
      if (ref === undefined) return fail(path, `unknown type name ${schema}`)
      return node(name, ref, repetition, path)
    }
    register(schema)
    switch (schema.type) {
      case "record": {
        const r = schema as AvroSchema.RecordSchema
        group(name, repetition, r.fields.length)
        for (const f of r.fields) node(f.name, f.type, "REQUIRED", `${path}.${f.name}`)
        return
      }
      case "array": {
        const a = schema as AvroSchema.ArraySchema
        group(name, repetition, 1, { converted_type: "LIST", logical_type: { type: "LIST" } })
        group("list", "REPEATED", 1)
        return node("element", a.items, "REQUIRED", `${path}[]`)
      }
      case "map": {
        const m = schema as AvroSchema.MapSchema
        group(name, repetition, 1, { converted_type: "MAP", logical_type: { type: "MAP" } })
        group("key_value", "REPEATED", 2)
        out.push({ name: "key", repetition_type: "REQUIRED", type: "BYTE_ARRAY", converted_type: "UTF8" })
        return node("value", m.values, "REQUIRED", `${path}{}`)
      }
      case "enum":
        out.push({
          name,
          repetition_type: repetition,
          type: "BYTE_ARRAY",
          converted_type: "ENUM",
          logical_type: { type: "ENUM" }
        })
        return
      case "fixed": {
        const f = schema as AvroSchema.FixedSchema
        const dec = f.logicalType === "decimal" && f.precision !== undefined ? decimal(f.precision, f.scale ?? 0) : {}
        out.push({ name, repetition_type: repetition, type: "FIXED_LEN_BYTE_ARRAY", type_length: f.size, ...dec })
        return
      }
      default: {
        const p = schema as AvroSchema.PrimitiveSchema
        const leaf = logicalLeaf(p) ?? leafOf(p.type)
        if (leaf === undefined) return fail(path, `unsupported type ${JSON.stringify(schema)}`)
        out.push({ name, repetition_type: repetition, ...leaf })
        return
      }
    }
  }

  group(record.name, undefined, record.fields.length)
  register(record)
  for (const f of record.fields) node(f.name, f.type, "REQUIRED", f.name)
  return failure === undefined ? Result.succeed(out) : Result.fail(failure)
}

const leafOf = (type: string): Partial<SchemaElement> | undefined => {
  switch (type) {
    case "boolean":
      return { type: "BOOLEAN" }
    case "int":
      return { type: "INT32" }
    case "long":
      return { type: "INT64" }
    case "float":
      return { type: "FLOAT" }
    case "double":
      return { type: "DOUBLE" }
    case "bytes":
      return { type: "BYTE_ARRAY" }
    case "string":
      return { type: "BYTE_ARRAY", converted_type: "UTF8", logical_type: { type: "STRING" } }
    default:
      return undefined
  }
}

const logicalLeaf = (p: AvroSchema.PrimitiveSchema): Partial<SchemaElement> | undefined => {
  switch (p.logicalType) {
    case "decimal":
      // As Spark writes them: an int up to 9 digits, a long up to 18, bytes beyond (cheaper to write and read).
      return p.precision === undefined
        ? undefined
        : {
            type: p.precision <= 9 ? "INT32" : p.precision <= 18 ? "INT64" : "BYTE_ARRAY",
            ...decimal(p.precision, p.scale ?? 0)
          }
    case "date":
      return { type: "INT32", converted_type: "DATE", logical_type: { type: "DATE" } }
    case "timestamp-millis":
      return timestamp("MILLIS", true)
    case "timestamp-micros":
      return timestamp("MICROS", true)
    case "local-timestamp-millis":
      return timestamp("MILLIS", false)
    case "local-timestamp-micros":
      return timestamp("MICROS", false)
    default:
      return undefined
  }
}
