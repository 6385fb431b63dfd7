/**
 * The PostgreSQL client over `pg`: the only file that imports the driver (`pg`, `pg-copy-streams`).
 *
 * - Reads run `COPY (SELECT ...) TO STDOUT` and parse the text format straight into records (about 2.4× faster than
 *   a cursor), streamed chunk by chunk with the socket's backpressure, so memory stays bounded whatever the table's
 *   size.
 * - Loads run `COPY ... FROM STDIN` inside one transaction: append copies into the table; overwrite copies into a
 *   staging table created `LIKE` the target and swaps it in (drop + rename) in the same transaction, so readers see
 *   the old rows until the commit and the new ones after it; upsert copies into a temporary table and merges it with
 *   one `INSERT ... ON CONFLICT (keys) DO UPDATE`. A failed attempt rolls back and leaves nothing behind; a staging
 *   table that another session can see anyway (its run's advisory lock free) is dropped by the next load.
 * - Every driver failure is mapped to a reason by `classifyError` (SQLSTATE, socket codes).
 *
 * Sessions use `TimeZone=UTC` and ISO dates, so timestamps are read and written as UTC.
 */
import { createRequire } from "node:module"
import type { Readable, Writable } from "node:stream"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as KeyValueStore from "effect/persistence/KeyValueStore"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type pg from "pg"
import type * as CopyStreams from "pg-copy-streams"
import * as Checkpoint from "../../core/Checkpoint.ts"
import * as State from "../../core/State.ts"
import * as Identifier from "../sql/Identifier.ts"
import type {
  Bounds,
  Loader,
  LoadRequest,
  LoadResult,
  OffsetRow,
  RawChunk,
  ReadChunk,
  ReadRequest,
  RejectedRow,
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
  fromHex,
  makeRowEncoder,
  parseBigint,
  parseDecimal,
  parseTimestamp,
  unsafeIntegerMessage
} from "../sql/SqlTypes.ts"
import { type PostgresClient, PostgresError, RAW_FORMAT, type Shape, tag } from "./PostgresClient.ts"

// The driver is loaded with the first connection, not with this module: a command or a run that uses no PostgreSQL
// (most of them) does not pay for loading it. Both packages are CommonJS, so `require` loads them synchronously.
const requireDriver = createRequire(import.meta.url)
let driverModules: { readonly pg: typeof pg; readonly copy: typeof CopyStreams } | undefined
const driver = () =>
  (driverModules ??= {
    pg: requireDriver("pg") as typeof pg,
    copy: requireDriver("pg-copy-streams") as typeof CopyStreams
  })
const copyFrom: typeof CopyStreams.from = (text, options) => driver().copy.from(text, options)
const copyTo: typeof CopyStreams.to = (text, options) => driver().copy.to(text, options)

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/** Maps a `pg` error (its SQLSTATE, or a socket error code) to a reason. */
export const classifyError = (cause: unknown): SqlErrorReason => {
  const { code, message } = driverFields(cause)
  const socket = socketReason(code)
  if (socket !== undefined) return socket
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) {
    switch (code) {
      case "40P01":
        return reasons.Deadlock
      case "40001":
        return reasons.SerializationFailure
      case "53300":
      case "53400":
        return reasons.TooManyConnections
      case "55P03":
        return reasons.LockTimeout
      case "57014":
        return reasons.Timeout
      case "57P01":
      case "57P02":
        return reasons.ConnectionLost
      case "57P03":
      case "08001":
      case "08004":
        return reasons.ConnectionRefused
      case "28000":
      case "28P01":
        return reasons.AuthenticationFailed
      case "42501":
        return reasons.PermissionDenied
      case "23505":
        return reasons.UniqueViolation
      case "42P01":
        return reasons.UndefinedTable
      case "42703":
        return reasons.UndefinedColumn
      case "3D000":
      case "3F000":
        return reasons.InvalidRequest
    }
    switch (code.slice(0, 2)) {
      case "08":
        return reasons.ConnectionLost
      case "23":
        return reasons.ConstraintViolation
      case "22":
      case "21":
        return reasons.InvalidData
      case "42":
        return reasons.SyntaxError
      case "40":
        return reasons.SerializationFailure
    }
    return reasons.Unknown
  }
  if (
    /Connection terminated|connection is closed|Client has encountered a connection error|not queryable/i.test(message)
  )
    return reasons.ConnectionLost
  if (/timeout exceeded when trying to connect|Connection terminated due to connection timeout/i.test(message))
    return reasons.Timeout
  return reasons.Unknown
}

const toError = (operation: string) => (cause: unknown) => {
  const reason = classifyError(cause)
  const { code, message } = driverFields(cause)
  return new PostgresError({
    reason,
    operation,
    message: `PostgreSQL: cannot ${operation}: ${scrub(message)}`,
    ...(code === undefined ? {} : { code }),
    cause
  })
}

const attempt = <A>(operation: string, f: () => Promise<A>): Effect.Effect<A, PostgresError> =>
  Effect.tryPromise({ try: f, catch: toError(operation) })

const invalid = (operation: string, message: string) =>
  new PostgresError({ reason: reasons.InvalidRequest, operation, message })

// -----------------------------------------------------------------------------
// Types: OIDs → column kinds and text parsers
// -----------------------------------------------------------------------------

const scalarKinds: Readonly<Record<number, ColumnKind>> = {
  16: "boolean",
  17: "bytes",
  18: "text",
  19: "text",
  20: "bigint",
  21: "int",
  23: "int",
  25: "text",
  26: "bigint",
  114: "json",
  700: "float",
  701: "float",
  1042: "text",
  1043: "text",
  1082: "date",
  1083: "time",
  1114: "timestamp",
  1184: "timestamptz",
  1266: "time",
  1700: "decimal",
  2950: "uuid",
  3802: "json"
}

const arrayElements: Readonly<Record<number, number>> = {
  1000: 16,
  1001: 17,
  1002: 18,
  1003: 19,
  1005: 21,
  1007: 23,
  1009: 25,
  1014: 1042,
  1015: 1043,
  1016: 20,
  1021: 700,
  1022: 701,
  1028: 26,
  1115: 1114,
  1182: 1082,
  1183: 1083,
  1185: 1184,
  1231: 1700,
  2951: 2950,
  199: 114,
  3807: 3802
}

