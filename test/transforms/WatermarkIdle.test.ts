import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import * as Batch from "../../src/core/Batch.ts"
import type { Flow } from "../../src/core/Flow.ts"
import * as Source from "../../src/core/Source.ts"
import { makeRunContext, StageCounter } from "../../src/core/Stage.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Agg from "../../src/transforms/Aggregate.ts"
import { IntervalJoinState, LEFT } from "../../src/transforms/internal/IntervalJoinState.ts"
import { Watermark } from "../../src/transforms/internal/Watermark.ts"
import * as Window from "../../src/transforms/Window.ts"
import { bag } from "./support.ts"

interface Ev {
  readonly seq: number
  readonly user: string
  readonly x: number
  /** Event time, epoch milliseconds. */
  readonly t: number
}

const SECOND = 1000

/**
 * A batch of an open-ended part (an unbounded source's partition; none: an input that is not split), records at these
 * event times (seconds).
 */
const from = (
  part: string | undefined,
  seqAndSeconds: ReadonlyArray<readonly [number, number]>,
  sourceTimestamp?: number
) =>
  Batch.make(
    seqAndSeconds.map(([seq, s]): Ev => ({ seq, user: "a", x: 1, t: s * SECOND })),
    {
      ...(part === undefined ? {} : { part: { id: part } }),
      ...(sourceTimestamp === undefined ? {} : { sourceTimestamp })
    }
  )

const sleepUntil = (at: number) => Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sleep(Math.max(0, at - now)))

/**
 * An unbounded source that sends each batch when the clock reaches its time (milliseconds), then waits until `endAt`
 * and ends (as a streaming source ends on a graceful stop). Acknowledging batch `i` records `i` in `acks`.
 */
const timed = <A>(
  steps: ReadonlyArray<readonly [number, Batch.Batch<A>]>,
  endAt: number,
  acks: Array<number> = []
): Source.Source<A> =>
  Source.make({
    name: "events",
    type: "memory",
    description: `${steps.length} batches on a clock`,
    bounded: false,
    batches: () =>
      Stream.concat(
        Stream.fromIterable(steps.map(([at, batch], i) => [at, batch, i] as const)).pipe(
          Stream.mapEffect(([at, batch, i]) =>
            Effect.as(sleepUntil(at), { ...batch, ack: Effect.sync(() => void acks.push(i)) })
          )
        ),
        Stream.drain(Stream.fromEffect(sleepUntil(endAt)))
      )
  })

interface Emitted<A> {
  /** The clock when the batch came out of the flow. */
  readonly at: number
  readonly batch: Batch.Batch<A>
}

/**
 * Runs the flow on a fresh TestClock (starting at 0) until `until` (milliseconds), recording when each output batch
 * came out.
 */
const play = <A, E>(flow: Flow<A, E, never>, until: number) =>
  Effect.gen(function* () {
    const ctx = makeRunContext({ runId: "test", pipeline: flow.name, now: () => 0 })
    for (const stage of flow.stages) ctx.stage(stage)
    const out: Array<Emitted<A>> = []
    const fiber = yield* Effect.forkChild(
      Stream.runForEach(flow.build(ctx), (batch) =>
        Effect.flatMap(Clock.currentTimeMillis, (at) => {
          out.push({ at, batch })
          return batch.ack
        })
      )
    )
    yield* TestClock.adjust(until + 1)
    yield* Fiber.join(fiber)
    const withRecords = out.filter((o) => o.batch.records.length > 0)
    return {
      out,
      /** The records that came out, as `clock: seq@windowStart ...` per output batch with records. */
      timeline: withRecords.map(
        (o) =>
          `${o.at / SECOND}: ${o.batch.records
            .map((r) => {
              const w = r as { readonly seq?: number; readonly windowStart?: Date; readonly n?: number }
              if (w.windowStart === undefined) return JSON.stringify(r)
              return w.seq === undefined
                ? `${w.windowStart.getTime() / SECOND}s×${w.n}`
                : `${w.seq}@${w.windowStart.getTime() / SECOND}`
            })
            .join(" ")}`
      ),
      deadLetters: out.flatMap((o) => o.batch.deadLetters),
      counter: (name: string) => ctx.stages().find((c) => c.info.name === name)!
    }
  }).pipe(Effect.provide(TestClock.layer()))

