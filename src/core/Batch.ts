/**
 * A batch: the unit that flows through a pipeline.
 *
 * Records travel as arrays so that the per-record cost of a stage stays a plain function call; Effect's machinery works
 * per batch. A batch carries the dead letters its stages produced and an acknowledgement that commits the source
 * position once the sink has durably written the batch (at-least-once delivery). A source that reads its input in parts
 * (table slices, Kafka partitions, files, objects) says which part each batch comes from, so that event-time stages keep
 * a watermark per part.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import * as Checkpoint from "./Checkpoint.ts"
import type * as DeadLetter from "./DeadLetter.ts"
import type { ExtractError } from "./Errors.ts"
import * as PassThrough from "./PassThrough.ts"
import type * as State from "./State.ts"

/** A batch of records of type `A`. */
export interface Batch<out A> {
  readonly records: ReadonlyArray<A>
  readonly deadLetters: ReadonlyArray<DeadLetter.DeadLetter>
  /** Commits the source position up to and including this batch. Run only after the batch is durably written. */
  readonly ack: Effect.Effect<void, ExtractError>
  /**
   * The oldest source timestamp (milliseconds since the epoch) of the records read into this batch, when the source
   * has one (e.g. Kafka message timestamps): the runtime measures end-to-end latency from it.
   */
  readonly sourceTimestamp?: number | undefined
  /** The part of a split input the records come from; absent when the source reads its input as one part. */
  readonly part?: Part | undefined
  /** Bytes of input the source read for this batch, when it knows (counted by the source stage, then dropped). */
  readonly bytes?: number | undefined
  /**
   * The source positions the batch's `ack` commits, from a source that can resume from positions (see
   * `Checkpoint`): they travel with the ack, through stateful stages too, to a sink that stores them with its data.
   */
  readonly positions?: Checkpoint.Positions | undefined
  /**
   * Set on a checkpoint barrier (a batch without records, see `State.ts`): every stage passes it on in order, a
   * stateful one with its state added and its held acks on it.
   */
  readonly barrier?: State.Barrier | undefined
  /**
   * Set when the records travel as bytes (see `PassThrough`): `records` then holds only as many holes as there are
   * records, and the sink writes these bytes. A stage that changes the records ({@link withRecords}) drops them.
   */
  readonly raw?: PassThrough.Raw | undefined
}

/**
 * One part of an input that a source reads as several (a table slice, a Kafka partition, a file, an S3 object), each
 * part in its own order and the parts interleaved. Event-time stages keep a watermark per part and go by the slowest
 * part still open: records of one part can then never make those of another late.
 *
 * A bounded source knows its parts in advance and says how many there are (`of`): until every part has sent a batch,
 * the parts not yet read hold the watermark back, and a part that is `done` no longer does. An unbounded source (a
 * streaming Kafka read, whose partitions come and go with rebalances) leaves `of` out: its parts are open-ended, the
 * parts that have sent records count, and one that sends nothing for the stage's idle timeout stops holding the
 * watermark back until it sends again. At the start the watermark waits, at most one idle timeout, for the parts not
 * heard of yet: for `known` of them when the source says how many it knew of when it started.
 */
export interface Part {
  /** The part within its source: a slice number, `topic/partition`, a path. */
  readonly id: string | number
  /**
   * How many parts the source reads in all (each sends at least one batch, the last one `done`); absent when the
   * parts are open-ended (an unbounded source: their number is not known in advance and can change).
   */
  readonly of?: number | undefined
  /**
   * Open-ended parts only: how many parts the source knew of when it started (a streaming Kafka read: the partitions
   * of its topics then). A hint, not a promise: once that many have sent records the watermark stops waiting for
   * others at the start.
   */
  readonly known?: number | undefined
  /** Set on the last batch of the part (which may have no records): nothing more comes from it. */
  readonly done?: boolean | undefined
}

const noAck: Effect.Effect<void, ExtractError> = Effect.void

/** A batch of records with no dead letters. */
export const make = <A>(
  records: ReadonlyArray<A>,
  options?: {
    readonly ack?: Effect.Effect<void, ExtractError>
    readonly deadLetters?: ReadonlyArray<DeadLetter.DeadLetter>
    readonly sourceTimestamp?: number | undefined
    readonly part?: Part | undefined
    readonly bytes?: number | undefined
    readonly positions?: Checkpoint.Positions | undefined
    readonly raw?: PassThrough.Raw | undefined
  }
): Batch<A> => {
  const batch: Batch<A> = { records, deadLetters: options?.deadLetters ?? [], ack: options?.ack ?? noAck }
  if (
    options?.sourceTimestamp === undefined &&
    options?.part === undefined &&
    options?.bytes === undefined &&
    options?.positions === undefined &&
    options?.raw === undefined
  )
    return batch
  return {
    ...batch,
    ...(options.sourceTimestamp === undefined ? {} : { sourceTimestamp: options.sourceTimestamp }),
    ...(options.part === undefined ? {} : { part: options.part }),
    ...(options.bytes === undefined ? {} : { bytes: options.bytes }),
    ...(options.positions === undefined ? {} : { positions: options.positions }),
    ...(options.raw === undefined ? {} : { raw: options.raw })
  }
}

