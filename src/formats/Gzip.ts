/**
 * Gzip compression as byte-stream transforms, backed by `node:zlib` streams (the work runs on libuv's thread pool).
 *
 * Each upstream chunk is written to the zlib stream and the output it produced is emitted before the next chunk is
 * pulled, so at most one chunk's worth of output is buffered. Concatenated gzip members are read as one stream.
 * Failures are {@link FormatError.FormatError}s: `not a gzip file`, `truncated gzip data`, `corrupt gzip data`.
 *
 * @since 0.1.0
 */
import * as Zlib from "node:zlib"
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Pull from "effect/Pull"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as FormatError from "./FormatError.ts"

/**
 * Options of {@link gunzip} and {@link gzip}.
 *
 * @since 0.1.0
 */
export interface Options {
  /** The file or source name used in error messages. */
  readonly source?: string | undefined
}

/**
 * Options of {@link gzip}.
 *
 * @since 0.1.0
 */
export interface GzipOptions extends Options {
  /** Compression level, 0-9 (default zlib's default, 6). */
  readonly level?: number | undefined
}

const End: unique symbol = Symbol.for("effect-etl/formats/Gzip/End")

const reasonOf = (error: Error & { readonly code?: string }, written: number, produced: number): string => {
  if (written === 0) return "not a gzip file: the input is empty"
  // After a complete member zlib reads what follows as the next member.
  if (produced > 0 && error.message === "incorrect header check")
    return "trailing bytes after the gzip data are not gzip"
  switch (error.code) {
    case "Z_BUF_ERROR":
      return `truncated gzip data (${error.message})`
    case "Z_DATA_ERROR":
      return error.message === "incorrect header check"
        ? "not a gzip file (incorrect header check)"
        : `corrupt gzip data (${error.message})`
    default:
      return `gzip failed (${error.message})`
  }
}

const transform =
  (make: () => Zlib.Gzip | Zlib.Gunzip, options: Options | undefined) =>
  <E, R>(self: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, FormatError.FormatError | E, R> =>
    Stream.transformPull(self, (upstream, scope) =>
      Effect.gen(function* () {
        const zlib = make()
        let outputs: Array<Uint8Array> = []
        let failure: Error | undefined
        let written = 0
        let produced = 0
        let ended = false
        zlib.on("data", (chunk: Buffer) => {
          produced += chunk.length
          outputs.push(chunk)
        })
        zlib.on("error", (error: Error) => {
          failure ??= error
        })
        yield* Scope.addFinalizer(
          scope,
          Effect.sync(() => zlib.destroy())
        )

        const toError = (error: Error): FormatError.FormatError =>
          FormatError.make({
            format: "gzip",
            file: options?.source,
            reason: reasonOf(error, written, produced),
            cause: error
          })

        // Resumes once zlib has consumed everything written so far (or failed).
        const await_ = (start: (done: () => void) => void) =>
          Effect.callback<void, FormatError.FormatError>((resume) => {
            if (failure !== undefined) return resume(Effect.fail(toError(failure)))
            const onError = (error: Error) => resume(Effect.fail(toError(error)))
            zlib.once("error", onError)
            start(() => {
              zlib.off("error", onError)
              resume(failure === undefined ? Effect.void : Effect.fail(toError(failure)))
            })
          })

        const write = (chunks: Arr.NonEmptyReadonlyArray<Uint8Array>) =>
          await_((done) => {
            for (let i = 0; i < chunks.length - 1; i++) {
              written += chunks[i]!.length
              zlib.write(chunks[i]!)
            }
            written += chunks[chunks.length - 1]!.length
            zlib.write(chunks[chunks.length - 1]!, () => done())
          })

        const end = await_((done) => {
          zlib.once("end", done)
          zlib.end()
        })

        const pull: Pull.Pull<Arr.NonEmptyReadonlyArray<Uint8Array>, E | FormatError.FormatError> = Effect.suspend(
          () => {
            if (outputs.length > 0) {
              const ready = outputs as unknown as Arr.NonEmptyReadonlyArray<Uint8Array>
              outputs = []
              return Effect.succeed(ready)
            }
            if (ended) return Cause.done()
            return upstream.pipe(
              Pull.catchDone(() => Effect.succeed(End)),
              Effect.flatMap((chunks) => {
                if (chunks !== End) return Effect.andThen(write(chunks), pull)
                ended = true
                return Effect.andThen(end, pull)
              })
            )
          }
        )
        return pull
      })
    )

/**
 * Decompresses gzip bytes (one or more concatenated members).
 *
 * @example
 * ```ts
 * const records = fileBytes.pipe(Gzip.gunzip({ source: "tx.jsonl.gz" }), Jsonl.decode({ source: "tx.jsonl.gz" }))
 * ```
 *
 * @since 0.1.0
 */
export const gunzip = (
  options?: Options
): (<E, R>(bytes: Stream.Stream<Uint8Array, E, R>) => Stream.Stream<Uint8Array, FormatError.FormatError | E, R>) =>
  transform(() => Zlib.createGunzip(), options)

/**
 * Compresses bytes as one gzip member.
 *
 * @example
 * ```ts
 * const gz = batches.pipe(Jsonl.encode(), Gzip.gzip({ level: 6 }))
 * ```
 *
 * @since 0.1.0
 */
export const gzip = (
  options?: GzipOptions
): (<E, R>(bytes: Stream.Stream<Uint8Array, E, R>) => Stream.Stream<Uint8Array, FormatError.FormatError | E, R>) =>
  transform(() => Zlib.createGzip(options?.level === undefined ? {} : { level: options.level }), options)
