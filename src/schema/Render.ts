/**
 * One record schema, many forms: an Avro record schema as TypeScript types (the record values a pipeline sees) and as a
 * JSON Schema (the JSON records the JSON Lines format and the config validators accept). The SQL forms (`CREATE TABLE`
 * for PostgreSQL and MySQL) are the SQL connectors' own (`SqlTypes.createTableSql`), so that `schema show --as
 * postgres-ddl` prints exactly what a sink with `create_if_missing` runs.
 *
 * The mapping follows `AvroBridge`: `int`/`long`/`float`/`double` are numbers, `bytes`/`fixed` are `Uint8Array` (base64
 * text in JSON), decimals are `BigDecimal` (a decimal string or a number in JSON), timestamps are `Date` (ISO-8601 text
 * or epoch milliseconds in JSON), `date` and `uuid` are strings, a union with `null` is nullable, and a field with a
 * default may be left out of a JSON record (the default fills it in).
 */
import type * as AvroSchema from "./AvroSchema.ts"

/** The forms `schema show --as` prints. */
export const formats = ["avro", "typescript", "json-schema", "postgres-ddl", "mysql-ddl"] as const
export type Format = (typeof formats)[number]

type Named = AvroSchema.RecordSchema | AvroSchema.EnumSchema | AvroSchema.FixedSchema

const shortName = (name: string): string => name.slice(name.lastIndexOf(".") + 1)

const fullName = (named: Named, namespace: string | undefined): string =>
  named.name.includes(".") || (named.namespace === undefined && namespace === undefined)
    ? named.name
    : `${named.namespace ?? namespace}.${named.name}`

/** The named types of a schema, by full and by short name (references to them are names). */
const namedTypes = (schema: AvroSchema.Schema): ReadonlyMap<string, Named> => {
  const found = new Map<string, Named>()
  const visit = (s: AvroSchema.Schema, namespace: string | undefined): void => {
    if (typeof s === "string") return
    if (Array.isArray(s)) {
      for (const branch of s as AvroSchema.UnionSchema) visit(branch, namespace)
      return
    }
    const o = s as Exclude<AvroSchema.Schema, string | AvroSchema.UnionSchema>
    switch (o.type) {
      case "record": {
        const r = o as AvroSchema.RecordSchema
        const name = fullName(r, namespace)
        found.set(name, r)
        found.set(shortName(name), r)
        const inner = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : undefined
        for (const field of r.fields) visit(field.type, inner)
        return
      }
      case "enum":
      case "fixed": {
        const n = o as AvroSchema.EnumSchema | AvroSchema.FixedSchema
        const name = fullName(n, namespace)
        found.set(name, n)
        found.set(shortName(name), n)
        return
      }
      case "array":
        visit((o as AvroSchema.ArraySchema).items, namespace)
        return
      case "map":
        visit((o as AvroSchema.MapSchema).values, namespace)
        return
    }
  }
  visit(schema, undefined)
  return found
}

const isNull = (s: AvroSchema.Schema): boolean =>
  s === "null" || (typeof s === "object" && !Array.isArray(s) && (s as { type?: unknown }).type === "null")

/** A TypeScript identifier for a field (quoted when it is not one). */
const property = (name: string): string => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name))

const comment = (doc: unknown, indent: string): string =>
  typeof doc === "string" && doc !== "" ? `${indent}/** ${doc.replaceAll("*/", "* /")} */\n` : ""

/**
 * The record schema as TypeScript declarations: an interface per record, a string-literal union per enum, in the
 * order they are met (the top record first).
 */
export const toTypeScript = (schema: AvroSchema.Schema): string => {
  const named = namedTypes(schema)
  const declarations: Array<string> = []
  const declared = new Set<string>()
  let decimals = false
  const typeOf = (s: AvroSchema.Schema): string => {
    if (typeof s === "string") {
      switch (s) {
        case "null":
          return "null"
        case "boolean":
          return "boolean"
        case "int":
        case "long":
        case "float":
        case "double":
          return "number"
        case "bytes":
          return "Uint8Array"
        case "string":
          return "string"
      }
      const target = named.get(s)
      if (target === undefined) return "unknown"
      declare(target)
      return target.type === "fixed" ? fixedType(target as AvroSchema.FixedSchema) : shortName(target.name)
    }
    if (Array.isArray(s)) {
      // `T | null`: the null branch last, as people write it.
      const union = s as AvroSchema.UnionSchema
      const branches = [...union.filter((b) => !isNull(b)), ...union.filter(isNull)].map(typeOf)
      return Array.from(new Set(branches)).join(" | ")
    }
    const o = s as Exclude<AvroSchema.Schema, string | AvroSchema.UnionSchema>
    switch (o.type) {
      case "record":
      case "enum":
        declare(o as Named)
        return shortName((o as Named).name)
      case "fixed":
        return fixedType(o as AvroSchema.FixedSchema)
      case "array":
        return `ReadonlyArray<${typeOf((o as AvroSchema.ArraySchema).items)}>`
      case "map":
        return `Readonly<Record<string, ${typeOf((o as AvroSchema.MapSchema).values)}>>`
    }
    const p = o as AvroSchema.PrimitiveSchema
    if (p.logicalType === "decimal") {
      decimals = true
      return "BigDecimal.BigDecimal"
    }
    if (p.logicalType === "timestamp-millis" || p.logicalType === "timestamp-micros") return "Date"
    return typeOf(p.type)
  }
  const fixedType = (f: AvroSchema.FixedSchema): string => {
    if (f.logicalType === "decimal") {
      decimals = true
      return "BigDecimal.BigDecimal"
    }
    return "Uint8Array"
  }
  const declare = (n: Named): void => {
    const name = shortName(n.name)
    if (declared.has(name) || n.type === "fixed") return
    declared.add(name)
    const at = declarations.length
    declarations.push("")
    if (n.type === "enum") {
      const e = n as AvroSchema.EnumSchema
      declarations[at] =
        `${comment(e.doc, "")}export type ${name} = ${e.symbols.map((sym) => JSON.stringify(sym)).join(" | ")}\n`
      return
    }
    const r = n as AvroSchema.RecordSchema
    const fields = r.fields.map((f) => `${comment(f.doc, "  ")}  readonly ${property(f.name)}: ${typeOf(f.type)}\n`)
    declarations[at] = `${comment(r.doc, "")}export interface ${name} {\n${fields.join("")}}\n`
  }
  const top = typeOf(schema)
  const body = declarations.length === 0 ? `export type Record = ${top}\n` : declarations.join("\n")
  return `${decimals ? 'import type * as BigDecimal from "effect/BigDecimal"\n\n' : ""}${body}`
}