const tenSeconds = (options?: Partial<Window.WindowOptions<"t">>) =>
  Window.tumbling("10 seconds", { time: "t", ...options })

describe("idle parts of an unbounded input", () => {
  it.effect("a part that sends nothing for the idle timeout stops holding the watermark back", () =>
    Effect.gen(function* () {
      const steps = [
        [0, from("t/0", [[0, 1]])],
        [0, from("t/1", [[1, 2]])],
        [5 * SECOND, from("t/0", [[2, 15]])],
        [20 * SECOND, from("t/0", [[3, 25]])],
        [31 * SECOND, from("t/0", [[4, 35]])]
      ] as const
      const idle = yield* play(
        Pipeline.from(timed(steps, 100 * SECOND)).pipe(Pipeline.window(tenSeconds())),
        100 * SECOND
      )
      // t/1 last sent at 0 s: at 31 s it is idle (default 30 s), and t/0 alone closes [0,10), [10,20), [20,30).
      assert.deepStrictEqual(idle.timeline, ["31: 0@0 1@0 2@10 3@20", "100: 4@30"])
      assert.deepStrictEqual(idle.deadLetters, [])

      const never = yield* play(
        Pipeline.from(timed(steps, 100 * SECOND)).pipe(Pipeline.window(tenSeconds({ idleTimeout: Infinity }))),
        100 * SECOND
      )
      assert.deepStrictEqual(never.timeline, ["100: 0@0 1@0 2@10 3@20 4@30"])
    })
  )

  it.effect("the next batch of any part releases an idle part's hold, even one with no newer event time", () =>
    Effect.gen(function* () {
      const steps = [
        [0, from("t/0", [[0, 1]])],
        [0, from("t/1", [[1, 2]])],
        [1 * SECOND, from("t/0", [[2, 25]])],
        [10 * SECOND, from("t/0", [[3, 25]])],
        [40 * SECOND, from("t/0", [[4, 24]])]
      ] as const
      const run = yield* play(
        Pipeline.from(timed(steps, 100 * SECOND)).pipe(Pipeline.window(tenSeconds({ allowedLateness: "5 seconds" }))),
        100 * SECOND
      )
      // At 40 s t/1 has been idle for 40 s: t/0's batch, at 24 s (not newer than its 25 s), moves the watermark to 20 s.
      assert.deepStrictEqual(run.timeline, ["40: 0@0 1@0", "100: 2@20 3@20 4@20"])
      assert.deepStrictEqual(run.deadLetters, [])
    })
  )

  it.effect("a part that comes back after idling: its records behind the watermark are late, later ones count", () =>
    Effect.gen(function* () {
      const acks: Array<number> = []
      const steps = [
        [0, from("t/0", [[0, 1]])],
        [0, from("t/1", [[1, 2]])],
        [40 * SECOND, from("t/0", [[2, 35]])],
        [
          41 * SECOND,
          from("t/1", [
            [3, 3],
            [4, 36]
          ])
        ],
        [42 * SECOND, from("t/0", [[5, 50]])],
        [45 * SECOND, from("t/1", [[6, 42]])]
      ] as const
      const run = yield* play(
        Pipeline.from(timed(steps, 60 * SECOND, acks)).pipe(
          Pipeline.window(tenSeconds({ idleTimeout: "30 seconds", allowedLateness: "2 seconds" }))
        ),
        60 * SECOND
      )
      // At 40 s t/1 is idle: the watermark goes to 35 - 2 = 33 and [0,10) closes. t/1 comes back at 41 s: 3 s is late,
      // 36 s counts, and t/1 holds the watermark back again until it reaches 42 s (then 42 - 2 closes [30,40)).
      assert.deepStrictEqual(run.timeline, ["40: 0@0 1@0", "45: 2@30 4@30", "60: 6@40 5@50"])
      assert.deepStrictEqual(
        run.deadLetters.map((d) => [d.reason, d.message]),
        [
          [
            "late",
            "t 1970-01-01T00:00:03.000Z is behind the watermark 1970-01-01T00:00:33.000Z (1970-01-01T00:00:35.000Z, the latest event time 1 of 2 input parts have reached (the others were idle or not read yet), minus allowed lateness 2s)"
          ]
        ]
      )
      const counter = run.counter("window")
      assert.strictEqual(counter.rejected, 1)
      assert.strictEqual(counter.consumed, 6)
      assert.deepStrictEqual(acks, [0, 1, 2, 3, 4, 5])

      const dropped = yield* play(
        Pipeline.from(timed(steps, 60 * SECOND)).pipe(
          Pipeline.window(tenSeconds({ idleTimeout: "30 seconds", allowedLateness: "2 seconds", onLate: "drop" }))
        ),
        60 * SECOND
      )
      assert.deepStrictEqual(dropped.deadLetters, [])
      assert.strictEqual(dropped.counter("window").filtered, 1)
    })
  )

  it.effect("while every part is idle the watermark stays where it is", () =>
    Effect.gen(function* () {
      const steps = [
        [0, from("t/0", [[0, 1]])],
        [1 * SECOND, from("t/1", [[1, 12]])],
        [2 * SECOND, from("t/2", [[2, 5]])],
        [11 * SECOND, from("t/0", [[3, 14]])]
      ] as const
      const run = yield* play(
        Pipeline.from(timed(steps, 600 * SECOND)).pipe(Pipeline.window(tenSeconds({ idleTimeout: "10 seconds" }))),
        600 * SECOND
      )
      // At 11 s t/1 is idle but t/2 (at 5 s) is not. Nothing arrives after: nothing closes a window until the end.
      assert.deepStrictEqual(run.timeline, ["600: 0@0 2@0 1@10 3@10"])
    })
  )

  it.effect("parts not heard of yet hold the watermark for the idle timeout after the first batch", () =>
    Effect.gen(function* () {
      const steps = [
        [0, from("t/0", [[0, 20]])],
        [1 * SECOND, from("t/1", [[1, 3]])],
        [5 * SECOND, from("t/0", [[2, 40]])],
        [31 * SECOND, from("t/0", [[3, 41]])]
      ] as const
      const run = yield* play(
        Pipeline.from(timed(steps, 100 * SECOND)).pipe(Pipeline.window(tenSeconds())),
        100 * SECOND
      )
      // t/1's first batch comes after t/0 has reached 20 s: its record at 3 s is not late.
      assert.deepStrictEqual(run.deadLetters, [])
      assert.deepStrictEqual(run.timeline, ["31: 1@0 0@20", "100: 2@40 3@40"])
    })
  )

  it.effect("a source that tells how many parts it knew of at its start: the wait ends once that many have sent", () =>
    Effect.gen(function* () {
      const at = (seq: number, seconds: number): Ev => ({ seq, user: "a", x: 1, t: seconds * SECOND })
      const part = (id: string): Batch.Part => ({ id, known: 2 })
      const steps = [
        [0, Batch.make([at(0, 20)], { part: part("t/0") })],
        [1 * SECOND, Batch.make([at(1, 3)], { part: part("t/1") })],
        [2 * SECOND, Batch.make([at(2, 25)], { part: part("t/1") })]
      ] as const
      const run = yield* play(
        Pipeline.from(timed(steps, 100 * SECOND)).pipe(Pipeline.window(tenSeconds())),
        100 * SECOND
      )
      assert.deepStrictEqual(run.deadLetters, [])
      assert.deepStrictEqual(run.timeline, ["2: 1@0", "100: 0@20 2@20"])
    })
  )

  it.effect("the parts a bounded source announces never go idle", () =>
    Effect.gen(function* () {
      const part = (id: number, done?: boolean): Batch.Part => ({ id, of: 2, ...(done ? { done } : {}) })
      const at = (seq: number, seconds: number): Ev => ({ seq, user: "a", x: 1, t: seconds * SECOND })
      const steps = [
        [0, Batch.make([at(0, 1)], { part: part(0) })],
        [0, Batch.make([at(1, 2)], { part: part(1) })],
        [100 * SECOND, Batch.make([at(2, 25)], { part: part(0) })],
        [200 * SECOND, Batch.make([at(3, 3)], { part: part(1, true) })],
        [201 * SECOND, Batch.make([at(4, 26)], { part: part(0, true) })]
      ] as const
      const run = yield* play(
        Pipeline.from(timed(steps, 300 * SECOND)).pipe(Pipeline.window(tenSeconds({ idleTimeout: "1 second" }))),
        300 * SECOND
      )
      assert.deepStrictEqual(run.deadLetters, [])
      assert.deepStrictEqual(run.timeline, ["200: 0@0 1@0 3@0", "300: 2@20 4@20"])
    })
  )

  it.effect("window and aggregate outputs carry the oldest source timestamp of the batches in their windows", () =>
    Effect.gen(function* () {
      const steps = [
        [0, from(undefined, [[0, 1]], 5000)],
        [0, from(undefined, [[1, 2]], 4000)],
        [0, from(undefined, [[2, 12]], 9000)],
        [0, from(undefined, [[3, 13]], 8000)],
        [0, from(undefined, [[4, 31]], 7000)]
      ] as const
      const windowed = yield* play(Pipeline.from(timed(steps, SECOND)).pipe(Pipeline.window(tenSeconds())), SECOND)
      assert.deepStrictEqual(
        windowed.out
          .filter((o) => o.batch.records.length > 0)
          .map((o) => [o.batch.records.map((r) => r.seq), o.batch.sourceTimestamp]),
        [
          [[0, 1], 4000],
          [[2, 3], 8000],
          [[4], 7000]
        ]
      )
      const aggregated = yield* play(
        Pipeline.from(timed(steps, SECOND)).pipe(
          Pipeline.window(tenSeconds()),
          Pipeline.aggregate({ groupBy: ["windowStart", "windowEnd"], fields: { n: Agg.count() } })
        ),
        SECOND
      )
      assert.deepStrictEqual(
        aggregated.out.filter((o) => o.batch.records.length > 0).map((o) => o.batch.sourceTimestamp),
        [4000, 8000, 7000]
      )
      const plain = yield* play(
        Pipeline.from(
          Source.make({
            name: "bounded",
            type: "memory",
            description: "three batches",
            bounded: true,
            batches: () => Stream.fromIterable(steps.slice(2).map(([, b]) => b))
          })
        ).pipe(Pipeline.aggregate({ fields: { n: Agg.count() } })),
        0
      )
      assert.deepStrictEqual(
        plain.out.map((o) => [o.batch.records, o.batch.sourceTimestamp]),
        [[[{ n: 3 }], 7000]]
      )
    })
  )
})

