/**
 * The MySQL / MariaDB client over `mysql2`: the only file that imports the driver.
 *
 * - Reads stream a SELECT row by row from the socket (`query().stream()`, with backpressure) and hand them on in
 *   chunks, so memory stays bounded whatever the table's size.
 * - Loads stream `LOAD DATA LOCAL INFILE` from the batches as they come (about 2.7× faster than multi-row INSERTs),
 *   inside a transaction: append loads the table itself; overwrite loads a staging table created `LIKE` the target and
 *   swaps it in with one atomic `RENAME TABLE`; upsert loads a temporary table and merges it with one
 *   `INSERT ... SELECT ... ON DUPLICATE KEY UPDATE`. With `LOCAL`, the server turns data errors and duplicate keys into
 *   warnings; every load is checked for them and fails (rolling back) rather than keep a truncated or skipped row.
 * - A staging table is a real table that a killed run leaves behind: it carries its run's tag, the run's session holds
 *   a named lock of that tag, and every load first drops the staging tables of its target whose lock is free.
 * - Every driver failure is mapped to a reason by `classifyError` (MySQL errno, socket codes).
 *
 * Sessions use `time_zone = '+00:00'`, so DATETIME and TIMESTAMP values are read and written as UTC.
 */
import { createRequire } from "node:module"
import { PassThrough } from "node:stream"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type mysql from "mysql2"
import * as Checkpoint from "../../core/Checkpoint.ts"
import * as Identifier from "../sql/Identifier.ts"
import type {
  Bounds,
  Loader,
  LoadRequest,
  OffsetRow,
  ReadChunk,
  ReadRequest,
  Relation,
  Row,
  TableInfo
} from "../sql/SqlClient.ts"
import { movedMessage } from "../sql/SqlClient.ts"
import { type ConnectionOptions, reveal } from "../sql/SqlConfig.ts"
import { driverFields, reasons, type SqlErrorReason, scrub, socketReason } from "../sql/SqlError.ts"
import {
  type Column,
  type ColumnKind,
  createTableSql,
  makeRowEncoder,
  parseBigint,
  parseDecimal,
  parseTimestamp,
  unsafeIntegerMessage
} from "../sql/SqlTypes.ts"
import { type MysqlClient, MysqlError, type Shape, tag } from "./MysqlClient.ts"

