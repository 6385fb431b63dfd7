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
import { AFTER_CR, CR, FIELD_START, LF, QUOTE, QUOTE_SEEN, QUOTED, UNQUOTED } from "../../formats/CsvSyntax.ts"

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
