/**
 * Record schemas as connectors use them: a name, the field names, a fast per-record validator that turns an encoded
 * (JSON-like) record into its typed form, and optionally the Avro schema for binary formats.
 *
 * Build one from an `effect/Schema` (`fromSchema`) or from an Avro schema in the registry (see `schema/`).
 */
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as SchemaIssue from "effect/SchemaIssue"

/** The outcome of validating one record. */
export type Validation<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly message: string }

/** A record schema for records of type `A`. */
export interface RecordSchema<out A> {
  readonly name: string
  /** Top-level field names, in order, when known. */
  readonly fields: ReadonlyArray<string> | undefined
  /** Validates and converts one encoded record (e.g. a parsed JSON line); never throws. */
  readonly validate: (input: unknown) => Validation<A>
  /** The Avro schema (parsed .avsc JSON, or its compiled avsc type), when the records have one. */
  readonly avro?: unknown
  /**
   * The `effect/Schema` whose `Type` side the records are, when known: a source whose values come typed already (SQL
   * rows: `Date`s, `BigDecimal`s) checks its records against that side, not `validate`'s encoded one.
   */
  readonly typed?: Schema.Top | undefined
  /** The parsed .avsc JSON of `avro` when that is a compiled type (what a schema registry is sent). */
  readonly avroJson?: unknown
  /** Field → simple column type, for formats whose values are all strings (CSV). */
  readonly columns?: Readonly<Record<string, "string" | "number" | "integer" | "boolean" | "json">>
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const pathText = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((key, i) => (typeof key === "number" ? `[${key}]` : `${i === 0 ? "" : "."}${String(key)}`)).join("")

/** Formats a Schema issue as `field: message; other.field: message`. */
export const formatIssue = (issue: SchemaIssue.Issue): string =>
  formatter(issue)
    .issues.map((i) => {
      const path = pathText((i.path ?? []) as ReadonlyArray<PropertyKey>)
      return path === "" ? i.message : `${path}: ${i.message}`
    })
    .join("; ")

const topLevelFields = (schema: Schema.Top): ReadonlyArray<string> | undefined => {
  const ast = schema.ast
  if (ast._tag === "Objects") return ast.propertySignatures.map((p) => String(p.name))
  return undefined
}

type ColumnType = NonNullable<RecordSchema<unknown>["columns"]>[string]

/** The CSV column type of an encoded field's AST: what its text must be read as before the Schema decodes it. */
const columnTypeOf = (ast: SchemaAST.AST): ColumnType => {
  switch (ast._tag) {
    case "Number":
      return "number"
    case "Boolean":
      return "boolean"
    case "Literal":
      return typeof ast.literal === "number" ? "number" : typeof ast.literal === "boolean" ? "boolean" : "string"
    case "Objects":
    case "Arrays":
      return "json"
    case "Union": {
      // null and undefined members are an empty field; the others must agree on one type.
      const kinds = new Set(
        ast.types.filter((t) => t._tag !== "Null" && t._tag !== "Undefined").map((t) => columnTypeOf(t))
      )
      return kinds.size === 1 ? kinds.values().next().value! : "string"
    }
    default:
      return "string"
  }
}

/**
 * The CSV column types of a Schema's required top-level fields that are not strings in their encoded form (a
 * `Schema.Finite` field is a number; a `Schema.NumberFromString` field stays text, which its codec decodes). Optional
 * fields are left out: a typed column must be in every file's header.
 */
export const columnsOf = (schema: Schema.Top): RecordSchema<unknown>["columns"] => {
  const ast = SchemaAST.toEncoded(schema.ast)
  if (ast._tag !== "Objects") return undefined
  const columns: Record<string, ColumnType> = {}
  for (const p of ast.propertySignatures) {
    if (typeof p.name !== "string" || SchemaAST.isOptional(p.type)) continue
    const type = columnTypeOf(p.type)
    if (type !== "string") columns[p.name] = type
  }
  return Object.keys(columns).length === 0 ? undefined : columns
}

/**
 * A record schema from an `effect/Schema` codec: records are decoded from their encoded form.
 *
 * @example
 * const Transaction = Schema.Struct({ id: Schema.String, amount: Schema.Finite })
 * File.source({ path: "in.jsonl", schema: RecordSchema.fromSchema(Transaction, "transaction") })
 */
export const fromSchema = <S extends Schema.Top>(schema: S, name = "record"): RecordSchema<S["Type"]> => {
  const decode = Schema.decodeUnknownExit(schema as unknown as Schema.Codec<S["Type"], unknown>)
  const columns = columnsOf(schema)
  return {
    name,
    fields: topLevelFields(schema),
    typed: schema,
    // CSV fields are text: the ones the Schema wants as numbers, booleans or JSON are read as such first.
    ...(columns === undefined ? {} : { columns }),
    validate: (input) => {
      const exit = decode(input, { errors: "all" })
      if (exit._tag === "Success") return { ok: true, value: exit.value }
      const reason = exit.cause.reasons[0]
      const error = reason !== undefined && reason._tag === "Fail" ? reason.error : undefined
      return {
        ok: false,
        message: error instanceof Schema.SchemaError ? formatIssue(error.issue) : String(exit.cause)
      }
    }
  }
}

/**
 * What happens to the fields of a source record that its schema does not name:
 * - `"drop"` (the default): they are removed; records have exactly the schema's fields.
 * - `"keep"`: they are passed on as they were read, beside the schema's validated fields.
 * - `"reject"`: the record is rejected (a dead letter naming the fields), so a change upstream cannot go unseen.
 */
export type UnknownFields = "drop" | "keep" | "reject"

/**
 * The record schema with a policy for the fields it does not name (see `UnknownFields`). A schema whose fields are
 * not known (not a struct) is returned as it is.
 *
 * @example
 * File.source({ path: "in.jsonl", schema: RecordSchema.withUnknownFields(transactions, "reject") })
 */
export const withUnknownFields = <A>(schema: RecordSchema<A>, policy: UnknownFields): RecordSchema<A> => {
  const fields = schema.fields
  if (policy === "drop" || fields === undefined) return schema
  const known = new Set(fields)
  const unknownOf = (input: unknown): ReadonlyArray<string> =>
    typeof input === "object" && input !== null && !Array.isArray(input)
      ? Object.keys(input).filter((k) => !known.has(k))
      : []
  if (policy === "reject")
    return {
      ...schema,
      validate: (input) => {
        const unknown = unknownOf(input)
        if (unknown.length === 0) return schema.validate(input)
        const shown = unknown.slice(0, 5).map((k) => JSON.stringify(k))
        return {
          ok: false,
          message: `unknown field${unknown.length > 1 ? "s" : ""} ${shown.join(", ")}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ""}: schema ${schema.name} has ${fields.join(", ")} ("unknown_fields": "reject")`
        }
      }
    }
  return {
    ...schema,
    fields: undefined,
    validate: (input) => {
      const result = schema.validate(input)
      const unknown = unknownOf(input)
      if (!result.ok || unknown.length === 0) return result
      const out: Record<string, unknown> = { ...(result.value as Record<string, unknown>) }
      // Defined, not assigned: a record's "__proto__" field stays a field and never becomes the prototype.
      for (const k of unknown)
        Object.defineProperty(out, k, {
          value: (input as Record<string, unknown>)[k],
          enumerable: true,
          writable: true,
          configurable: true
        })
      return { ok: true, value: out as A }
    }
  }
}
