/**
 * Strict UTF-8 for the line-based text formats (JSON Lines, CSV): bytes that are not valid UTF-8 are never silently
 * replaced by U+FFFD. {@link LineDecoder} hands the text on in pieces cut at line breaks, and a line that is not valid
 * UTF-8 comes as a piece of its own with its raw bytes, so that a decoder can reject that one record and keep its
 * bytes, while every other line is decoded as usual.
 *
 * Valid input costs one native validation (`buffer.isUtf8`) and one `TextDecoder` call per chunk; lines are only
 * decoded one by one in a chunk that holds an invalid byte.
 *
 * @since 0.1.0
 */
import { isUtf8 } from "node:buffer"
import type * as FormatError from "./FormatError.ts"

const LF = 10
const CR = 13

/**
 * Receives the decoded pieces of a {@link LineDecoder}: `invalid` is `undefined` for valid text, and the raw bytes of
 * the piece (one line, with its line break if it has one) when they are not valid UTF-8, `text` then being their
 * decoding with U+FFFD for the invalid sequences. A returned error ends decoding.
 *
 * @since 0.1.0
 */
export type Emit = (text: string, invalid: Uint8Array | undefined) => FormatError.FormatError | undefined

/**
 * Decodes a UTF-8 byte stream into text pieces that end at line breaks (LF, and CR too with `crBreaks`). A line
 * longer than `maxLine` bytes is handed on in parts of at most `maxLine` bytes, cut between characters at the same
 * places however the bytes were chunked, so memory stays bounded and the pieces a line is rejected with never depend
 * on chunking; such an overlong line is the caller's to reject. A byte-order mark at the very start is dropped.
 *
 * @example
 * ```ts
 * const lines = new Utf8.LineDecoder(64 * 1024 * 1024)
 * lines.push(chunk, (text, invalid) => (invalid === undefined ? scan(text) : reject(invalid)))
 * lines.end(emit)
 * ```
 *
 * @since 0.1.0
 */
export class LineDecoder {
  // Only ever given valid UTF-8, or bytes known to be invalid (shown with U+FFFD): validation is `isUtf8`'s, which
  // is faster than a fatal TextDecoder.
  readonly lossy = new TextDecoder("utf-8", { ignoreBOM: true })
  readonly maxLine: number
  readonly crBreaks: boolean
  // The bytes of the line that has not ended yet (since its start or the last cut of an overlong line).
  carry: Array<Uint8Array> = []
  carryLength = 0
  started = false

  constructor(maxLine: number, options?: { readonly crBreaks?: boolean | undefined }) {
    this.maxLine = Math.max(4, maxLine)
    this.crBreaks = options?.crBreaks ?? false
  }

  // A CR is only looked for between the LF found and the edge, so LF-only input is scanned once.
  lastBreak(bytes: Uint8Array): number {
    const lf = bytes.lastIndexOf(LF)
    if (!this.crBreaks) return lf
    const cr = bytes.subarray(lf + 1).lastIndexOf(CR)
    return cr === -1 ? lf : lf + 1 + cr
  }

  nextBreak(bytes: Uint8Array, from: number): number {
    const lf = bytes.indexOf(LF, from)
    if (!this.crBreaks) return lf
    const cr = bytes.subarray(from, lf === -1 ? bytes.length : lf).indexOf(CR)
    return cr === -1 ? lf : from + cr
  }

  /** Decodes a chunk: the lines it completes are emitted, the start of an unfinished line is kept. */
  push(chunk: Uint8Array, emit: Emit): FormatError.FormatError | undefined {
    if (chunk.length === 0) return undefined
    const last = this.lastBreak(chunk)
    if (last === -1) {
      this.carry.push(chunk.slice())
      this.carryLength += chunk.length
      return this.carryLength > this.maxLine ? this.release(emit) : undefined
    }
    let start = 0
    if (this.carryLength > 0) {
      const first = this.nextBreak(chunk, 0)
      this.carry.push(chunk.subarray(0, first + 1))
      const line = join(this.carry, this.carryLength + first + 1)
      this.carry = []
      this.carryLength = 0
      const error = this.region(line, emit)
      if (error !== undefined) return error
      start = first + 1
    }
    if (start <= last) {
      const error = this.region(chunk.subarray(start, last + 1), emit)
      if (error !== undefined) return error
    }
    if (last + 1 < chunk.length) {
      this.carry.push(chunk.slice(last + 1))
      this.carryLength = chunk.length - last - 1
    }
    return undefined
  }

  /** Emits the last line, which has no line break. */
  end(emit: Emit): FormatError.FormatError | undefined {
    if (this.carryLength === 0) return undefined
    const bytes = join(this.carry, this.carryLength)
    this.carry = []
    this.carryLength = 0
    return this.region(bytes, emit)
  }

  /** Where the first part of an overlong line ends: `maxLine` bytes, less a character it would cut. */
  cut(bytes: Uint8Array, start: number): number {
    const end = start + this.maxLine
    const hold = incompleteTail(bytes.subarray(start, end))
    return hold === this.maxLine ? end : end - hold
  }

