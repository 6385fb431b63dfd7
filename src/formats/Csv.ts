/**
 * CSV as in RFC 4180: records separated by LF or CRLF, fields separated by a one-character delimiter, fields
 * optionally enclosed in double quotes, with `""` for a quote and line breaks allowed inside quotes.
 *
 * {@link decode} reads the column names from a header row (or takes them from the options), parses fields with a
 * state machine that carries over chunk boundaries, and builds one object per record. Columns may be typed
 * (`number`, `integer`, `boolean`, `json`; the rest are strings): an empty unquoted field is `null` in a typed column
 * (and in string columns too with `emptyAsNull`, like PostgreSQL's `COPY ... CSV`, while a quoted `""` stays an empty
 * string). A value that does not parse fails the stream naming the line and column, or, with `onError: "collect"`,
 * is handed back next to the good records.
 *
 * {@link encode} writes a header and quotes only fields that need it; `null` is an empty field and `""` a quoted
 * empty field, so {@link decode} with `emptyAsNull: true` reads back what was written. Typed values are converted as
 * in {@link JsonValue}; nested objects and arrays are written as JSON text.
 *
 * @since 0.1.0
 */
import * as BigDecimal from "effect/BigDecimal"
import type * as Stream from "effect/Stream"
import { AFTER_CR, CR, FIELD_START, LF, QUOTE, QUOTE_SEEN, QUOTED, UNQUOTED } from "./CsvSyntax.ts"
import * as FormatError from "./FormatError.ts"
import * as JsonValue from "./JsonValue.ts"
import * as Transcoder from "./Transcoder.ts"
import * as Utf8 from "./Utf8.ts"

/**
 * The type of a decoded column.
 *
 * @since 0.1.0
 */
export type ColumnType = "string" | "number" | "integer" | "boolean" | "json"

/**
 * Options of {@link decode}.
 *
 * @since 0.1.0
 */
export interface DecodeOptions {
  /** The file or source name used in error messages. */
  readonly source?: string | undefined
  /** Records per emitted batch (default {@link Transcoder.defaultBatchSize}). */
  readonly batchSize?: number | undefined
  /** Fail on the first bad record (default) or collect bad records next to the good ones. */
  readonly onError?: FormatError.OnError | undefined
  /** The field delimiter, one character (default `,`). */
  readonly delimiter?: string | undefined
  /**
   * `true` (default): the first record holds the column names. `false`: there is no header and the columns are named
   * `column1`, `column2`, ... An array: there is no header and these are the column names.
   */
  readonly header?: boolean | ReadonlyArray<string> | undefined
  /** Column types by name; columns not listed are strings. Every listed column must exist. */
  readonly columns?: Readonly<Record<string, ColumnType>> | undefined
  /** Read an empty unquoted field as `null` in string columns too (default `false`: `""`). */
  readonly emptyAsNull?: boolean | undefined
  /**
   * The longest record accepted, in UTF-16 code units (default 64 Mi). A longer record fails the stream, or is collected
   * with its first {@link FormatError.maxSnippet} characters while the rest of it is skipped.
   */
  readonly maxRecordLength?: number | undefined
  /** How deeply objects and arrays may nest in a `json` column (default {@link JsonValue.defaultMaxDepth}). */
  readonly maxDepth?: number | undefined
  /** The lines before the first one read (a range of a file that starts further in): line numbers count from it. */
  readonly linesBefore?: number | undefined
}

/**
 * The default of {@link DecodeOptions.maxRecordLength}.
 *
 * @since 0.1.0
 */
export const defaultMaxRecordLength = 64 * 1024 * 1024

// Column kinds.
const STRING = 0
const NUMBER = 1
const INTEGER = 2
const BOOLEAN = 3
const JSON_KIND = 4

const kindOf: Record<ColumnType, number> = {
  string: STRING,
  number: NUMBER,
  integer: INTEGER,
  boolean: BOOLEAN,
  json: JSON_KIND
}

const NUMBER_RE = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$|^\s*(?:[+-]?Infinity|NaN)\s*$/
const INTEGER_RE = /^\s*[+-]?\d+\s*$/

type Out = ReadonlyArray<unknown> | FormatError.LenientBatch

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&")

const quoter = (delimiter: string): ((text: string) => string) => {
  const special = new RegExp(`[${escapeRegExp(delimiter)}"\\r\\n]`)
  return (text) => (special.test(text) ? `"${text.replaceAll('"', '""')}"` : text)
}