/** The column kind (and array element kind) of a type OID. */
export const kindOfOid = (oid: number): { readonly kind: ColumnKind; readonly element?: ColumnKind } => {
  const scalar = scalarKinds[oid]
  if (scalar !== undefined) return { kind: scalar }
  const element = arrayElements[oid]
  if (element !== undefined) return { kind: "array", element: scalarKinds[element] ?? "unknown" }
  return { kind: "unknown" }
}

/** A parser from a field's text (already unescaped, never NULL) to its record value. */
type Parse = (text: string) => unknown

const parseBool: Parse = (t) => t === "t" || t === "true"
const parseFloatText: Parse = (t) => Number(t)
const parseJson: Parse = (t) => JSON.parse(t)
const identity: Parse = (t) => t

/** The parser of a scalar kind's text. `bigint` returns a bigint for values beyond ±2^53-1 (rejected by the caller). */
export const parserOf = (kind: ColumnKind, element?: ColumnKind): Parse => {
  switch (kind) {
    case "int":
      return parseFloatText
    case "bigint":
      return parseBigint
    case "float":
      return parseFloatText
    case "decimal":
      return (t) => parseDecimal(t) ?? t
    case "boolean":
      return parseBool
    case "timestamp":
    case "timestamptz":
      return (t) => parseTimestamp(t) ?? t
    case "bytes":
      return fromHex
    case "json":
      return parseJson
    case "array": {
      const item = parserOf(element ?? "unknown")
      return (t) => parseArray(t, item)
    }
    default:
      return identity
  }
}

/** Parses a PostgreSQL array literal (`{1,2,NULL}`, `{{1,2},{3,4}}`, `{"a,b","c\"d"}`) with an element parser. */
export const parseArray = (text: string, item: Parse): ReadonlyArray<unknown> => {
  let i = 0
  // Arrays with explicit bounds start with `[1:2]=`.
  if (text.charCodeAt(0) === 91) i = text.indexOf("=") + 1
  const parseLevel = (): Array<unknown> => {
    const out: Array<unknown> = []
    i++ // "{"
    if (text[i] === "}") {
      i++
      return out
    }
    while (i < text.length) {
      const c = text[i]
      if (c === "{") out.push(parseLevel())
      else if (c === '"') {
        let s = ""
        i++
        while (i < text.length && text[i] !== '"') {
          if (text[i] === "\\") i++
          s += text[i]
          i++
        }
        i++
        out.push(item(s))
      } else {
        let j = i
        while (j < text.length && text[j] !== "," && text[j] !== "}") j++
        const raw = text.slice(i, j)
        out.push(raw === "NULL" ? null : item(raw))
        i = j
      }
      if (text[i] === ",") i++
      else if (text[i] === "}") {
        i++
        return out
      }
    }
    return out
  }
  return parseLevel()
}

/** Undoes COPY text escaping (`\\`, `\t`, `\n`, `\r`, `\b`, `\f`, `\v`, octal and `\x` escapes). */
export const unescapeCopy = (s: string): string => {
  let out = ""
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c !== 92) {
      out += s[i]
      continue
    }
    const n = s[++i]
    switch (n) {
      case "t":
        out += "\t"
        break
      case "n":
        out += "\n"
        break
      case "r":
        out += "\r"
        break
      case "b":
        out += "\b"
        break
      case "f":
        out += "\f"
        break
      case "v":
        out += "\v"
        break
      case "x": {
        const m = /^[0-9a-fA-F]{1,2}/.exec(s.slice(i + 1, i + 3))
        if (m !== null) {
          out += String.fromCharCode(Number.parseInt(m[0], 16))
          i += m[0].length
        } else out += "x"
        break
      }
      default:
        if (n !== undefined && n >= "0" && n <= "7") {
          const m = /^[0-7]{1,3}/.exec(s.slice(i, i + 3))!
          out += String.fromCharCode(Number.parseInt(m[0], 8))
          i += m[0].length - 1
        } else out += n ?? ""
    }
  }
  return out
}

/**
 * Turns COPY text into rows: call `push` with each buffer as it arrives; complete lines are parsed, a partial last
 * line (and a UTF-8 character split between buffers) waits for the next one.
 */
export const makeCopyParser = (columns: ReadonlyArray<Column>) => {
  const names = columns.map((c) => c.name)
  const parsers = columns.map((c) => parserOf(c.kind, c.element))
  const bigints = columns.flatMap((c, i) => (c.kind === "bigint" ? [i] : []))
  const n = names.length
  let carry: Buffer | undefined
  // A row builder compiled once per read: every row gets the same shape (property names are JSON-quoted, never code).
  const build = new Function(
    "f",
    "p",
    "u",
    `return {${names.map((name, i) => `${JSON.stringify(name)}: f[${i}] === "\\\\N" ? null : p[${i}](f[${i}].indexOf("\\\\") === -1 ? f[${i}] : u(f[${i}]))`).join(", ")}}`
  ) as (
    fields: ReadonlyArray<string>,
    parsers: ReadonlyArray<Parse>,
    unescapeField: (s: string) => string
  ) => Record<string, unknown>
  const parseLine = (line: string, rows: Array<Row>, rejected: Array<{ row: unknown; message: string }>) => {
    const fields = line.split("\t")
    if (fields.length < n) {
      rejected.push({ row: line, message: `expected ${n} fields, got ${fields.length}` })
      return
    }
    const row = build(fields, parsers, unescapeCopy)
    for (const i of bigints) {
      const v = row[names[i]!]
      if (typeof v === "bigint") {
        row[names[i]!] = v.toString()
        rejected.push({ row, message: unsafeIntegerMessage(names[i]!, v) })
        return
      }
    }
    rows.push(row)
  }
  return {
    /** Parses one line (without its newline) as `push` would: into `rows`, or into `rejected`. */
    line: parseLine,
    push: (chunk: Buffer, rows: Array<Row>, rejected: Array<{ row: unknown; message: string }>) => {
      const buf = carry === undefined ? chunk : Buffer.concat([carry, chunk])
      const last = buf.lastIndexOf(10)
      if (last < 0) {
        carry = buf
        return
      }
      carry = last + 1 < buf.length ? buf.subarray(last + 1) : undefined
      const text = buf.toString("utf8", 0, last)
      let start = 0
      while (start <= text.length) {
        let end = text.indexOf("\n", start)
        if (end === -1) end = text.length
        parseLine(text.slice(start, end), rows, rejected)
        start = end + 1
      }
    }
  }
}

