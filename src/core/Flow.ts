/**
 * Flows: a source followed by transforms, not yet attached to a sink.
 *
 * A flow knows the type of the records it emits (`A`), the connector errors it may hit (`E`, wrapped into stage errors
 * when it runs) and the services it needs (`R`). Transforms are data-last functions from one flow to another, so a
 * pipeline reads as `Pipeline.from(source).pipe(Pipeline.filter(...), Pipeline.map(...), Pipeline.to(sink))`.
 */
import * as Effect from "effect/Effect"
import type { Pipeable } from "effect/Pipeable"
import { pipeArguments } from "effect/Pipeable"
import * as Stream from "effect/Stream"
import * as Batch from "./Batch.ts"
import type * as DeadLetter from "./DeadLetter.ts"
import { BuildError, ExtractError, type PipelineError, wrap } from "./Errors.ts"
import type * as PassThrough from "./PassThrough.ts"
import type { Source, SplitOptions } from "./Source.ts"
import * as Spans from "./Spans.ts"
import type { Cardinality, InputSize, RunContext, Split, SplitPart, StageCounter, StageInfo } from "./Stage.ts"

/** A source and its transforms, emitting records of type `A`. */
export interface Flow<out A, out E = never, out R = never> extends Pipeable {
  readonly name: string
  /** `true` when the flow ends by itself. */
  readonly bounded: boolean
  /** `true` when its source resumes from given positions (see `Source.resumable`). */
  readonly resumable?: boolean | undefined
  /** The source stage, then each transform stage, in order. */
  readonly stages: ReadonlyArray<StageInfo>
  /** The size of the source's input, when the source can tell (see `Source.size`). */
  readonly inputSize: Effect.Effect<InputSize, PipelineError, R> | undefined
  /**
   * Lists the parts its source reads apart (see `Source.split`); absent when the flow cannot be split (its source
   * has no parts, or it reads two inputs).
   */
  readonly split?: ((options: SplitOptions) => Effect.Effect<ReadonlyArray<SplitPart>, PipelineError, R>) | undefined
  /** What the source does once a split run's sink committed its parts (see `Source.commitParts`). */
  readonly commitParts?: ((parts: ReadonlyArray<SplitPart>) => Effect.Effect<void, PipelineError, R>) | undefined
  /**
   * Its source's pass-through (see `PassThrough`), errors wrapped as `ExtractError`: only a flow that is its source
   * alone has one (a transform needs the records' values).
   */
  readonly passThrough?: PassThrough.SourceSide<PipelineError, R> | undefined
  /** Builds the stream of batches for one run attempt. Errors are already wrapped into stage errors. */
  readonly build: (ctx: RunContext) => Stream.Stream<Batch.Batch<A>, PipelineError, R>
  /** Phantom: the connector errors that may surface as causes of the stage errors. */
  readonly "~errors"?: (_: never) => E
}

const FlowProto: Pipeable = {
  pipe() {
    // biome-ignore lint/complexity/noArguments: pipeArguments takes the arguments object by design
    return pipeArguments(this, arguments)
  }
} as Pipeable

const makeFlow = <A, E, R>(fields: Omit<Flow<A, E, R>, "pipe">): Flow<A, E, R> =>
  Object.assign(Object.create(FlowProto) as Flow<A, E, R>, fields)

/** A unique stage name: `filter`, then `filter#2`, `filter#3`, ... */
export const uniqueName = (taken: ReadonlyArray<StageInfo>, name: string): string => {
  const names = new Set(taken.map((s) => s.name))
  if (!names.has(name)) return name
  let i = 2
  while (names.has(`${name}#${i}`)) i++
  return `${name}#${i}`
}

/**
 * The index of the first stage that needs the whole input (stateful, or combining records: an aggregate), where a
 * split run cuts the pipeline (see `Split`); `stages.length` when no stage does.
 */