const checkDelimiter = (delimiter: string, source: string | undefined): FormatError.FormatError | undefined =>
  delimiter.length !== 1 || delimiter === '"' || delimiter === "\n" || delimiter === "\r"
    ? FormatError.make({
        format: "csv",
        file: source,
        reason: `invalid delimiter ${JSON.stringify(delimiter)}: must be one character other than a quote or a line break`
      })
    : undefined

class Decoder implements Transcoder.Transcoder<Uint8Array, Out> {
  readonly lines: Utf8.LineDecoder
  readonly emit: Utf8.Emit
  out: Array<Out> = []
  readonly batcher: Transcoder.Batcher<unknown>
  readonly source: string | undefined
  readonly delimiter: number
  readonly quote: (text: string) => string
  readonly columnTypes: Readonly<Record<string, ColumnType>>
  readonly emptyAsNull: boolean
  readonly maxRecordLength: number
  readonly maxDepth: number
  readonly headerRow: boolean
  readonly configError: FormatError.FormatError | undefined

  names: ReadonlyArray<string> | undefined
  kinds: Array<number> = []
  values: Array<unknown> = []
  build: (values: ReadonlyArray<unknown>) => Record<string, unknown> = () => ({})

  state = FIELD_START
  row: Array<string | null> = []
  field = ""
  fieldQuoted = false
  line = 1
  recordLine = 1
  recordError: string | undefined
  // The raw bytes of the lines of the current record that are not valid UTF-8, and of the line being scanned if it
  // is one of them.
  taint: Uint8Array | undefined
  tainting: Uint8Array | undefined
  // The start of the current record's fields, joined by the delimiter, once the record is known to be too long: the
  // rest of it is not kept. Built the same way however the bytes were chunked.
  overlong: string | undefined

  constructor(options: DecodeOptions | undefined) {
    this.batcher = new Transcoder.Batcher(
      options?.batchSize ?? Transcoder.defaultBatchSize,
      options?.onError === "collect"
    )
    this.source = options?.source
    const delimiter = options?.delimiter ?? ","
    this.configError = checkDelimiter(delimiter, this.source)
    this.delimiter = delimiter.charCodeAt(0)
    this.quote = quoter(delimiter)
    this.columnTypes = options?.columns ?? {}
    this.emptyAsNull = options?.emptyAsNull ?? false
    this.maxRecordLength = options?.maxRecordLength ?? defaultMaxRecordLength
    this.line = 1 + (options?.linesBefore ?? 0)
    this.recordLine = this.line
    this.maxDepth = options?.maxDepth ?? JsonValue.defaultMaxDepth
    // A UTF-16 code unit takes at most 3 bytes: a line handed on in parts belongs to a record that is too long.
    this.lines = new Utf8.LineDecoder(3 * this.maxRecordLength + 3, { crBreaks: true })
    this.emit = (text, invalid) => (invalid === undefined ? this.scan(text, this.out) : this.scanInvalid(text, invalid))
    const header = options?.header ?? true
    this.headerRow = header === true
    if (typeof header !== "boolean" && this.configError === undefined) {
      this.configError = this.setNames(header)
    }
  }

  error(reason: string, line: number | undefined, column?: string): FormatError.FormatError {
    return FormatError.make({ format: "csv", file: this.source, line, column, reason })
  }

  setNames(names: ReadonlyArray<string>): FormatError.FormatError | undefined {
    const seen = new Set<string>()
    for (const name of names) {
      if (seen.has(name)) return this.error(`duplicate column name ${JSON.stringify(name)}`, this.recordLine)
      seen.add(name)
    }
    for (const name of Object.keys(this.columnTypes)) {
      if (!seen.has(name)) {
        return this.error(
          `typed column ${JSON.stringify(name)} is not in the header (columns: ${FormatError.snippet(names.join(", "))})`,
          this.headerRow ? this.recordLine : undefined
        )
      }
    }
    this.names = names
    this.kinds = names.map((name) => kindOf[this.columnTypes[name] ?? "string"] ?? STRING)
    this.values = new Array<unknown>(names.length).fill(null)
    this.build = recordBuilder(names)
    return undefined
  }

