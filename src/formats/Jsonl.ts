/**
 * JSON Lines (NDJSON): one JSON value per line, UTF-8.
 *
 * {@link decode} turns a byte stream into batches of parsed values. Lines may be split anywhere across chunks, blank
 * lines are skipped, CRLF is accepted and a leading byte-order mark is dropped; the batches are the same however the
 * bytes are chunked. A malformed line fails the stream with a {@link FormatError.FormatError} naming the source and
 * the 1-based line, or, with `onError: "collect"`, is handed back next to the good records so the caller can
 * dead-letter it.
 *
 * {@link encode} writes record batches as lines, converting typed values as described in {@link JsonValue}.
 *
 * @since 0.1.0
 */
import type * as Stream from "effect/Stream"
import * as FormatError from "./FormatError.ts"
import * as JsonValue from "./JsonValue.ts"
import * as Transcoder from "./Transcoder.ts"

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
  /** The longest line accepted, in UTF-16 code units (default 64 Mi); longer lines fail the stream in both modes. */
  readonly maxLineLength?: number | undefined
}

/**
 * The default of {@link DecodeOptions.maxLineLength}.
 *
 * @since 0.1.0
 */
export const defaultMaxLineLength = 64 * 1024 * 1024

type Out = ReadonlyArray<unknown> | FormatError.LenientBatch

const isBlank = (line: string): boolean => {
  const first = line.charCodeAt(0)
  // Only lines starting with whitespace can be blank; checking the first character keeps the common case cheap.
  return line.length === 0 || ((first === 32 || first === 9 || first === 13) && line.trim().length === 0)
}

const stripCr = (line: string): string => (line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line)

class Decoder implements Transcoder.Transcoder<Uint8Array, Out> {
  readonly text = new TextDecoder("utf-8")
  readonly batcher: Transcoder.Batcher<unknown>
  readonly source: string | undefined
  readonly maxLineLength: number
  // The start of a line that has not ended yet, in pieces to avoid re-concatenating on every chunk.
  pending: Array<string> = []
  pendingLength = 0
  line = 0

  constructor(options: DecodeOptions | undefined) {
    this.batcher = new Transcoder.Batcher(
      options?.batchSize ?? Transcoder.defaultBatchSize,
      options?.onError === "collect"
    )
    this.source = options?.source
    this.maxLineLength = options?.maxLineLength ?? defaultMaxLineLength
  }

  push(bytes: Uint8Array, out: Array<Out>): FormatError.FormatError | undefined {
    return this.scan(this.text.decode(bytes, { stream: true }), out)
  }

  flush(out: Array<Out>): FormatError.FormatError | undefined {
    const rest = this.text.decode()
    const error = rest.length > 0 ? this.scan(rest, out) : undefined
    if (error !== undefined) return error
    if (this.pending.length > 0) {
      const last = this.pending.join("")
      this.pending = []
      this.pendingLength = 0
      const lastError = this.parseLine(last, out)
      if (lastError !== undefined) return lastError
    }
    this.batcher.cut(out)
    return undefined
  }

  scan(text: string, out: Array<Out>): FormatError.FormatError | undefined {
    let start = 0
    let newline = text.indexOf("\n")
    if (newline !== -1 && this.pending.length > 0) {
      this.pending.push(text.slice(0, newline))
      const line = this.pending.join("")
      this.pending = []
      this.pendingLength = 0
      const error = this.parseLine(line, out)
      if (error !== undefined) return error
      start = newline + 1
      newline = text.indexOf("\n", start)
    }
    while (newline !== -1) {
      const error = this.parseLine(text.slice(start, newline), out)
      if (error !== undefined) return error
      start = newline + 1
      newline = text.indexOf("\n", start)
    }
    if (start < text.length) {
      this.pending.push(start === 0 ? text : text.slice(start))
      this.pendingLength += text.length - start
      if (this.pendingLength > this.maxLineLength) {
        return FormatError.make({
          format: "jsonl",
          file: this.source,
          line: this.line + 1,
          reason: `line longer than ${this.maxLineLength} characters`
        })
      }
    }
    return undefined
  }

  parseLine(line: string, out: Array<Out>): FormatError.FormatError | undefined {
    this.line++
    if (line.length > this.maxLineLength) {
      return FormatError.make({
        format: "jsonl",
        file: this.source,
        line: this.line,
        reason: `line longer than ${this.maxLineLength} characters`
      })
    }
    if (isBlank(line)) return undefined
    let value: unknown
    try {
      value = JsonValue.parse(line)
    } catch (cause) {
      const error = FormatError.make({
        format: "jsonl",
        file: this.source,
        line: this.line,
        reason: cause instanceof Error ? cause.message : String(cause)
      })
      if (!this.batcher.lenient) return error
      this.batcher.reject({ line: this.line, message: error.message, raw: stripCr(line) }, out)
      return undefined
    }
    this.batcher.add(value, out)
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
