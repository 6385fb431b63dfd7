/**
 * Column types as the SQL connectors see them, the record values each maps to, and the text encodings of record
 * values for the bulk-load protocols (PostgreSQL `COPY ... FROM STDIN` text format, MySQL `LOAD DATA` with tab
 * separated fields).
 *
 * | kind          | PostgreSQL                         | MySQL / MariaDB                       | record value                 |
 * |---------------|------------------------------------|---------------------------------------|------------------------------|
 * | `int`         | smallint, integer                  | tinyint..int, year                    | number                       |
 * | `bigint`      | bigint                             | bigint                                | number (safe range only)     |
 * | `float`       | real, double precision             | float, double                         | number                       |
 * | `decimal`     | numeric(p, s)                      | decimal(p, s)                         | `BigDecimal` (exact)         |
 * | `text`        | text, varchar, char, name, enums   | char, varchar, text, enum, set        | string                       |
 * | `boolean`     | boolean                            | tinyint(1), boolean                   | boolean                      |
 * | `timestamp`   | timestamp (read as UTC)            | datetime (read as UTC)                | `Date`                       |
 * | `timestamptz` | timestamp with time zone           | timestamp (session time zone UTC)     | `Date`                       |
 * | `date`        | date                               | date                                  | `"YYYY-MM-DD"`               |
 * | `time`        | time                               | time                                  | `"HH:MM:SS[.ffffff]"`        |
 * | `uuid`        | uuid                               | uuid (MariaDB), char(36)              | string                       |
 * | `json`        | json, jsonb                        | json                                  | parsed JSON value            |
 * | `bytes`       | bytea                              | binary, varbinary, blob               | `Uint8Array`                 |
 * | `array`       | any one-dimensional or nested array | —                                     | array of the element's value |
 * | `unknown`     | anything else                      | anything else                         | the server's text            |
 *
 * A `bigint` value beyond ±2^53-1 cannot be a JavaScript number without losing digits: the record is rejected to the
 * dead letters with a message saying so (cast the column to `numeric`/`decimal` to read it as a `BigDecimal`, or to
 * text). Timestamps keep millisecond precision, the precision of `Date`.
 */
import * as BigDecimal from "effect/BigDecimal"
import { type Dialect, plainDecimal, quote, quoteTable, type TableRef } from "./Identifier.ts"

/** A column's logical type. */
export type ColumnKind =
  | "int"
  | "bigint"
  | "float"
  | "decimal"
  | "text"
  | "boolean"
  | "timestamp"
  | "timestamptz"
  | "date"
  | "time"
  | "uuid"
  | "json"
  | "bytes"
  | "array"
  | "unknown"

/** A column of a table or of a query's result. */
export interface Column {
  readonly name: string
  readonly kind: ColumnKind
  /** The server's name of the type, e.g. `numeric(18,2)`, `int4`, `varchar(255)`. */
  readonly dbType: string
  /** For arrays: the element kind. */
  readonly element?: ColumnKind | undefined
  readonly nullable?: boolean | undefined
  /**
   * The server fills the column when a row leaves it out: a `DEFAULT`, an identity or auto-increment column, or a
   * generated one. Absent when unknown (columns of a query).
   */
  readonly hasDefault?: boolean | undefined
}

/** A column to create: its name, SQL type and nullability. */
export interface ColumnDef {
  readonly name: string
  /** The SQL type, e.g. `bigint`, `numeric(18,2)`, `timestamptz`. */
  readonly type: string
  readonly nullable: boolean
}

/** The largest integer a number holds exactly, as a bigint. */
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/** Parses an integer's text; a value beyond ±2^53-1 is returned as a bigint, for the caller to reject. */
export const parseBigint = (text: string): number | bigint => {
  if (text.length < 16) return Number(text)
  const n = BigInt(text)
  return n > MAX_SAFE || n < -MAX_SAFE ? n : Number(n)
}

/** The message of a record rejected because an integer does not fit a number. */
export const unsafeIntegerMessage = (column: string, value: bigint): string =>
  `${column}: ${value} is beyond ±2^53-1 and cannot be a number without losing digits; cast the column to numeric/decimal (read as an exact BigDecimal) or to text in a query`

