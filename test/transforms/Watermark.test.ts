import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import fc from "fast-check"
import * as Batch from "../../src/core/Batch.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Agg from "../../src/transforms/Aggregate.ts"
import * as Window from "../../src/transforms/Window.ts"
import { bag, runSync, split } from "./support.ts"

interface Ev {
  readonly seq: number
  readonly user: string
  readonly x: number
  readonly t: Date
}

interface Spec {
  readonly kind: "tumbling" | "sliding" | "session"
  readonly size: number
  readonly slide: number
  readonly gap: number
  readonly lateness: number
}

const toWindow = (spec: Spec) => {
  const options = { time: "t" as const, allowedLateness: spec.lateness }
  return spec.kind === "tumbling"
    ? Window.tumbling(spec.size, options)
    : spec.kind === "sliding"
      ? Window.sliding(spec.size, spec.slide, options)
      : Window.session(spec.gap, { ...options, by: ["user"] })
}

const specArb: fc.Arbitrary<Spec> = fc.oneof(
  fc.record({
    kind: fc.constant("tumbling" as const),
    size: fc.constantFrom(5000, 20_000),
    slide: fc.constant(0),
    gap: fc.constant(0),
    lateness: fc.constantFrom(0, 3000, 30_000)
  }),
  fc.record({
    kind: fc.constant("sliding" as const),
    size: fc.constant(10_000),
    slide: fc.constantFrom(5000, 3000, 15_000),
    gap: fc.constant(0),
    lateness: fc.constantFrom(0, 4000)
  }),
  fc.record({
    kind: fc.constant("session" as const),
    size: fc.constant(0),
    slide: fc.constant(0),
    gap: fc.constantFrom(2000, 4000),
    lateness: fc.constantFrom(0, 5000)
  })
)

/** One batch of the partitioned read: take `size` records from the `pick`-th part still open. */
interface Step {
  readonly pick: number
  readonly size: number
}

/**
 * An input read in parts: the records are dealt to `parts` parts, each part is in event-time order, and the parts'
 * batches are interleaved as `steps` say (then the rest, round robin). Every part ends with a `done` batch — the last
 * records, or an empty batch when `separateEnd` — unless `markEnds` is off.
 */
interface Partitioned {
  readonly events: ReadonlyArray<Ev>
  readonly parts: number
  readonly dealt: ReadonlyArray<number>
  readonly steps: ReadonlyArray<Step>
  readonly markEnds: boolean
  readonly separateEnd: boolean
  readonly singleSizes: ReadonlyArray<number>
}

const partitionedArb: fc.Arbitrary<Partitioned> = fc
  .record({
    raw: fc.array(
      fc.record({
        user: fc.constantFrom("a", "b", "c"),
        t: fc.integer({ min: 0, max: 120 }),
        x: fc.integer({ min: -50, max: 50 }),
        part: fc.nat()
      }),
      { maxLength: 60 }
    ),
    parts: fc.integer({ min: 1, max: 6 }),
    steps: fc.array(fc.record({ pick: fc.nat(), size: fc.integer({ min: 0, max: 5 }) }), { maxLength: 40 }),
    markEnds: fc.boolean(),
    separateEnd: fc.boolean(),
    singleSizes: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 })
  })
  .map(({ raw, parts, steps, markEnds, separateEnd, singleSizes }) => ({
    events: raw.map((r, seq) => ({ seq, user: r.user, x: r.x, t: new Date(r.t * 1000) })),
    parts,
    dealt: raw.map((r) => r.part % parts),
    steps,
    markEnds,
    separateEnd,
    singleSizes
  }))

const byTime = (a: Ev, b: Ev) => a.t.getTime() - b.t.getTime() || a.seq - b.seq

/**
 * The batches of the partitioned read described by `p`: each part in event-time order, or (`ordered: false`) in the
 * order its records were drawn.
 */
