/**
 * What the file-like connectors (local files, S3 objects) share: path patterns (globs, hidden entries) and decoding
 * one file or object into batches, where lines that do not parse and records that do not match the schema become
 * dead letters naming where they came from. Parquet files are decoded from ranged reads instead of a byte stream
 * ({@link decodeParquet}).
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Batch from "../../core/Batch.ts"
import type * as DeadLetter from "../../core/DeadLetter.ts"
import type { RecordSchema } from "../../core/RecordSchema.ts"
import * as Format from "../../formats/Format.ts"
import type { FormatError } from "../../formats/FormatError.ts"
import * as Parquet from "../../formats/Parquet.ts"

/** True when a path has glob characters. */
export const isGlob = (path: string): boolean => /[*?[\]{}]/.test(path)

/** Hidden files and folders (`.staging`, `_SUCCESS`) are not data: listings skip them, as Spark does. */
export const isHidden = (relative: string): boolean =>
  relative.split("/").some((part) => part.startsWith(".") || part.startsWith("_"))

/** A glob as a RegExp over `/`-separated paths: `*`, `**`, `?` and `[abc]` / `[!abc]` classes. */
export const globToRegExp = (glob: string): RegExp => {
  let re = ""
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === "*") {
      if (glob[i + 1] === "*") {
        re += ".*"
        i++
        if (glob[i + 1] === "/") i++
      } else re += "[^/]*"
    } else if (c === "?") re += "[^/]"
    else if (c === "[" && glob.indexOf("]", i) > i) {
      const close = glob.indexOf("]", i)
      re += `[${glob
        .slice(i + 1, close)
        .replace(/^!/, "^")
        .replace(/\\/g, "\\\\")}]`
      i = close
    } else re += /[.+^${}()|[\]\\]/.test(c) ? `\\${c}` : c
  }
  return new RegExp(`^${re}$`)
}

/** How to decode one file or object. */
export interface DecodeOptions<A> {
  /** The stage name the dead letters carry. */
  readonly stage: string
  /** Where the bytes come from (`data/a.jsonl`, `s3://bucket/key`), in messages and dead-letter origins. */
  readonly location: string
  readonly format: Format.FormatSpec
  /** Validates and converts every record (Avro records are typed by their reader schema already). */
  readonly schema?: RecordSchema<A> | undefined
  readonly batchSize?: number | undefined
  /**
   * Where a range of a file starts (a part of a split run that reads a big JSON Lines file in pieces): the lines and
   * the records (non-blank lines) before it, so that dead letters name the lines and records a whole read would.
   */
  readonly before?: { readonly lines: number; readonly records: number } | undefined
}

/**
 * Decodes the bytes of one file or object into batches. Malformed lines become `decode-error` dead letters with
 * origin `location:line`, holding the line as text, or its bytes (a `Uint8Array`) when they are not valid UTF-8; records the schema rejects become `invalid-record` dead letters with origin
 * `location#n` (n counts records from 1, those that did not decode included); the rest flows on. Each batch carries the bytes read for it (`Batch.bytes`).
 */