/** Parses a decimal's text exactly; `undefined` for `NaN` or infinities. */
export const parseDecimal = (text: string): BigDecimal.BigDecimal | undefined => {
  // Fast path for plain `-123.45`: digits, at most one point, no exponent.
  const n = text.length
  if (n > 0 && n < 17) {
    let point = -1
    let ok = true
    for (let i = text.charCodeAt(0) === 45 ? 1 : 0; i < n; i++) {
      const c = text.charCodeAt(i)
      if (c === 46 && point === -1) point = i
      else if (c < 48 || c > 57) {
        ok = false
        break
      }
    }
    if (ok && point !== n - 1) {
      const digits = point === -1 ? text : text.slice(0, point) + text.slice(point + 1)
      const value = Number.parseInt(digits, 10)
      if (Number.isSafeInteger(value)) return BigDecimal.make(BigInt(value), point === -1 ? 0 : n - point - 1)
    }
  }
  const result = BigDecimal.fromString(text)
  return result._tag === "Some" ? result.value : undefined
}

const digit = (text: string, i: number) => text.charCodeAt(i) - 48

/** The common shapes, parsed without a regular expression: `YYYY-MM-DD HH:MM:SS[.f{1,6}][+00|Z]`. */
const parseTimestampFast = (text: string): Date | undefined => {
  const n = text.length
  if (n < 19 || text.charCodeAt(4) !== 45 || (text.charCodeAt(10) !== 32 && text.charCodeAt(10) !== 84))
    return undefined
  let end = n
  if (text.endsWith("+00")) end = n - 3
  else if (text.charCodeAt(n - 1) === 90) end = n - 1
  let ms = 0
  if (end > 19) {
    if (text.charCodeAt(19) !== 46) return undefined
    const digits = end - 20
    if (digits < 1 || digits > 6) return undefined
    for (let i = 20; i < end; i++) if (digit(text, i) < 0 || digit(text, i) > 9) return undefined
    ms = digit(text, 20) * 100 + (digits > 1 ? digit(text, 21) * 10 : 0) + (digits > 2 ? digit(text, 22) : 0)
  }
  const year = digit(text, 0) * 1000 + digit(text, 1) * 100 + digit(text, 2) * 10 + digit(text, 3)
  if (year < 100) return undefined
  const t = Date.UTC(
    year,
    digit(text, 5) * 10 + digit(text, 6) - 1,
    digit(text, 8) * 10 + digit(text, 9),
    digit(text, 11) * 10 + digit(text, 12),
    digit(text, 14) * 10 + digit(text, 15),
    digit(text, 17) * 10 + digit(text, 18),
    ms
  )
  return Number.isNaN(t) ? undefined : new Date(t)
}

/** Parses `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]]` (either separator) as a `Date`; UTC when no offset. */
export const parseTimestamp = (text: string): Date | undefined => {
  const fast = parseTimestampFast(text)
  if (fast !== undefined) return fast
  const m =
    /^(-?\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?|Z)?( BC)?$/.exec(
      text
    )
  if (m === null) return undefined
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, "0"))
  // PostgreSQL writes years before 1 AD as `0044-03-15 ... BC`: 44 BC is the year -43.
  const year = m[12] === undefined ? Number(m[1]) : 1 - Number(m[1])
  let t = Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms)
  // Date.UTC maps years 0..99 to 1900..1999.
  if (year >= 0 && year < 100) {
    const d = new Date(t)
    d.setUTCFullYear(year)
    t = d.getTime()
  }
  if (m[8] !== undefined) {
    const offset = (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0)) * 1000
    t = m[8] === "+" ? t - offset : t + offset
  }
  const date = new Date(t)
  return Number.isNaN(date.getTime()) ? undefined : date
}

/** Hex text (optionally `\x`-prefixed) to bytes. */
export const fromHex = (text: string): Uint8Array => {
  const start = text.startsWith("\\x") ? 2 : 0
  const out = new Uint8Array((text.length - start) >> 1)
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(text.substr(start + i * 2, 2), 16)
  return out
}