const partitionedBatches = (p: Partitioned, ordered = true): Array<Batch.Batch<Ev>> => {
  const queues = Array.from({ length: p.parts }, (_, i) => {
    const records = p.events.filter((_, j) => p.dealt[j] === i)
    return ordered ? records.sort(byTime) : records
  })
  const open = queues.map((_, i) => i)
  const out: Array<Batch.Batch<Ev>> = []
  const take = (slot: number, size: number) => {
    const i = open[slot]!
    const records = queues[i]!.splice(0, size)
    const last = queues[i]!.length === 0
    const part: Batch.Part = { id: `part-${i}`, of: p.parts }
    if (!last || !p.markEnds) out.push(Batch.make(records, { part }))
    else if (p.separateEnd) {
      if (records.length > 0) out.push(Batch.make(records, { part }))
      out.push(Batch.make([], { part: { ...part, done: true } }))
    } else out.push(Batch.make(records, { part: { ...part, done: true } }))
    if (last) open.splice(slot, 1)
  }
  for (const step of p.steps) if (open.length > 0) take(step.pick % open.length, step.size)
  let slot = 0
  while (open.length > 0) {
    slot %= open.length
    const before = open.length
    take(slot, 3)
    if (open.length === before) slot++
  }
  return out
}

const sourceOf = (name: string, batches: ReadonlyArray<Batch.Batch<Ev>>, acks: Array<number>) =>
  Source.make({
    name,
    type: "memory",
    description: `${batches.length} batches`,
    bounded: true,
    batches: () =>
      Stream.fromIterable(
        batches.map((b, i) => ({ ...b, ack: Effect.sync(() => void acks.push(i)) }) satisfies Batch.Batch<Ev>)
      )
  })

/** The same records read as one part: in event-time order, in batches of the given sizes. */
const singleBatches = (p: Partitioned): Array<Batch.Batch<Ev>> =>
  split([...p.events].sort(byTime), p.singleSizes).map((records) => Batch.make(records))

const windowed = (spec: Spec, batches: ReadonlyArray<Batch.Batch<Ev>>) => {
  const acks: Array<number> = []
  const run = runSync(Pipeline.from(sourceOf("events", batches, acks)).pipe(Pipeline.window(toWindow(spec))))
  return { run, acks }
}

const aggregated = (spec: Spec, batches: ReadonlyArray<Batch.Batch<Ev>>) => {
  const acks: Array<number> = []
  const run = runSync(
    Pipeline.from(sourceOf("events", batches, acks)).pipe(
      Pipeline.window(toWindow(spec)),
      Pipeline.aggregate({
        groupBy: ["user", "windowStart", "windowEnd"],
        fields: { n: Agg.count(), xs: Agg.sum("x"), first: Agg.min("seq"), last: Agg.max("seq") }
      })
    )
  )
  return { run, acks }
}

/** A lookup join before the window: its output batches keep the input batch's part. */
const joined = (spec: Spec, batches: ReadonlyArray<Batch.Batch<Ev>>) => {
  const acks: Array<number> = []
  const users = Source.fromIterable("users", [
    { user: "a", region: "north" },
    { user: "b", region: "south" }
  ])
  const run = runSync(
    Pipeline.from(sourceOf("events", batches, acks)).pipe(
      Pipeline.join(users, { on: ["user"], type: "left" }),
      Pipeline.window(toWindow(spec))
    )
  )
  return { run, acks }
}

const inOrder = (n: number) => Array.from({ length: n }, (_, i) => i)

