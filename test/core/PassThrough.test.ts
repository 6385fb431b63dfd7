/**
 * The runtime side of a pass-through (see `core/PassThrough.ts`) with a source and a sink of a made-up text format:
 * the runner asks both sides once per attempt, raw batches reach the sink's `writeRaw` (joined when the sink gathers
 * batches), and anything that is not a plain source → sink copy reads records.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Batch from "../../src/core/Batch.ts"
import type { DeadLetter } from "../../src/core/DeadLetter.ts"
import * as PassThrough from "../../src/core/PassThrough.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"

interface Row {
  readonly id: number
  readonly name: string
}

const FORMAT = "lines"
const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A source of `n` rows in batches of 3; raw batches hold `id,name` lines, and every 4th row is a dead letter. */
const lineSource = (n: number, type = "text") => {
  let offers = 0
  const rows = Array.from({ length: n }, (_, i): Row => ({ id: i, name: `r${i}` }))
  const source = Source.make<Row>({
    name: "lines",
    type: "test",
    description: "rows as lines",
    bounded: true,
    readsRaw: {
      format: FORMAT,
      offer: Effect.sync(() => {
        offers++
        return {
          format: FORMAT,
          fields: [
            { name: "id", type: "int" },
            { name: "name", type }
          ]
        }
      })
    },
    batches: (ctx) =>
      Stream.fromIterable(
        Array.from({ length: Math.ceil(n / 3) }, (_, b) => {
          const slice = rows.slice(b * 3, b * 3 + 3)
          const kept = slice.filter((r) => r.id % 4 !== 3)
          const deadLetters: Array<DeadLetter> = slice
            .filter((r) => r.id % 4 === 3)
            .map((r) => ({ stage: "lines", reason: "invalid-record", message: "every 4th", record: r }))
          const agreed = ctx.passThrough
          if (agreed === undefined) return Batch.make(kept, { deadLetters })
          const text = kept.map((r) => agreed.fields.map((f) => String(r[f as keyof Row])).join(",")).join("\n")
          return Batch.make(PassThrough.placeholders<Row>(kept.length), {
            deadLetters,
            raw: {
              format: FORMAT,
              fields: agreed.fields,
              chunks: kept.length === 0 ? [] : [encoder.encode(`${text}\n`)]
            }
          })
        })
      )
  })
  return { source, offers: () => offers }
}

/** A sink that takes `lines` of (name, id) in that order when the types are text and int; it keeps what it got. */
const lineSink = (options?: { readonly batching?: Sink.Batching }) => {
  const got = { raw: [] as Array<string>, records: [] as Array<Row>, rawWrites: 0 }
  const sink = Sink.make<Row>({
    name: "out",
    type: "test",
    description: "lines",
    mode: "append",
    durability: "on-commit",
    ...(options?.batching === undefined ? {} : { batching: options.batching }),
    writesRaw: {
      format: FORMAT,
      accept: (offer) =>
        Effect.succeed(
          offer.fields.some((f) => f.name === "name" && f.type === "text")
            ? { format: FORMAT, fields: ["name", "id"] }
            : undefined
        )
    },
    open: Effect.sync(() => {
      let written = 0
      return {
        write: (records) =>
          Effect.sync(() => {
            got.records.push(...records)
            written += records.length
          }),
        writeRaw: (raw) =>
          Effect.sync(() => {
            got.rawWrites++
            for (const chunk of raw.chunks)
              for (const line of decoder.decode(chunk).split("\n"))
                if (line !== "") {
                  got.raw.push(line)
                  written++
                }
          }),
        commit: Effect.sync(() => ({ written }))
      }
    })
  })
  return { sink, got }
}

const dropRejects = Pipeline.withQuality({ dropRejected: ["lines"] })

describe("pass-through", () => {
  it.effect(
    "a plain copy between sides that agree moves raw batches, in the sink's field order, counted as records",
    () =>
      Effect.gen(function* () {
        const { source, offers } = lineSource(10)
        const { sink, got } = lineSink()
        const report = yield* Pipeline.from(source).pipe(Pipeline.to(sink), dropRejects, Pipeline.run)
        assert.strictEqual(offers(), 1)
        assert.deepStrictEqual(got.records, [])
        assert.deepStrictEqual(got.raw, ["r0,0", "r1,1", "r2,2", "r4,4", "r5,5", "r6,6", "r8,8", "r9,9"])
        assert.strictEqual(report.records.read, 10)
        assert.strictEqual(report.records.written, 8)
        assert.strictEqual(report.records.rejected, 2)
      })
  )

  it.effect("a sink that gathers batches gets the raw batches joined", () =>
    Effect.gen(function* () {
      const { source } = lineSource(12)
      const { sink, got } = lineSink({ batching: { size: 100, linger: "1 minute" } })
      const dead = Sink.collect<DeadLetter>("dead")
      const report = yield* Pipeline.from(source).pipe(Pipeline.to(sink), Pipeline.withDeadLetters(dead), Pipeline.run)
      assert.strictEqual(got.rawWrites, 1)
      assert.strictEqual(got.raw.length, 9)
      assert.strictEqual(dead.collected().records.length, 3)
      assert.strictEqual(report.records.written + report.records.deadLettered, report.records.read)
    })
  )

  it.effect("records travel as records when the sink declines, or when a transform needs their values", () =>
    Effect.gen(function* () {
      const declined = lineSink()
      yield* Pipeline.from(lineSource(6, "varchar").source).pipe(Pipeline.to(declined.sink), dropRejects, Pipeline.run)
      assert.strictEqual(declined.got.raw.length, 0)
      assert.deepStrictEqual(
        declined.got.records.map((r) => r.id),
        [0, 1, 2, 4, 5]
      )
      const mapped = lineSink()
      const { source, offers } = lineSource(6)
      yield* Pipeline.from(source).pipe(
        Pipeline.map((r: Row) => ({ ...r, name: r.name.toUpperCase() })),
        Pipeline.to(mapped.sink),
        dropRejects,
        Pipeline.run
      )
      assert.strictEqual(offers(), 0, "a pipeline with a transform never asks")
      assert.deepStrictEqual(
        mapped.got.records.map((r) => r.name),
        ["R0", "R1", "R2", "R4", "R5"]
      )
    })
  )

  it("raw records of other fields or formats do not join", () => {
    const raw = (format: string, fields: ReadonlyArray<string>): PassThrough.Raw => ({
      format,
      fields,
      chunks: [encoder.encode("x\n")]
    })
    assert.strictEqual(PassThrough.concat([raw("a", ["x"]), raw("a", ["x"])])?.chunks.length, 2)
    assert.isUndefined(PassThrough.concat([raw("a", ["x"]), raw("b", ["x"])]))
    assert.isUndefined(PassThrough.concat([raw("a", ["x"]), raw("a", ["y"])]))
    assert.isUndefined(PassThrough.concat([raw("a", ["x"]), raw("a", ["x", "y"])]))
    assert.isUndefined(PassThrough.concat([]))
    const joined = Batch.concat([
      Batch.make(PassThrough.placeholders<number>(1), { raw: raw("a", ["x"]) }),
      Batch.make<number>([]),
      Batch.make(PassThrough.placeholders<number>(1), { raw: raw("a", ["x"]) })
    ])
    assert.strictEqual(joined.records.length, 2)
    assert.strictEqual(joined.raw?.chunks.length, 2)
    assert.throws(() =>
      Batch.concat([Batch.make(PassThrough.placeholders<number>(1), { raw: raw("a", ["x"]) }), Batch.make([1])])
    )
  })
})