describe("idle parts in an interval join", () => {
  it("a quiet partition of one side stops holding that side's watermark back after the idle timeout", () => {
    const lateOf = (idleMs: number | undefined) => {
      const counter = new StageCounter({
        name: "interval_join",
        kind: "transform",
        description: "",
        cardinality: "one-to-many"
      })
      const state = new IntervalJoinState(
        {
          leftKey: ["k"],
          rightKey: ["k"],
          leftTime: "t",
          rightTime: "paidAt",
          lowerMs: -5000,
          upperMs: 0,
          type: "inner",
          as: undefined,
          latenessMs: 0,
          onLate: "reject",
          ...(idleMs === undefined ? {} : { idleMs })
        },
        counter,
        { right: "payments", checkpointed: false }
      )
      const orders = (part: string, id: number, seconds: number) =>
        Batch.make([{ id, k: "a", t: seconds * SECOND }], { part: { id: part } })
      const dead = []
      for (const [now, batch] of [
        [0, orders("o/0", 1, 1)],
        [0, orders("o/1", 2, 2)],
        [40 * SECOND, orders("o/0", 3, 50)],
        [41 * SECOND, orders("o/1", 4, 3)]
      ] as const) {
        const out = state.step(LEFT, batch, now)
        if (!Array.isArray(out)) throw out
        for (const b of out) dead.push(...b.deadLetters)
      }
      return { dead: dead.map((d) => [d.reason, d.message]), rejected: counter.rejected }
    }
    assert.deepStrictEqual(lateOf(undefined), {
      dead: [
        [
          "late",
          "t 1970-01-01T00:00:03.000Z is behind the watermark 1970-01-01T00:00:50.000Z (1970-01-01T00:00:50.000Z, the latest event time 1 of 2 parts of the left input have reached (the others were idle or not read yet), minus allowed lateness 0)"
        ]
      ],
      rejected: 1
    })
    assert.deepStrictEqual(lateOf(Number.POSITIVE_INFINITY), { dead: [], rejected: 0 })
  })
})