const hexDigits = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))

/** Bytes to lower-case hex text. */
export const toHex = (bytes: Uint8Array): string => {
  let out = ""
  for (let i = 0; i < bytes.length; i++) out += hexDigits[bytes[i]!]
  return out
}

const two = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0"))
const three = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"))
let cachedDay = Number.NaN
let cachedDayText = ""

/**
 * `YYYY-MM-DD HH:MM:SS.mmm` (UTC) of a `Date`, about 10× faster than `toISOString` for the common case: the date part
 * is cached per day, the time part built from lookup tables. Years outside 1..9999 take `toISOString`.
 */
export const formatTimestamp = (date: Date, separator: " " | "T" = " "): string => {
  const ms = date.getTime()
  const day = Math.floor(ms / 86_400_000)
  if (day !== cachedDay) {
    const iso = date.toISOString()
    if (iso.length !== 24) return separator === "T" ? iso.slice(0, -1) : iso.slice(0, -1).replace("T", " ")
    cachedDay = day
    cachedDayText = iso.slice(0, 10)
  }
  let rest = ms - day * 86_400_000
  const milli = rest % 1000
  rest = (rest - milli) / 1000
  const sec = rest % 60
  rest = (rest - sec) / 60
  const min = rest % 60
  const hour = (rest - min) / 60
  return `${cachedDayText}${separator}${two[hour]}:${two[min]}:${two[sec]}.${three[milli]}`
}

/**
 * A timestamp as PostgreSQL's text input takes it: `YYYY-MM-DD HH:MM:SS.mmm+00`; years past 9999 with their digits
 * (`49991-02-21 ...`), years before 1 AD as `... BC` (the year 0 is 1 BC), as PostgreSQL writes them itself.
 */
const postgresTimestamp = (date: Date): string => {
  const year = date.getUTCFullYear()
  if (year >= 1 && year <= 9999) return `${formatTimestamp(date)}+00`
  // `+049991-02-21T05:39:21.394Z`, `0000-03-15T...`, `-000043-03-15T...`: the year, then the rest as usual.
  const iso = date.toISOString()
  const rest = iso.slice(iso.indexOf("-", 1), -1).replace("T", " ")
  return year > 9999 ? `${year}${rest}+00` : `${String(1 - year).padStart(4, "0")}${rest}+00 BC`
}

/** `YYYY-MM-DD` of a `Date` (UTC) or of a string that already is one. */
const dateText = (value: unknown): string => (value instanceof Date ? value.toISOString().slice(0, 10) : String(value))

/** Escapes text for a tab-separated bulk-load field: backslash, tab, newline and carriage return. */
export const escapeText = (s: string): string => {
  // Fast path: most values need no escaping.
  let i = 0
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 92 || c === 9 || c === 10 || c === 13) break
  }
  if (i === s.length) return s
  return s.replaceAll("\\", "\\\\").replaceAll("\t", "\\t").replaceAll("\n", "\\n").replaceAll("\r", "\\r")
}

/** The text of a PostgreSQL array literal (`{1,2,NULL}`, `{"a b","c\"d"}`) of record values. */
export const pgArrayLiteral = (values: ReadonlyArray<unknown>, element: ColumnKind | undefined): string => {
  const parts: Array<string> = []
  for (const v of values) {
    if (v === null || v === undefined) parts.push("NULL")
    else if (Array.isArray(v)) parts.push(pgArrayLiteral(v, element))
    else {
      const text =
        v instanceof Uint8Array
          ? `\\x${toHex(v)}`
          : v instanceof Date
            ? element === "date"
              ? dateText(v)
              : v.toISOString()
            : BigDecimal.isBigDecimal(v)
              ? plainDecimal(v)
              : typeof v === "object"
                ? JSON.stringify(v)
                : typeof v === "boolean"
                  ? v
                    ? "t"
                    : "f"
                  : String(v)
      parts.push(`"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`)
    }
  }
  return `{${parts.join(",")}}`
}

