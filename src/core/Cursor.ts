/**
 * Cursor state: where a source keeps its position between runs (the high-water mark of an incremental SQL read).
 * Connectors read and save marks through this contract; `File.cursorState` keeps them in a file, `memory` in memory.
 */
import * as Effect from "effect/Effect"

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

/** Whether a parsed value is a saved mark. */
export const isMark = (u: unknown): u is Mark => {
  if (typeof u !== "object" || u === null) return false
  const m = u as Record<string, unknown>
  return (
    typeof m.column === "string" &&
    (m.kind === "number" || m.kind === "timestamp" || m.kind === "string") &&
    (typeof m.value === "number" || typeof m.value === "string")
  )
}

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