describe("a restored watermark of an open-ended input", () => {
  it("keeps its parts open-ended and gives them a fresh idle timeout: processing times of another run do not count", () => {
    const observed = (w: Watermark, id: string, now: number, t: number) => {
      w.begin({ id, known: 2 }, true, now)
      w.observe(t)
      w.end({ id, known: 2 })
    }
    const first = new Watermark(0, 10_000)
    observed(first, "t/0", 0, 5000)
    observed(first, "t/1", 1000, 3000)
    observed(first, "t/0", 10_500, 6000)
    assert.strictEqual(first.value, 3000)
    observed(first, "t/0", 11_000, 7000)
    assert.strictEqual(first.value, 7000)
    const saved = JSON.parse(JSON.stringify(first.save())) as ReturnType<Watermark["save"]>

    const restored = new Watermark(0, 10_000)
    restored.load(saved)
    // A new run, much later: t/1 has sent nothing in this run yet, but it is not idle before 10 s of this run passed.
    assert.strictEqual(restored.value, 7000)
    observed(restored, "t/0", 5_000_000, 50_000)
    assert.strictEqual(restored.value, 7000)
    observed(restored, "t/0", 5_009_999, 51_000)
    assert.strictEqual(restored.value, 7000)
    observed(restored, "t/0", 5_010_000, 52_000)
    assert.strictEqual(restored.value, 52_000)
    assert.isTrue(restored.openEnded)
  })
})

