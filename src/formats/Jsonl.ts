/**
 * JSON Lines (NDJSON): one JSON value per line, UTF-8.
 *
 * {@link decode} turns a byte stream into batches of parsed values. Lines may be split anywhere across chunks, blank
 * lines are skipped, CRLF is accepted and a leading byte-order mark is dropped; the batches are the same however the
 * bytes are chunked. A malformed line fails the stream with a {@link FormatError.FormatError} naming the source and
 * the 1-based line, or, with `onError: "collect"`, is handed back next to the good records so the caller can
 * dead-letter it. Hostile lines are malformed like any other: bytes that are not valid UTF-8 (the rejected line keeps
 * its raw bytes), objects and arrays nested deeper than `maxDepth`, lines longer than `maxLineLength`.
 *
 * {@link encode} writes record batches as lines, converting typed values as described in {@link JsonValue}.
 *
 * @since 0.1.0
 */
import type * as Stream from "effect/Stream"
import * as FormatError from "./FormatError.ts"
import * as JsonValue from "./JsonValue.ts"
import * as Transcoder from "./Transcoder.ts"
import * as Utf8 from "./Utf8.ts"

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
  /** Fail on the first malformed line (default) or collect malformed lines next to the records. */
  readonly onError?: FormatError.OnError | undefined
  /**
   * The longest line accepted, in UTF-16 code units (default 64 Mi). A longer line fails the stream, or is collected
   * (with its first {@link FormatError.maxSnippet} characters) while the rest of it is skipped; memory stays bounded
   * by about three times this many bytes.
   */
  readonly maxLineLength?: number | undefined
  /**
   * How deeply objects and arrays may nest in a line (default {@link JsonValue.defaultMaxDepth}); a deeper line is
   * malformed, checked before it is parsed.
   */
  readonly maxDepth?: number | undefined
  /** The lines before the first one read (a range of a file that starts further in): line numbers count from it. */
  readonly linesBefore?: number | undefined
}

/**
 * The default of {@link DecodeOptions.maxLineLength}.
 *
 * @since 0.1.0
 */
export const defaultMaxLineLength = 64 * 1024 * 1024

type Out = ReadonlyArray<unknown> | FormatError.LenientBatch

const isJsonSpace = (c: number): boolean => c === 32 || c === 9 || c === 13

/** Whether a line holds only JSON whitespace (other white space, such as U+00A0, is a malformed line). */
const isBlank = (line: string): boolean => {
  // Only lines starting with whitespace can be blank; checking the first character keeps the common case cheap.
  if (line.length === 0) return true
  if (!isJsonSpace(line.charCodeAt(0))) return false
  for (let i = 1; i < line.length; i++) if (!isJsonSpace(line.charCodeAt(i))) return false
  return true
}

const stripCr = (line: string): string => (line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line)

const utf8 = new TextEncoder()

// How much of an overlong line is kept: a snippet's worth, a character more to tell it was cut, and room for a CR.
const headLength = FormatError.maxSnippet + 2

class Decoder implements Transcoder.Transcoder<Uint8Array, Out> {
  readonly lines: Utf8.LineDecoder
  readonly batcher: Transcoder.Batcher<unknown>
  readonly source: string | undefined
  readonly maxLineLength: number
  readonly maxDepth: number
  readonly emit: Utf8.Emit
  out: Array<Out> = []
  // The start of a line that has not ended yet: text, or raw bytes for parts that are not valid UTF-8. Lines come
  // whole from the UTF-8 decoder, except the last one and overlong ones.
  pending: Array<string | Uint8Array> = []
  pendingLength = 0
  pendingInvalid = false
  // The first characters of the current line once it is known to be too long; the rest of the line is skipped.
  overlong: string | undefined
  line = 0

  constructor(options: DecodeOptions | undefined) {
    this.batcher = new Transcoder.Batcher(
      options?.batchSize ?? Transcoder.defaultBatchSize,
      options?.onError === "collect"
    )
    this.source = options?.source
    this.maxLineLength = options?.maxLineLength ?? defaultMaxLineLength
    this.maxDepth = options?.maxDepth ?? JsonValue.defaultMaxDepth
    this.line = options?.linesBefore ?? 0
    // A UTF-16 code unit takes at most 3 bytes, so a line the UTF-8 decoder hands on in parts is too long.
    this.lines = new Utf8.LineDecoder(3 * this.maxLineLength + 3)
    this.emit = (text, invalid) => (invalid === undefined ? this.scan(text) : this.invalidPiece(text, invalid))
  }

  push(bytes: Uint8Array, out: Array<Out>): FormatError.FormatError | undefined {
    this.out = out
    return this.lines.push(bytes, this.emit)
  }

  flush(out: Array<Out>): FormatError.FormatError | undefined {
    this.out = out
    const error = this.lines.end(this.emit)
    if (error !== undefined) return error
    if (this.pending.length > 0 || this.overlong !== undefined) {
      const lastError = this.endPending()
      if (lastError !== undefined) return lastError
    }
    this.batcher.cut(out)
    return undefined
  }

  scan(text: string): FormatError.FormatError | undefined {
    let start = 0
    let newline = text.indexOf("\n")
    if (this.pending.length > 0 || this.overlong !== undefined) {
      if (newline === -1) return this.append(text)
      const error = this.append(text.slice(0, newline)) ?? this.endPending()
      if (error !== undefined) return error
      start = newline + 1
      newline = text.indexOf("\n", start)
    }
    while (newline !== -1) {
      const error = this.parseLine(text.slice(start, newline))
      if (error !== undefined) return error
      start = newline + 1
      newline = text.indexOf("\n", start)
    }
    return start < text.length ? this.append(start === 0 ? text : text.slice(start)) : undefined
  }

