/**
 * Helpers shared by the transform tests: sources with explicit batch splits and tracked acknowledgements, a runner
 * that plays the runtime's part (write a batch, then run its ack), random batch splits for fast-check, and a
 * deterministic order for comparing rows as multisets.
 */
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import fc from "fast-check"
import * as Batch from "../../src/core/Batch.ts"
import type * as DeadLetter from "../../src/core/DeadLetter.ts"
import type { Flow } from "../../src/core/Flow.ts"
import * as Source from "../../src/core/Source.ts"
import { makeRunContext, type RunContext } from "../../src/core/Stage.ts"

/** What happened while a flow ran: every event in order (`write n` per output batch, `ack i` per input ack). */
export interface Run<A> {
  readonly records: Array<A>
  readonly deadLetters: Array<DeadLetter.DeadLetter>
  readonly batches: Array<Batch.Batch<A>>
  readonly events: Array<string>
  readonly ctx: RunContext
}

/** A bounded (or not) source emitting exactly these batches; acking batch `i` logs `ack i` into `events`. */
export const splitSource = <A>(
  name: string,
  parts: ReadonlyArray<ReadonlyArray<A>>,
  events?: Array<string>,
  options?: { readonly bounded?: boolean }
): Source.Source<A> =>
  Source.make({
    name,
    type: "memory",
    description: `${parts.length} batches`,
    bounded: options?.bounded ?? true,
    batches: () =>
      Stream.fromIterable(
        parts.map((records, i) =>
          Batch.make(records, events === undefined ? {} : { ack: Effect.sync(() => void events.push(`ack ${i}`)) })
        )
      )
  })

/** Splits `records` into consecutive batches whose sizes come from `sizes` (cycled; 0 gives an empty batch). */
export const split = <A>(records: ReadonlyArray<A>, sizes: ReadonlyArray<number>): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  if (sizes.length === 0) return [records]
  let i = 0
  let k = 0
  while (i < records.length) {
    const n = sizes[k++ % sizes.length]!
    out.push(records.slice(i, i + n))
    i += n
    if (k > records.length * 4 + 8) {
      out.push(records.slice(i))
      break
    }
  }
  return out
}

/** Random batch sizes: mostly small, some empty. */
export const batchSizes = fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 6 })

/** Builds the flow's stream and runs it like the runtime does: record each output batch, then run its ack. */
export const runFlow = <A, E>(
  flow: Flow<A, E, never>,
  options?: { readonly events?: Array<string>; readonly now?: () => number }
): Effect.Effect<Run<A>, unknown> =>
  Effect.suspend(() => {
    const events = options?.events ?? []
    const ctx = makeRunContext({ runId: "test", pipeline: flow.name, now: options?.now ?? (() => 0) })
    for (const stage of flow.stages) ctx.stage(stage)
    const run: Run<A> = { records: [], deadLetters: [], batches: [], events, ctx }
    return Stream.runForEach(flow.build(ctx), (batch) => {
      run.batches.push(batch)
      for (const r of batch.records) run.records.push(r)
      for (const d of batch.deadLetters) run.deadLetters.push(d)
      events.push(`write ${batch.records.length}`)
      return batch.ack
    }).pipe(Effect.as(run))
  })

/** Runs a flow to its end (synchronously, as every test flow is). */
export const runSync = <A, E>(
  flow: Flow<A, E, never>,
  options?: { readonly events?: Array<string>; readonly now?: () => number }
): Run<A> => Effect.runSync(runFlow(flow, options) as Effect.Effect<Run<A>>)

/** A canonical text of a value, equal for values SQL considers equal (decimals by value, dates by instant). */
export const canonical = (value: unknown): string => {
  if (value === null || value === undefined) return "null"
  if (value instanceof Date) return `d${value.getTime()}`
  if (BigDecimal.isBigDecimal(value)) return `n${BigDecimal.format(BigDecimal.normalize(value))}`
  if (typeof value === "number") return Object.is(value, -0) ? "0" : String(value)
  if (typeof value === "bigint") return `${value}n`
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${k}:${canonical(v)}`).join(",")}}`
  }
  return JSON.stringify(value)
}

/** Rows as a sorted list of canonical texts, for comparing multisets of rows. */
export const bag = (rows: ReadonlyArray<unknown>): Array<string> => rows.map(canonical).sort()

/** A decimal from its text. */
export const dec = (text: string): BigDecimal.BigDecimal => BigDecimal.fromStringUnsafe(text)