  push(bytes: Uint8Array, out: Array<Out>): FormatError.FormatError | undefined {
    if (this.configError !== undefined) return this.configError
    this.out = out
    return this.lines.push(bytes, this.emit)
  }

  /** Scans a line that is not valid UTF-8: every record with a part in it is rejected with the line's bytes. */
  scanInvalid(text: string, bytes: Uint8Array): FormatError.FormatError | undefined {
    this.taint = this.taint === undefined ? bytes : Buffer.concat([this.taint, bytes])
    this.tainting = bytes
    const error = this.scan(text, this.out)
    this.tainting = undefined
    if (
      (this.state === FIELD_START || this.state === AFTER_CR) &&
      this.row.length === 0 &&
      this.field.length === 0 &&
      !this.fieldQuoted &&
      this.overlong === undefined
    )
      this.taint = undefined
    return error
  }

  flush(out: Array<Out>): FormatError.FormatError | undefined {
    if (this.configError !== undefined) return this.configError
    this.out = out
    const error = this.lines.end(this.emit)
    if (error !== undefined) return error
    switch (this.state) {
      case QUOTED: {
        const reason = "unterminated quoted field at end of input"
        if (!this.batcher.lenient || this.names === undefined) return this.error(reason, this.recordLine)
        this.endField()
        const raw = this.overlong === undefined ? this.raw(this.row) : FormatError.snippet(this.growHead(this.row, ""))
        const rejected = this.bad(reason, this.recordLine, raw, out)
        this.row.length = 0
        if (rejected !== undefined) return rejected
        break
      }
      case UNQUOTED:
      case QUOTE_SEEN: {
        this.endField()
        const error = this.endRecord(out)
        if (error !== undefined) return error
        break
      }
      case FIELD_START:
        // A trailing delimiter leaves an empty last field; a record that had not started yet is nothing.
        if (this.row.length > 0 || this.overlong !== undefined) {
          this.endField()
          const error = this.endRecord(out)
          if (error !== undefined) return error
        }
        break
    }
    this.batcher.cut(out)
    return undefined
  }

  endField(): void {
    this.row.push(this.field.length === 0 && !this.fieldQuoted ? null : this.field)
    this.field = ""
    this.fieldQuoted = false
  }

  scan(s: string, out: Array<Out>): FormatError.FormatError | undefined {
    const n = s.length
    const delimiter = this.delimiter
    let state = this.state
    let i = 0
    while (i < n) {
      if (state === FIELD_START || state === UNQUOTED) {
        if (state === FIELD_START && s.charCodeAt(i) === QUOTE) {
          state = QUOTED
          this.fieldQuoted = true
          i++
          continue
        }
        let j = i
        let c = 0
        while (j < n) {
          c = s.charCodeAt(j)
          if (c === delimiter || c === LF || c === CR) break
          j++
        }
        if (j > i) {
          this.field = this.field.length === 0 ? s.slice(i, j) : this.field + s.slice(i, j)
          if (this.fieldQuoted) this.recordError ??= "quote not followed by a delimiter or line break"
        }
        if (j === n) {
          state = UNQUOTED
          break
        }
        this.endField()
        i = j + 1
        if (c === delimiter) {
          state = FIELD_START
        } else {
          const error = this.endRecord(out)
          this.line++
          this.recordLine = this.line
          if (error !== undefined) return error
          state = c === CR ? AFTER_CR : FIELD_START
        }
      } else if (state === QUOTED) {
        const j = s.indexOf('"', i)
        const end = j === -1 ? n : j
        for (let k = i; k < end; k++) if (s.charCodeAt(k) === LF) this.line++
        if (end > i) this.field = this.field.length === 0 ? s.slice(i, end) : this.field + s.slice(i, end)
        if (j === -1) break
        i = j + 1
        state = QUOTE_SEEN
      } else if (state === QUOTE_SEEN) {
        const c = s.charCodeAt(i)
        if (c === QUOTE) {
          this.field += '"'
          state = QUOTED
          i++
        } else if (c === delimiter || c === LF || c === CR) {
          state = UNQUOTED
        } else {
          // Text after a closing quote: keep it (the record is rejected anyway) and go on as if unquoted.
          this.recordError ??= "quote not followed by a delimiter or line break"
          state = UNQUOTED
        }
      } else {
        if (s.charCodeAt(i) === LF) i++
        state = FIELD_START
      }
    }
    this.state = state
    let length = this.field.length
    for (let k = 0; k < this.row.length; k++) length += this.row[k]?.length ?? 0
    if (length > this.maxRecordLength) {
      if (!this.batcher.lenient || this.names === undefined)
        return this.error(
          state === QUOTED
            ? `record longer than ${this.maxRecordLength} characters (unterminated quoted field?)`
            : `record longer than ${this.maxRecordLength} characters`,
          this.recordLine
        )
      // Keep parsing to find where the record ends, but not its text.
      this.overlong = this.growHead(this.row, this.field)
      this.row.length = 0
      this.field = ""
    }
    return undefined
  }

