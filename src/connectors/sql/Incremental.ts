/**
 * Incremental extraction: where a SQL source keeps the high-water mark of its cursor column between runs.
 *
 * A source with `incremental: { column, lag, state }` reads only rows whose cursor is above the mark saved by the
 * last successful run, and at most `MAX(cursor) - lag`. The new mark (that upper limit) is saved by the
 * acknowledgement of the run's last batch, which the runtime runs only after the sink has committed every batch: a
 * failed or interrupted run saves nothing and the next run reads the same rows again.
 *
 * Rows committed late: a row whose cursor value is lower than the newest one but commits later (a long transaction,
 * `updated_at` set by a slow client, a sequence value taken before another) would be skipped by a plain `> mark`
 * read. The `lag` holds back the newest rows: each run stops at `MAX(cursor) - lag`, so a row that commits within
 * `lag` of the newest value is still read by the next run. Choose a lag longer than your longest writing transaction;
 * a row that commits later than that is not read. Rows within the lag of the newest row wait for the next run.
 *
 * The state lives in a small JSON file (`file`) by default — through the FileStore service, so tests can keep it in
 * memory — or wherever a custom `CursorState` puts it.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { FileError } from "../file/FileError.ts"
import { FileStore } from "../file/FileStore.ts"

/** A saved high-water mark. */
export interface Mark {
  /** The cursor column it belongs to: a mark of another column is ignored (the read starts over). */
  readonly column: string
  readonly kind: "number" | "timestamp" | "string"
  /** A number, an ISO-8601 timestamp or a string. */
  readonly value: number | string
}

/** Where marks are kept between runs. */
export interface CursorState<out E = never, out R = never> {
  readonly description: string
  /** The last saved mark, if any. */
  readonly load: Effect.Effect<Mark | undefined, E, R>
  readonly save: (mark: Mark) => Effect.Effect<void, E, R>
}

const isMark = (u: unknown): u is Mark => {
  if (typeof u !== "object" || u === null) return false
  const m = u as Record<string, unknown>
  return (
    typeof m.column === "string" &&
    (m.kind === "number" || m.kind === "timestamp" || m.kind === "string") &&
    (typeof m.value === "number" || typeof m.value === "string")
  )
}

/**
 * Marks in a JSON file, written whole (a temporary file, then a rename) so that a crash leaves the old mark.
 *
 * @example
 * Postgres.table("orders", Order, { incremental: { column: "updated_at", lag: "5 minutes", state: Incremental.file(".etl-state/orders.json") } })
 */
export const file = (path: string): CursorState<FileError, FileStore> => ({
  description: `state file ${path}`,
  load: Effect.gen(function* () {
    const store = yield* FileStore
    if ((yield* store.kind(path)) !== "file") return undefined
    const text = yield* Stream.mkString(Stream.decodeText(store.read(path)))
    const parsed = yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => undefined }).pipe(
      Effect.orElseSucceed(() => undefined)
    )
    return isMark(parsed) ? parsed : undefined
  }),
  save: (mark) =>
    Effect.gen(function* () {
      const store = yield* FileStore
      const tmp = `${path}.tmp`
      yield* store.write(tmp, Stream.make(new TextEncoder().encode(`${JSON.stringify(mark)}\n`)))
      yield* store.rename(tmp, path)
    })
})

/** Marks held in memory, for tests; `current()` shows the saved mark. */
export const memory = (initial?: Mark): CursorState & { readonly current: () => Mark | undefined } => {
  let mark = initial
  return {
    description: "memory",
    current: () => mark,
    load: Effect.sync(() => mark),
    save: (m) =>
      Effect.sync(() => {
        mark = m
      })
  }
}