describe("processing-time windows", () => {
  it.effect("close by the clock, on a timer, when no batch arrives", () =>
    Effect.gen(function* () {
      const at = (seq: number): Ev => ({ seq, user: "a", x: 1, t: 0 })
      const steps = [
        [1 * SECOND, Batch.make([at(0), at(1)], { sourceTimestamp: 500 })],
        [3 * SECOND, Batch.make([at(2)], { sourceTimestamp: 2500 })],
        [12 * SECOND, Batch.make([at(3)], { sourceTimestamp: 11_000 })]
      ] as const
      const acks: Array<number> = []
      const run = yield* play(
        Pipeline.from(timed(steps, 100 * SECOND, acks)).pipe(
          Pipeline.window(Window.tumbling("10 seconds", { watermark: "processing-time" }))
        ),
        100 * SECOND
      )
      // Records' times are the clock when they are processed (1 s, 3 s, 12 s), not their field t.
      assert.deepStrictEqual(run.timeline, ["10: 0@0 1@0 2@0", "20: 3@10"])
      assert.deepStrictEqual(
        run.out.filter((o) => o.batch.records.length > 0).map((o) => o.batch.sourceTimestamp),
        [500, 11_000]
      )
      assert.deepStrictEqual(acks, [0, 1, 2])
      assert.deepStrictEqual(run.deadLetters, [])
    })
  )

  it.effect("an aggregate after a processing-time window emits each window's groups when the clock passes it", () =>
    Effect.gen(function* () {
      const at = (seq: number, user: string): Ev => ({ seq, user, x: seq, t: Number.NaN })
      const steps = [
        [2 * SECOND, Batch.make([at(0, "a"), at(1, "b")])],
        [4 * SECOND, Batch.make([at(2, "a")])],
        [7 * SECOND, Batch.make([at(3, "a")])]
      ] as const
      const run = yield* play(
        Pipeline.from(timed(steps, 30 * SECOND)).pipe(
          Pipeline.window(Window.sliding("4 seconds", "2 seconds", { watermark: "processing-time" })),
          Pipeline.aggregate({
            groupBy: ["user", "windowStart", "windowEnd"],
            fields: { n: Agg.count(), x: Agg.sum("x") }
          })
        ),
        30 * SECOND
      )
      const rows = run.out.flatMap((o) =>
        o.batch.records.map(
          (r) =>
            `${o.at / SECOND}: ${r.user} [${r.windowStart.getTime() / SECOND}, ${r.windowEnd.getTime() / SECOND}) n=${r.n} x=${r.x}`
        )
      )
      assert.deepStrictEqual(bag(rows), [
        ...bag([
          "4: a [0, 4) n=1 x=0",
          "4: b [0, 4) n=1 x=1",
          "6: a [2, 6) n=2 x=2",
          "6: b [2, 6) n=1 x=1",
          "8: a [4, 8) n=2 x=5",
          "10: a [6, 10) n=1 x=3"
        ])
      ])
      assert.deepStrictEqual(run.deadLetters, [])
    })
  )

  it.effect("session windows on processing time end a gap after the last batch of the session", () =>
    Effect.gen(function* () {
      const at = (seq: number, user: string): Ev => ({ seq, user, x: 1, t: 0 })
      const steps = [
        [1 * SECOND, Batch.make([at(0, "a"), at(1, "b")])],
        [4 * SECOND, Batch.make([at(2, "a")])],
        [20 * SECOND, Batch.make([at(3, "a")])]
      ] as const
      const run = yield* play(
        Pipeline.from(timed(steps, 60 * SECOND)).pipe(
          Pipeline.window(Window.session("5 seconds", { watermark: "processing-time", by: ["user"] }))
        ),
        60 * SECOND
      )
      assert.deepStrictEqual(run.timeline, ["6: 1@1", "9: 0@1 2@1", "25: 3@20"])
    })
  )

  it("rejects allowed lateness on a processing-time window", () => {
    const spec = Window.fromConfig({
      kind: "tumbling",
      sizeMs: 1000,
      slideMs: 1000,
      gapMs: 0,
      latenessMs: 5000,
      onLate: "reject",
      time: "",
      by: [],
      watermark: "processing-time"
    })
    const error = Effect.runSync(
      Effect.flip(
        Stream.runDrain(
          Pipeline.from(Source.fromIterable("x", [{ a: 1 }]))
            .pipe(Window.dynamic(spec))
            .build(makeRunContext({ runId: "t", pipeline: "x", now: () => 0 }))
        )
      )
    )
    assert.strictEqual(
      error.message,
      "window: allowed lateness does not apply to processing-time windows: no record is ever behind the clock"
    )
  })
})