  /**
   * The head of an overlong record with more of its fields: `row` continues the field the head ended in, `field` (when
   * not `undefined`) is a field still being read. Kept to {@link FormatError.maxSnippet} characters and one more.
   */
  growHead(row: ReadonlyArray<string | null>, field: string | undefined): string {
    let head = this.overlong ?? ""
    const keep = FormatError.maxSnippet + 1
    const delimiter = String.fromCharCode(this.delimiter)
    for (let k = 0; k < row.length && head.length < keep; k++) head += (k > 0 ? delimiter : "") + (row[k] ?? "")
    if (field !== undefined && head.length < keep) head += (row.length > 0 ? delimiter : "") + field
    return head.length > keep ? head.slice(0, keep) : head
  }

  raw(row: ReadonlyArray<string | null>): string {
    let text = ""
    const delimiter = String.fromCharCode(this.delimiter)
    for (let k = 0; k < row.length; k++) {
      const field = row[k]
      if (k > 0) text += delimiter
      text += field === null ? "" : field.length === 0 ? '""' : this.quote(field)
    }
    return text
  }

  bad(
    reason: string,
    line: number,
    row: ReadonlyArray<string | null> | string,
    out: Array<Out>,
    column?: string,
    bytes?: Uint8Array
  ): FormatError.FormatError | undefined {
    const error = this.error(reason, line, column)
    if (!this.batcher.lenient) return error
    const raw = typeof row === "string" ? row : this.raw(row)
    this.batcher.reject(
      bytes === undefined ? { line, message: error.message, raw } : { line, message: error.message, raw, bytes },
      out
    )
    return undefined
  }

  endRecord(out: Array<Out>): FormatError.FormatError | undefined {
    const error = this.record(this.row, out)
    // The row is only read while the record is built, so its array is reused.
    this.row.length = 0
    this.recordError = undefined
    this.overlong = undefined
    // The next record is tainted too if it starts on the invalid line being scanned.
    this.taint = this.tainting
    return error
  }

  record(row: ReadonlyArray<string | null>, out: Array<Out>): FormatError.FormatError | undefined {
    const line = this.recordLine
    const recordError = this.recordError
    const names = this.names
    if (names !== undefined && this.overlong === undefined) {
      let length = 0
      for (let k = 0; k < row.length; k++) length += row[k]?.length ?? 0
      if (length > this.maxRecordLength) this.overlong = ""
    }
    if (names !== undefined && this.overlong !== undefined) {
      const raw = FormatError.snippet(this.growHead(row, undefined))
      return this.bad(`record longer than ${this.maxRecordLength} characters`, line, raw, out)
    }
    if (names !== undefined && this.taint !== undefined)
      return this.bad(Utf8.invalidReason(this.taint), line, row, out, undefined, withoutLineBreak(this.taint))
    if (row.length === 1 && row[0] === null && recordError === undefined && names?.length !== 1) return undefined
    if (names === undefined) {
      if (this.taint !== undefined) return this.error(`header row ${Utf8.invalidReason(this.taint)}`, line)
      if (recordError !== undefined) return this.error(recordError, line)
      return (
        this.setNames(this.headerRow ? row.map((name) => name ?? "") : row.map((_, k) => `column${k + 1}`)) ??
        (this.headerRow ? undefined : this.endRecordWith(row, line, out))
      )
    }
    if (recordError !== undefined) return this.bad(recordError, line, row, out)
    return this.endRecordWith(row, line, out)
  }