  /** A line, or the part of one, that is not valid UTF-8. */
  invalidPiece(text: string, bytes: Uint8Array): FormatError.FormatError | undefined {
    const ends = bytes[bytes.length - 1] === 10
    this.pendingInvalid = true
    const error = ends ? this.append(bytes.subarray(0, bytes.length - 1), text.slice(0, -1)) : this.append(bytes, text)
    return error ?? (ends ? this.endPending() : undefined)
  }

  /**
   * Adds to the unfinished line (`text` is a part's decoded text); once it is too long, fails or keeps only the first
   * {@link FormatError.maxSnippet} characters of the line, however its bytes were chunked.
   */
  append(part: string | Uint8Array, text: string = part as string): FormatError.FormatError | undefined {
    const keep = headLength
    if (this.overlong !== undefined) {
      if (this.overlong.length < keep) this.overlong += text.slice(0, keep - this.overlong.length)
      return undefined
    }
    this.pending.push(part)
    this.pendingLength += text.length
    if (this.pendingLength <= this.maxLineLength) return undefined
    if (!this.batcher.lenient) return this.tooLong(this.line + 1)
    this.overlong = this.pendingText().slice(0, keep)
    this.pending = []
    this.pendingLength = 0
    return undefined
  }

  pendingText(): string {
    let text = ""
    for (const part of this.pending) text += typeof part === "string" ? part : this.lines.lossy.decode(part)
    return text
  }

  endPending(): FormatError.FormatError | undefined {
    const overlong = this.overlong
    const invalid = this.pendingInvalid
    const parts = this.pending
    this.overlong = undefined
    this.pendingInvalid = false
    this.pending = []
    this.pendingLength = 0
    if (overlong !== undefined) {
      this.line++
      // The head is the whole line when shorter than headLength, else the snippet is cut anyway.
      const raw =
        overlong.length < headLength
          ? FormatError.snippet(stripCr(overlong))
          : `${overlong.slice(0, FormatError.maxSnippet)}…`
      return this.bad(`line longer than ${this.maxLineLength} characters`, raw)
    }
    if (!invalid) return this.parseLine(parts.length === 1 ? (parts[0] as string) : parts.join(""))
    this.line++
    let length = 0
    const chunks = parts.map((part) => (typeof part === "string" ? utf8.encode(part) : part))
    for (const chunk of chunks) length += chunk.length
    let bytes = new Uint8Array(length)
    length = 0
    for (const chunk of chunks) {
      bytes.set(chunk, length)
      length += chunk.length
    }
    if (bytes[bytes.length - 1] === 13) bytes = bytes.subarray(0, bytes.length - 1)
    return this.bad(Utf8.invalidReason(bytes), this.lines.lossy.decode(bytes), bytes)
  }

  tooLong(line: number): FormatError.FormatError {
    return FormatError.make({
      format: "jsonl",
      file: this.source,
      line,
      reason: `line longer than ${this.maxLineLength} characters`
    })
  }

  /** Fails with, or (lenient mode) collects, the current line. */
  bad(reason: string, raw: string, bytes?: Uint8Array): FormatError.FormatError | undefined {
    const error = FormatError.make({ format: "jsonl", file: this.source, line: this.line, reason })
    if (!this.batcher.lenient) return error
    this.batcher.reject(
      bytes === undefined
        ? { line: this.line, message: error.message, raw }
        : { line: this.line, message: error.message, raw, bytes },
      this.out
    )
    return undefined
  }

  parseLine(line: string): FormatError.FormatError | undefined {
    this.line++
    if (line.length > this.maxLineLength) {
      return this.bad(`line longer than ${this.maxLineLength} characters`, FormatError.snippet(stripCr(line)))
    }
    if (isBlank(line)) return undefined
    if (JsonValue.exceedsDepth(line, this.maxDepth)) {
      return this.bad(`objects and arrays nested deeper than ${this.maxDepth} levels`, stripCr(line))
    }
    let value: unknown
    try {
      value = JsonValue.parse(line)
    } catch (cause) {
      return this.bad(cause instanceof Error ? cause.message : String(cause), stripCr(line))
    }
    this.batcher.add(value, this.out)
    return undefined
  }
}

/**
 * Decodes JSON Lines bytes into batches of parsed values (strict mode) or {@link FormatError.LenientBatch}es
 * (`onError: "collect"`).
 *
 * @example
 * ```ts
 * const batches = fileBytes.pipe(Jsonl.decode({ source: "transactions.jsonl", batchSize: 5000 }))
 * const lenient = fileBytes.pipe(Jsonl.decode({ source: "transactions.jsonl", onError: "collect" }))
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
}

/**
 * Encodes record batches as JSON Lines, one `Uint8Array` per non-empty batch, each line ending with `\n`. Fails with a
 * {@link FormatError.FormatError} only for values `JSON.stringify` rejects (cycles).
 *
 * @example
 * ```ts
 * const bytes = batches.pipe(Jsonl.encode())
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
    let records = 0
    return {
      push: (batch: ReadonlyArray<unknown>, out: Array<Uint8Array>) => {
        if (batch.length === 0) return undefined
        const lines = new Array<string>(batch.length)
        let i = 0
        try {
          for (; i < batch.length; i++) lines[i] = JsonValue.stringify(batch[i])
        } catch (cause) {
          return FormatError.make({
            format: "jsonl",
            file: options?.source,
            record: records + i + 1,
            reason: `cannot encode record: ${cause instanceof Error ? cause.message : String(cause)}`,
            cause
          })
        }
        records += batch.length
        lines.push("")
        out.push(Buffer.from(lines.join("\n"), "utf8"))
        return undefined
      },
      flush: () => undefined
    }
  })