// -----------------------------------------------------------------------------
// SQL text
// -----------------------------------------------------------------------------

const q = (name: string) => Identifier.quote("postgres", name)
const qt = (ref: Identifier.TableRef) => Identifier.quoteTable("postgres", ref)

const fromClause = (relation: Relation) =>
  relation._tag === "Table" ? qt(relation.ref) : `(${relation.sql}) AS "etl_query"`

const selectList = (columns: ReadonlyArray<string> | undefined) =>
  columns === undefined || columns.length === 0 ? "*" : columns.map(q).join(", ")

/** The WHERE clause of a read: the author's conditions, then range conditions as literals; a string is an error. */
const whereClause = (request: Pick<ReadRequest, "conditions" | "ranges">): string | { readonly error: string } => {
  const parts: Array<string> = (request.conditions ?? []).map((c) => `(${c})`)
  for (const r of request.ranges ?? []) {
    const col = q(r.column)
    const range: Array<string> = []
    if (r.lower !== undefined) {
      const lit = Identifier.literal("postgres", r.lower)
      if (lit === undefined) return { error: `cannot use ${String(r.lower)} as a bound of ${r.column}` }
      range.push(`${col} ${r.lowerInclusive === false ? ">" : ">="} ${lit}`)
    }
    if (r.upper !== undefined) {
      const lit = Identifier.literal("postgres", r.upper)
      if (lit === undefined) return { error: `cannot use ${String(r.upper)} as a bound of ${r.column}` }
      range.push(`${col} ${r.upperInclusive === true ? "<=" : "<"} ${lit}`)
    }
    const cond = range.length === 0 ? "TRUE" : range.join(" AND ")
    parts.push(r.orNull === true ? `(${cond} OR ${col} IS NULL)` : `(${cond})`)
  }
  return parts.length === 0 ? "" : ` WHERE ${parts.join(" AND ")}`
}

// -----------------------------------------------------------------------------
// Pool and sessions
// -----------------------------------------------------------------------------

const rawTypes = { getTypeParser: () => (value: string) => value }

/**
 * The URL with the connection's own fields written into it: pg lets a connection string win over separate fields, while
 * a connection's `host`, `port`, `database`, `user` and `password` are documented to override its URL's.
 */
const withOverrides = (
  url: string | undefined,
  options: ConnectionOptions,
  password: string | undefined
): string | undefined => {
  if (url === undefined) return undefined
  if (!URL.canParse(url)) return url
  const u = new URL(url)
  if (options.host !== undefined) {
    u.hostname = options.host
    u.searchParams.delete("host")
  }
  if (options.port !== undefined) u.port = String(options.port)
  if (options.database !== undefined) u.pathname = `/${encodeURIComponent(options.database)}`
  if (options.user !== undefined) u.username = encodeURIComponent(options.user)
  if (password !== undefined) u.password = encodeURIComponent(password)
  return u.toString()
}

const poolConfig = (options: ConnectionOptions): pg.PoolConfig => {
  const ssl =
    options.tls === undefined || options.tls.mode === "disable"
      ? undefined
      : options.tls.mode === "require"
        ? { rejectUnauthorized: false }
        : { rejectUnauthorized: true, ...(options.tls.ca === undefined ? {} : { ca: options.tls.ca }) }
  const password = reveal(options.password)
  const url = withOverrides(reveal(options.url), options, password)
  return {
    ...(url === undefined ? {} : { connectionString: url }),
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.database === undefined ? {} : { database: options.database }),
    ...(options.user === undefined ? {} : { user: options.user }),
    ...(password === undefined ? {} : { password }),
    ...(ssl === undefined ? {} : { ssl }),
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: Duration.toMillis(Duration.fromInputUnsafe(options.connectTimeout ?? "30 seconds")),
    ...(options.statementTimeout === undefined
      ? {}
      : { statement_timeout: Duration.toMillis(Duration.fromInputUnsafe(options.statementTimeout)) }),
    application_name: "effect-etl",
    // Startup options: spaces and backslashes in a value are escaped with a backslash.
    options: `-c TimeZone=UTC -c DateStyle=ISO,MDY -c extra_float_digits=3 -c client_encoding=UTF8${
      options.schema === undefined ? "" : ` -c search_path=${q(options.schema).replace(/[\\ ]/g, "\\$&")}`
    }`
  }
}

type PoolClient = pg.PoolClient

// A connection that dies while checked out also emits `error`; its queries fail with the same error, which is what
// gets reported, so the event itself is ignored.
const ignore = () => {}

/**
 * Gives a checked-out client back. A healthy one returns to the pool (which listens for its errors while it is idle);
 * a broken one is destroyed and keeps its no-op error listener, because a dying socket can still emit an error after
 * `release` (an error with no listener would crash the process).
 */
const giveBack = (client: PoolClient, destroy: boolean): void => {
  if (!destroy) client.off("error", ignore)
  client.release(destroy)
}

/** Runs a query with every value as text (our parsers convert them) and parameters for values. */
const query = (client: pg.ClientBase | pg.Pool, text: string, values: ReadonlyArray<unknown> = []) =>
  client.query({ text, values: values as Array<unknown>, types: rawTypes })

/** A COPY FROM STDIN in progress: write buffers with backpressure, then end it to learn the row count. */
class CopyIn {
  private error: unknown
  private readonly stream: Writable & { readonly rowCount: number }
  private readonly waiters = new Set<(error: unknown) => void>()
  constructor(stream: Writable & { readonly rowCount: number }) {
    this.stream = stream
    stream.on("error", (e) => {
      this.error = e
      for (const w of this.waiters) w(e)
    })
  }
  private wait(event: "drain" | "finish"): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.error !== undefined) return reject(this.error)
      const done = (error: unknown) => {
        this.waiters.delete(done)
        this.stream.off(event, ok)
        reject(error)
      }
      const ok = () => {
        this.waiters.delete(done)
        resolve()
      }
      this.waiters.add(done)
      this.stream.once(event, ok)
    })
  }
  async write(data: string): Promise<void> {
    if (this.error !== undefined) throw this.error
    if (data.length === 0) return
    if (!this.stream.write(data, "utf8")) await this.wait("drain")
  }
  /** Writes COPY text as it came from a raw read: whole lines. */
  async writeBytes(chunks: ReadonlyArray<Uint8Array>): Promise<void> {
    for (const chunk of chunks) {
      if (this.error !== undefined) throw this.error
      if (chunk.length > 0 && !this.stream.write(chunk)) await this.wait("drain")
    }
  }
  ended = false
  async end(): Promise<number> {
    if (this.error !== undefined) throw this.error
    this.ended = true
    const finished = this.wait("finish")
    this.stream.end()
    await finished
    return this.stream.rowCount
  }
  /** Cancels the COPY (the server gets a CopyFail and discards what it received). */
  abort(): Promise<void> {
    if (this.ended || this.error !== undefined) return Promise.resolve()
    this.ended = true
    return new Promise((resolve) => {
      this.stream.once("close", () => resolve())
      this.stream.destroy(new Error("the load was abandoned"))
    })
  }
}

