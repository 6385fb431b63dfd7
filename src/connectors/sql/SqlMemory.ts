/**
 * An in-memory database implementing the SQL client contract, for unit tests of pipelines that read and write tables:
 * deterministic (rows keep insertion order, no clock, no randomness) and with its state exposed for assertions.
 *
 * It behaves like the real servers where a pipeline can observe it: overwrite and upsert are invisible until commit,
 * upsert keys must be a unique key of the table, partitioned and incremental reads select the same rows. It cannot
 * run SQL: a read's `where`, a partition predicate or a `query` must be registered with `memory({ conditions,
 * queries })` as a JavaScript function or a fixed result.
 *
 * @example
 * const db = SqlMemory.memory({ tables: { orders: { rows: [{ id: 1, total: 10 }], keys: [["id"]] } } })
 * // ... run a pipeline with Postgres.layerMemory(db) ...
 * assert.strictEqual(db.tables.get("orders")!.rows.length, 1)
 */
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Checkpoint from "../../core/Checkpoint.ts"
import { type Dialect, show, type TableRef } from "./Identifier.ts"
import type {
  Bounds,
  LoadRequest,
  OffsetRow,
  RangeCondition,
  Relation,
  Row,
  SqlClient,
  TableInfo
} from "./SqlClient.ts"
import { movedMessage } from "./SqlClient.ts"
import { reasons, type SqlErrorReason } from "./SqlError.ts"
import type { Column, ColumnDef, ColumnKind } from "./SqlTypes.ts"

/** A table in a memory database. */
export interface MemoryTable {
  readonly columns: Array<Column>
  rows: Array<Row>
  readonly uniqueKeys: Array<ReadonlyArray<string>>
}

/** The state of a memory database; mutate it in a test's setup, read it in assertions. */
export interface MemoryDatabase {
  /** Tables by `name` or `schema.name`. */
  readonly tables: Map<string, MemoryTable>
  /** Results of `query` sources, by their exact SQL text. */
  readonly queries: Map<string, ReadonlyArray<Row>>
  /** Row predicates standing for SQL conditions (`where`, partition predicates), by their exact text. */
  readonly conditions: Map<string, (row: Row) => boolean>
  /** Every load committed, in order: table, mode and rows written. */
  readonly commits: Array<{ readonly table: string; readonly mode: string; readonly written: number }>
}

/** A table of the initial state: rows, and optionally column kinds (inferred from the rows when left out) and keys. */
export interface MemoryTableInit {
  readonly rows?: ReadonlyArray<Row>
  readonly columns?: Readonly<Record<string, ColumnKind>>
  /** Unique keys: the first one is the primary key. */
  readonly keys?: ReadonlyArray<ReadonlyArray<string>>
}

const kindOf = (value: unknown): ColumnKind => {
  if (typeof value === "number") return Number.isInteger(value) ? "bigint" : "float"
  if (typeof value === "string") return "text"
  if (typeof value === "boolean") return "boolean"
  if (value instanceof Date) return "timestamptz"
  if (value instanceof Uint8Array) return "bytes"
  if (BigDecimal.isBigDecimal(value)) return "decimal"
  if (Array.isArray(value)) return "array"
  if (typeof value === "object" && value !== null) return "json"
  return "unknown"
}

/** Builds a memory database from tables, query results and condition functions. */
export const memory = (init?: {
  readonly tables?: Readonly<Record<string, MemoryTableInit>>
  readonly queries?: Readonly<Record<string, ReadonlyArray<Row>>>
  readonly conditions?: Readonly<Record<string, (row: Row) => boolean>>
}): MemoryDatabase => {
  const tables = new Map<string, MemoryTable>()
  for (const [name, t] of Object.entries(init?.tables ?? {})) {
    const rows = (t.rows ?? []).map((r) => ({ ...r }))
    const kinds: Record<string, ColumnKind> = {}
    for (const row of rows)
      for (const [k, v] of Object.entries(row)) if (kinds[k] === undefined && v !== null) kinds[k] = kindOf(v)
    for (const row of rows) for (const k of Object.keys(row)) kinds[k] ??= "unknown"
    Object.assign(kinds, t.columns ?? {})
    tables.set(name, {
      columns: Object.entries(kinds).map(([n, kind]) => ({ name: n, kind, dbType: kind })),
      rows,
      uniqueKeys: (t.keys ?? []).map((k) => [...k])
    })
  }
  return {
    tables,
    queries: new Map(Object.entries(init?.queries ?? {})),
    conditions: new Map(Object.entries(init?.conditions ?? {})),
    commits: []
  }
}