  endRecordWith(row: ReadonlyArray<string | null>, line: number, out: Array<Out>): FormatError.FormatError | undefined {
    const names = this.names!
    if (row.length !== names.length) {
      return this.bad(`expected ${names.length} fields, found ${row.length}`, line, row, out)
    }
    const kinds = this.kinds
    const values = this.values
    for (let k = 0; k < row.length; k++) {
      const text = row[k] as string | null
      let value: unknown
      switch (kinds[k]) {
        case STRING:
          value = text === null ? (this.emptyAsNull ? null : "") : text
          break
        case NUMBER:
          if (text === null || text.length === 0) value = null
          else if (NUMBER_RE.test(text)) value = Number(text)
          else return this.bad(`invalid number ${quoteValue(text)}`, line, row, out, names[k])
          break
        case INTEGER:
          if (text === null || text.length === 0) value = null
          else {
            value = Number(text)
            if (!INTEGER_RE.test(text)) {
              return this.bad(`invalid integer ${quoteValue(text)}`, line, row, out, names[k])
            }
            if (!Number.isSafeInteger(value)) {
              return this.bad(`integer ${quoteValue(text)} out of the safe range`, line, row, out, names[k])
            }
          }
          break
        case BOOLEAN:
          if (text === null || text.length === 0) value = null
          else {
            const lower = text.trim().toLowerCase()
            if (lower === "true" || lower === "1") value = true
            else if (lower === "false" || lower === "0") value = false
            else return this.bad(`invalid boolean ${quoteValue(text)}`, line, row, out, names[k])
          }
          break
        default:
          if (text === null || text.length === 0) value = null
          else if (JsonValue.exceedsDepth(text, this.maxDepth)) {
            return this.bad(
              `invalid JSON: objects and arrays nested deeper than ${this.maxDepth} levels`,
              line,
              row,
              out,
              names[k]
            )
          } else {
            try {
              value = JsonValue.parse(text)
            } catch (cause) {
              return this.bad(
                `invalid JSON: ${cause instanceof Error ? cause.message : String(cause)}`,
                line,
                row,
                out,
                names[k]
              )
            }
          }
      }
      values[k] = value
    }
    this.batcher.add(this.build(values), out)
    return undefined
  }
}

/**
 * Compiles `(values) => ({ name1: values[0], ... })` for a header, so that every record is one object literal with
 * a fixed shape. Names are embedded as JSON string literals; `__proto__` is a computed key so that it stays an own
 * property. Very wide headers use a loop instead.
 */
const recordBuilder = (names: ReadonlyArray<string>): ((values: ReadonlyArray<unknown>) => Record<string, unknown>) => {
  if (names.length > 500) {
    return (values) => {
      const record: Record<string, unknown> = {}
      for (let k = 0; k < names.length; k++) {
        Object.defineProperty(record, names[k]!, {
          value: values[k],
          enumerable: true,
          writable: true,
          configurable: true
        })
      }
      return record
    }
  }
  const fields = names.map((name, k) =>
    name === "__proto__" ? `[${JSON.stringify(name)}]: v[${k}]` : `${JSON.stringify(name)}: v[${k}]`
  )
  return new Function("v", `return { ${fields.join(", ")} }`) as (
    values: ReadonlyArray<unknown>
  ) => Record<string, unknown>
}

const withoutLineBreak = (bytes: Uint8Array): Uint8Array => {
  let end = bytes.length
  if (bytes[end - 1] === LF) end--
  if (bytes[end - 1] === CR) end--
  return end === bytes.length ? bytes : bytes.subarray(0, end)
}

const quoteValue = (text: string): string => JSON.stringify(FormatError.snippet(text, 100))

/**
 * Decodes CSV bytes into batches of records (strict mode) or {@link FormatError.LenientBatch}es
 * (`onError: "collect"`).
 *
 * @example
 * ```ts
 * const batches = fileBytes.pipe(
 *   Csv.decode({ source: "tx.csv", columns: { amount: "number", settled: "boolean" } })
 * )
 * ```
 *
 * @since 0.1.0
 */
export const decode: {
  (
    options: DecodeOptions & { readonly onError: "collect" }
  ): <E, R>(
    bytes: Stream.Stream<Uint8Array, E, R>
  ) => Stream.Stream<FormatError.LenientBatch, FormatError.FormatError | E, R>
  (
    options?: DecodeOptions & { readonly onError?: "fail" | undefined }
  ): <E, R>(
    bytes: Stream.Stream<Uint8Array, E, R>
  ) => Stream.Stream<ReadonlyArray<unknown>, FormatError.FormatError | E, R>
  (
    options: DecodeOptions
  ): <E, R>(
    bytes: Stream.Stream<Uint8Array, E, R>
  ) => Stream.Stream<ReadonlyArray<unknown> | FormatError.LenientBatch, FormatError.FormatError | E, R>
} = ((options?: DecodeOptions) => Transcoder.transform(() => new Decoder(options))) as never

