/**
 * Cuts a file of lines (JSON Lines, or CSV) into ranges of whole records of about a target size, so that the ranges
 * can be read apart (the parts of a split run) and give what one read of the whole file gives: each range starts at
 * the start of a record, and knows how many lines and records come before it, so that the dead letters of a range
 * name the same line and record numbers as a whole read.
 *
 * CSV is followed with the CSV reader's own rules (`Csv.ts`): a record ends at a line break outside quotes (only a
 * quote at the start of a field opens a quoted field), so a quoted field with line breaks is never cut; its first
 * record is the header when the file has one, and a blank line is not a record (unless the file has one column).
 * A range is only cut after a line feed (a file whose lines end in a lone CR is one range).
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { AFTER_CR, CR, FIELD_START, LF, QUOTE, QUOTE_SEEN, QUOTED, UNQUOTED } from "../../formats/CsvSyntax.ts"
import * as Format from "../../formats/Format.ts"

/** The smallest range of a file's lines a split cuts: smaller parts cost more to run than they save. */
export const MIN_RANGE = 64 * 1024

/** Whether a file's records can be read in ranges: JSON Lines or CSV, not compressed. */
export const cuttable = (format: Format.FormatSpec | undefined): format is Format.FormatSpec =>
  format !== undefined &&
  (format.type === "jsonl" || format.type === "csv") &&
  (format.compression ?? "none") === "none"

/** A range of whole lines of a file: bytes `start` (inclusive) to `end` (exclusive). */
export interface LineRange {
  readonly start: number
  readonly end: number
  /** Lines before `start`. */
  readonly lines: number
  /** Records before `start` (JSON Lines: non-blank lines; CSV: rows after the header), malformed ones included. */
  readonly records: number
}

/** How to follow a CSV file: its delimiter, and whether its first record is the header. */
export interface CsvOptions {
  readonly delimiter: number
  readonly header: boolean
}

const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 13

/** Finds the cuts of a file of `size` bytes into ranges of about `target` bytes, from its bytes in order. */
export class Cutter {
  private readonly cuts: Array<{ start: number; lines: number; records: number }> = [{ start: 0, lines: 0, records: 0 }]
  private position = 0
  private lines = 0
  private records = 0
  // Whether the line read so far holds only JSON whitespace.
  private blank = true
  private nextCut: number
  private readonly size: number
  private readonly target: number
  private readonly csv: CsvOptions | undefined
  // CSV: the reader's state, the fields of the record so far, whether it has content, the columns of the header.
  private state = FIELD_START
  private fields = 0
  private content = false
  private columns: number | undefined
  /** CSV: where the header record ends (the bytes of the header are `[0, headerEnd)`), once it is read. */
  headerEnd: number | undefined

  constructor(size: number, target: number, csv?: CsvOptions) {
    this.size = size
    this.target = Math.max(1, target)
    this.nextCut = this.target
    this.csv = csv
  }

  push(chunk: Uint8Array): void {
    if (this.csv !== undefined) {
      this.pushCsv(chunk, this.csv)
      return
    }
    let from = 0
    for (;;) {
      const newline = chunk.indexOf(10, from)
      const stop = newline === -1 ? chunk.length : newline
      if (this.blank)
        for (let k = from; k < stop; k++)
          if (!isSpace(chunk[k]!)) {
            this.blank = false
            break
          }
      if (newline === -1) break
      this.lines++
      if (!this.blank) this.records++
      this.blank = true
      const next = this.position + newline + 1
      // A cut at the first line that starts at or after the target; none that would leave an empty last range.
      if (next >= this.nextCut && next < this.size) {
        this.cuts.push({ start: next, lines: this.lines, records: this.records })
        this.nextCut = next + this.target
      }
      from = newline + 1
    }
    this.position += chunk.length
  }

  private pushCsv(chunk: Uint8Array, csv: CsvOptions): void {
    const delimiter = csv.delimiter
    let state = this.state
    for (let k = 0; k < chunk.length; k++) {
      const c = chunk[k]!
      if (state === AFTER_CR) {
        state = FIELD_START
        if (c === LF) {
          this.cutAt(this.position + k + 1)
          continue
        }
      }
      if (state === QUOTED) {
        if (c === QUOTE) state = QUOTE_SEEN
        else if (c === LF) this.lines++
        continue
      }
      if (state === QUOTE_SEEN) {
        if (c === QUOTE) {
          state = QUOTED
          continue
        }
        state = UNQUOTED
      }
      if (c === delimiter) {
        this.fields++
        this.content = true
        state = FIELD_START
      } else if (c === LF || c === CR) {
        this.endCsvRecord(csv, this.position + k + 1)
        if (c === LF) this.cutAt(this.position + k + 1)
        state = c === CR ? AFTER_CR : FIELD_START
      } else if (state === FIELD_START) {
        this.content = true
        state = c === QUOTE ? QUOTED : UNQUOTED
      }
    }
    this.state = state
    this.position += chunk.length
  }

  /** A CSV record ended (its line break ends at `end`): counted as the reader counts it. */
  private endCsvRecord(csv: CsvOptions, end: number): void {
    this.lines++
    const blank = this.fields === 0 && !this.content
    const fields = this.fields + 1
    this.fields = 0
    this.content = false
    if (blank && this.columns !== 1) return
    if (this.columns === undefined) {
      this.columns = fields
      if (csv.header) {
        this.headerEnd = end
        return
      }
    }
    this.records++
  }

