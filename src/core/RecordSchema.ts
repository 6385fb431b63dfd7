/**
 * Record schemas as connectors use them: a name, the field names, a fast per-record validator that turns an encoded
 * (JSON-like) record into its typed form, and optionally the Avro schema for binary formats.
 *
 * Build one from an `effect/Schema` (`fromSchema`) or from an Avro schema in the registry (see `schema/`).
 */
import * as Schema from "effect/Schema"
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
  /** The Avro schema (parsed .avsc JSON), when the records have one. */
  readonly avro?: unknown
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

/**
 * A record schema from an `effect/Schema` codec: records are decoded from their encoded form.
 *
 * @example
 * const Transaction = Schema.Struct({ id: Schema.String, amount: Schema.Finite })
 * File.source({ path: "in.jsonl", schema: RecordSchema.fromSchema(Transaction, "transaction") })
 */
export const fromSchema = <S extends Schema.Top>(schema: S, name = "record"): RecordSchema<S["Type"]> => {
  const decode = Schema.decodeUnknownExit(schema as unknown as Schema.Codec<S["Type"], unknown>)
  return {
    name,
    fields: topLevelFields(schema),
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