/** A value in the text of a bulk-load field, before escaping; `undefined` for NULL. */
export type FieldEncoder = (value: unknown) => string | undefined

const jsonText = (value: unknown): string => (typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value))

/**
 * The encoder of a target column's values for the dialect's bulk-load text (escaping is done by the caller).
 * PostgreSQL and MySQL differ in booleans (`t`/`1`), timestamps and bytes (MySQL bytes go through `UNHEX`).
 */
export const fieldEncoder = (dialect: Dialect, column: Column): FieldEncoder => {
  switch (column.kind) {
    case "int":
    case "bigint":
    case "float":
      return (v) =>
        v === null || v === undefined
          ? undefined
          : typeof v === "number"
            ? v === 0 && 1 / v < 0
              ? "-0"
              : String(v)
            : typeof v === "bigint"
              ? String(v)
              : BigDecimal.isBigDecimal(v)
                ? plainDecimal(v)
                : escapeText(String(v))
    case "boolean":
      return (v) =>
        v === null || v === undefined
          ? undefined
          : dialect === "postgres"
            ? v === true || v === "t" || v === "true" || v === 1
              ? "t"
              : "f"
            : v === true || v === "t" || v === "true" || v === 1
              ? "1"
              : "0"
    case "timestamp":
    case "timestamptz":
      return (v) =>
        v === null || v === undefined
          ? undefined
          : v instanceof Date
            ? dialect === "postgres"
              ? postgresTimestamp(v)
              : formatTimestamp(v)
            : escapeText(String(v))
    case "date":
      return (v) =>
        v === null || v === undefined ? undefined : v instanceof Date ? dateText(v) : escapeText(String(v))
    case "decimal":
      return (v) =>
        v === null || v === undefined
          ? undefined
          : BigDecimal.isBigDecimal(v)
            ? plainDecimal(v)
            : typeof v === "number"
              ? String(v)
              : escapeText(String(v))
    case "bytes":
      return (v) =>
        v === null || v === undefined
          ? undefined
          : v instanceof Uint8Array
            ? dialect === "postgres"
              ? `\\x${toHex(v)}`
              : toHex(v)
            : dialect === "postgres"
              ? `\\x${toHex(new TextEncoder().encode(String(v)))}`
              : toHex(new TextEncoder().encode(String(v)))
    case "json":
      return (v) => (v === null || v === undefined ? undefined : jsonText(v))
    case "array":
      return (v) =>
        v === null || v === undefined ? undefined : Array.isArray(v) ? pgArrayLiteral(v, column.element) : String(v)
    default:
      return (v) =>
        v === null || v === undefined
          ? undefined
          : typeof v === "string"
            ? v
            : typeof v === "number"
              ? v === 0 && 1 / v < 0
                ? "-0"
                : String(v)
              : typeof v === "bigint"
                ? String(v)
                : typeof v === "boolean"
                  ? v
                    ? dialect === "postgres"
                      ? "true"
                      : "1"
                    : dialect === "postgres"
                      ? "false"
                      : "0"
                  : v instanceof Date
                    ? v.toISOString()
                    : BigDecimal.isBigDecimal(v)
                      ? plainDecimal(v)
                      : v instanceof Uint8Array
                        ? new TextDecoder().decode(v)
                        : JSON.stringify(v)
  }
}

/**
 * Encodes records as tab-separated lines with `\N` for NULL, the text format of both `COPY ... FROM STDIN` and
 * `LOAD DATA ... FIELDS TERMINATED BY '\t' ESCAPED BY '\\'`. Returns the text of the whole batch.
 */
export const makeRowEncoder = (
  dialect: Dialect,
  columns: ReadonlyArray<Column>
): ((records: ReadonlyArray<Readonly<Record<string, unknown>>>) => string) => {
  const names = columns.map((c) => c.name)
  const encoders = columns.map((c) => fieldEncoder(dialect, c))
  // The encoders of these kinds escape whatever they did not produce themselves (a string where a number was
  // expected), so their output needs no second pass.
  const needsEscape = columns.map((c) => !safeKinds.has(c.kind))
  const n = names.length
  return (records) => {
    let out = ""
    for (let r = 0; r < records.length; r++) {
      const record = records[r]!
      for (let i = 0; i < n; i++) {
        const text = encoders[i]!(record[names[i]!])
        out += text === undefined ? "\\N" : needsEscape[i] ? escapeText(text) : text
        out += i === n - 1 ? "\n" : "\t"
      }
    }
    return out
  }
}