// The driver is loaded with the first connection, not with this module: a command or a run that uses no MySQL (most
// of them) does not pay for loading it. mysql2 is CommonJS, so `require` loads it synchronously.
const requireDriver = createRequire(import.meta.url)
let driverModule: typeof mysql | undefined
const driver = (): typeof mysql => (driverModule ??= requireDriver("mysql2") as typeof mysql)

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/** Maps a `mysql2` error (its errno, or a socket / protocol code) to a reason. */
export const classifyError = (cause: unknown): SqlErrorReason => {
  const { code, errno, message } = driverFields(cause)
  const socket = socketReason(code)
  if (socket !== undefined) return socket
  switch (errno) {
    case 1213:
      return reasons.Deadlock
    case 1205:
      return reasons.LockTimeout
    case 1040:
    case 1203:
      return reasons.TooManyConnections
    case 1053:
    case 1152:
    case 1158:
    case 1159:
    case 1160:
    case 1161:
    case 1317:
    case 1927:
    case 2006:
    case 2013:
      return reasons.ConnectionLost
    case 2002:
    case 2003:
    case 1129:
      return reasons.ConnectionRefused
    case 3024:
    case 1969:
      return reasons.Timeout
    case 1045:
    case 1698:
      return reasons.AuthenticationFailed
    case 1044:
    case 1142:
    case 1143:
    case 1227:
    case 1290:
      return reasons.PermissionDenied
    case 1062:
    case 1586:
      return reasons.UniqueViolation
    case 1048:
    case 1216:
    case 1217:
    case 1451:
    case 1452:
    case 3819:
    case 4025:
      return reasons.ConstraintViolation
    case 1064:
    case 1149:
      return reasons.SyntaxError
    case 1146:
      return reasons.UndefinedTable
    case 1054:
      return reasons.UndefinedColumn
    case 1049:
      return reasons.InvalidRequest
    case 1264:
    case 1265:
    case 1292:
    case 1366:
    case 1406:
    case 3140:
      return reasons.InvalidData
  }
  if (/Connection lost|closed state|Can't add new command when connection is in closed state/i.test(message))
    return reasons.ConnectionLost
  return reasons.Unknown
}

const toError = (operation: string) => (cause: unknown) => {
  const reason = classifyError(cause)
  const { code, errno, message } = driverFields(cause)
  const driverCode = errno !== undefined ? String(errno) : code
  return new MysqlError({
    reason,
    operation,
    message: `MySQL: cannot ${operation}: ${scrub(message)}`,
    ...(driverCode === undefined ? {} : { code: driverCode }),
    cause
  })
}

const attempt = <A>(operation: string, f: () => Promise<A>): Effect.Effect<A, MysqlError> =>
  Effect.tryPromise({ try: f, catch: toError(operation) })

// -----------------------------------------------------------------------------
// Types
// -----------------------------------------------------------------------------

interface FieldInfo {
  readonly name: string
  readonly columnType?: number
  readonly columnLength?: number
  readonly characterSet?: number
  readonly extendedFormat?: string
}

/** The column kind of a result field (its protocol type, length, character set and MariaDB format). */
export const kindOfField = (f: FieldInfo): ColumnKind => {
  if (f.extendedFormat === "json") return "json"
  switch (f.columnType) {
    case 1:
      return f.columnLength === 1 ? "boolean" : "int"
    case 2:
    case 3:
    case 9:
    case 13:
      return "int"
    case 8:
      return "bigint"
    case 4:
    case 5:
      return "float"
    case 0:
    case 246:
      return "decimal"
    case 7:
      return "timestamptz"
    case 12:
      return "timestamp"
    case 10:
      return "date"
    case 11:
      return "time"
    case 245:
      return "json"
    case 16:
      return "bytes"
    case 249:
    case 250:
    case 251:
    case 252:
    case 253:
    case 254:
      return f.characterSet === 63 ? "bytes" : "text"
    default:
      return "unknown"
  }
}

/** The column kind of an information_schema column type. */
export const kindOfColumnType = (dataType: string, columnType: string): ColumnKind => {
  const t = dataType.toLowerCase()
  if (t === "tinyint" && /^tinyint\(1\)/i.test(columnType)) return "boolean"
  if (["tinyint", "smallint", "mediumint", "int", "integer", "year"].includes(t)) return "int"
  if (t === "bigint") return "bigint"
  if (["float", "double", "real"].includes(t)) return "float"
  if (["decimal", "numeric"].includes(t)) return "decimal"
  if (t === "datetime") return "timestamp"
  if (t === "timestamp") return "timestamptz"
  if (t === "date") return "date"
  if (t === "time") return "time"
  if (t === "json") return "json"
  if (t === "uuid") return "uuid"
  if (["binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit"].includes(t)) return "bytes"
  return "text"
}

/**
 * The catalog columns whose reads give the record value their kind lists (`SqlClient.typedReads`): all but the `text`
 * kind's, which {@link kindOfColumnType} also gives types the driver reads as objects or buffers (spatial types, ...):
 * of those, only the string types count.
 */
export const typedColumn = (column: Column): boolean =>
  column.kind !== "text" || /^(?:(?:var)?char|(?:tiny|medium|long)?text|enum|set)\b/i.test(column.dbType)

type Convert = (value: unknown) => unknown

const asText = (v: unknown) => (typeof v === "string" ? v : v instanceof Buffer ? v.toString("utf8") : String(v))

/** The converter of a driver value (dates and big numbers arrive as strings) to a record value. */
export const converterOf = (kind: ColumnKind): Convert | undefined => {
  switch (kind) {
    case "bigint":
      return (v) => (typeof v === "number" ? v : parseBigint(asText(v)))
    case "decimal":
      return (v) => parseDecimal(asText(v)) ?? v
    case "boolean":
      return (v) => v === 1 || v === "1" || v === true
    case "timestamp":
    case "timestamptz":
      return (v) => (v instanceof Date ? v : (parseTimestamp(asText(v)) ?? v))
    case "json":
      return (v) => (typeof v === "string" ? JSON.parse(v) : v instanceof Buffer ? JSON.parse(v.toString("utf8")) : v)
    case "bytes":
      return (v) =>
        v instanceof Uint8Array
          ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
          : new TextEncoder().encode(String(v))
    case "date":
    case "time":
    case "text":
    case "uuid":
      return (v) => (typeof v === "string" ? v : asText(v))
    default:
      return undefined
  }
}

// -----------------------------------------------------------------------------
// SQL text
// -----------------------------------------------------------------------------

const q = (name: string) => Identifier.quote("mysql", name)
const qt = (ref: Identifier.TableRef) => Identifier.quoteTable("mysql", ref)

const fromClause = (relation: Relation) =>
  relation._tag === "Table" ? qt(relation.ref) : `(${relation.sql}) AS \`etl_query\``

const selectList = (columns: ReadonlyArray<string> | undefined) =>
  columns === undefined || columns.length === 0 ? "*" : columns.map(q).join(", ")

/** The WHERE clause of a read and its parameter values. */
const whereClause = (
  request: Pick<ReadRequest, "conditions" | "ranges">
): { readonly sql: string; readonly values: ReadonlyArray<unknown> } => {
  const parts: Array<string> = (request.conditions ?? []).map((c) => `(${c})`)
  const values: Array<unknown> = []
  const param = (v: unknown) => {
    values.push(
      v instanceof Date
        ? v.toISOString().slice(0, 23).replace("T", " ")
        : typeof v === "object" && v !== null
          ? Identifier.literal("mysql", v)
          : v
    )
    return "?"
  }
  for (const r of request.ranges ?? []) {
    const col = q(r.column)
    const range: Array<string> = []
    if (r.lower !== undefined) range.push(`${col} ${r.lowerInclusive === false ? ">" : ">="} ${param(r.lower)}`)
    if (r.upper !== undefined) range.push(`${col} ${r.upperInclusive === true ? "<=" : "<"} ${param(r.upper)}`)
    const cond = range.length === 0 ? "TRUE" : range.join(" AND ")
    parts.push(r.orNull === true ? `(${cond} OR ${col} IS NULL)` : `(${cond})`)
  }
  return { sql: parts.length === 0 ? "" : ` WHERE ${parts.join(" AND ")}`, values }
}

// -----------------------------------------------------------------------------
// Pool and sessions
// -----------------------------------------------------------------------------

type Pool = mysql.Pool
type Connection = mysql.PoolConnection

interface Result {
  readonly rows: ReadonlyArray<unknown>
  readonly fields: ReadonlyArray<FieldInfo>
  readonly header: { readonly affectedRows: number; readonly warningStatus: number } | undefined
}

const run = (
  conn: Pool | Connection,
  sql: string,
  values: ReadonlyArray<unknown> = [],
  extra?: { readonly infileStreamFactory?: () => NodeJS.ReadableStream }
): Promise<Result> =>
  new Promise((resolve, reject) => {
    conn.query(
      {
        sql,
        values: values as Array<unknown>,
        ...(extra?.infileStreamFactory === undefined
          ? {}
          : {
              infileStreamFactory: extra.infileStreamFactory as unknown as (
                path: string
              ) => import("node:stream").Readable
            })
      },
      (error, rows, fields) => {
        if (error) return reject(error)
        const isHeader = !Array.isArray(rows)
        resolve({
          rows: isHeader ? [] : (rows as ReadonlyArray<unknown>),
          fields: (fields ?? []) as ReadonlyArray<FieldInfo>,
          header: isHeader ? (rows as unknown as { affectedRows: number; warningStatus: number }) : undefined
        })
      }
    )
  })

const getConnection = (pool: Pool): Promise<Connection> =>
  new Promise((resolve, reject) => pool.getConnection((e, c) => (e ? reject(e) : resolve(c))))

const poolOptions = (options: ConnectionOptions): mysql.PoolOptions => {
  const url = reveal(options.url)
  const password = reveal(options.password)
  const ssl =
    options.tls === undefined || options.tls.mode === "disable"
      ? undefined
      : options.tls.mode === "require"
        ? { rejectUnauthorized: false }
        : { rejectUnauthorized: true, ...(options.tls.ca === undefined ? {} : { ca: options.tls.ca }) }
  const database = options.database ?? options.schema
  return {
    ...(url === undefined ? {} : { uri: url }),
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(database === undefined ? {} : { database }),
    ...(options.user === undefined ? {} : { user: options.user }),
    ...(password === undefined ? {} : { password }),
    ...(ssl === undefined ? {} : { ssl }),
    connectionLimit: options.poolSize ?? 10,
    connectTimeout: Duration.toMillis(Duration.fromInputUnsafe(options.connectTimeout ?? "30 seconds")),
    charset: "utf8mb4_unicode_ci",
    timezone: "Z",
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    multipleStatements: false
  }
}

const sessionSetup = (options: ConnectionOptions): ReadonlyArray<string> => {
  const statements = ["SET time_zone = '+00:00'"]
  if (options.statementTimeout !== undefined) {
    const ms = Duration.toMillis(Duration.fromInputUnsafe(options.statementTimeout))
    // MariaDB takes seconds for every statement; MySQL takes milliseconds for SELECTs. One of them fails: fine.
    statements.push(
      `SET SESSION max_statement_time = ${ms / 1000}`,
      `SET SESSION max_execution_time = ${Math.round(ms)}`
    )
  }
  return statements
}

// -----------------------------------------------------------------------------
// Reads
// -----------------------------------------------------------------------------

const jsonColumns = async (pool: Pool, ref: Identifier.TableRef): Promise<ReadonlySet<string>> => {
  const result = await run(
    pool,
    `SELECT CHECK_CLAUSE AS c FROM information_schema.CHECK_CONSTRAINTS
      WHERE CONSTRAINT_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?`,
    [ref.schema ?? null, ref.name]
  ).catch(() => ({ rows: [] as ReadonlyArray<unknown> }))
  const out = new Set<string>()
  for (const row of result.rows as ReadonlyArray<{ readonly c: string }>) {
    const m = /^json_valid\(`((?:[^`]|``)+)`\)$/.exec(row.c)
    if (m !== null) out.add(m[1]!.replaceAll("``", "`"))
  }
  return out
}