  /** Emits the parts of an overlong unfinished line, keeping what is left after the last cut. */
  release(emit: Emit): FormatError.FormatError | undefined {
    const bytes = join(this.carry, this.carryLength)
    let start = 0
    while (bytes.length - start > this.maxLine) {
      const end = this.cut(bytes, start)
      const error = this.part(bytes.subarray(start, end), emit)
      if (error !== undefined) return error
      start = end
    }
    this.carry = start === bytes.length ? [] : [bytes.slice(start)]
    this.carryLength = bytes.length - start
    return undefined
  }

  /** Emits whole lines: in one piece when they are all valid, else line by line. */
  region(bytes: Uint8Array, emit: Emit): FormatError.FormatError | undefined {
    return isUtf8(bytes) ? this.valid(this.lossy.decode(bytes), emit) : this.lineByLine(bytes, emit)
  }

  lineByLine(bytes: Uint8Array, emit: Emit): FormatError.FormatError | undefined {
    let good = 0
    let start = 0
    while (start < bytes.length) {
      const lineBreak = this.nextBreak(bytes, start)
      const end = lineBreak === -1 ? bytes.length : lineBreak + 1
      const line = bytes.subarray(start, end)
      if (!isUtf8(line)) {
        if (start > good) {
          const error = this.valid(this.lossy.decode(bytes.subarray(good, start)), emit)
          if (error !== undefined) return error
        }
        // An overlong line is cut where it would have been had it come in small chunks.
        let from = start
        while (end - from > this.maxLine) {
          const to = this.cut(bytes, from)
          const error = this.part(bytes.subarray(from, to), emit)
          if (error !== undefined) return error
          from = to
        }
        const error = this.part(bytes.subarray(from, end), emit)
        if (error !== undefined) return error
        good = end
      }
      start = end
    }
    return good < bytes.length ? this.valid(this.lossy.decode(bytes.subarray(good)), emit) : undefined
  }

  part(bytes: Uint8Array, emit: Emit): FormatError.FormatError | undefined {
    return isUtf8(bytes) ? this.valid(this.lossy.decode(bytes), emit) : this.invalid(bytes, emit)
  }

  valid(text: string, emit: Emit): FormatError.FormatError | undefined {
    if (!this.started) {
      if (text.length === 0) return undefined
      this.started = true
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
    }
    return emit(text, undefined)
  }

  invalid(bytes: Uint8Array, emit: Emit): FormatError.FormatError | undefined {
    let raw = bytes
    if (!this.started) {
      this.started = true
      if (raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) raw = raw.subarray(3)
    }
    const copy = raw.slice()
    return emit(this.lossy.decode(copy), copy)
  }
}

const join = (parts: ReadonlyArray<Uint8Array>, length: number): Uint8Array => {
  if (parts.length === 1) return parts[0]!
  const out = new Uint8Array(length)
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

/** The number of bytes at the end that start a multi-byte character without completing it. */
const incompleteTail = (bytes: Uint8Array): number => {
  const n = bytes.length
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = bytes[n - back]!
    if ((b & 0xc0) === 0x80) continue
    const size = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1
    return size > back ? back : 0
  }
  return 0
}

/**
 * The offset of the first byte that does not belong to a valid UTF-8 sequence (overlong forms, surrogates and code
 * points above U+10FFFF are invalid, as in `TextDecoder`'s fatal mode), or -1 when all of `bytes` is valid.
 *
 * @example
 * ```ts
 * Utf8.firstInvalid(Uint8Array.of(0x61, 0xff)) // 1
 * ```
 *
 * @since 0.1.0
 */
export const firstInvalid = (bytes: Uint8Array): number => {
  const n = bytes.length
  let i = 0
  while (i < n) {
    const b = bytes[i]!
    if (b < 0x80) {
      i++
      continue
    }
    let size: number
    let low = 0x80
    let high = 0xbf
    if (b >= 0xc2 && b <= 0xdf) size = 2
    else if (b >= 0xe0 && b <= 0xef) {
      size = 3
      if (b === 0xe0) low = 0xa0
      else if (b === 0xed) high = 0x9f
    } else if (b >= 0xf0 && b <= 0xf4) {
      size = 4
      if (b === 0xf0) low = 0x90
      else if (b === 0xf4) high = 0x8f
    } else return i
    if (i + size > n) return i
    const second = bytes[i + 1]!
    if (second < low || second > high) return i
    for (let k = 2; k < size; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i
    i += size
  }
  return -1
}

/**
 * Why bytes are not valid UTF-8, for messages: `not valid UTF-8 (byte 0xFF at byte 7 of the line)`; `unit` names
 * what the bytes are.
 *
 * @since 0.1.0
 */
export const invalidReason = (bytes: Uint8Array, unit = "line"): string => {
  const at = firstInvalid(bytes)
  if (at === -1) return "not valid UTF-8"
  const hex = bytes[at]!.toString(16).toUpperCase().padStart(2, "0")
  return `not valid UTF-8 (byte 0x${hex} at byte ${at + 1} of the ${unit})`
}