/** Waits for a promise at most `ms` milliseconds; a promise that does not settle in time is a failure. */
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

const tableInfo = async (pool: pg.Pool, ref: Identifier.TableRef): Promise<TableInfo | undefined> => {
  const name = qt(ref)
  const cols = await query(
    pool,
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.atttypid::int AS oid,
            NOT a.attnotnull AS nullable, (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS hasdef
       FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [name]
  )
  if (cols.rows.length === 0) {
    const exists = await query(pool, "SELECT to_regclass($1) IS NOT NULL AS e", [name])
    if (exists.rows[0]?.e !== "true" && exists.rows[0]?.e !== "t") return undefined
  }
  const keys = await query(
    pool,
    `SELECT array_agg(a.attname ORDER BY k.ord)::text[] AS cols
       FROM pg_index i
       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indimmediate
        AND i.indpred IS NULL AND i.indexprs IS NULL
      GROUP BY i.indexrelid ORDER BY bool_or(i.indisprimary) DESC, i.indexrelid`,
    [name]
  )
  return {
    ref,
    columns: cols.rows.map((r: Record<string, string>) => {
      const { kind, element } = kindOfOid(Number(r.oid))
      return {
        name: r.name!,
        kind,
        element,
        dbType: r.type!,
        nullable: r.nullable === "t",
        hasDefault: r.hasdef === "t"
      }
    }),
    uniqueKeys: keys.rows.map((r: Record<string, string>) => parseArray(r.cols!, identity) as ReadonlyArray<string>)
  }
}

const describe = async (
  pool: pg.Pool,
  relation: Relation,
  columns?: ReadonlyArray<string>
): Promise<ReadonlyArray<Column>> => {
  const result = await query(pool, `SELECT ${selectList(columns)} FROM ${fromClause(relation)} LIMIT 0`)
  return result.fields.map((f) => {
    const { kind, element } = kindOfOid(f.dataTypeID)
    return { name: f.name, kind, element, dbType: String(f.dataTypeID) }
  })
}

/** Streams a COPY TO STDOUT as chunks of parsed rows; releases (or destroys, if unfinished) its connection. */
async function* copyOut(
  pool: pg.Pool,
  sql: string,
  columns: ReadonlyArray<Column>,
  batchSize: number
): AsyncGenerator<ReadChunk> {
  const client = await pool.connect()
  client.on("error", ignore)
  let finished = false
  let stream: Readable | undefined
  try {
    stream = client.query(copyTo(`COPY (${sql}) TO STDOUT`, { highWaterMark: 1 << 22 }))
    const parser = makeCopyParser(columns)
    let rows: Array<Row> = []
    let rejected: Array<{ row: unknown; message: string }> = []
    for await (const chunk of stream) {
      parser.push(chunk as Buffer, rows, rejected)
      if (rows.length >= batchSize) {
        while (rows.length >= batchSize) {
          const out = rows.length === batchSize ? rows : rows.slice(0, batchSize)
          rows = rows.length === batchSize ? [] : rows.slice(batchSize)
          yield { rows: out, rejected }
          rejected = []
        }
      }
    }
    if (rows.length > 0 || rejected.length > 0) yield { rows, rejected }
    finished = true
  } finally {
    if (!finished) stream?.destroy()
    giveBack(client, !finished)
  }
}

/** What a raw read looks at in a field: whether its text may not be the value a record of the read would hold. */
type OddTest = (buf: Buffer, start: number, end: number) => boolean

const isDigit = (c: number | undefined) => c !== undefined && c >= 48 && c <= 57
const isNull = (buf: Buffer, start: number, end: number) =>
  end - start === 2 && buf[start] === 92 && buf[start + 1] === 78

/**
 * The fields whose text a raw read must look at, by column: those `parserOf` may leave as text or reject (see
 * `SqlTypes`): a bigint of 16 digits or more (beyond ±2^53-1 it is rejected), a decimal that is not a plain number
 * (`NaN`, infinities), a timestamp the fast parser does not take (infinities, BC, years before 1000 or after 9999).
 */
const oddTestOf = (kind: Column["kind"]): OddTest | undefined => {
  switch (kind) {
    case "bigint":
      return (_, start, end) => end - start >= 16
    case "decimal":
      return (buf, start, end) =>
        !isNull(buf, start, end) && !(isDigit(buf[start]) || (buf[start] === 45 && isDigit(buf[start + 1])))
    case "timestamp":
    case "timestamptz":
      return (buf, start, end) =>
        !isNull(buf, start, end) &&
        (!isDigit(buf[start]) || buf[start] === 48 || buf[start + 4] !== 45 || buf[end - 1] === 67)
    default:
      return undefined
  }
}

/**
 * Streams a COPY TO STDOUT as raw chunks of whole lines (see `SqlClient.RawChunk`): a line with a field that may not be
 * a record's value (see {@link oddTestOf}) is parsed and sent as its own segment; the others pass as they came.
 */
async function* copyOutRaw(
  pool: pg.Pool,
  sql: string,
  columns: ReadonlyArray<Column>,
  batchSize: number
): AsyncGenerator<RawChunk> {
  const client = await pool.connect()
  client.on("error", ignore)
  let finished = false
  let stream: Readable | undefined
  const tests: Array<readonly [number, OddTest]> = []
  columns.forEach((c, i) => {
    const test = oddTestOf(c.kind)
    if (test !== undefined) tests.push([i, test])
  })
  const last = tests.length === 0 ? -1 : tests[tests.length - 1]![0]
  const parser = makeCopyParser(columns)
  /** True when a field of the line `start`..`end` (its newline) must be parsed to know its value. */
  const odd = (buf: Buffer, start: number, end: number): boolean => {
    let field = 0
    let from = start
    let t = 0
    while (field <= last) {
      let to = buf.indexOf(9, from)
      if (to === -1 || to > end) to = end
      if (field === tests[t]![0]) {
        if (tests[t]![1](buf, from, to)) return true
        t++
      }
      if (to === end) return false
      from = to + 1
      field++
    }
    return false
  }
  try {
    stream = client.query(copyTo(`COPY (${sql}) TO STDOUT`, { highWaterMark: 1 << 22 }))
    let segments: Array<Uint8Array> = []
    let parsed: Array<{ segment: number; row?: Row; rejected?: RejectedRow }> = []
    let rows = 0
    let carry: Buffer | undefined
    /** Passes on the lines of `buf` (it ends with a newline): runs as they are, odd lines parsed, one segment each. */
    const take = (buf: Buffer) => {
      let run = 0
      let start = 0
      while (start < buf.length) {
        const end = buf.indexOf(10, start)
        if (last >= 0 && odd(buf, start, end)) {
          if (run < start) segments.push(buf.subarray(run, start))
          const one: Array<Row> = []
          const rejected: Array<RejectedRow> = []
          parser.line(buf.toString("utf8", start, end), one, rejected)
          parsed.push({ segment: segments.length, ...(one.length > 0 ? { row: one[0]! } : { rejected: rejected[0]! }) })
          segments.push(buf.subarray(start, end + 1))
          run = end + 1
        }
        rows++
        start = end + 1
      }
      if (run < buf.length) segments.push(buf.subarray(run))
    }
    for await (const data of stream) {
      const chunk = data as Buffer
      const end = chunk.lastIndexOf(10)
      if (end === -1) {
        carry = carry === undefined ? chunk : Buffer.concat([carry, chunk])
        continue
      }
      let from = 0
      if (carry !== undefined) {
        const first = chunk.indexOf(10)
        take(Buffer.concat([carry, chunk.subarray(0, first + 1)]))
        from = first + 1
        carry = undefined
      }
      if (from <= end) take(chunk.subarray(from, end + 1))
      if (end + 1 < chunk.length) carry = chunk.subarray(end + 1)
      if (rows >= batchSize) {
        yield { segments, rows, parsed }
        segments = []
        parsed = []
        rows = 0
      }
    }
    if (carry !== undefined) take(Buffer.concat([carry, Buffer.from("\n")]))
    if (rows > 0) yield { segments, rows, parsed }
    finished = true
  } finally {
    if (!finished) stream?.destroy()
    giveBack(client, !finished)
  }
}

// -----------------------------------------------------------------------------
// Loads
// -----------------------------------------------------------------------------

const stageName = (target: string, tag: string) => {
  const suffix = `__etl_${tag}`
  let base = target
  while (new TextEncoder().encode(base + suffix).length > 63) base = base.slice(0, -1)
  return base + suffix
}

// The staging table of an overwrite is created and renamed inside the load's transaction, so no other session ever
// sees it, and a killed run's transaction takes it along. Still, it carries a run marker like MySQL's: its name holds
// the run's tag, and the load's transaction holds the advisory lock of that tag. A staging table visible to others (left
// by an older version, or by a crash between two statements of a future one) whose lock is free belongs to a dead
// run, and the next load of the same target drops it.

/** The first key of the advisory locks of staging tags ("ETL1"). */
const STAGING_LOCKS = 0x45544c31

/**
 * The advisory lock (two int4 keys) the run with staging tag `tag` (12 hex digits) holds while its staging table
 * exists. Exported for tests that stand for a live run.
 */
export const stagingLock = (tag: string): readonly [number, number] => [
  STAGING_LOCKS,
  Number.parseInt(tag.slice(0, 8), 16) | 0
]

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`)
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** Drops the staging tables of `ref` whose run is dead (their lock is free); a live run's tables are left alone. */
const sweepStaging = async (client: pg.ClientBase, ref: Identifier.TableRef): Promise<void> => {
  const base = stageName(ref.name, "0".repeat(12)).slice(0, -"__etl_".length - 12)
  const match = new RegExp(`^${escapeRegExp(base)}__etl_([0-9a-f]{12})$`)
  const found = await query(
    client,
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = COALESCE($1, current_schema()) AND c.relkind IN ('r', 'p') AND c.relname LIKE $2`,
    [ref.schema ?? null, `${escapeLike(base)}\\_\\_etl\\_%`]
  )
  for (const row of found.rows as ReadonlyArray<{ readonly name: string }>) {
    const tag = match.exec(row.name)?.[1]
    if (tag === undefined) continue
    await query(client, "BEGIN")
    try {
      const got = await query(client, "SELECT pg_try_advisory_xact_lock($1, $2) AS got", stagingLock(tag))
      if (got.rows[0]?.got === "t")
        await query(client, `DROP TABLE IF EXISTS ${qt({ schema: ref.schema, name: row.name })}`)
      await query(client, "COMMIT")
    } catch (e) {
      await query(client, "ROLLBACK").catch(() => undefined)
      throw e
    }
  }
}