const tableInfo = async (pool: Pool, ref: Identifier.TableRef): Promise<TableInfo | undefined> => {
  const cols = await run(
    pool,
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS dataType, COLUMN_TYPE AS columnType, IS_NULLABLE AS nullable,
            COLUMN_DEFAULT IS NOT NULL OR EXTRA REGEXP 'auto_increment|generated|virtual|stored|persistent' AS hasDefault
       FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [ref.schema ?? null, ref.name]
  )
  if (cols.rows.length === 0) return undefined
  const json = await jsonColumns(pool, ref)
  const keys = await run(
    pool,
    `SELECT INDEX_NAME AS idx, COLUMN_NAME AS col FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND NON_UNIQUE = 0
      ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`,
    [ref.schema ?? null, ref.name]
  )
  const byIndex = new Map<string, Array<string>>()
  for (const row of keys.rows as ReadonlyArray<{ readonly idx: string; readonly col: string }>) {
    const list = byIndex.get(row.idx) ?? []
    list.push(row.col)
    byIndex.set(row.idx, list)
  }
  return {
    ref,
    columns: (
      cols.rows as ReadonlyArray<{
        readonly name: string
        readonly dataType: string
        readonly columnType: string
        readonly nullable: string
        readonly hasDefault: number | string
      }>
    ).map((c) => ({
      name: c.name,
      kind: json.has(c.name) ? "json" : kindOfColumnType(c.dataType, c.columnType),
      dbType: c.columnType,
      nullable: c.nullable === "YES",
      hasDefault: Number(c.hasDefault) === 1
    })),
    uniqueKeys: Array.from(byIndex.values())
  }
}

