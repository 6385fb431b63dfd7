/**
 * What a SQL sink checks of its target table before the first row, in terms of record fields and table columns: every
 * field the records carry has a column; every column the server cannot fill by itself (NOT NULL, no default, not an
 * identity or generated column) is filled by a field; upsert keys are a unique key of the table and are written.
 *
 * The checks are pure functions of the table's description, so a sink runs them when it opens (or on its first batch
 * when nothing told it the record fields ahead) and `Sink.check` runs them without writing, for `validate --connect`.
 * A field the records do not carry is never written: an append or overwrite leaves the column to its default, an
 * upsert leaves it as it is.
 */
import * as Identifier from "./Identifier.ts"
import type { TableInfo } from "./SqlClient.ts"
import { reasons, type SqlErrorReason } from "./SqlError.ts"
import { isUniqueKey } from "./SqlMemory.ts"
import type { Column, ColumnDef } from "./SqlTypes.ts"

/** Why a table cannot take the records, for the sink's error. */
export interface Problem {
  readonly reason: SqlErrorReason
  readonly message: string
}

/** What is written: the table's columns for the record fields, in the fields' order. */
export interface Plan {
  readonly columns: ReadonlyArray<Column>
}

const names = (list: ReadonlyArray<string>) => list.map((n) => JSON.stringify(n)).join(", ")

const plural = (n: number, one: string, many: string) => (n === 1 ? one : many)

/** The columns a row must give a value: NOT NULL, without a default, not filled by the server. */
export const requiredColumns = (columns: ReadonlyArray<Column>): ReadonlyArray<Column> =>
  columns.filter((c) => c.nullable === false && c.hasDefault !== true)

/** The upsert keys against the table, before the record fields are known. */
export const keysProblem = (
  info: TableInfo,
  mode: "append" | "overwrite" | "upsert",
  keys: ReadonlyArray<string>
): Problem | undefined => {
  if (mode !== "upsert" || isUniqueKey(info, keys)) return undefined
  const where = Identifier.show(info.ref)
  const list = (k: ReadonlyArray<string>) => `(${k.join(", ")})`
  return {
    reason: reasons.InvalidKeys,
    message: `The upsert keys ${list(keys)} are not the primary key or a unique index of ${where}; ${
      info.uniqueKeys.length === 0
        ? "it has no unique key"
        : `its unique keys are ${info.uniqueKeys.map(list).join(", ")}`
    }`
  }
}

/**
 * The columns written for records carrying `fields`, or why the table cannot take them: a field without a column, a
 * required column no field fills, an upsert key that is not written.
 */
export const plan = (
  info: TableInfo,
  fields: ReadonlyArray<string>,
  mode: "append" | "overwrite" | "upsert",
  keys: ReadonlyArray<string>
): Plan | Problem => {
  const where = Identifier.show(info.ref)
  const byName = new Map(info.columns.map((c) => [c.name, c]))
  const columnList = info.columns.map((c) => c.name).join(", ")
  const unknown = fields.filter((f) => !byName.has(f))
  if (unknown.length > 0)
    return {
      reason: reasons.UndefinedColumn,
      message: `The record ${plural(unknown.length, "field", "fields")} ${names(unknown)} ${plural(unknown.length, "has", "have")} no column in ${where}; its columns are ${columnList}`
    }
  const written = new Set(fields)
  const unfilled = requiredColumns(info.columns).filter((c) => !written.has(c.name))
  if (unfilled.length > 0)
    return {
      reason: reasons.UndefinedColumn,
      message: `${where} requires ${plural(unfilled.length, "the column", "the columns")} ${names(unfilled.map((c) => c.name))} (NOT NULL, no default), but no record field fills ${plural(unfilled.length, "it", "them")}; the records have ${fields.length === 0 ? "no fields" : fields.join(", ")}`
    }
  if (mode === "upsert") {
    const notWritten = keys.filter((k) => !written.has(k))
    if (notWritten.length > 0)
      return {
        reason: reasons.InvalidKeys,
        message: `The upsert ${plural(notWritten.length, "key", "keys")} ${names(notWritten)} of ${where} ${plural(notWritten.length, "is", "are")} not among the record fields (${fields.join(", ")})`
      }
  }
  return { columns: fields.map((f) => byName.get(f)!) }
}

/** True for the problem side of {@link plan}. */
export const isProblem = (u: Plan | Problem): u is Problem => "reason" in u

/** A table as it would be created from column definitions (for checking a target that does not exist yet). */
export const toBeCreated = (
  ref: Identifier.TableRef,
  defs: ReadonlyArray<ColumnDef>,
  primaryKey: ReadonlyArray<string>
): TableInfo => ({
  ref,
  columns: defs.map((d) => ({
    name: d.name,
    kind: "unknown",
    dbType: d.type,
    nullable: d.nullable,
    hasDefault: false
  })),
  uniqueKeys: primaryKey.length === 0 ? [] : [primaryKey]
})

/**
 * The fields of a batch of records, in the order they first appear: what a sink writes when nothing told it the
 * record fields before its first batch.
 */
export const fieldsOf = (records: ReadonlyArray<object>): ReadonlyArray<string> => {
  const seen = new Set<string>()
  for (let i = 0; i < records.length; i++) for (const k of Object.keys(records[i]!)) seen.add(k)
  return Array.from(seen)
}

/**
 * The first field of a record outside `written`, or `undefined`: a later batch of a sink whose fields were taken from
 * its first batch must not carry fields that are not written.
 */
export const strayField = (records: ReadonlyArray<object>, written: ReadonlySet<string>): string | undefined => {
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as Readonly<Record<string, unknown>>
    for (const k in r) if (!written.has(k) && Object.hasOwn(r, k)) return k
  }
  return undefined
}