/**
 * Options of {@link encode}.
 *
 * @since 0.1.0
 */
export interface EncodeOptions {
  /** The file or sink name used in error messages. */
  readonly source?: string | undefined
  /** The field delimiter, one character (default `,`). */
  readonly delimiter?: string | undefined
  /** Write a header row (default `true`). */
  readonly header?: boolean | undefined
  /** The columns and their order (default: the keys of the first record; other keys are dropped). */
  readonly columns?: ReadonlyArray<string> | undefined
  /** The record terminator (default `\n`). */
  readonly lineEnding?: "\n" | "\r\n" | undefined
}

/**
 * Renders one value as a CSV field with the given quoting function (see the module description).
 *
 * @since 0.1.0
 */
export const formatField = (value: unknown, quote: (text: string) => string): string => {
  switch (typeof value) {
    case "string":
      return value.length === 0 ? '""' : quote(value)
    case "number":
      return `${value}`
    case "boolean":
      return value ? "true" : "false"
    case "bigint":
      return value.toString()
    case "object": {
      if (value === null) return ""
      if (value instanceof Date) return JsonValue.isoString(value) ?? ""
      if (value instanceof Uint8Array) return JsonValue.base64(value)
      if (BigDecimal.isBigDecimal(value)) return JsonValue.decimalText(value)
      return quote(JsonValue.stringify(value))
    }
    default:
      return ""
  }
}

/**
 * Encodes record batches as CSV, one `Uint8Array` per non-empty batch (the first also carries the header). With
 * explicit `columns` and `header`, an empty input still produces the header line.
 *
 * @example
 * ```ts
 * const bytes = batches.pipe(Csv.encode({ delimiter: ";" }))
 * ```
 *
 * @since 0.1.0
 */
export const encode = (
  options?: EncodeOptions
): (<E, R>(
  batches: Stream.Stream<ReadonlyArray<unknown>, E, R>
) => Stream.Stream<Uint8Array, FormatError.FormatError | E, R>) =>
  Transcoder.transform(() => {
    const delimiter = options?.delimiter ?? ","
    const configError = checkDelimiter(delimiter, options?.source)
    const quote = quoter(delimiter)
    const lineEnding = options?.lineEnding ?? "\n"
    const writeHeader = options?.header ?? true
    let columns = options?.columns
    let headerDone = !writeHeader
    let records = 0
    const headerLine = (names: ReadonlyArray<string>): string =>
      names.map((name) => (name.length === 0 ? '""' : quote(name))).join(delimiter)
    return {
      push: (batch: ReadonlyArray<unknown>, out: Array<Uint8Array>) => {
        if (configError !== undefined) return configError
        if (batch.length === 0) return undefined
        const lines: Array<string> = []
        if (columns === undefined) {
          const first = batch[0]
          columns = typeof first === "object" && first !== null ? Object.keys(first) : []
        }
        if (!headerDone) {
          lines.push(headerLine(columns))
          headerDone = true
        }
        const names = columns
        try {
          for (let i = 0; i < batch.length; i++) {
            const record = batch[i] as Record<string, unknown> | null | undefined
            let line = ""
            for (let k = 0; k < names.length; k++) {
              const field = formatField(record?.[names[k]!], quote)
              line = k === 0 ? field : line + delimiter + field
            }
            lines.push(line)
          }
        } catch (cause) {
          return FormatError.make({
            format: "csv",
            file: options?.source,
            record: records + lines.length,
            reason: `cannot encode record: ${cause instanceof Error ? cause.message : String(cause)}`,
            cause
          })
        }
        records += batch.length
        lines.push("")
        out.push(Buffer.from(lines.join(lineEnding), "utf8"))
        return undefined
      },
      flush: (out: Array<Uint8Array>) => {
        if (configError !== undefined) return configError
        if (!headerDone && columns !== undefined) out.push(Buffer.from(headerLine(columns) + lineEnding, "utf8"))
        return undefined
      }
    }
  })