const describe = async (
  pool: Pool,
  relation: Relation,
  columns?: ReadonlyArray<string>
): Promise<ReadonlyArray<Column>> => {
  const result = await run(pool, `SELECT ${selectList(columns)} FROM ${fromClause(relation)} LIMIT 0`)
  const json = relation._tag === "Table" ? await jsonColumns(pool, relation.ref) : new Set<string>()
  return result.fields.map((f) => ({
    name: f.name,
    kind: json.has(f.name) ? "json" : kindOfField(f),
    dbType: String(f.columnType)
  }))
}

/** Streams a SELECT as chunks of converted rows, on its own connection (released, or destroyed if unfinished). */
async function* selectRows(
  pool: Pool,
  sql: string,
  values: ReadonlyArray<unknown>,
  columns: ReadonlyArray<Column>,
  batchSize: number
): AsyncGenerator<ReadChunk> {
  const conn = await getConnection(pool)
  let finished = false
  const stream = conn
    .query({ sql, values: values as Array<unknown>, rowsAsArray: true })
    .stream({ highWaterMark: Math.max(1024, Math.min(batchSize, 16_384)) })
  try {
    const names = columns.map((c) => c.name)
    const converters = columns.map((c) => converterOf(c.kind))
    const bigints = columns.flatMap((c, i) => (c.kind === "bigint" ? [i] : []))
    const n = names.length
    let rows: Array<Row> = []
    let rejected: Array<{ row: unknown; message: string }> = []
    for await (const raw of stream as AsyncIterable<ReadonlyArray<unknown>>) {
      const row: Record<string, unknown> = {}
      for (let i = 0; i < n; i++) {
        const v = raw[i]
        const convert = converters[i]
        row[names[i]!] = v === null || v === undefined ? null : convert === undefined ? v : convert(v)
      }
      let bad = false
      for (const i of bigints) {
        const v = row[names[i]!]
        if (typeof v === "bigint") {
          row[names[i]!] = v.toString()
          rejected.push({ row, message: unsafeIntegerMessage(names[i]!, v) })
          bad = true
          break
        }
      }
      if (!bad) rows.push(row)
      if (rows.length >= batchSize) {
        yield { rows, rejected }
        rows = []
        rejected = []
      }
    }
    if (rows.length > 0 || rejected.length > 0) yield { rows, rejected }
    finished = true
  } finally {
    if (finished) conn.release()
    else {
      stream.destroy()
      conn.destroy()
    }
  }
}

// -----------------------------------------------------------------------------
// Loads
// -----------------------------------------------------------------------------

const shortName = (target: string, suffix: string) => {
  let base = target
  while ((base + suffix).length > 64) base = base.slice(0, -1)
  return base + suffix
}

// Staging tables of an overwrite are real tables (MySQL DDL is not transactional), so a killed run leaves them behind.
// Each carries its run's tag in its name, and the run holds the named lock of that tag on the connection that made it
// from before the table exists until it is gone: the server releases the lock when that connection dies, so a free
// lock marks a table whose run is dead, and the next load of the same target drops it.

/** A fresh staging tag: 12 hex digits. */
const newTag = () => crypto.randomUUID().replaceAll("-", "").slice(0, 12)

/** The named lock a run holds while its staging tables of `tag` exist. */
const stagingLock = (tag: string) => `effect-etl/stage/${tag}`

