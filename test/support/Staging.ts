/** A split run's staging service for tests: in memory, counting the records staged in it (not the dead letters). */
import * as Effect from "effect/Effect"
import * as Split from "../../src/runtime/Split.ts"

export const countingStaging = (): { readonly shape: Split.StagingShape; readonly counted: { records: number } } => {
  const memory = Split.makeMemory()
  const counted = { records: 0 }
  const shape: Split.StagingShape = {
    ...memory,
    open: (run, part, kind) =>
      Effect.map(memory.open(run, part, kind), (writer) => ({
        ...writer,
        write: (values) =>
          Effect.andThen(
            Effect.sync(() => {
              if (kind === "records") counted.records += values.length
            }),
            writer.write(values)
          )
      }))
  }
  return { shape, counted }
}