/**
 * Opens a load of `request`; with `stageInto`, a load into that fresh staging table instead (a split run's part, see
 * `SqlClient.stage`): dropped when it exists and created with the request's columns in the load's transaction.
 */
const openLoad = (
  pool: pg.Pool,
  request: LoadRequest,
  stageInto?: Identifier.TableRef
): Effect.Effect<Loader<PostgresError>, PostgresError, Scope.Scope> =>
  Effect.gen(function* () {
    const target = qt(request.table)
    const label = Identifier.show(request.table)
    const encode = makeRowEncoder("postgres", request.columns)
    const columnList = request.columns.map((c) => q(c.name)).join(", ")
    const tag = crypto.randomUUID().replaceAll("-", "").slice(0, 12)
    const sweep = (client: pg.ClientBase) =>
      attempt(`sweep the staging tables of ${label}`, () => sweepStaging(client, request.table))

    if (request.transaction === "batch") {
      yield* Effect.acquireUseRelease(
        attempt(`connect to load ${label}`, () =>
          pool.connect().then((c) => {
            c.on("error", ignore)
            return c
          })
        ),
        sweep,
        (c, exit) => Effect.sync(() => giveBack(c, exit._tag === "Failure"))
      )
      // Each write is its own COPY (atomic by itself): durable as soon as it returns.
      let written = 0
      const copyOnce = (send: (copy: CopyIn) => Promise<void>) =>
        attempt(`copy into ${label}`, async () => {
          const client = await pool.connect()
          client.on("error", ignore)
          let ok = false
          try {
            const copy = new CopyIn(client.query(copyFrom(`COPY ${target} (${columnList}) FROM STDIN`)))
            await send(copy)
            written += await copy.end()
            ok = true
          } finally {
            giveBack(client, !ok)
          }
        })
      return {
        write: (rows) => (rows.length === 0 ? Effect.void : copyOnce((copy) => copy.write(encode(rows)))),
        writeRaw: (chunks) => (chunks.length === 0 ? Effect.void : copyOnce((copy) => copy.writeBytes(chunks))),
        commit: Effect.sync(() => ({ written, inserted: written }))
      } satisfies Loader<PostgresError>
    }

    let committed = false
    let copy: CopyIn | undefined
    const client = yield* Effect.acquireRelease(
      attempt(`connect to load ${label}`, () =>
        pool.connect().then((c) => {
          c.on("error", ignore)
          return c
        })
      ),
      (c: PoolClient) =>
        Effect.promise(async () => {
          if (committed) return giveBack(c, false)
          // Cancel the COPY and roll back what the attempt did; a connection that cannot do that is dropped.
          try {
            if (copy !== undefined) await within(copy.abort(), 5_000)
            await within(c.query("ROLLBACK"), 5_000)
            giveBack(c, false)
          } catch {
            giveBack(c, true)
          }
        })
    )
    const run = (operation: string, sql: string, values: ReadonlyArray<unknown> = []) =>
      attempt(operation, () => query(client, sql, values))

    yield* sweep(client)
    yield* run(`begin a load of ${label}`, "BEGIN")
    let copyTarget = target
    let stage: Identifier.TableRef | undefined
    if (stageInto !== undefined) {
      copyTarget = qt(stageInto)
      const operation = `create the staging table ${Identifier.show(stageInto)} of ${label}`
      yield* run(operation, `DROP TABLE IF EXISTS ${copyTarget}`)
      yield* run(operation, `CREATE TABLE ${copyTarget} AS SELECT ${columnList} FROM ${target} WITH NO DATA`)
    } else if (request.mode === "overwrite") {
      yield* run(`create a staging table for ${label}`, "SELECT pg_advisory_xact_lock($1, $2)", stagingLock(tag))
      stage = { schema: request.table.schema, name: stageName(request.table.name, tag) }
      copyTarget = qt(stage)
      yield* run(`create a staging table for ${label}`, `CREATE TABLE ${copyTarget} (LIKE ${target} INCLUDING ALL)`)
    } else if (request.mode === "upsert") {
      stage = { name: `etl_stage_${tag}` }
      copyTarget = qt(stage)
      yield* run(
        `create a staging table for ${label}`,
        `CREATE TEMPORARY TABLE ${copyTarget} (LIKE ${target} INCLUDING DEFAULTS) ON COMMIT DROP`
      )
    }
    const copyIn = new CopyIn(
      client.query(copyFrom(`COPY ${copyTarget} (${columnList}) FROM STDIN`, { highWaterMark: 1 << 23 }))
    )
    copy = copyIn

    const commit = Effect.gen(function* () {
      let copied = yield* attempt(`copy into ${label}`, () => copyIn.end())
      // A split run's finish: the rows its parts staged, moved on the server (in their order, for an upsert's last
      // row of a key to win).
      for (const staged of request.staged ?? []) {
        const moved = yield* run(
          `load the staged rows of ${Identifier.show(staged)} into ${label}`,
          `INSERT INTO ${copyTarget} (${columnList}) SELECT ${columnList} FROM ${qt(staged)}${request.mode === "upsert" ? " ORDER BY ctid" : ""}`
        )
        copied += moved.rowCount ?? 0
      }
      let result: LoadResult = { written: copied, inserted: copied }
      if (request.mode === "overwrite") {
        yield* run(`lock ${label}`, `LOCK TABLE ${target} IN ACCESS EXCLUSIVE MODE`)
        // Sequences owned by the old table (serial columns) are the new table's defaults too: hand them over, or the
        // DROP would take them along.
        const owned = yield* run(
          `replace ${label}`,
          `SELECT s.oid::regclass::text AS seq, a.attname AS col
             FROM pg_depend d
             JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.refobjid = to_regclass($1) AND d.deptype = 'a'`,
          [target]
        )
        for (const row of owned.rows as ReadonlyArray<{ readonly seq: string; readonly col: string }>)
          yield* run(`replace ${label}`, `ALTER SEQUENCE ${row.seq} OWNED BY ${copyTarget}.${q(row.col)}`)
        yield* run(`replace ${label}`, `DROP TABLE ${target}`)
        yield* run(`replace ${label}`, `ALTER TABLE ${copyTarget} RENAME TO ${q(request.table.name)}`)
      } else if (request.mode === "upsert") {
        const keys = request.keys.map(q).join(", ")
        const others = request.columns.filter((c) => !request.keys.includes(c.name))
        const set = (others.length === 0 ? [request.columns.find((c) => c.name === request.keys[0])!] : others)
          .map((c) => `${q(c.name)} = EXCLUDED.${q(c.name)}`)
          .join(", ")
        const merge = (select: string) =>
          `WITH m AS (INSERT INTO ${target} (${columnList}) ${select} ON CONFLICT (${keys}) DO UPDATE SET ${set} RETURNING (xmax = 0) AS ins)
           SELECT count(*) FILTER (WHERE ins) AS inserted, count(*) AS total FROM m`
        yield* run(`merge into ${label}`, "SAVEPOINT etl_merge")
        const first = yield* attempt(`merge into ${label}`, () =>
          query(client, merge(`SELECT ${columnList} FROM ${copyTarget}`))
        ).pipe(
          Effect.map((r) => ({ ok: true as const, r })),
          Effect.catchIf(
            (e) => e.code === "21000",
            () => Effect.succeed({ ok: false as const })
          )
        )
        // The same key twice in one load: keep the row that came last (a plain merge cannot touch a row twice).
        const merged = first.ok
          ? first.r
          : yield* Effect.andThen(
              run(`merge into ${label}`, "ROLLBACK TO SAVEPOINT etl_merge"),
              run(
                `merge into ${label}`,
                merge(`SELECT DISTINCT ON (${keys}) ${columnList} FROM ${copyTarget} ORDER BY ${keys}, ctid DESC`)
              )
            )
        const row = merged.rows[0] as { readonly inserted: string; readonly total: string }
        const inserted = Number(row.inserted)
        const total = Number(row.total)
        result = { written: copied, inserted, updated: total - inserted, duplicates: copied - total }
      }
      if (request.offsets !== undefined && positions.length > 0) {
        const offsets = qt(request.offsets)
        const operation = `record the source positions of ${label}`
        // The stored positions, locked until the commit: a commit whose rows another process stored meanwhile fails.
        const held = yield* run(
          operation,
          `SELECT part, position FROM ${offsets} WHERE pipeline = $1 AND target = $2 AND part = ANY($3) FOR UPDATE`,
          [positions[0]!.pipeline, positions[0]!.target, positions.map((p) => p.part)]
        )
        const stored = new Map(
          (held.rows as ReadonlyArray<{ readonly part: string; readonly position: string }>).map((r) => [
            r.part,
            r.position
          ])
        )
        const moved = Checkpoint.moved(positions, stored)
        if (moved !== undefined)
          return yield* new PostgresError({
            reason: reasons.PositionsMoved,
            operation,
            message: movedMessage(label, moved)
          })
        const values = (rows: ReadonlyArray<OffsetRow>) =>
          rows.map((_, i) => `($${i * 4 + 1}, $${i * 4 + 2}, $${i * 4 + 3}, $${i * 4 + 4}, now())`).join(", ")
        const params = (rows: ReadonlyArray<OffsetRow>) =>
          rows.flatMap((p) => [p.pipeline, p.target, p.part, p.position])
        const known = positions.filter((p) => stored.has(p.part))
        const fresh = positions.filter((p) => !stored.has(p.part))
        if (known.length > 0)
          yield* run(
            operation,
            `INSERT INTO ${offsets} (pipeline, target, part, position, updated_at) VALUES ${values(known)}
             ON CONFLICT (pipeline, target, part) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at`,
            params(known)
          )
        if (fresh.length > 0) {
          // A part stored by another process since the lock was taken is not overwritten: the commit fails.
          const inserted = yield* run(
            operation,
            `INSERT INTO ${offsets} (pipeline, target, part, position, updated_at) VALUES ${values(fresh)}
             ON CONFLICT (pipeline, target, part) DO NOTHING RETURNING part`,
            params(fresh)
          )
          if (inserted.rows.length < fresh.length) {
            const taken = new Set((inserted.rows as ReadonlyArray<{ readonly part: string }>).map((r) => r.part))
            const row = fresh.find((p) => !taken.has(p.part))!
            return yield* new PostgresError({
              reason: reasons.PositionsMoved,
              operation,
              message: movedMessage(label, { row, stored: "a later position" })
            })
          }
        }
      }
      yield* run(`commit the load of ${label}`, "COMMIT")
      committed = true
      return result
    })

    let positions: ReadonlyArray<OffsetRow> = []
    return {
      write: (rows) =>
        rows.length === 0 ? Effect.void : attempt(`copy into ${label}`, () => copyIn.write(encode(rows))),
      writeRaw: (chunks) =>
        chunks.length === 0 ? Effect.void : attempt(`copy into ${label}`, () => copyIn.writeBytes(chunks)),
      ...(request.offsets === undefined
        ? {}
        : {
            positions: (rows: ReadonlyArray<OffsetRow>) => {
              positions = rows
            }
          }),
      commit
    } satisfies Loader<PostgresError>
  })