const stagingSuffixes = ["__etl_", "__etl_old_"] as const

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`)
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/**
 * Drops the staging tables of `ref` whose run is dead (their lock is free); a live run's tables are left alone. The
 * sweeping connection holds the lock while it drops, so no run can take the tag meanwhile.
 */
const sweepStaging = async (conn: Connection, ref: Identifier.TableRef): Promise<void> => {
  const patterns = stagingSuffixes.map((suffix) => {
    const base = shortName(ref.name, `${suffix}${"0".repeat(12)}`).slice(0, -(suffix.length + 12))
    return { base, match: new RegExp(`^${escapeRegExp(base + suffix)}([0-9a-f]{12})$`) }
  })
  const shortest = patterns.reduce((a, b) => (b.base.length < a.base.length ? b : a)).base
  const found = await run(
    conn,
    `SELECT TABLE_NAME AS name FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME LIKE ?`,
    [ref.schema ?? null, `${escapeLike(shortest)}%`]
  )
  for (const row of found.rows as ReadonlyArray<{ readonly name: string }>) {
    const tag = patterns.map((p) => p.match.exec(row.name)?.[1]).find((t) => t !== undefined)
    if (tag === undefined) continue
    const got = await run(conn, "SELECT GET_LOCK(?, 0) AS got", [stagingLock(tag)])
    if (Number((got.rows[0] as { readonly got: unknown } | undefined)?.got) !== 1) continue
    try {
      await run(conn, `DROP TABLE IF EXISTS ${qt({ schema: ref.schema, name: row.name })}`)
    } finally {
      await run(conn, "DO RELEASE_LOCK(?)", [stagingLock(tag)])
    }
  }
}

/** Takes the lock of a fresh staging tag on `conn`; gives the tag. */
const lockStaging = async (conn: Connection): Promise<string> => {
  for (let i = 0; i < 3; i++) {
    const tag = newTag()
    const got = await run(conn, "SELECT GET_LOCK(?, 0) AS got", [stagingLock(tag)])
    if (Number((got.rows[0] as { readonly got: unknown } | undefined)?.got) === 1) return tag
  }
  throw new Error("could not take a staging lock")
}

/** A `LOAD DATA LOCAL INFILE` fed from batches as they come. */
class InfileLoad {
  private readonly stream = new PassThrough({ highWaterMark: 1 << 20 })
  private readonly result: Promise<Result>
  private settled: { readonly error: unknown } | undefined
  sent = 0
  ended = false
  constructor(conn: Connection, sql: string) {
    // Errors of the stream surface through the query's result.
    this.stream.on("error", () => {})
    this.result = run(conn, sql, [], { infileStreamFactory: () => this.stream })
    this.result.then(
      () => {
        this.settled = { error: undefined }
      },
      (error: unknown) => {
        this.settled = { error }
        this.stream.destroy()
      }
    )
  }
  async write(text: string, rows: number): Promise<void> {
    if (this.settled !== undefined) await this.result
    this.sent += rows
    if (!this.stream.write(text)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => resolve()
        this.stream.once("drain", onDrain)
        this.result.then(
          () => undefined,
          (e: unknown) => {
            this.stream.off("drain", onDrain)
            reject(e)
          }
        )
      })
    }
  }
  end(): Promise<Result> {
    this.ended = true
    this.stream.end()
    return this.result
  }
  /**
   * Ends the load early. The rows sent so far are loaded into the transaction (or the staging table), which the
   * caller then rolls back (or drops): destroying the stream instead can leave the query waiting forever when the
   * server has not asked for the file yet.
   */
  abort(): Promise<void> {
    if (!this.ended) {
      this.ended = true
      this.stream.end()
    }
    return this.result.then(
      () => undefined,
      () => undefined
    )
  }
}

const within = <A>(promise: Promise<A>, ms: number): Promise<A> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out")), ms)
    promise.then(
      (a) => {
        clearTimeout(timer)
        resolve(a)
      },
      (e: unknown) => {
        clearTimeout(timer)
        reject(e)
      }
    )
  })

/** The LOAD DATA statement of a table and columns: bytes go through `UNHEX`, the rest as text. */
const loadDataSql = (table: string, columns: ReadonlyArray<Column>) => {
  const targets: Array<string> = []
  const sets: Array<string> = []
  columns.forEach((c, i) => {
    if (c.kind === "bytes") {
      targets.push(`@v${i}`)
      sets.push(`${q(c.name)} = UNHEX(@v${i})`)
    } else targets.push(q(c.name))
  })
  return `LOAD DATA LOCAL INFILE 'etl-stream' INTO TABLE ${table} CHARACTER SET utf8mb4
    FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'
    (${targets.join(", ")})${sets.length === 0 ? "" : ` SET ${sets.join(", ")}`}`
}

const warningsOf = async (conn: Connection): Promise<string> => {
  const result = await run(conn, "SHOW WARNINGS LIMIT 3")
  return (result.rows as ReadonlyArray<{ readonly Message?: string }>).map((r) => r.Message ?? "").join("; ")
}

/** Ends a LOAD DATA and checks that every row went in as sent (LOCAL turns errors into warnings). */
const finishLoad = async (conn: Connection, load: InfileLoad, label: string): Promise<number> => {
  const result = await load.end()
  const affected = result.header?.affectedRows ?? 0
  const warnings = result.header?.warningStatus ?? 0
  if (warnings > 0 || affected !== load.sent) {
    const detail = await warningsOf(conn).catch(() => "")
    const duplicate = /Duplicate entry/i.test(detail)
    throw Object.assign(
      new Error(
        `${label}: ${load.sent} rows sent, ${affected} loaded, ${warnings} warnings${detail === "" ? "" : `: ${detail}`}`
      ),
      { errno: duplicate ? 1062 : 1366 }
    )
  }
  return affected
}

/**
 * Opens a load of `request`; with `stageInto`, a load into that fresh staging table instead (a split run's part, see
 * `SqlClient.stage`): dropped when it exists and created with the request's columns (and an `etl_seq` column that keeps
 * the rows' order) before the load's transaction.
 */
const openLoad = (
  pool: Pool,
  request: LoadRequest,
  stageInto?: Identifier.TableRef
): Effect.Effect<Loader<MysqlError>, MysqlError, Scope.Scope> =>
  Effect.gen(function* () {
    const target = qt(request.table)
    const label = Identifier.show(request.table)
    const encode = makeRowEncoder("mysql", request.columns)
    const tag = newTag()
    const sweep = (conn: Connection) =>
      attempt(`sweep the staging tables of ${label}`, () => sweepStaging(conn, request.table))

    if (request.transaction === "batch") {
      yield* Effect.acquireUseRelease(
        attempt(`connect to load ${label}`, () => getConnection(pool)),
        sweep,
        (c) => Effect.sync(() => c.release())
      )
      let written = 0
      return {
        write: (rows) =>
          rows.length === 0
            ? Effect.void
            : attempt(`load ${label}`, async () => {
                const conn = await getConnection(pool)
                let ok = false
                try {
                  await run(conn, "START TRANSACTION")
                  const load = new InfileLoad(conn, loadDataSql(target, request.columns))
                  await load.write(encode(rows), rows.length)
                  written += await finishLoad(conn, load, `load ${label}`)
                  await run(conn, "COMMIT")
                  ok = true
                } finally {
                  if (ok) conn.release()
                  else conn.destroy()
                }
              }),
        commit: Effect.sync(() => ({ written, inserted: written }))
      } satisfies Loader<MysqlError>
    }

    let committed = false
    let load: InfileLoad | undefined
    let lock: string | undefined
    const cleanup: Array<string> = []
    const conn = yield* Effect.acquireRelease(
      attempt(`connect to load ${label}`, () => getConnection(pool)),
      (c: Connection) =>
        Effect.promise(async () => {
          try {
            if (!committed) {
              if (load !== undefined) await within(load.abort(), 5_000)
              await within(run(c, "ROLLBACK"), 5_000)
            }
            for (const statement of cleanup) await within(run(c, statement), 5_000)
            if (lock !== undefined) await within(run(c, "DO RELEASE_LOCK(?)", [lock]), 5_000)
            c.release()
          } catch {
            c.destroy()
            // The staging table of an overwrite is a real table: drop it from another connection.
            for (const statement of cleanup)
              if (!statement.startsWith("DROP TEMPORARY")) await run(pool, statement).catch(() => undefined)
          }
        })
    )
    const exec = (operation: string, sql: string) => attempt(operation, () => run(conn, sql))

    yield* sweep(conn)
    let loadTarget = target
    let stage: string | undefined
    let stageTag = tag
    if (stageInto !== undefined) {
      loadTarget = qt(stageInto)
      const operation = `create the staging table ${Identifier.show(stageInto)} of ${label}`
      const cols = request.columns.map((c) => q(c.name)).join(", ")
      yield* exec(operation, `DROP TABLE IF EXISTS ${loadTarget}`)
      yield* exec(operation, `CREATE TABLE ${loadTarget} AS SELECT ${cols} FROM ${target} WHERE 1 = 0`)
      yield* exec(
        operation,
        `ALTER TABLE ${loadTarget} ADD COLUMN \`etl_seq\` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY`
      )
    } else if (request.mode === "overwrite") {
      stageTag = yield* attempt(`create a staging table for ${label}`, () => lockStaging(conn))
      lock = stagingLock(stageTag)
      stage = qt({ schema: request.table.schema, name: shortName(request.table.name, `__etl_${stageTag}`) })
      loadTarget = stage
      yield* exec(`create a staging table for ${label}`, `CREATE TABLE ${stage} LIKE ${target}`)
      cleanup.push(`DROP TABLE IF EXISTS ${stage}`)
    } else if (request.mode === "upsert") {
      stage = q(`etl_stage_${tag}`)
      loadTarget = stage
      const cols = request.columns.map((c) => q(c.name)).join(", ")
      yield* exec(
        `create a staging table for ${label}`,
        `CREATE TEMPORARY TABLE ${stage} AS SELECT ${cols} FROM ${target} WHERE 1 = 0`
      )
      cleanup.push(`DROP TEMPORARY TABLE IF EXISTS ${stage}`)
      yield* exec(
        `create a staging table for ${label}`,
        `ALTER TABLE ${stage} ADD COLUMN \`etl_seq\` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY`
      )
    }
    yield* exec(`begin a load of ${label}`, "START TRANSACTION")
    const infile = new InfileLoad(conn, loadDataSql(loadTarget, request.columns))
    load = infile

    let positions: ReadonlyArray<OffsetRow> = []
    const commit = Effect.gen(function* () {
      let loaded = yield* attempt(`load ${label}`, () => finishLoad(conn, infile, `load ${label}`))
      // A split run's finish: the rows its parts staged, moved on the server, in their order.
      for (const staged of request.staged ?? []) {
        const cols = request.columns.map((c) => q(c.name)).join(", ")
        const moved = yield* exec(
          `load the staged rows of ${Identifier.show(staged)} into ${label}`,
          `INSERT INTO ${loadTarget} (${cols}) SELECT ${cols} FROM ${qt(staged)} ORDER BY \`etl_seq\``
        )
        loaded += moved.header?.affectedRows ?? 0
      }
      if (request.mode === "upsert" && stage !== undefined) {
        const cols = request.columns.map((c) => q(c.name)).join(", ")
        const others = request.columns.filter((c) => !request.keys.includes(c.name))
        const set = (others.length === 0 ? request.columns.filter((c) => c.name === request.keys[0]) : others)
          .map((c) => `${q(c.name)} = VALUES(${q(c.name)})`)
          .join(", ")
        yield* exec(
          `merge into ${label}`,
          `INSERT INTO ${target} (${cols}) SELECT ${cols} FROM ${stage} ORDER BY \`etl_seq\` ON DUPLICATE KEY UPDATE ${set}`
        )
      }
      if (request.offsets !== undefined && positions.length > 0) {
        const offsets = qt(request.offsets)
        const operation = `record the source positions of ${label}`
        // The stored positions, locked until the commit: a commit whose rows another process stored meanwhile fails.
        const held = yield* attempt(operation, () =>
          run(
            conn,
            `SELECT part, position FROM ${offsets} WHERE pipeline = ? AND target = ? AND part IN (${positions.map(() => "?").join(", ")}) FOR UPDATE`,
            [positions[0]!.pipeline, positions[0]!.target, ...positions.map((p) => p.part)]
          )
        )
        const stored = new Map(
          (held.rows as ReadonlyArray<{ readonly part: string; readonly position: string }>).map((r) => [
            String(r.part),
            String(r.position)
          ])
        )
        const moved = Checkpoint.moved(positions, stored)
        if (moved !== undefined)
          return yield* new MysqlError({
            reason: reasons.PositionsMoved,
            operation,
            message: movedMessage(label, moved)
          })
        const values = (rows: ReadonlyArray<OffsetRow>) => rows.map(() => "(?, ?, ?, ?, UTC_TIMESTAMP(3))").join(", ")
        const params = (rows: ReadonlyArray<OffsetRow>) =>
          rows.flatMap((p) => [p.pipeline, p.target, p.part, p.position])
        const known = positions.filter((p) => stored.has(p.part))
        const fresh = positions.filter((p) => !stored.has(p.part))
        if (known.length > 0)
          yield* attempt(operation, () =>
            run(
              conn,
              `INSERT INTO ${offsets} (pipeline, target, part, position, updated_at) VALUES ${values(known)}
               ON DUPLICATE KEY UPDATE position = VALUES(position), updated_at = VALUES(updated_at)`,
              params(known)
            )
          )
        // A part another process stored since the lock was taken is a duplicate key: the commit fails.
        if (fresh.length > 0)
          yield* attempt(operation, () =>
            run(
              conn,
              `INSERT INTO ${offsets} (pipeline, target, part, position, updated_at) VALUES ${values(fresh)}`,
              params(fresh)
            )
          ).pipe(
            Effect.mapError((error) =>
              error.reason._tag === "UniqueViolation"
                ? new MysqlError({
                    reason: reasons.PositionsMoved,
                    operation,
                    message: movedMessage(label, { row: fresh[0]!, stored: "a later position" })
                  })
                : error
            )
          )
      }
      yield* exec(`commit the load of ${label}`, "COMMIT")
      committed = true
      if (request.mode === "overwrite" && stage !== undefined) {
        const old = qt({ schema: request.table.schema, name: shortName(request.table.name, `__etl_old_${stageTag}`) })
        // One RENAME TABLE swaps both names atomically: readers see the old table or the new one.
        yield* exec(`replace ${label}`, `RENAME TABLE ${target} TO ${old}, ${stage} TO ${target}`)
        cleanup.length = 0
        yield* exec(`drop the old rows of ${label}`, `DROP TABLE ${old}`)
      }
      return { written: loaded, ...(request.mode === "upsert" ? {} : { inserted: loaded }) }
    })

    return {
      write: (rows) =>
        rows.length === 0 ? Effect.void : attempt(`load ${label}`, () => infile.write(encode(rows), rows.length)),
      ...(request.offsets === undefined
        ? {}
        : {
            positions: (rows: ReadonlyArray<OffsetRow>) => {
              positions = rows
            }
          }),
      commit
    } satisfies Loader<MysqlError>
  })