/** The same batch, as read from `part`. */
export const inPart = <A>(batch: Batch<A>, part: Part): Batch<A> => ({ ...batch, part })

const emptyDeadLetters: ReadonlyArray<DeadLetter.DeadLetter> = []

/** The same batch with other records and, optionally, more dead letters. */
export const withRecords = <A, B>(
  batch: Batch<A>,
  records: ReadonlyArray<B>,
  deadLetters: ReadonlyArray<DeadLetter.DeadLetter> = emptyDeadLetters
): Batch<B> => ({
  records,
  deadLetters: deadLetters.length === 0 ? batch.deadLetters : batch.deadLetters.concat(deadLetters),
  ack: batch.ack,
  ...(batch.sourceTimestamp === undefined ? {} : { sourceTimestamp: batch.sourceTimestamp }),
  ...(batch.part === undefined ? {} : { part: batch.part }),
  ...(batch.positions === undefined ? {} : { positions: batch.positions }),
  ...(batch.barrier === undefined ? {} : { barrier: batch.barrier })
})

/** A checkpoint barrier batch: no records, nothing to acknowledge yet; `revoked`: the parts a rebalance takes away. */
export const barrier = (id: number, revoked?: ReadonlyArray<string>): Batch<never> => ({
  records: [],
  deadLetters: [],
  ack: noAck,
  barrier: { id, states: [], ...(revoked === undefined ? {} : { revoked }) }
})

/** The oldest of two optional source timestamps. */
export const oldest = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b)

/**
 * Joins batches into one: their records and dead letters in order, an acknowledgement that acknowledges each of
 * them in order, and their positions merged. The joined batch keeps no part (it is meant for sinks, after the event-time stages).
 */
export const concat = <A>(batches: ReadonlyArray<Batch<A>>): Batch<A> => {
  if (batches.length === 1) return batches[0]!
  const records: Array<A> = []
  const deadLetters: Array<DeadLetter.DeadLetter> = []
  let sourceTimestamp: number | undefined
  let positions: Map<string, Checkpoint.Range> | undefined
  let barrier: State.Barrier | undefined
  // Raw batches join into a raw batch (a pass-through run reads nothing else).
  const raws: Array<PassThrough.Raw> = []
  for (const batch of batches) {
    if (batch.raw !== undefined) raws.push(batch.raw)
    sourceTimestamp = oldest(sourceTimestamp, batch.sourceTimestamp)
    // A checkpoint barrier among them goes on with the joined batch (its stages' states, saved after the write).
    if (batch.barrier !== undefined) barrier = batch.barrier
    if (batch.positions !== undefined) positions = Checkpoint.gather(positions ?? new Map(), batch.positions)
    for (let i = 0; i < batch.records.length; i++) records.push(batch.records[i]!)
    for (let i = 0; i < batch.deadLetters.length; i++) deadLetters.push(batch.deadLetters[i]!)
  }
  const ack = Effect.forEach(batches, (batch) => batch.ack, { discard: true })
  const raw = raws.length === 0 ? undefined : PassThrough.concat(raws)
  if (raws.length > 0 && (raw === undefined || batches.some((b) => b.raw === undefined && b.records.length > 0)))
    throw new Error("Batch.concat: raw batches cannot be joined with batches of records or of other fields")
  return {
    records,
    deadLetters,
    ack,
    ...(sourceTimestamp === undefined ? {} : { sourceTimestamp }),
    ...(positions === undefined ? {} : { positions: Checkpoint.sorted(positions) }),
    ...(barrier === undefined ? {} : { barrier }),
    ...(raw === undefined ? {} : { raw })
  }
}

interface Gathered<A> {
  readonly batches: Array<Batch<A>>
  records: number
}

/**
 * Gathers consecutive batches until they hold `size` records, or until `linger` passed since the first of them
 * (measured with `Clock`, so `TestClock` controls it), and emits them joined ({@link concat}). A batch of `size`
 * records or more goes on at once.
 *
 * @example
 * stream.pipe(Batch.gather({ size: 10_000, linger: "5 millis" }))
 */
export const gather =
  (options: { readonly size: number; readonly linger: Duration.Input }) =>
  <A, E, R>(self: Stream.Stream<Batch<A>, E, R>): Stream.Stream<Batch<A>, E, R> =>
    self.pipe(
      Stream.aggregateWithin(
        Sink.reduceWhile(
          (): Gathered<A> => ({ batches: [], records: 0 }),
          (gathered) => gathered.records < options.size,
          (gathered, batch: Batch<A>) => {
            gathered.batches.push(batch)
            gathered.records += batch.records.length
            return gathered
          }
        ),
        Schedule.spaced(options.linger)
      ),
      Stream.filter((gathered) => gathered.batches.length > 0),
      Stream.map((gathered) => concat(gathered.batches))
    )