/**
 * Parts that all stay active: every part's first batch is one record, and they come first, in event-time order (so no
 * part can be late before all have been seen), then the rest interleaved; no part goes longer without records than the
 * idle timeout.
 */
interface Active {
  readonly parts: ReadonlyArray<ReadonlyArray<Ev>>
  readonly order: ReadonlyArray<number>
  readonly sizes: ReadonlyArray<number>
  readonly gaps: ReadonlyArray<number>
}

const activeArb: fc.Arbitrary<Active> = fc
  .record({
    parts: fc.array(
      fc.array(
        fc.record({ user: fc.constantFrom("a", "b", "c"), t: fc.integer({ min: 0, max: 120 }), x: fc.integer() }),
        { minLength: 1, maxLength: 15 }
      ),
      { minLength: 1, maxLength: 5 }
    ),
    order: fc.array(fc.nat(), { maxLength: 60 }),
    sizes: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 5 }),
    gaps: fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 7 })
  })
  .map(({ parts, order, sizes, gaps }) => {
    let seq = 0
    return {
      parts: parts.map((events) =>
        events
          .map((e) => ({ seq: seq++, user: e.user, x: e.x % 100, t: e.t * SECOND }))
          .sort((a, b) => a.t - b.t || a.seq - b.seq)
      ),
      order,
      sizes,
      gaps
    }
  })

interface Spec {
  readonly kind: "tumbling" | "sliding" | "session"
  readonly lateness: number
}

const specArb: fc.Arbitrary<Spec> = fc.record({
  kind: fc.constantFrom("tumbling" as const, "sliding" as const, "session" as const),
  lateness: fc.constantFrom(0, 3000, 20_000)
})

/** The batches of `a` at their clock times, each part tagged by `tag`; and the longest a part went without records. */
const schedule = (a: Active, tag: (i: number) => Batch.Part) => {
  const queues = a.parts.map((events) => [...events])
  const steps: Array<readonly [number, Batch.Batch<Ev>]> = []
  const lastActive = a.parts.map(() => 0)
  let clock = 0
  let k = 0
  let longest = 0
  const send = (i: number, records: ReadonlyArray<Ev>) => {
    clock += a.gaps[k % a.gaps.length]!
    if (records.length > 0) {
      longest = Math.max(longest, clock - lastActive[i]!)
      lastActive[i] = clock
    }
    steps.push([clock, Batch.make(records, { part: tag(i) })])
    k++
  }
  const firsts = queues.map((q, i) => [q.shift()!, i] as const).sort(([x, i], [y, j]) => x.t - y.t || i - j)
  for (const [event, i] of firsts) send(i, [event])
  const open = () => queues.flatMap((q, i) => (q.length > 0 ? [i] : []))
  for (const pick of a.order) {
    const left = open()
    if (left.length === 0) break
    const i = left[pick % left.length]!
    send(i, queues[i]!.splice(0, a.sizes[k % a.sizes.length]!))
  }
  for (let left = open(); left.length > 0; left = open()) for (const i of left) send(i, queues[i]!.splice(0, 3))
  for (let i = 0; i < a.parts.length; i++) longest = Math.max(longest, clock - lastActive[i]!)
  return { steps, end: clock + 1, longest }
}

