/**
 * Which fields of a record schema a table's column types already guarantee, decided once per read from the catalog,
 * so a SQL source checks each row only for what the columns cannot guarantee (an enum held in a `text` column, a
 * non-null field over a nullable column, a pattern, a range, ...).
 *
 * It relies on the client's reads giving each column the record value `SqlTypes` lists for its kind (`typedReads`),
 * with one exception handled per row: a decimal or timestamp the parser could not turn into a `BigDecimal` / `Date`
 * (`NaN`, `infinity`, BC dates) stays the server's text, so those fields keep a cheap type test.
 */
import * as BigDecimal from "effect/BigDecimal"
import * as SchemaModule from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import { knownCheckOf } from "../../../schema/AvroBridge.ts"
import type { Row } from "../SqlClient.ts"
import type { Column, ColumnKind } from "../SqlTypes.ts"

/** What a field needs per row: nothing, a type test of the parsed value, or the schema's check. */
type FieldNeed = { readonly _tag: "None" } | { readonly _tag: "Test"; readonly test: (v: unknown) => boolean } | null

/** The per-row work a read needs, decided once: which fields are guaranteed, and a test of the rest. */
export interface RowCheck {
  readonly guaranteed: ReadonlyArray<string>
  /** The fields still checked against their schema on every row. */
  readonly validated: ReadonlyArray<string>
  /** `true` when a row is valid; `undefined` when the column types guarantee every field (no per-row work). */
  readonly check: ((row: Row) => boolean) | undefined
}

const stringKinds: ReadonlySet<ColumnKind> = new Set(["text", "date", "time", "uuid"])
const integerKinds: ReadonlySet<ColumnKind> = new Set(["int", "bigint"])
const dateRun = SchemaModule.Date.ast._tag === "Declaration" ? SchemaModule.Date.ast.run : undefined
const bigDecimalRun = SchemaModule.BigDecimal.ast._tag === "Declaration" ? SchemaModule.BigDecimal.ast.run : undefined

const numericOf = (dbType: string): { readonly precision: number; readonly scale: number } | undefined => {
  const m = /^(?:numeric|decimal)\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)/i.exec(dbType)
  return m === null ? undefined : { precision: Number(m[1]), scale: Number(m[2] ?? 0) }
}

const isDate = (v: unknown) => v instanceof Date && !Number.isNaN(v.getTime())

/** What the column's values need to satisfy a (non-null) type, or `null` when the column does not guarantee it. */
const needOf = (ast: SchemaAST.AST, column: Column): FieldNeed => {
  const checks = ast.checks ?? []
  if (checks.length > 1) return null
  const known = checks.length === 1 ? knownCheckOf(checks[0]!) : undefined
  if (checks.length === 1 && known === undefined) return null
  switch (ast._tag) {
    case "String":
      if (known === undefined) return stringKinds.has(column.kind) ? { _tag: "None" } : null
      return known.type === "uuid" && column.kind === "uuid" ? { _tag: "None" } : null
    case "Number":
      if (!integerKinds.has(column.kind)) return null
      // The int kind is 32-bit when signed (PostgreSQL's smallint and integer, MySQL's up to int); MySQL's
      // `int unsigned` goes beyond. An unsafe bigint never reaches a record (the reads reject it).
      return known === undefined ||
        known.type === "long" ||
        (known.type === "int" && column.kind === "int" && !/\bunsigned\b/i.test(column.dbType))
        ? { _tag: "None" }
        : null
    case "Boolean":
      return known === undefined && column.kind === "boolean" ? { _tag: "None" } : null
    case "Declaration": {
      if (ast.run === dateRun && known === undefined)
        return column.kind === "timestamp" || column.kind === "timestamptz" ? { _tag: "Test", test: isDate } : null
      if (ast.run === bigDecimalRun && known !== undefined && known.type === "decimal" && column.kind === "decimal") {
        const numeric = numericOf(column.dbType)
        return numeric !== undefined &&
          numeric.scale <= known.scale &&
          numeric.precision - numeric.scale <= known.precision - known.scale
          ? { _tag: "Test", test: BigDecimal.isBigDecimal }
          : null
      }
      return null
    }
    default:
      return null
  }
}

/** A field's per-row need over its column: `X | null` over any column guaranteeing X, `X` over a NOT NULL one. */
const fieldNeed = (ast: SchemaAST.AST, column: Column): FieldNeed => {
  if (ast._tag === "Union" && ast.checks === undefined && ast.types.length === 2) {
    const i = ast.types.findIndex((t) => t._tag === "Null" && t.checks === undefined)
    if (i === -1) return null
    const need = needOf(ast.types[1 - i]!, column)
    return need === null || need._tag === "None" ? need : { _tag: "Test", test: (v) => v === null || need.test(v) }
  }
  return column.nullable === false ? needOf(ast, column) : null
}

/**
 * The per-row check of a read of `columns` (the catalog's description of the table's columns read) into records of
 * `schema`, trusting only the columns `typed` accepts (all when absent); `undefined` when the whole record must be validated (not a plain struct, a struct-level check, a field
 * that is not a column read).
 */
export const plan = (
  schema: SchemaModule.Top,
  columns: ReadonlyArray<Column>,
  typed?: (column: Column) => boolean
): RowCheck | undefined => {
  const ast = SchemaModule.toType(schema).ast
  if (ast._tag !== "Objects" || ast.checks !== undefined || ast.indexSignatures.length > 0) return undefined
  const fields = (schema as { readonly fields?: SchemaModule.Struct.Fields }).fields
  if (fields === undefined) return undefined
  const byName = new Map(columns.map((c) => [c.name, c]))
  const guaranteed: Array<string> = []
  const validated: Array<string> = []
  const tests: Array<readonly [string, (v: unknown) => boolean]> = []
  for (const p of ast.propertySignatures) {
    const name = p.name
    if (typeof name !== "string" || !(name in fields)) return undefined
    const column = byName.get(name)
    if (column === undefined) return undefined
    const need = typed === undefined || typed(column) ? fieldNeed(p.type, column) : null
    if (need === null) validated.push(name)
    else {
      guaranteed.push(name)
      if (need._tag === "Test") tests.push([name, need.test])
    }
  }
  if (validated.length === 0 && tests.length === 0) return { guaranteed, validated, check: undefined }
  const rest =
    validated.length === 0
      ? undefined
      : SchemaModule.is(
          SchemaModule.toType(SchemaModule.Struct(Object.fromEntries(validated.map((f) => [f, fields[f]!]))))
        )
  const n = tests.length
  return {
    guaranteed,
    validated,
    check: (row) => {
      for (let i = 0; i < n; i++) if (!tests[i]![1](row[tests[i]![0]])) return false
      return rest === undefined || rest(row)
    }
  }
}