// -----------------------------------------------------------------------------
// The client
// -----------------------------------------------------------------------------

const describeRelation = (relation: Relation) => (relation._tag === "Table" ? Identifier.show(relation.ref) : "a query")

/** A MySQL client over a `mysql2` pool. */
export const make = (pool: Pool, connection: string): Shape => ({
  dialect: "mysql",
  typedReads: typedColumn,
  poolSize: (pool as unknown as { readonly config?: { readonly connectionLimit?: number } }).config?.connectionLimit,
  connection,
  describe: (relation) => attempt(`describe ${describeRelation(relation)}`, () => describe(pool, relation)),
  table: (ref) => attempt(`describe ${Identifier.show(ref)}`, () => tableInfo(pool, ref)),
  createTable: (ref, columns, primaryKey) =>
    attempt(`create ${Identifier.show(ref)}`, () => run(pool, createTableSql("mysql", ref, columns, primaryKey))).pipe(
      Effect.asVoid
    ),
  estimateRows: (ref) =>
    attempt(`estimate the rows of ${Identifier.show(ref)}`, () =>
      run(
        pool,
        "SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?",
        [ref.schema ?? null, ref.name]
      )
    ).pipe(
      Effect.map((result) => {
        const n = Number((result.rows as ReadonlyArray<{ readonly n?: unknown }>)[0]?.n ?? Number.NaN)
        return Number.isFinite(n) && n >= 0 ? n : undefined
      })
    ),
  bounds: (relation, column, conditions) =>
    Effect.gen(function* () {
      const operation = `find the bounds of ${column} in ${describeRelation(relation)}`
      const where = whereClause({ conditions })
      const columns = yield* attempt(operation, () => describe(pool, relation, [column]))
      const kind = columns[0]?.kind ?? "unknown"
      const result = yield* attempt(operation, () =>
        run(
          pool,
          `SELECT MIN(${q(column)}) AS min, MAX(${q(column)}) AS max FROM ${fromClause(relation)}${where.sql}`,
          where.values
        )
      )
      const row = result.rows[0] as { readonly min: unknown; readonly max: unknown }
      const convert = converterOf(kind) ?? ((v: unknown) => v)
      const conv = (v: unknown) => {
        if (v === null || v === undefined) return null
        const out = convert(v)
        return typeof out === "bigint" ? Number(out) : out
      }
      return { min: conv(row.min), max: conv(row.max), kind } satisfies Bounds
    }),
  read: (request) =>
    Stream.unwrap(
      Effect.gen(function* () {
        const operation = `read ${describeRelation(request.relation)}`
        const where = whereClause(request)
        const columns = yield* attempt(operation, () => describe(pool, request.relation, request.columns))
        const sql = `SELECT ${selectList(request.columns)} FROM ${fromClause(request.relation)}${where.sql}`
        return Stream.fromAsyncIterable(
          selectRows(pool, sql, where.values, columns, request.batchSize),
          toError(operation)
        )
      })
    ),
  load: (request) => openLoad(pool, request),
  stage: (request, stage) =>
    openLoad(pool, { ...request, mode: "append", transaction: "end", offsets: undefined, staged: [] }, stage),
  dropTables: (refs) =>
    refs.length === 0
      ? Effect.void
      : Effect.asVoid(
          attempt(`drop the staging tables ${refs.map(Identifier.show).join(", ")}`, () =>
            run(pool, `DROP TABLE IF EXISTS ${refs.map(qt).join(", ")}`)
          )
        )
})