describe("watermarks per input part", () => {
  it("any partitioning of the input gives the windows of one part, and no late records", () => {
    fc.assert(
      fc.property(specArb, partitionedArb, (spec, p) => {
        const parts = partitionedBatches(p)
        const single = singleBatches(p)
        const a = windowed(spec, parts)
        const b = windowed(spec, single)
        assert.deepStrictEqual(a.run.deadLetters, [])
        assert.deepStrictEqual(b.run.deadLetters, [])
        assert.deepStrictEqual(bag(a.run.records), bag(b.run.records))
        assert.deepStrictEqual(a.acks, inOrder(parts.length))
        const c = aggregated(spec, parts)
        const d = aggregated(spec, single)
        assert.deepStrictEqual(c.run.deadLetters, [])
        assert.deepStrictEqual(bag(c.run.records), bag(d.run.records))
        assert.deepStrictEqual(c.acks, inOrder(parts.length))
        const e = joined(spec, parts)
        assert.deepStrictEqual(e.run.deadLetters, [])
        assert.deepStrictEqual(bag(e.run.records), bag(joined(spec, single).run.records))
      }),
      { numRuns: 300 }
    )
  })

  it("judges each part of a bounded input on its own: out-of-order parts reject the same records however they interleave", () => {
    // The same parts, out of order within themselves, read interleaved as the steps say, and read one after another.
    const sequential = (p: Partitioned): Partitioned => ({ ...p, steps: [{ pick: 0, size: p.events.length }] })
    const letters = (run: {
      readonly deadLetters: ReadonlyArray<{ readonly reason: string; readonly record: unknown }>
    }) => bag(run.deadLetters.map((d) => [d.reason, (d.record as Ev).seq]))
    fc.assert(
      fc.property(specArb, partitionedArb, (spec, p) => {
        const interleaved = partitionedBatches({ ...p, markEnds: true }, false)
        const oneByOne = partitionedBatches(sequential({ ...p, markEnds: true }), false)
        const a = windowed(spec, interleaved)
        const b = windowed(spec, oneByOne)
        assert.deepStrictEqual(letters(a.run), letters(b.run))
        assert.deepStrictEqual(bag(a.run.records), bag(b.run.records))
        const c = aggregated(spec, interleaved)
        const d = aggregated(spec, oneByOne)
        assert.deepStrictEqual(letters(c.run), letters(d.run))
        assert.deepStrictEqual(bag(c.run.records), bag(d.run.records))
      }),
      { numRuns: 300 }
    )
  })

  it("names the part when a record is late within its own part only", () => {
    const at = (seq: number, seconds: number): Ev => ({ seq, user: "a", x: 1, t: new Date(seconds * 1000) })
    const batches = [
      Batch.make([at(0, 50), at(1, 10)], { part: { id: "a.jsonl", of: 2 } }),
      Batch.make([at(2, 5)], { part: { id: "b.jsonl", of: 2, done: true } }),
      Batch.make([], { part: { id: "a.jsonl", of: 2, done: true } })
    ]
    const run = runSync(
      Pipeline.from(sourceOf("events", batches, [])).pipe(Pipeline.window(Window.tumbling("10 seconds", { time: "t" })))
    )
    // b.jsonl had not been read when a.jsonl went back from 50 to 10: the record is late within its own part.
    assert.deepStrictEqual(
      run.deadLetters.map((d) => [d.reason, d.message]),
      [
        [
          "late",
          "t 1970-01-01T00:00:10.000Z is behind its input part's watermark 1970-01-01T00:00:50.000Z (the latest event time of part a.jsonl minus allowed lateness 0)"
        ]
      ]
    )
    assert.deepStrictEqual(bag(run.records.map((r) => r.seq)), bag([0, 2]))
  })

  it("closes a window once every part has passed it, before the input ends", () => {
    const at = (seq: number, seconds: number): Ev => ({ seq, user: "a", x: 1, t: new Date(seconds * 1000) })
    const part = (id: number, done?: boolean): Batch.Part => ({ id, of: 2, ...(done ? { done } : {}) })
    const acks: Array<number> = []
    const batches = [
      Batch.make([at(0, 1), at(1, 12)], { part: part(0) }),
      Batch.make([at(2, 2)], { part: part(1) }),
      Batch.make([at(3, 11)], { part: part(1) }),
      Batch.make([at(4, 25)], { part: part(0, true) }),
      Batch.make([at(5, 21)], { part: part(1, true) })
    ]
    const written: Array<Array<number>> = []
    const run = runSync(
      Pipeline.from(sourceOf("events", batches, acks)).pipe(
        Pipeline.window(Window.tumbling("10 seconds", { time: "t" }))
      )
    )
    for (const batch of run.batches) written.push(batch.records.map((r) => r.seq))
    assert.deepStrictEqual(run.deadLetters, [])
    // [0, 10) closes when part 1 reaches 11; [10, 20) when part 1 reaches 21 (part 0 is done at 25).
    assert.deepStrictEqual(
      written.filter((w) => w.length > 0),
      [
        [0, 2],
        [1, 3],
        [4, 5]
      ]
    )
  })

  it("waits for the parts not read yet: a part read after another has ended is not late", () => {
    const at = (seq: number, seconds: number): Ev => ({ seq, user: "a", x: 1, t: new Date(seconds * 1000) })
    const acks: Array<number> = []
    const batches = [
      Batch.make([at(0, 1), at(1, 100)], { part: { id: "a.jsonl", of: 2, done: true } }),
      Batch.make([at(2, 2), at(3, 101)], { part: { id: "b.jsonl", of: 2, done: true } })
    ]
    const run = runSync(
      Pipeline.from(sourceOf("events", batches, acks)).pipe(
        Pipeline.window(Window.tumbling("10 seconds", { time: "t" }))
      )
    )
    assert.deepStrictEqual(run.deadLetters, [])
    assert.deepStrictEqual(bag(run.records.map((r) => [r.seq, r.windowStart.getTime()])), [
      ...bag([
        [0, 0],
        [2, 0],
        [1, 100_000],
        [3, 100_000]
      ])
    ])
  })

  it("still rejects a record late within its own part, naming the parts in the message", () => {
    const at = (seq: number, seconds: number): Ev => ({ seq, user: "a", x: 1, t: new Date(seconds * 1000) })
    const acks: Array<number> = []
    const batches = [
      Batch.make([at(0, 50)], { part: { id: 0, of: 2 } }),
      Batch.make([at(1, 40), at(2, 30)], { part: { id: 1, of: 2 } }),
      Batch.make([at(3, 5)], { part: { id: 1, of: 2 } })
    ]
    const run = runSync(
      Pipeline.from(sourceOf("events", batches, acks)).pipe(
        Pipeline.window(Window.tumbling("10 seconds", { time: "t", allowedLateness: "20 seconds" }))
      )
    )
    assert.deepStrictEqual(
      run.deadLetters.map((d) => [d.reason, d.message]),
      [
        [
          "late",
          "t 1970-01-01T00:00:05.000Z is behind the watermark 1970-01-01T00:00:20.000Z (1970-01-01T00:00:40.000Z, the latest event time all 2 input parts have reached, minus allowed lateness 20s)"
        ]
      ]
    )
  })

  it.effect("reads the parts of a source each in order and marks the last batch of each part", () =>
    Effect.gen(function* () {
      const parts = [[1, 2, 3], [], [4]]
      const batches = yield* Stream.runCollect(
        Source.readParts(parts, (records) => Stream.fromIterable(records.map((r) => Batch.make([r]))), {
          concurrency: 2
        })
      )
      const byPart = new Map<string | number, Array<[ReadonlyArray<number>, boolean]>>()
      for (const b of batches) {
        const id = b.part!.id
        assert.strictEqual(b.part!.of, 3)
        byPart.set(id, [...(byPart.get(id) ?? []), [b.records, b.part!.done === true]])
      }
      assert.deepStrictEqual(byPart.get(0), [
        [[1], false],
        [[2], false],
        [[3], true]
      ])
      assert.deepStrictEqual(byPart.get(1), [[[], true]])
      assert.deepStrictEqual(byPart.get(2), [[[4], true]])
      const one = yield* Stream.runCollect(
        Source.readParts([[7]], (r) => Stream.make(Batch.make(r)), { concurrency: 1 })
      )
      assert.deepStrictEqual(
        one.map((b) => b.part),
        [undefined]
      )
    })
  )
})