/** A JSON Schema (draft 2020-12) value. */
export type JsonSchema = { readonly [key: string]: unknown }

const INT32 = 2 ** 31
const SAFE = Number.MAX_SAFE_INTEGER

/**
 * The JSON records of the record schema, as a JSON Schema (draft 2020-12) document: every named type in `$defs`, the
 * top record by `$ref`. Fields without a default are required; other fields are allowed (a record may carry more).
 */
export const toJsonSchema = (schema: AvroSchema.Schema): JsonSchema => {
  const named = namedTypes(schema)
  const defs: Record<string, JsonSchema> = {}
  const ref = (n: Named): JsonSchema => {
    const name = shortName(n.name)
    if (defs[name] === undefined) {
      defs[name] = {}
      defs[name] = defOf(n)
    }
    return { $ref: `#/$defs/${name}` }
  }
  const defOf = (n: Named): JsonSchema => {
    if (n.type === "enum") {
      const e = n as AvroSchema.EnumSchema
      return { type: "string", enum: e.symbols, ...describe(e.doc) }
    }
    if (n.type === "fixed") return fixedOf(n as AvroSchema.FixedSchema)
    const r = n as AvroSchema.RecordSchema
    const properties: Record<string, JsonSchema> = {}
    for (const f of r.fields) properties[f.name] = { ...of(f.type), ...describe(f.doc) }
    return {
      type: "object",
      title: shortName(r.name),
      ...describe(r.doc),
      properties,
      required: r.fields.filter((f) => !("default" in f)).map((f) => f.name)
    }
  }
  const fixedOf = (f: AvroSchema.FixedSchema): JsonSchema =>
    f.logicalType === "decimal" ? decimal(f.precision, f.scale) : { type: "string", contentEncoding: "base64" }
  const of = (s: AvroSchema.Schema): JsonSchema => {
    if (typeof s === "string") {
      switch (s) {
        case "null":
          return { type: "null" }
        case "boolean":
          return { type: "boolean" }
        case "int":
          return { type: "integer", minimum: -INT32, maximum: INT32 - 1 }
        case "long":
          return { type: "integer", minimum: -SAFE, maximum: SAFE }
        case "float":
        case "double":
          return { type: "number" }
        case "bytes":
          return { type: "string", contentEncoding: "base64" }
        case "string":
          return { type: "string" }
      }
      const target = named.get(s)
      return target === undefined ? {} : ref(target)
    }
    if (Array.isArray(s)) {
      const branches = s as AvroSchema.UnionSchema
      const nullable = branches.some(isNull)
      const rest = branches.filter((b) => !isNull(b)).map(of)
      const all = nullable ? [...rest, { type: "null" }] : rest
      return all.length === 1 ? all[0]! : { anyOf: all }
    }
    const o = s as Exclude<AvroSchema.Schema, string | AvroSchema.UnionSchema>
    switch (o.type) {
      case "record":
      case "enum":
      case "fixed":
        return ref(o as Named)
      case "array":
        return { type: "array", items: of((o as AvroSchema.ArraySchema).items) }
      case "map":
        return { type: "object", additionalProperties: of((o as AvroSchema.MapSchema).values) }
    }
    const p = o as AvroSchema.PrimitiveSchema
    switch (p.logicalType) {
      case "decimal":
        return decimal(p.precision, p.scale)
      case "timestamp-millis":
      case "timestamp-micros":
        return {
          type: ["string", "number"],
          description: `a ${p.logicalType} timestamp: ISO-8601 text, or milliseconds since the epoch`
        }
      case "date":
        return { type: "string", format: "date" }
      case "uuid":
        return { type: "string", format: "uuid" }
    }
    return of(p.type)
  }
  const top = of(schema)
  return { $schema: "https://json-schema.org/draft/2020-12/schema", ...top, $defs: defs }
}

const describe = (doc: unknown): JsonSchema => (typeof doc === "string" && doc !== "" ? { description: doc } : {})

const decimal = (precision: number | undefined, scale: number | undefined): JsonSchema => ({
  type: ["string", "number"],
  ...(typeof scale === "number" && scale === 0 ? { pattern: "^-?[0-9]+$" } : { pattern: "^-?[0-9]+(\\.[0-9]+)?$" }),
  description: `a decimal(${precision ?? "?"}, ${scale ?? 0}): decimal text (exact) or a number`
})
