import * as Zlib from "node:zlib"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import * as FormatError from "../../src/formats/FormatError.ts"
import * as Gzip from "../../src/formats/Gzip.ts"

const splitAt = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b)
  const chunks: Array<Uint8Array> = []
  let start = 0
  for (const point of points) {
    if (point > start && point < bytes.length) {
      chunks.push(bytes.subarray(start, point))
      start = point
    }
  }
  chunks.push(bytes.subarray(start))
  return chunks
}

const collect = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => Buffer.concat(chunks))

const failure = (exit: Exit.Exit<unknown, unknown>): FormatError.FormatError => {
  assert.isTrue(Exit.isFailure(exit))
  const reason = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
  const error = reason?._tag === "Fail" ? reason.error : undefined
  assert.instanceOf(error, FormatError.FormatError)
  return error as FormatError.FormatError
}

const text = Buffer.from(Array.from({ length: 5000 }, (_, i) => `line ${i}: ${"é".repeat(i % 7)}\n`).join(""))

describe("Gzip", () => {
  it("round-trips any bytes whatever the chunking", () =>
    fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 5000 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
        async (bytes, cutsIn, cutsOut) => {
          const gz = await Effect.runPromise(collect(Stream.fromIterable(splitAt(bytes, cutsIn)).pipe(Gzip.gzip())))
          assert.deepStrictEqual(Zlib.gunzipSync(gz), Buffer.from(bytes))
          const back = await Effect.runPromise(collect(Stream.fromIterable(splitAt(gz, cutsOut)).pipe(Gzip.gunzip())))
          assert.deepStrictEqual(back, Buffer.from(bytes))
        }
      ),
      { numRuns: 60 }
    ))

  it.effect("reads files written by zlib, including concatenated members, one byte at a time", () =>
    Effect.gen(function* () {
      const gz = Buffer.concat([Zlib.gzipSync(text), Zlib.gzipSync("tail\n")])
      const out = yield* collect(Stream.fromIterable(Array.from(gz, (b) => Uint8Array.of(b))).pipe(Gzip.gunzip()))
      assert.strictEqual(out.toString(), `${text.toString()}tail\n`)
    })
  )

  it.effect("compresses at the requested level", () =>
    Effect.gen(function* () {
      const fast = yield* collect(Stream.make(text).pipe(Gzip.gzip({ level: 1 })))
      const best = yield* collect(Stream.make(text).pipe(Gzip.gzip({ level: 9 })))
      assert.isBelow(best.length, fast.length)
      assert.deepStrictEqual(Zlib.gunzipSync(best), text)
    })
  )

  it.effect("fails on bytes that are not gzip", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        collect(Stream.make(Buffer.from("a,b\n1,2\n")).pipe(Gzip.gunzip({ source: "x.csv.gz" })))
      )
      assert.strictEqual(failure(exit).message, "x.csv.gz: not a gzip file (incorrect header check)")
    })
  )

  it.effect("fails on an empty input", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(collect(Stream.empty.pipe(Gzip.gunzip({ source: "empty.gz" }))))
      assert.strictEqual(failure(exit).message, "empty.gz: not a gzip file: the input is empty")
    })
  )

  it.effect("fails on truncated and corrupt data", () =>
    Effect.gen(function* () {
      const gz = Zlib.gzipSync(text)
      const truncated = yield* Effect.exit(collect(Stream.make(gz.subarray(0, gz.length - 20)).pipe(Gzip.gunzip())))
      assert.strictEqual(failure(truncated).message, "gzip: truncated gzip data (unexpected end of file)")
      const corrupt = Buffer.from(gz)
      corrupt.fill(0xff, 30, 60)
      const bad = yield* Effect.exit(collect(Stream.make(corrupt).pipe(Gzip.gunzip({ source: "c.gz" }))))
      assert.match(failure(bad).message, /^c\.gz: corrupt gzip data \(.+\)$/)
      const trailing = yield* Effect.exit(collect(Stream.make(gz, Buffer.from("garbage")).pipe(Gzip.gunzip())))
      assert.strictEqual(failure(trailing).message, "gzip: trailing bytes after the gzip data are not gzip")
    })
  )

  it.effect("passes upstream failures through", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        collect(
          Stream.concat(Stream.make(Zlib.gzipSync(text).subarray(0, 100)), Stream.fail("boom" as const)).pipe(
            Gzip.gunzip()
          )
        )
      )
      assert.isTrue(Exit.isFailure(exit))
      const reason = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      assert.strictEqual(reason?._tag === "Fail" ? reason.error : undefined, "boom")
    })
  )

  it.effect("stops early without reading the rest when downstream is done", () =>
    Effect.gen(function* () {
      const big = Zlib.gzipSync(Buffer.alloc(10_000_000, "x"))
      let pulled = 0
      const chunks = Array.from({ length: Math.ceil(big.length / 1000) }, (_, i) =>
        big.subarray(i * 1000, i * 1000 + 1000)
      )
      const first = yield* Stream.runCollect(
        Stream.fromIterable(chunks, { chunkSize: 1 }).pipe(
          Stream.tap(() => Effect.sync(() => pulled++)),
          Gzip.gunzip(),
          Stream.take(1)
        )
      )
      assert.strictEqual(first.length, 1)
      assert.isBelow(pulled, chunks.length)
    })
  )
})