export const cutOf = (stages: ReadonlyArray<StageInfo>): number => {
  const at = stages.findIndex(
    (s, i) => i > 0 && (s.stateful === true || s.cardinality === "many-to-one" || s.needsWholeInput === true)
  )
  return at === -1 ? stages.length : at
}

/** True when the stage at `index` sits out this phase of a split run: it passes its input on untouched. */
const sitsOut = (split: Split | undefined, index: number): boolean =>
  split !== undefined &&
  (split.phase === "read" ? index > split.cut || (index === split.cut && split.merge !== true) : index < split.cut)

/**
 * The context of the stage at `index`: the one at the cut of a split run that merges is told its part in it (a stage
 * fused with the one at the cut asks with the cut's index).
 */
const combining = (ctx: RunContext, index: number): RunContext =>
  ctx.split?.merge === true && index === ctx.split.cut
    ? { ...ctx, combine: ctx.split.phase === "read" ? "partial" : "merge" }
    : ctx

/** The batches, or one empty batch when there are none. */
const atLeastOne = <A, E, R>(batches: Stream.Stream<Batch.Batch<A>, E, R>): Stream.Stream<Batch.Batch<A>, E, R> =>
  Stream.suspend(() => {
    let sent = false
    return Stream.concat(
      Stream.map(batches, (batch) => {
        sent = true
        return batch
      }),
      Stream.suspend(() => (sent ? Stream.empty : Stream.succeed(Batch.make<A>([]))))
    )
  })

/**
 * The same flow (its stages, size and parts) with its stream of batches rewritten by `f` at each run attempt; no stage
 * is added, so whatever `f` does with the batches is counted by the stages it touches itself (see `config/Replay.ts`,
 * which holds back the batches that enter the pipeline further on and hands them on after a stage).
 */
export const mapBuild = <A, B, E, R>(
  self: Flow<A, E, R>,
  f: (
    batches: Stream.Stream<Batch.Batch<A>, PipelineError, R>,
    ctx: RunContext
  ) => Stream.Stream<Batch.Batch<B>, PipelineError, R>
): Flow<B, E, R> =>
  makeFlow<B, E, R>({
    name: self.name,
    bounded: self.bounded,
    ...(self.resumable === true ? { resumable: true } : {}),
    stages: self.stages,
    inputSize: self.inputSize,
    ...(self.split === undefined ? {} : { split: self.split }),
    ...(self.commitParts === undefined ? {} : { commitParts: self.commitParts }),
    build: (ctx) => f(self.build(ctx), ctx)
  })