const safeKinds: ReadonlySet<ColumnKind> = new Set([
  "int",
  "bigint",
  "float",
  "decimal",
  "boolean",
  "timestamp",
  "timestamptz",
  "date"
])

/** The SQL type of an Avro type, for creating a table from a record schema; `undefined` when there is none. */
export const sqlTypeOfAvro = (
  dialect: Dialect,
  avro: unknown
): { readonly type: string; readonly nullable: boolean } | undefined => {
  if (Array.isArray(avro)) {
    const branches = avro.filter((b) => b !== "null")
    if (branches.length !== 1) return undefined
    const inner = sqlTypeOfAvro(dialect, branches[0])
    return inner === undefined
      ? undefined
      : { type: inner.type, nullable: branches.length < avro.length || inner.nullable }
  }
  const pg = dialect === "postgres"
  if (typeof avro === "string") {
    switch (avro) {
      case "int":
        return { type: pg ? "integer" : "INT", nullable: false }
      case "long":
        return { type: pg ? "bigint" : "BIGINT", nullable: false }
      case "float":
        return { type: pg ? "real" : "FLOAT", nullable: false }
      case "double":
        return { type: pg ? "double precision" : "DOUBLE", nullable: false }
      case "boolean":
        return { type: pg ? "boolean" : "BOOLEAN", nullable: false }
      case "string":
        return { type: pg ? "text" : "VARCHAR(255)", nullable: false }
      case "bytes":
        return { type: pg ? "bytea" : "LONGBLOB", nullable: false }
      default:
        return undefined
    }
  }
  if (typeof avro !== "object" || avro === null) return undefined
  const t = avro as {
    readonly type?: unknown
    readonly logicalType?: unknown
    readonly precision?: unknown
    readonly scale?: unknown
    readonly items?: unknown
  }
  switch (t.logicalType) {
    case "decimal":
      return { type: `${pg ? "numeric" : "DECIMAL"}(${Number(t.precision)},${Number(t.scale ?? 0)})`, nullable: false }
    case "timestamp-millis":
      return { type: pg ? "timestamptz(3)" : "DATETIME(3)", nullable: false }
    case "timestamp-micros":
      return { type: pg ? "timestamptz" : "DATETIME(6)", nullable: false }
    case "date":
      return { type: pg ? "date" : "DATE", nullable: false }
    case "uuid":
      return { type: pg ? "uuid" : "CHAR(36)", nullable: false }
  }
  if (t.type === "enum") return { type: pg ? "text" : "VARCHAR(255)", nullable: false }
  if (t.type === "fixed") return { type: pg ? "bytea" : "LONGBLOB", nullable: false }
  if (t.type === "map" || t.type === "record") return { type: pg ? "jsonb" : "JSON", nullable: false }
  if (t.type === "array") {
    if (!pg) return { type: "JSON", nullable: false }
    const item = sqlTypeOfAvro(dialect, t.items)
    return item === undefined ? undefined : { type: `${item.type}[]`, nullable: false }
  }
  return typeof t.type === "string" || Array.isArray(t.type) ? sqlTypeOfAvro(dialect, t.type) : undefined
}

/** The columns of a table created from an Avro record schema; a field with no SQL type is an error message. */
export const columnsOfAvro = (dialect: Dialect, avro: unknown): ReadonlyArray<ColumnDef> | string => {
  const record = avro as { readonly type?: unknown; readonly fields?: ReadonlyArray<{ name: string; type: unknown }> }
  if (typeof avro !== "object" || avro === null || record.type !== "record" || !Array.isArray(record.fields))
    return "the record schema is not an Avro record"
  const out: Array<ColumnDef> = []
  for (const field of record.fields) {
    const sql = sqlTypeOfAvro(dialect, field.type)
    if (sql === undefined) return `field ${field.name}: no SQL type for Avro type ${JSON.stringify(field.type)}`
    out.push({ name: field.name, type: sql.type, nullable: sql.nullable })
  }
  return out
}