// -----------------------------------------------------------------------------
// The client
// -----------------------------------------------------------------------------

/** A read as `COPY (SELECT ...) TO STDOUT`, its output streamed by `copy` (as records, or as the text itself). */
const copyRead = <C>(
  pool: pg.Pool,
  request: ReadRequest,
  copy: (pool: pg.Pool, sql: string, columns: ReadonlyArray<Column>, batchSize: number) => AsyncGenerator<C>
): Stream.Stream<C, PostgresError> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const operation = `read ${describeRelation(request.relation)}`
      const where = whereClause(request)
      if (typeof where !== "string") return yield* Effect.fail(invalid(operation, where.error))
      const columns = yield* attempt(operation, () => describe(pool, request.relation, request.columns))
      const sql = `SELECT ${selectList(request.columns)} FROM ${fromClause(request.relation)}${where}`
      return Stream.fromAsyncIterable(copy(pool, sql, columns, request.batchSize), toError(operation))
    })
  )

/** A PostgreSQL client over a `pg` pool. */
export const make = (pool: pg.Pool, connection: string): Shape => ({
  dialect: "postgres",
  typedReads: true,
  poolSize: pool.options.max,
  connection,
  describe: (relation) => attempt(`describe ${describeRelation(relation)}`, () => describe(pool, relation)),
  table: (ref) => attempt(`describe ${Identifier.show(ref)}`, () => tableInfo(pool, ref)),
  createTable: (ref, columns, primaryKey) =>
    attempt(`create ${Identifier.show(ref)}`, () =>
      query(pool, createTableSql("postgres", ref, columns, primaryKey))
    ).pipe(Effect.asVoid),
  // reltuples is -1 for a table never vacuumed nor analyzed (PostgreSQL 14+), 0 before 14: no estimate then.
  estimateRows: (ref) =>
    attempt(`estimate the rows of ${Identifier.show(ref)}`, () =>
      query(pool, "SELECT reltuples::float8::text AS n FROM pg_class WHERE oid = to_regclass($1)", [qt(ref)])
    ).pipe(
      Effect.map((result) => {
        const n = Number((result.rows[0] as { readonly n?: string } | undefined)?.n ?? Number.NaN)
        return Number.isFinite(n) && n > 0 ? Math.round(n) : undefined
      })
    ),
  bounds: (relation, column, conditions) =>
    Effect.gen(function* () {
      const operation = `find the bounds of ${column} in ${describeRelation(relation)}`
      const where = whereClause({ conditions })
      if (typeof where !== "string") return yield* Effect.fail(invalid(operation, where.error))
      const result = yield* attempt(operation, () =>
        pool.query({
          text: `SELECT min(${q(column)}) AS min, max(${q(column)}) AS max FROM ${fromClause(relation)}${where}`,
          types: rawTypes
        })
      )
      const oid = result.fields[0]?.dataTypeID ?? 0
      const { kind, element } = kindOfOid(oid)
      const parse = parserOf(kind, element)
      const row = result.rows[0] as { readonly min: string | null; readonly max: string | null }
      const conv = (v: string | null) => {
        if (v === null) return null
        const out = parse(v)
        return typeof out === "bigint" ? Number(out) : out
      }
      return { min: conv(row.min), max: conv(row.max), kind } satisfies Bounds
    }),
  read: (request) => copyRead(pool, request, copyOut),
  rawFormat: RAW_FORMAT,
  readRaw: (request) => copyRead(pool, request, copyOutRaw),
  load: (request) => openLoad(pool, request),
  stage: (request, stage) =>
    openLoad(pool, { ...request, mode: "append", transaction: "end", offsets: undefined, staged: [] }, stage),
  dropTables: (refs) =>
    refs.length === 0
      ? Effect.void
      : Effect.asVoid(
          attempt(`drop the staging tables ${refs.map(Identifier.show).join(", ")}`, () =>
            query(pool, `DROP TABLE IF EXISTS ${refs.map(qt).join(", ")}`)
          )
        )
})

