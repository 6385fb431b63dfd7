import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import * as FormatError from "../../src/formats/FormatError.ts"
import * as Transcoder from "../../src/formats/Transcoder.ts"

// Emits running sums every `every` inputs; fails on a negative input.
const sums = (every: number) =>
  Transcoder.transform((): Transcoder.Transcoder<number, number> => {
    let sum = 0
    let seen = 0
    return {
      push: (n, out) => {
        if (n < 0) return FormatError.make({ format: "jsonl", reason: `negative ${n}` })
        sum += n
        if (++seen % every === 0) out.push(sum)
        return undefined
      },
      flush: (out) => {
        if (seen % every !== 0) out.push(sum)
        return undefined
      }
    }
  })

describe("Transcoder", () => {
  it.effect("feeds every element and flushes at the end, with fresh state per run", () =>
    Effect.gen(function* () {
      const stream = Stream.fromIterable([1, 2, 3, 4, 5], { chunkSize: 2 }).pipe(sums(2))
      assert.deepStrictEqual(yield* Stream.runCollect(stream), [3, 10, 15])
      assert.deepStrictEqual(yield* Stream.runCollect(stream), [3, 10, 15])
      assert.deepStrictEqual(yield* Stream.runCollect(Stream.empty.pipe(sums(2))), [])
    })
  )

  it.effect("emits what was complete before a failure, then fails", () =>
    Effect.gen(function* () {
      const seen: Array<number> = []
      const exit = yield* Effect.exit(
        Stream.runForEach(Stream.make(1, 2, 3, -1, 5).pipe(sums(1)), (n) => Effect.sync(() => seen.push(n)))
      )
      assert.deepStrictEqual(seen, [1, 3, 6])
      assert.isTrue(Exit.isFailure(exit))
    })
  )

  it.effect("feeds a large upstream chunk element by element, emitting as soon as outputs are ready", () =>
    Effect.gen(function* () {
      let pushed = 0
      const counted = Transcoder.transform(
        (): Transcoder.Transcoder<number, number> => ({
          push: (n, out) => {
            pushed++
            if (n % 10 === 9) out.push(n)
            return undefined
          },
          flush: () => undefined
        })
      )
      const first = yield* Stream.runCollect(
        Stream.fromIterable(Array.from({ length: 1000 }, (_, i) => i)).pipe(counted, Stream.take(2))
      )
      assert.deepStrictEqual(first, [9, 19])
      assert.strictEqual(pushed, 20)
    })
  )

  it("cuts batches of a fixed size, counting rejected records in lenient mode", () => {
    const out: Array<ReadonlyArray<number> | FormatError.LenientBatch<number>> = []
    const lenient = new Transcoder.Batcher<number>(2, true)
    lenient.add(1, out)
    lenient.reject({ line: 2, message: "bad", raw: "x" }, out)
    lenient.add(3, out)
    lenient.cut(out)
    lenient.cut(out)
    assert.deepStrictEqual(out, [
      // A reject knows how many records of its batch came before it.
      { records: [1], errors: [{ line: 2, message: "bad", raw: "x", at: 1 }] },
      { records: [3], errors: [] }
    ])
    const strict: Array<ReadonlyArray<number> | FormatError.LenientBatch<number>> = []
    const batcher = new Transcoder.Batcher<number>(0, false)
    batcher.add(1, strict)
    batcher.add(2, strict)
    assert.deepStrictEqual(strict, [[1], [2]])
  })
})