export const decode = <A, E, R>(
  bytes: Stream.Stream<Uint8Array, E, R>,
  options: DecodeOptions<A>
): Stream.Stream<Batch.Batch<A>, E | FormatError, R> => {
  const { stage, location, schema } = options
  // An empty unquoted CSV field is null unless the format says otherwise (Spark's and PostgreSQL's convention).
  const format: Format.FormatSpec =
    options.format.type === "csv" && options.format.emptyAsNull === undefined
      ? { ...options.format, emptyAsNull: true }
      : options.format
  let index = options.before?.records ?? 0
  // Bytes are counted as they reach the decoder and handed to the next batch out: a batch carries what was read since
  // the previous one (the decoder reads ahead a little, so the split is approximate; the sum is exact).
  let read = 0
  let carried = 0
  const take = (): number => {
    const n = read - carried
    carried = read
    return n
  }
  return bytes.pipe(
    Stream.map((chunk) => {
      read += chunk.length
      return chunk
    }),
    Format.decoder(format, {
      source: location,
      onError: "collect",
      batchSize: options.batchSize ?? 4096,
      ...(options.before === undefined ? {} : { linesBefore: options.before.lines }),
      ...(schema?.columns === undefined ? {} : { columns: schema.columns }),
      ...(schema?.avro === undefined ? {} : { avro: schema.avro })
    }),
    Stream.map((decoded) => {
      const deadLetters: Array<DeadLetter.DeadLetter> = []
      for (const bad of decoded.errors)
        deadLetters.push({
          stage,
          reason: "decode-error",
          message: bad.bytes === undefined ? bad.message : `${bad.message}; the record is kept as its raw bytes`,
          record: bad.bytes ?? bad.raw,
          origin: bad.block === undefined ? `${location}:${bad.line}` : `${location}#block${bad.block}`
        })
      if (schema === undefined || format.type === "avro") {
        index += decoded.records.length + decoded.errors.length
        return Batch.make(decoded.records as ReadonlyArray<A>, { deadLetters, bytes: take() })
      }
      // Records are numbered as the n-th record of the input, the ones that did not decode counted too (so a range of
      // a file, which knows the non-blank lines before it, numbers them as a whole read does).
      const records: Array<A> = []
      const errors = decoded.errors
      let rejectedBefore = 0
      const start = index
      for (let i = 0; i < decoded.records.length; i++) {
        while (rejectedBefore < errors.length && (errors[rejectedBefore]!.at ?? 0) <= i) rejectedBefore++
        const n = start + i + rejectedBefore + 1
        const result = schema.validate(decoded.records[i])
        if (result.ok) records.push(result.value)
        else
          deadLetters.push({
            stage,
            reason: "invalid-record",
            message: `${location} record ${n}: ${result.message}`,
            record: decoded.records[i],
            origin: `${location}#${n}`
          })
      }
      index += decoded.records.length + errors.length
      return Batch.make(records, { deadLetters, bytes: take() })
    })
  )
}

/** The bytes of a stream in one array (a ranged read: a footer, a row group). */
export const collectBytes = <E, R>(bytes: Stream.Stream<Uint8Array, E, R>): Effect.Effect<Uint8Array, E, R> =>
  Effect.map(
    Stream.runFold(
      bytes,
      () => [] as Array<Uint8Array>,
      (chunks, chunk) => {
        chunks.push(chunk)
        return chunks
      }
    ),
    (chunks) => {
      if (chunks.length === 1) return chunks[0]!
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
      let offset = 0
      for (const c of chunks) {
        out.set(c, offset)
        offset += c.length
      }
      return out
    }
  )

/**
 * Decodes one Parquet file or object, read in ranges (footer first, then a row group at a time), into batches. Records
 * are typed by the schema's Avro schema when it has one (as for Avro files), else by the file's own schema; each batch
 * carries the bytes read for it.
 */
export const decodeParquet = <A, E, R>(
  file: Parquet.RangedFile<E, R>,
  options: Omit<DecodeOptions<A>, "format" | "before"> & {
    /** Only these row groups (a part of a file split by row groups). */
    readonly rowGroups?: RowGroups | undefined
  }
): Stream.Stream<Batch.Batch<A>, E | FormatError, R> => {
  let read = 0
  return Parquet.decode(file, {
    source: options.location,
    rowGroups: options.rowGroups,
    batchSize: options.batchSize ?? 4096,
    avro: options.schema?.avro,
    onRead: (bytes) => {
      read += bytes
    }
  }).pipe(
    Stream.map((records) => {
      const bytes = read
      read = 0
      return Batch.make(records as ReadonlyArray<A>, { bytes })
    })
  )
}

/** A range of a Parquet file's row groups (0-based, `end` exclusive). */
export interface RowGroups {
  readonly start: number
  readonly end: number
}

/**
 * The row groups of a Parquet file gathered into ranges of about `target` bytes, from its footer only: the parts a
 * split cuts a big file into.
 */
export const rowGroupRanges = <E, R>(
  file: Parquet.RangedFile<E, R>,
  location: string,
  target: number
): Effect.Effect<ReadonlyArray<RowGroups & { readonly bytes: number }>, E | FormatError, R> =>
  Effect.map(Parquet.readFooter(file, location), (metadata) => {
    const ranges: Array<RowGroups & { readonly bytes: number }> = []
    let start = 0
    let bytes = 0
    Parquet.rowGroupBytes(metadata).forEach((groupBytes, i, all) => {
      bytes += groupBytes
      if (bytes >= target || i === all.length - 1) {
        ranges.push({ start, end: i + 1, bytes })
        start = i + 1
        bytes = 0
      }
    })
    return ranges
  })