  /** A record starts at `next`: a cut there when the range has reached its target. */
  private cutAt(next: number): void {
    if (next >= this.nextCut && next < this.size && (this.csv === undefined || this.columns !== undefined)) {
      this.cuts.push({ start: next, lines: this.lines, records: this.records })
      this.nextCut = next + this.target
    }
  }

  /** The ranges, in order, covering the file. */
  ranges(): ReadonlyArray<LineRange> {
    const end = Math.max(this.size, this.position)
    return this.cuts.map((cut, i) => ({ ...cut, end: this.cuts[i + 1]?.start ?? end }))
  }
}

/** A range of bytes of a file, `start` inclusive, `end` exclusive. */
export interface ByteRange {
  readonly start: number
  readonly end: number
}

/**
 * Cuts a file of `size` bytes into byte ranges of `target` bytes, without reading it: each is read with
 * {@link linesOf}, which finds its lines' starts itself.
 */
export const byteRanges = (size: number, target: number): ReadonlyArray<ByteRange> => {
  const step = Math.max(1, target)
  const ranges: Array<ByteRange> = []
  for (let start = 0; start < size; start += step) ranges.push({ start, end: Math.min(size, start + step) })
  return ranges
}

/** The first read past a range for the end of its last line; each further one doubles. */
const PROBE = 64 * 1024

/**
 * The bytes of the lines of a JSON Lines file that start in `range` (a line starts at 0 and after each LF), read with
 * ranged reads (`read(start, end)`, `end` exclusive) of a file of `size` bytes: from the byte before the range (whether
 * a line starts at its first byte), then past its end (`probe` bytes, then twice as many...) until the LF that ends
 * its last line. The ranges of
 * {@link byteRanges} read so give every line of the file exactly once, in order, whole: an LF is never part of a
 * multi-byte UTF-8 character, and CRLF ends with the LF. Not for CSV, whose quoted fields may hold line breaks.
 */
export const linesOf = <E, R>(
  read: (start: number, end: number) => Stream.Stream<Uint8Array, E, R>,
  size: number,
  range: ByteRange,
  probe: number = PROBE
): Stream.Stream<Uint8Array, E, R> =>
  Stream.suspend(() => {
    // Until the first LF before `end - 1` (an LF at `end - 1` starts a line of the next range), bytes are the end of a
    // line of an earlier range.
    let skipping = range.start > 0
    let position = Math.max(0, range.start - 1)
    let lastByte = -1
    const head = read(position, range.end).pipe(
      Stream.map((chunk) => {
        const at = position
        position += chunk.length
        if (chunk.length > 0) lastByte = chunk[chunk.length - 1]!
        if (!skipping) return chunk
        const newline = chunk.indexOf(LF)
        if (newline === -1 || at + newline >= range.end - 1) return chunk.subarray(0, 0)
        skipping = false
        return chunk.subarray(newline + 1)
      }),
      Stream.filter((chunk) => chunk.length > 0)
    )
    const rest = (from: number, probe: number): Stream.Stream<Uint8Array, E, R> =>
      Stream.unwrap(
        Effect.map(Stream.runCollect(read(from, Math.min(size, from + probe))), (chunks) => {
          const bytes = Buffer.concat(chunks as Array<Uint8Array>)
          const newline = bytes.indexOf(LF)
          if (newline !== -1) return Stream.make(bytes.subarray(0, newline + 1))
          const next = from + bytes.length
          // The file's last line, without a final LF.
          if (next >= size || bytes.length === 0) return bytes.length === 0 ? Stream.empty : Stream.make(bytes)
          return Stream.concat(Stream.make(bytes), rest(next, probe * 2))
        })
      )
    return Stream.concat(
      head,
      Stream.suspend(() =>
        skipping || lastByte === LF || range.end >= size ? Stream.empty : rest(range.end, Math.max(1, probe))
      )
    )
  })

/**
 * The ranges of whole records of a file of `size` bytes, of about `target` bytes each (one read of the file:
 * `read()`), and for a CSV file with a header, the header's names (a read of its bytes: `read({ start: 0, end })`,
 * `end` exclusive), which the ranges after the first read with.
 */
export const rangesOf = <E, R>(
  read: (range?: ByteRange) => Stream.Stream<Uint8Array, E, R>,
  location: string,
  size: number,
  target: number,
  format: Format.FormatSpec
) =>
  Effect.gen(function* () {
    const csv =
      format.type === "csv"
        ? {
            delimiter: (format.delimiter ?? ",").charCodeAt(0),
            header: format.header === undefined || format.header === true
          }
        : undefined
    const cutter = new Cutter(size, target, csv)
    yield* Stream.runForEach(read(), (chunk) => Effect.sync(() => cutter.push(chunk)))
    const ranges = cutter.ranges()
    if (format.type !== "csv" || csv?.header !== true || cutter.headerEnd === undefined || ranges.length < 2)
      return { ranges, header: undefined as ReadonlyArray<string> | undefined }
    const names: Format.FormatSpec = { ...format, header: false, columns: undefined }
    // The header's names, as the CSV reader reads them (without the column types, which name the real columns).
    const decoded = yield* Stream.runCollect(
      read({ start: 0, end: cutter.headerEnd }).pipe(Format.decoder(names, { source: location }))
    )
    const first = decoded.flat()[0] as Readonly<Record<string, unknown>> | undefined
    return { ranges, header: first === undefined ? undefined : Object.values(first).map((name) => String(name ?? "")) }
  })
