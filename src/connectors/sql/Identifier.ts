/**
 * SQL identifiers (table, schema and column names) from configs and code: validated, then quoted per dialect, so a
 * name is always a name and never SQL. A name with quotes, semicolons or comment markers is legal (it is quoted); what
 * is rejected is what neither server can store: empty names, NUL characters, names too long, and (MySQL) names that
 * end with a space.
 *
 * Values never go through here: they are query parameters or COPY / LOAD DATA data. The only SQL text that is not
 * built here is what a pipeline's author writes on purpose (`query`, `where`, `predicates`).
 */
import * as BigDecimal from "effect/BigDecimal"

/** The SQL dialects effect-etl speaks. */
export type Dialect = "postgres" | "mysql"

/** A table, optionally in a schema (PostgreSQL) or database (MySQL). */
export interface TableRef {
  readonly schema?: string | undefined
  readonly name: string
}

const maxLength: Record<Dialect, number> = { postgres: 63, mysql: 64 }

/** Why a name cannot be an identifier, or `undefined` when it can. */
export const problem = (dialect: Dialect, name: string): string | undefined => {
  if (name.length === 0) return "an identifier cannot be empty"
  if (name.includes("\u0000")) return "an identifier cannot contain a NUL character"
  const length = dialect === "postgres" ? new TextEncoder().encode(name).length : name.length
  if (length > maxLength[dialect])
    return `${JSON.stringify(name)} is longer than ${maxLength[dialect]} ${dialect === "postgres" ? "bytes" : "characters"}, the ${dialect === "postgres" ? "PostgreSQL" : "MySQL"} limit`
  if (dialect === "mysql" && name.endsWith(" ")) return `${JSON.stringify(name)} ends with a space, which MySQL forbids`
  return undefined
}

/** True when `name` can be an identifier of the dialect. */
export const isValid = (dialect: Dialect, name: string): boolean => problem(dialect, name) === undefined

/** Quotes a (valid) identifier: `"a""b"` for PostgreSQL, `` `a``b` `` for MySQL. */
export const quote = (dialect: Dialect, name: string): string =>
  dialect === "postgres" ? `"${name.replaceAll('"', '""')}"` : `\`${name.replaceAll("`", "``")}\``

/** Quotes a table reference: `"schema"."table"`. */
export const quoteTable = (dialect: Dialect, ref: TableRef): string =>
  ref.schema === undefined ? quote(dialect, ref.name) : `${quote(dialect, ref.schema)}.${quote(dialect, ref.name)}`

/** A table reference as a person reads it: `schema.table`. */
export const show = (ref: TableRef): string => (ref.schema === undefined ? ref.name : `${ref.schema}.${ref.name}`)

/** The first problem among a table reference's names and column names, or `undefined`. */
export const check = (
  dialect: Dialect,
  ref: TableRef | undefined,
  columns: ReadonlyArray<string> = []
): string | undefined => {
  const names = [
    ...(ref === undefined ? [] : [ref.name]),
    ...(ref?.schema === undefined ? [] : [ref.schema]),
    ...columns
  ]
  for (const name of names) {
    const p = problem(dialect, name)
    if (p !== undefined) return p
  }
  return undefined
}

/**
 * A SQL literal of a value effect-etl produced itself (a partition bound, a high-water mark), for the one statement
 * that cannot take parameters: PostgreSQL's `COPY (SELECT ...) TO STDOUT`. Numbers must be finite, strings are quoted
 * with every `'` doubled (standard-conforming strings) and may not contain NUL, dates become ISO-8601 literals.
 * Anything else is `undefined`: it cannot be a literal.
 */
export const literal = (dialect: Dialect, value: unknown): string | undefined => {
  if (value === null || value === undefined) return "NULL"
  if (typeof value === "number") {
    return Number.isFinite(value) ? String(value) : undefined
  }
  if (typeof value === "bigint") return value.toString()
  if (typeof value === "boolean") return value ? "TRUE" : "FALSE"
  if (value instanceof Date) {
    const iso = value.toISOString()
    return dialect === "postgres" ? `'${iso}'::timestamptz` : `'${iso.slice(0, 23).replace("T", " ")}'`
  }
  if (BigDecimal.isBigDecimal(value)) return plainDecimal(value)
  if (typeof value === "string") {
    if (value.includes("\u0000")) return undefined
    return dialect === "postgres"
      ? `'${value.replaceAll("'", "''")}'`
      : `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`
  }
  return undefined
}

/** A BigDecimal in plain positional notation (`1000000`, `-0.00012`), never with an exponent. */
export const plainDecimal = (value: BigDecimal.BigDecimal): string => {
  const negative = value.value < 0n
  const digits = (negative ? -value.value : value.value).toString()
  const scale = value.scale
  let out: string
  if (scale <= 0) out = digits === "0" ? "0" : digits + "0".repeat(-scale)
  else if (digits.length > scale)
    out = `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`
  else out = `0.${"0".repeat(scale - digits.length)}${digits}`
  return negative ? `-${out}` : out
}