const describeRelation = (relation: Relation) => (relation._tag === "Table" ? Identifier.show(relation.ref) : "a query")

/**
 * A layer with the client of connection `name` over a pool opened when the layer is built and closed when it is
 * released. Connecting is lazy: a server that is down fails the first operation (retryable), not the layer.
 *
 * @example
 * Pipeline.run(p).pipe(Effect.provide(NodePostgres.layer({ url: Redacted.make("postgres://etl@db/warehouse") })))
 */
export const layer = <const Name extends string = "default">(
  options: ConnectionOptions,
  name: Name = "default" as Name
): Layer.Layer<PostgresClient<Name>> =>
  Layer.effect(
    tag(name),
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => {
          const pool = new (driver().pg.Pool)(poolConfig(options))
          // An idle connection killed by the server must not crash the process; the next checkout reconnects.
          pool.on("error", () => {})
          return pool
        }),
        (pool) => Effect.promise(() => pool.end().catch(() => undefined))
      ),
      (pool) => make(pool, name)
    )
  )

/**
 * Runs one SQL statement on a connection (for tests, setup scripts and benchmarks); values are parameters.
 * Rows come back with every value as text.
 */
export const execute = (
  options: ConnectionOptions,
  sql: string,
  values: ReadonlyArray<unknown> = []
): Effect.Effect<ReadonlyArray<Readonly<Record<string, string | null>>>, PostgresError> =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const client = new (driver().pg.Client)(poolConfig(options))
      client.on("error", ignore)
      return client
    }),
    (client) =>
      attempt("run a statement", async () => {
        await client.connect()
        const result = await query(client, sql, values)
        return (Array.isArray(result) ? (result.at(-1)?.rows ?? []) : result.rows) as ReadonlyArray<
          Readonly<Record<string, string | null>>
        >
      }),
    (client) => Effect.promise(() => client.end().catch(() => undefined))
  )

