/**
 * The loop of a stateful stage (window, aggregate): a synchronous step per batch, then a final flush when the input
 * ends. A batch the stage samples for tracing runs its step in a `stage.batch` span.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as Batch from "../../core/Batch.ts"
import * as Spans from "../../core/Spans.ts"
import type { StageCounter } from "../../core/Stage.ts"

/** Runs `step` on every batch of `batches`, in order, then emits what `finish` returns. */
export const stepped = <A, B, E, R>(
  batches: Stream.Stream<Batch.Batch<A>, E, R>,
  counter: StageCounter,
  step: (batch: Batch.Batch<A>) => ReadonlyArray<Batch.Batch<B>>,
  finish: () => ReadonlyArray<Batch.Batch<B>>
): Stream.Stream<Batch.Batch<B>, E, R> =>
  batches.pipe(
    Stream.mapEffect((batch) =>
      Spans.sampled(
        counter,
        Effect.sync(() => step(batch)),
        "stage.batch",
        batch.records.length
      )
    ),
    Stream.flattenIterable,
    Stream.concat(Stream.suspend(() => Stream.fromIterable(finish())))
  )