/**
 * A layer with the client of connection `name` over a pool opened when the layer is built and closed when it is
 * released. Connecting is lazy: a server that is down fails the first operation (retryable), not the layer.
 *
 * @example
 * Pipeline.run(p).pipe(Effect.provide(NodeMysql.layer({ url: Redacted.make("mysql://etl@db:3306/app") })))
 */
export const layer = <const Name extends string = "default">(
  options: ConnectionOptions,
  name: Name = "default" as Name
): Layer.Layer<MysqlClient<Name>> =>
  Layer.effect(
    tag(name),
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => {
          const pool = driver().createPool(poolOptions(options))
          const setup = sessionSetup(options)
          pool.on("connection", (conn) => {
            for (const statement of setup) conn.query(statement, () => {})
          })
          return pool
        }),
        (pool) => Effect.promise(() => new Promise<void>((resolve) => pool.end(() => resolve())))
      ),
      (pool) => make(pool, name)
    )
  )

/** Runs one SQL statement on a new connection (for tests, setup scripts and benchmarks); values are parameters. */
export const execute = (
  options: ConnectionOptions,
  sql: string,
  values: ReadonlyArray<unknown> = []
): Effect.Effect<ReadonlyArray<Readonly<Record<string, unknown>>>, MysqlError> =>
  Effect.acquireUseRelease(
    Effect.sync(() => driver().createConnection({ ...poolOptions(options), multipleStatements: true })),
    (conn) =>
      attempt(
        "run a statement",
        () =>
          new Promise<ReadonlyArray<Readonly<Record<string, unknown>>>>((resolve, reject) =>
            conn.query({ sql, values: values as Array<unknown> }, (error, rows) => {
              if (error) return reject(error)
              resolve(Array.isArray(rows) ? (rows as ReadonlyArray<Readonly<Record<string, unknown>>>) : [])
            })
          )
      ),
    (conn) => Effect.promise(() => new Promise<void>((resolve) => conn.end(() => resolve())))
  )