/** Starts a flow from a source. Counts what the source emits and wraps its errors as `ExtractError`. */
export const from = <A, E, R>(source: Source<A, E, R>): Flow<A, E, R> => {
  const info: StageInfo = {
    name: source.name,
    kind: "source",
    description: source.description,
    cardinality: "one-to-one",
    connector: source.type,
    ...(source.dataset === undefined ? {} : { dataset: source.dataset }),
    ...(source.attributes === undefined ? {} : { attributes: source.attributes })
  }
  return makeFlow<A, E, R>({
    name: source.name,
    bounded: source.bounded,
    ...(source.resumable === true ? { resumable: true } : {}),
    stages: [info],
    inputSize: source.size === undefined ? undefined : Effect.mapError(source.size, wrap(ExtractError, source.name)),
    ...(source.split === undefined || !source.bounded
      ? {}
      : { split: (options: SplitOptions) => Effect.mapError(source.split!(options), wrap(ExtractError, source.name)) }),
    ...(source.split === undefined || !source.bounded || source.commitParts === undefined
      ? {}
      : {
          commitParts: (parts: ReadonlyArray<SplitPart>) =>
            Effect.mapError(source.commitParts!(parts), wrap(ExtractError, source.name))
        }),
    ...(source.readsRaw === undefined || !source.bounded
      ? {}
      : {
          passThrough: {
            format: source.readsRaw.format,
            offer: Effect.mapError(source.readsRaw.offer, wrap(ExtractError, source.name))
          }
        }),
    build: (ctx) => {
      const counter = ctx.stage(info)
      // The finish phase of a split run reads what the read phase staged; the source counted it then.
      if (ctx.split?.phase === "finish") {
        const staged = ctx.split.staged
        return (staged ?? Stream.empty) as Stream.Stream<Batch.Batch<A>, PipelineError>
      }
      const parts = ctx.split?.parts
      const fromSource = source
        .batches(parts === undefined ? ctx : { ...ctx, parts })
        .pipe(
          Stream.withSpan("source.read", { attributes: Spans.stageAttributes(info) }),
          Stream.mapError(wrap(ExtractError, source.name))
        )
      // A part of a split run sends at least one batch, so that every stage hears of it (what a stage emits once
      // per run, the first part emits).
      const read = parts === undefined ? fromSource : atLeastOne(fromSource)
      // Checkpoint barriers enter right after the source, so that they pass every stage in order (see `State.ts`);
      // the last one follows the source's last batch (a graceful stop), so the stages' states are saved, not flushed.
      const withBarriers =
        ctx.barriers === undefined
          ? read
          : Stream.merge(
              Stream.concat(read, Stream.succeed(Batch.barrier(0) as Batch.Batch<A>)),
              Stream.map(ctx.barriers, (id) => Batch.barrier(id) as Batch.Batch<A>),
              { haltStrategy: "left" }
            )
      return withBarriers.pipe(
        Stream.map((batch) => {
          if (batch.barrier !== undefined) return batch
          counter.batches++
          counter.recordsOut += batch.records.length
          counter.rejected += batch.deadLetters.length
          counter.recordsIn += batch.records.length + batch.deadLetters.length
          if (batch.bytes !== undefined) counter.bytes += batch.bytes
          return batch
        })
      )
    }
  })
}

/** What a transform stage is, before it gets its unique name. */
export interface StageSpec {
  readonly name: string
  readonly description: string
  readonly cardinality: Cardinality
  /** Keeps state across batches, saved at checkpoints (see `StageInfo.stateful`). */
  readonly stateful?: boolean
  /** Combines records into states that merge (see `StageInfo.mergeable`). */
  readonly mergeable?: boolean
  /** Its output depends on the whole input (see `StageInfo.needsWholeInput`). */
  readonly needsWholeInput?: boolean
}

/**
 * Adds a stage that rewrites the stream of batches. The `apply` function gets the stage's counter; it must count
 * `recordsIn`, `recordsOut`, `filtered` and `rejected` itself. This is the building block of the stateful transforms.
 */
export const addStage =
  <A, B, R2 = never>(
    spec: StageSpec,
    apply: (
      counter: StageCounter,
      ctx: RunContext
    ) => <R>(
      batches: Stream.Stream<Batch.Batch<A>, PipelineError, R>
    ) => Stream.Stream<Batch.Batch<B>, PipelineError, R | R2>
  ) =>
  <E, R>(self: Flow<A, E, R>): Flow<B, E, R | R2> => {
    const info: StageInfo = { ...spec, kind: "transform", name: uniqueName(self.stages, spec.name) }
    const index = self.stages.length
    return makeFlow<B, E, R | R2>({
      name: self.name,
      bounded: self.bounded,
      ...(self.resumable === true ? { resumable: true } : {}),
      stages: [...self.stages, info],
      inputSize: self.inputSize,
      ...(self.split === undefined ? {} : { split: self.split }),
      ...(self.commitParts === undefined ? {} : { commitParts: self.commitParts }),
      build: (ctx) => {
        // In a split run's other phase, the batches are what this stage's place in the pipeline takes and gives.
        if (sitsOut(ctx.split, index))
          return self.build(ctx) as unknown as Stream.Stream<Batch.Batch<B>, PipelineError, R>
        const counter = ctx.stage(info)
        return apply(counter, combining(ctx, index))(self.build(ctx))
      }
    })
  }