/**
 * The `CREATE TABLE IF NOT EXISTS` statement of a table with these columns (and primary key): what a sink with
 * `create_if_missing` runs, and what `schema show --as postgres-ddl|mysql-ddl` prints. MySQL tables are utf8mb4.
 */
export const createTableSql = (
  dialect: Dialect,
  ref: TableRef,
  columns: ReadonlyArray<ColumnDef>,
  primaryKey: ReadonlyArray<string>
): string => {
  const column = (c: ColumnDef) =>
    `${quote(dialect, c.name)} ${c.type}${c.nullable ? (dialect === "mysql" ? " NULL" : "") : " NOT NULL"}`
  const parts = [
    ...columns.map(column),
    ...(primaryKey.length === 0 ? [] : [`PRIMARY KEY (${primaryKey.map((k) => quote(dialect, k)).join(", ")})`])
  ]
  return `CREATE TABLE IF NOT EXISTS ${quoteTable(dialect, ref)} (${parts.join(", ")})${dialect === "mysql" ? " DEFAULT CHARSET = utf8mb4" : ""}`
}

const decimalOf = (dbType: string): { readonly precision: number; readonly scale: number } | undefined => {
  const m = /\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)/.exec(dbType)
  return m === null ? undefined : { precision: Number(m[1]), scale: Number(m[2] ?? 0) }
}

/**
 * The Avro type of a column's values in the record representation (for writing what a table holds to Avro files, or
 * registering its schema): `bigint` → `long`, `decimal(p, s)` → `decimal` bytes, timestamps → `timestamp-millis`,
 * `date` → `date`, `uuid` → `uuid`; a nullable column is a union with `null`. JSON columns (any JSON value), `unknown`
 * columns and decimals without a declared precision have no Avro type: `undefined`.
 */
export const avroOfColumn = (column: Column): unknown => {
  const base = ((kind: ColumnKind, dbType: string, element: ColumnKind | undefined): unknown => {
    switch (kind) {
      case "int":
        return "int"
      case "bigint":
        return "long"
      case "float":
        return "double"
      case "decimal": {
        const d = decimalOf(dbType)
        return d === undefined ? undefined : { type: "bytes", logicalType: "decimal", ...d }
      }
      case "text":
      case "time":
        return "string"
      case "boolean":
        return "boolean"
      case "timestamp":
      case "timestamptz":
        return { type: "long", logicalType: "timestamp-millis" }
      case "date":
        return { type: "int", logicalType: "date" }
      case "uuid":
        return { type: "string", logicalType: "uuid" }
      case "bytes":
        return "bytes"
      case "array": {
        const item = avroOfColumn({ name: "item", kind: element ?? "unknown", dbType: dbType.replace(/\[\]$/, "") })
        return item === undefined ? undefined : { type: "array", items: item }
      }
      default:
        return undefined
    }
  })(column.kind, column.dbType, column.element)
  if (base === undefined) return undefined
  return column.nullable === false ? base : ["null", base]
}

/**
 * The Avro record schema of a table's columns; columns without an Avro type are listed in `unsupported`.
 *
 * @example
 * const info = yield* client.table({ name: "transactions" })
 * const { schema } = SqlTypes.avroOfColumns("Transaction", info.columns)
 */
export const avroOfColumns = (
  name: string,
  columns: ReadonlyArray<Column>
): { readonly schema: unknown; readonly unsupported: ReadonlyArray<string> } => {
  const fields: Array<unknown> = []
  const unsupported: Array<string> = []
  for (const c of columns) {
    const type = avroOfColumn(c)
    if (type === undefined) unsupported.push(c.name)
    else fields.push(Array.isArray(type) ? { name: c.name, type, default: null } : { name: c.name, type })
  }
  return { schema: { type: "record", name, fields }, unsupported }
}