/** Orders two record values of the same kind (numbers, strings, Dates, BigDecimals, bigints). */
export const compareValues = (a: unknown, b: unknown): number => {
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime()
  if (BigDecimal.isBigDecimal(a) || BigDecimal.isBigDecimal(b)) {
    const x = BigDecimal.isBigDecimal(a) ? a : BigDecimal.fromNumberUnsafe(Number(a))
    const y = BigDecimal.isBigDecimal(b) ? b : BigDecimal.fromNumberUnsafe(Number(b))
    return BigDecimal.isLessThan(x, y) ? -1 : BigDecimal.equals(x, y) ? 0 : 1
  }
  if (a instanceof Date || b instanceof Date) {
    const x = a instanceof Date ? a.getTime() : Date.parse(String(a))
    const y = b instanceof Date ? b.getTime() : Date.parse(String(b))
    return x - y
  }
  if (typeof a === "number" && typeof b === "number") return a - b
  if (typeof a === "bigint" || typeof b === "bigint") {
    const x = BigInt(a as number)
    const y = BigInt(b as number)
    return x < y ? -1 : x > y ? 1 : 0
  }
  const x = String(a)
  const y = String(b)
  return x < y ? -1 : x > y ? 1 : 0
}

/** Whether a row satisfies a range condition. */
export const inRange = (row: Row, range: RangeCondition): boolean => {
  const v = row[range.column]
  if (v === null || v === undefined) return range.orNull === true
  if (range.lower !== undefined) {
    const c = compareValues(v, range.lower)
    if (c < 0 || (c === 0 && range.lowerInclusive === false)) return false
  }
  if (range.upper !== undefined) {
    const c = compareValues(v, range.upper)
    if (c > 0 || (c === 0 && range.upperInclusive !== true)) return false
  }
  return true
}

const sameSet = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) =>
  a.length === b.length && a.every((x) => b.includes(x))

/**
 * A SQL client over a memory database. `makeError` builds the connector's own error type, so that a memory layer
 * fails exactly like the real one.
 */