/**
 * Adds a stage that runs as one operator with the last stage of `self` (a window and the aggregate right after it):
 * it reads `input`, the flow before that last stage, and gets both counters, so that both stages stay listed and
 * counted in the report, each with what it did.
 */
export const addFusedStage =
  <A, B>(
    spec: StageSpec,
    apply: (
      counters: { readonly previous: StageCounter; readonly own: StageCounter },
      ctx: RunContext
    ) => <R>(
      batches: Stream.Stream<Batch.Batch<A>, PipelineError, R>
    ) => Stream.Stream<Batch.Batch<B>, PipelineError, R>
  ) =>
  <X, E, R>(self: Flow<X, E, R>, input: Flow<A, E, R>): Flow<B, E, R> => {
    const previous = self.stages.at(-1)!
    const info: StageInfo = { ...spec, kind: "transform", name: uniqueName(self.stages, spec.name), fused: true }
    const index = self.stages.length
    return makeFlow<B, E, R>({
      name: self.name,
      bounded: self.bounded,
      ...(self.resumable === true ? { resumable: true } : {}),
      stages: [...self.stages, info],
      inputSize: self.inputSize,
      ...(self.split === undefined ? {} : { split: self.split }),
      ...(self.commitParts === undefined ? {} : { commitParts: self.commitParts }),
      build: (ctx) => {
        // Fused with the stage before it, it runs in the phase that one runs in.
        if (sitsOut(ctx.split, index - 1))
          return self.build(ctx) as unknown as Stream.Stream<Batch.Batch<B>, PipelineError, R>
        const counters = { previous: ctx.stage(previous), own: ctx.stage(info) }
        return apply(counters, combining(ctx, index - 1))(input.build(ctx))
      }
    })
  }

const addSizes = (a: InputSize, b: InputSize): InputSize => ({
  ...(a.records === undefined || b.records === undefined ? {} : { records: a.records + b.records }),
  ...(a.bytes === undefined || b.bytes === undefined ? {} : { bytes: a.bytes + b.bytes }),
  ...(a.estimated === true || b.estimated === true ? { estimated: true } : {})
})

/**
 * Adds a stage with two inputs: `self` and `other`, each a flow of its own (a source and its transforms). `apply` gets
 * both streams of batches and reads them as it sees fit (an interval join merges them). The other flow's stages are
 * listed after this flow's (renamed where a name is taken: a second `kafka` source becomes `kafka#2`), then the new
 * stage, which names the last stage of each input in `inputs` so that row counts reconcile. The result is bounded
 * when both inputs are, and resumable from positions when both are (their parts must differ: two topics).
 *
 * Checkpoint barriers enter through `self` only: the stage sees `other` up to the moment a barrier reaches it, so its
 * state covers both inputs at that point. `other` may then have no stateful stage of its own (its state would not be
 * saved): such a flow fails to build in a checkpointed run.
 */