const windowOf = (spec: Spec, idleTimeout: number) => {
  const options = { time: "t" as const, allowedLateness: spec.lateness, idleTimeout }
  return spec.kind === "tumbling"
    ? Window.tumbling("10 seconds", options)
    : spec.kind === "sliding"
      ? Window.sliding("10 seconds", "4 seconds", options)
      : Window.session("3 seconds", { ...options, by: ["user"] })
}

const outcome = (spec: Spec, steps: ReadonlyArray<readonly [number, Batch.Batch<Ev>]>, end: number, idle: number) =>
  Effect.gen(function* () {
    const acks: Array<number> = []
    const windows = yield* play(Pipeline.from(timed(steps, end, acks)).pipe(Pipeline.window(windowOf(spec, idle))), end)
    const aggregates = yield* play(
      Pipeline.from(timed(steps, end)).pipe(
        Pipeline.window(windowOf(spec, idle)),
        Pipeline.aggregate({
          groupBy: ["user", "windowStart", "windowEnd"],
          fields: { n: Agg.count(), xs: Agg.sum("x"), first: Agg.min("seq") }
        })
      ),
      end
    )
    const emitted = <A>(out: ReadonlyArray<Emitted<A>>) =>
      out.filter((o) => o.batch.records.length > 0).map((o) => ({ at: o.at, records: bag(o.batch.records) }))
    return {
      windows: emitted(windows.out),
      late: windows.deadLetters.map((d) => (d.record as Ev).seq),
      aggregates: emitted(aggregates.out),
      acks
    }
  })

type Emissions = ReadonlyArray<{ readonly at: number; readonly records: ReadonlyArray<string> }>

const all = (emissions: Emissions) => emissions.flatMap((e) => e.records).sort()
const emittedAfter = (emissions: Emissions, t: number) => emissions.filter((e) => e.at > t)

describe("open-ended parts, all active", () => {
  it("give the windows of the same parts announced by a bounded source: at the same times when the source tells how many it knows, from the first idle timeout on when not", () =>
    fc.assert(
      fc.asyncProperty(specArb, activeArb, async (spec, active) => {
        const open = schedule(active, (i) => ({ id: `t/${i}` }))
        const known = schedule(active, (i) => ({ id: `t/${i}`, known: active.parts.length }))
        const announced = schedule(active, (i) => ({ id: `t/${i}`, of: active.parts.length }))
        const idle = open.longest + 1
        const [a, k, b] = await Effect.runPromise(
          Effect.all([
            outcome(spec, open.steps, open.end, idle),
            outcome(spec, known.steps, known.end, idle),
            outcome(spec, announced.steps, announced.end, idle)
          ])
        )
        assert.deepStrictEqual(b.late, [])
        assert.deepStrictEqual(k, b)
        assert.deepStrictEqual(a.late, [])
        assert.deepStrictEqual(a.acks, b.acks)
        assert.deepStrictEqual(all(a.windows), all(b.windows))
        assert.deepStrictEqual(all(a.aggregates), all(b.aggregates))
        // Parts not heard of yet hold an open-ended input's watermark for the idle timeout after the first batch;
        // from the first batch after that on, both go alike.
        const grace = open.steps[0]![0] + idle
        const caughtUp = open.steps.find(([at]) => at >= grace)?.[0] ?? open.end
        assert.isTrue(a.windows.every((e) => e.at >= caughtUp))
        assert.deepStrictEqual(emittedAfter(a.windows, caughtUp), emittedAfter(b.windows, caughtUp))
        assert.deepStrictEqual(emittedAfter(a.aggregates, caughtUp), emittedAfter(b.aggregates, caughtUp))
      }),
      { numRuns: 150 }
    ))
})