export const make = <E>(
  dialect: Dialect,
  connection: string,
  db: MemoryDatabase,
  makeError: (reason: SqlErrorReason, operation: string, message: string) => E
): SqlClient<E> => {
  const getTable = (ref: TableRef, operation: string) => {
    const t = db.tables.get(show(ref))
    return t === undefined
      ? Effect.fail(makeError(reasons.UndefinedTable, operation, `Table ${show(ref)} does not exist`))
      : Effect.succeed(t)
  }
  const rowsOf = (relation: Relation, operation: string): Effect.Effect<ReadonlyArray<Row>, E> => {
    if (relation._tag === "Table") return Effect.map(getTable(relation.ref, operation), (t) => t.rows)
    const rows = db.queries.get(relation.sql)
    return rows === undefined
      ? Effect.fail(
          makeError(
            reasons.InvalidRequest,
            operation,
            `The memory database cannot run SQL; register the query's result with memory({ queries: { ${JSON.stringify(relation.sql)}: rows } })`
          )
        )
      : Effect.succeed(rows)
  }
  const predicates = (conditions: ReadonlyArray<string>, operation: string) => {
    const out: Array<(row: Row) => boolean> = []
    for (const c of conditions) {
      const f = db.conditions.get(c)
      if (f === undefined)
        return Effect.fail(
          makeError(
            reasons.InvalidRequest,
            operation,
            `The memory database cannot run SQL; register the condition with memory({ conditions: { ${JSON.stringify(c)}: (row) => ... } })`
          )
        )
      out.push(f)
    }
    return Effect.succeed(out)
  }
  const columnsOf = (relation: Relation, operation: string): Effect.Effect<ReadonlyArray<Column>, E> =>
    relation._tag === "Table"
      ? Effect.map(getTable(relation.ref, operation), (t) => t.columns)
      : Effect.map(rowsOf(relation, operation), (rows) => {
          const first = rows[0] ?? {}
          return Object.entries(first).map(([name, v]) => ({ name, kind: kindOf(v), dbType: kindOf(v) }))
        })

  return {
    dialect,
    connection,
    describe: (relation) => columnsOf(relation, "describe"),
    table: (ref) =>
      Effect.sync((): TableInfo | undefined => {
        const t = db.tables.get(show(ref))
        return t === undefined ? undefined : { ref, columns: t.columns, uniqueKeys: t.uniqueKeys }
      }),
    createTable: (ref, columns: ReadonlyArray<ColumnDef>, primaryKey) =>
      Effect.sync(() => {
        if (db.tables.has(show(ref))) return
        db.tables.set(show(ref), {
          columns: columns.map((c) => ({
            name: c.name,
            kind: kindOfType(c.type),
            dbType: c.type,
            nullable: c.nullable,
            hasDefault: false
          })),
          rows: [],
          uniqueKeys: primaryKey.length === 0 ? [] : [[...primaryKey]]
        })
      }),
    estimateRows: (ref) => Effect.sync(() => db.tables.get(show(ref))?.rows.length),
    bounds: (relation, column, conditions) =>
      Effect.gen(function* () {
        const rows = yield* rowsOf(relation, "bounds")
        const preds = yield* predicates(conditions, "bounds")
        const columns = yield* columnsOf(relation, "bounds")
        let min: unknown = null
        let max: unknown = null
        for (const row of rows) {
          if (!preds.every((p) => p(row))) continue
          const v = row[column]
          if (v === null || v === undefined) continue
          if (min === null || compareValues(v, min) < 0) min = v
          if (max === null || compareValues(v, max) > 0) max = v
        }
        const kind = columns.find((c) => c.name === column)?.kind ?? "unknown"
        return { min, max, kind } satisfies Bounds
      }),
    read: (request) =>
      Stream.unwrap(
        Effect.gen(function* () {
          const rows = yield* rowsOf(request.relation, "read")
          const preds = yield* predicates(request.conditions ?? [], "read")
          const ranges = request.ranges ?? []
          const selected: Array<Row> = []
          for (const row of rows) {
            if (!preds.every((p) => p(row)) || !ranges.every((r) => inRange(row, r))) continue
            if (request.columns === undefined) selected.push({ ...row })
            else {
              const out: Record<string, unknown> = {}
              for (const c of request.columns) out[c] = row[c] ?? null
              selected.push(out)
            }
          }
          const chunks: Array<{ rows: ReadonlyArray<Row>; rejected: [] }> = []
          for (let i = 0; i < selected.length; i += request.batchSize)
            chunks.push({ rows: selected.slice(i, i + request.batchSize), rejected: [] })
          return Stream.fromIterable(chunks)
        })
      ),
    load: (request: LoadRequest) =>
      Effect.gen(function* () {
        const key = show(request.table)
        const target = yield* getTable(request.table, "load")
        const names = request.columns.map((c) => c.name)
        const staged: Array<Row> = []
        const project = (row: Row): Row => {
          const out: Record<string, unknown> = {}
          for (const c of target.columns) out[c.name] = names.includes(c.name) ? (row[c.name] ?? null) : null
          return out
        }
        let positions: ReadonlyArray<OffsetRow> = []
        return {
          ...(request.offsets === undefined
            ? {}
            : {
                positions: (rows: ReadonlyArray<OffsetRow>) => {
                  positions = rows
                }
              }),
          write: (rows) =>
            Effect.sync(() => {
              if (request.transaction === "batch" && request.mode === "append")
                for (const row of rows) target.rows.push(project(row))
              else for (const row of rows) staged.push(project(row))
            }),
          commit: Effect.suspend(() => {
            const offsets = request.offsets === undefined ? undefined : db.tables.get(show(request.offsets))
            if (offsets !== undefined && positions.length > 0) {
              const stored = new Map<string, string>()
              for (const r of offsets.rows)
                if (r.pipeline === positions[0]!.pipeline && r.target === positions[0]!.target)
                  stored.set(String(r.part), String(r.position))
              const moved = Checkpoint.moved(positions, stored)
              if (moved !== undefined)
                return Effect.fail(
                  makeError(reasons.PositionsMoved, "load", movedMessage(`memory table ${key}`, moved))
                )
            }
            // A split run's finish: the parts' staging tables, in order, after what was written.
            for (const ref of request.staged ?? []) {
              const table = db.tables.get(show(ref))
              if (table === undefined)
                return Effect.fail(
                  makeError(reasons.UndefinedTable, "load", `The staging table ${show(ref)} does not exist`)
                )
              for (const row of table.rows) staged.push(project(row))
            }
            const written = staged.length
            let inserted = 0
            let updated = 0
            if (request.mode === "append") {
              for (const row of staged) target.rows.push(row)
              inserted = written
            } else if (request.mode === "overwrite") {
              target.rows = staged.slice()
              inserted = written
            } else {
              const index = new Map<string, number>()
              const keyOf = (row: Row) => JSON.stringify(request.keys.map((k) => String(row[k])))
              for (let i = 0; i < target.rows.length; i++) index.set(keyOf(target.rows[i]!), i)
              for (const row of staged) {
                const k = keyOf(row)
                const at = index.get(k)
                if (at === undefined) {
                  index.set(k, target.rows.length)
                  target.rows.push(row)
                  inserted++
                } else {
                  // Like ON CONFLICT DO UPDATE: only the columns the load writes change.
                  const merged: Record<string, unknown> = { ...target.rows[at]! }
                  for (const name of names) merged[name] = row[name]
                  target.rows[at] = merged
                  updated++
                }
              }
            }
            if (offsets !== undefined)
              for (const p of positions) {
                const at = offsets.rows.findIndex(
                  (r) => r.pipeline === p.pipeline && r.target === p.target && r.part === p.part
                )
                const row = {
                  pipeline: p.pipeline,
                  target: p.target,
                  part: p.part,
                  position: p.position,
                  updated_at: new Date()
                }
                if (at === -1) offsets.rows.push(row)
                else offsets.rows[at] = row
              }
            db.commits.push({ table: key, mode: request.mode, written })
            return Effect.succeed({ written, inserted, updated })
          })
        }
      }),
    stage: (request, stage) =>
      Effect.gen(function* () {
        const target = yield* getTable(request.table, "stage")
        const names = new Set(request.columns.map((c) => c.name))
        const key = show(stage)
        db.tables.delete(key)
        const rows: Array<Row> = []
        return {
          write: (written) =>
            Effect.sync(() => {
              for (const row of written) {
                const out: Record<string, unknown> = {}
                for (const name of names) out[name] = row[name] ?? null
                rows.push(out)
              }
            }),
          commit: Effect.sync(() => {
            db.tables.set(key, {
              columns: target.columns.filter((c) => names.has(c.name)),
              rows: rows.slice(),
              uniqueKeys: []
            })
            return { written: rows.length, inserted: rows.length }
          })
        }
      }),
    dropTables: (refs) =>
      Effect.sync(() => {
        for (const ref of refs) db.tables.delete(show(ref))
      })
  }
}

const kindOfType = (type: string): ColumnKind => {
  const t = type.toLowerCase()
  if (t.endsWith("[]")) return "array"
  if (/^(integer|int|smallint|tinyint|mediumint)\b/.test(t)) return "int"
  if (t.startsWith("bigint")) return "bigint"
  if (/^(real|double|float)/.test(t)) return "float"
  if (/^(numeric|decimal)/.test(t)) return "decimal"
  if (t.startsWith("bool")) return "boolean"
  if (t.startsWith("timestamptz")) return "timestamptz"
  if (/^(timestamp|datetime)/.test(t)) return "timestamp"
  if (t === "date") return "date"
  if (t === "uuid") return "uuid"
  if (t.startsWith("json")) return "json"
  if (/^(bytea|blob|longblob|varbinary|binary)/.test(t)) return "bytes"
  return "text"
}

/** The column kind of a SQL type name, as used when the memory database creates a table. */
export const kindOfSqlType = kindOfType

/** Whether `keys` is exactly one of the table's unique keys. */
export const isUniqueKey = (info: TableInfo, keys: ReadonlyArray<string>): boolean =>
  info.uniqueKeys.some((k) => sameSet(k, keys))