export const addBinaryStage =
  <A, B, C, E2, R2>(
    spec: StageSpec,
    other: Flow<B, E2, R2>,
    apply: (
      counter: StageCounter,
      ctx: RunContext
    ) => <R>(
      left: Stream.Stream<Batch.Batch<A>, PipelineError, R>,
      right: Stream.Stream<Batch.Batch<B>, PipelineError, R2>
    ) => Stream.Stream<Batch.Batch<C>, PipelineError, R | R2>
  ) =>
  <E, R>(self: Flow<A, E, R>): Flow<C, E | E2, R | R2> => {
    const renamed = new Map<string, StageInfo>()
    const stages: Array<StageInfo> = [...self.stages]
    for (const s of other.stages) {
      const inputs = s.inputs?.map((name) => renamed.get(name)?.name ?? name)
      const info: StageInfo = {
        ...s,
        name: uniqueName(stages, s.name),
        ...(inputs === undefined ? {} : { inputs })
      }
      renamed.set(s.name, info)
      stages.push(info)
    }
    const info: StageInfo = {
      ...spec,
      kind: "transform",
      name: uniqueName(stages, spec.name),
      inputs: [self.stages.at(-1)!.name, stages.at(-1)!.name]
    }
    const statefulOther = other.stages.find((s) => s.stateful === true)
    return makeFlow<C, E | E2, R | R2>({
      name: self.name,
      bounded: self.bounded && other.bounded,
      ...(self.resumable === true && other.resumable === true ? { resumable: true } : {}),
      stages: [...stages, info],
      inputSize:
        self.inputSize === undefined || other.inputSize === undefined
          ? undefined
          : Effect.map(Effect.all([self.inputSize, other.inputSize]), ([a, b]) => addSizes(a, b)),
      build: (ctx) => {
        const counter = ctx.stage(info)
        if (ctx.split !== undefined)
          return Stream.fail(
            new BuildError({
              stage: info.name,
              message: `${info.name} reads two inputs, so the pipeline cannot be split into parts; run it in one process`,
              retryable: false
            })
          )
        if (ctx.barriers !== undefined && statefulOther !== undefined)
          return Stream.fail(
            new BuildError({
              stage: info.name,
              message: `${info.name}: ${renamed.get(statefulOther.name)?.name ?? statefulOther.name} keeps state, but checkpoint barriers enter through the left input (${self.stages[0]!.name}) only, so its state would not be saved; move the stateful stage after ${info.name} or run without a state store`,
              retryable: false
            })
          )
        const otherCtx: RunContext = {
          ...ctx,
          barriers: undefined,
          stage: (s) => ctx.stage(renamed.get(s.name) ?? s)
        }
        return apply(counter, ctx)(self.build(ctx), other.build(otherCtx))
      }
    })
  }

/** The result of a per-batch step: the records to pass on, and optional dead letters. */
export interface Step<B> {
  readonly records: ReadonlyArray<B>
  readonly deadLetters?: ReadonlyArray<DeadLetter.DeadLetter>
  /** Records dropped on purpose (not errors). */
  readonly filtered?: number
  /** Set when the whole run must stop (a rule in `fail` mode); the batch is not passed on. */
  readonly failure?: PipelineError
}

/**
 * Adds a stateless stage from a plain per-batch function, created once per run (`make` may prepare compiled state).
 * Counting and timing are done here; the function only returns what it kept, dropped and rejected.
 */
export const mapBatches = <A, B>(
  spec: StageSpec,
  make: (counter: StageCounter, ctx: RunContext) => (records: ReadonlyArray<A>, stage: string) => Step<B>
): (<E, R>(self: Flow<A, E, R>) => Flow<B, E, R>) =>
  addStage<A, B>(spec, (counter, ctx) => {
    const step = make(counter, ctx)
    const name = counter.info.name
    const apply = (batch: Batch.Batch<A>): Effect.Effect<Batch.Batch<B>, PipelineError> => {
      if (batch.barrier !== undefined) return Effect.succeed(batch as unknown as Batch.Batch<B>)
      const started = performance.now()
      const result = step(batch.records, name)
      counter.busy(performance.now() - started)
      counter.batches++
      counter.recordsIn += batch.records.length
      counter.recordsOut += result.records.length
      counter.filtered += result.filtered ?? 0
      const deadLetters = result.deadLetters ?? []
      counter.rejected += deadLetters.length
      if (result.failure !== undefined) return Effect.fail(result.failure)
      return Effect.succeed(Batch.withRecords(batch, result.records, deadLetters))
    }
    return (batches) =>
      Stream.mapEffect(batches, (batch) =>
        counter.sampleSpan()
          ? Effect.withSpan(
              Effect.suspend(() => apply(batch)),
              "stage.batch",
              {
                attributes: { ...Spans.stageAttributes(counter.info), "etl.batch.records": batch.records.length }
              }
            )
          : apply(batch)
      )
  })
