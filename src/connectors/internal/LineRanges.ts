/**
 * Cuts a file of lines (JSON Lines) into ranges of whole lines of about a target size, so that the ranges can be read
 * apart (the parts of a split run) and give what one read of the whole file gives: each range starts at the start of
 * a line, and knows how many lines and records (non-blank lines) come before it, so that the dead letters of a range
 * name the same line and record numbers as a whole read.
 */

/** A range of whole lines of a file: bytes `start` (inclusive) to `end` (exclusive). */
export interface LineRange {
  readonly start: number
  readonly end: number
  /** Lines before `start`. */
  readonly lines: number
  /** Non-blank lines before `start` (what a decoder counts as records, malformed ones included). */
  readonly records: number
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

  constructor(size: number, target: number) {
    this.size = size
    this.target = Math.max(1, target)
    this.nextCut = this.target
  }

  push(chunk: Uint8Array): void {
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

  /** The ranges, in order, covering the file. */
  ranges(): ReadonlyArray<LineRange> {
    const end = Math.max(this.size, this.position)
    return this.cuts.map((cut, i) => ({ ...cut, end: this.cuts[i + 1]?.start ?? end }))
  }
}