/**
 * A state store (see `core/State.ts`) in a PostgreSQL table (default `etl_state`, in the connection's schema), created
 * when first used: one row per pipeline, replaced in one statement. The processes of a pipeline on several machines
 * share it, so that one resumes from what another saved.
 *
 * @example
 * Pipeline.run(p).pipe(Effect.provide(NodePostgres.stateStore({ url: Redacted.make("postgres://etl@db/warehouse") })))
 */
export const stateStore = (
  options: ConnectionOptions,
  table: Identifier.TableRef = { name: "etl_state" }
): Layer.Layer<State.StateStore> =>
  Layer.effect(
    State.StateStore,
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => {
          const pool = new (driver().pg.Pool)({ ...poolConfig(options), max: 2 })
          pool.on("error", () => {})
          return pool
        }),
        (pool) => Effect.promise(() => pool.end().catch(() => undefined))
      ),
      (pool) => {
        const target = qt(table)
        let ready: Promise<unknown> | undefined
        const run = <A>(
          method: string,
          key: string | undefined,
          sql: string,
          values: ReadonlyArray<unknown>,
          f: (r: pg.QueryResult) => A
        ) =>
          Effect.mapError(
            attempt(`${method} the state in ${Identifier.show(table)}`, async () => {
              ready ??= query(
                pool,
                `CREATE TABLE IF NOT EXISTS ${target} (key text PRIMARY KEY, value text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`
              ).catch((cause: unknown) => {
                ready = undefined
                // Another process may have created it at the same moment.
                return query(pool, `SELECT 1 FROM ${target} LIMIT 0`).catch(() => Promise.reject(cause))
              })
              await ready
              return f(await query(pool, sql, values))
            }),
            (error) =>
              new KeyValueStore.KeyValueStoreError({
                method,
                ...(key === undefined ? {} : { key }),
                message: error.message,
                cause: error
              })
          )
        const keys = run("list", undefined, `SELECT key FROM ${target}`, [], (r) =>
          (r.rows as ReadonlyArray<{ readonly key: string }>).map((row) => row.key)
        )
        const kv = KeyValueStore.makeStringOnly({
          get: (key) =>
            run(
              "read",
              key,
              `SELECT value FROM ${target} WHERE key = $1`,
              [key],
              (r) => (r.rows[0] as { readonly value: string } | undefined)?.value
            ),
          set: (key, value) =>
            run(
              "save",
              key,
              `INSERT INTO ${target} (key, value, updated_at) VALUES ($1, $2, now())
               ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
              [key, value],
              () => undefined
            ),
          remove: (key) => run("remove", key, `DELETE FROM ${target} WHERE key = $1`, [key], () => undefined),
          clear: run("clear", undefined, `DELETE FROM ${target}`, [], () => undefined),
          size: Effect.map(keys, (all) => all.length),
          keys
        })
        return State.fromKeyValueStore(kv, `table ${Identifier.show(table)}`)
      }
    )
  )
