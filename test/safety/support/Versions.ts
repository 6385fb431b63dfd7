/**
 * The data of test/safety/FileOverwrite.test.ts: version `v` of a data set is `size(v)` records `{ v, i, n }`, written
 * by a file sink overwrite in parts of `PART` records; a reader can tell from the records alone whether what it read is
 * one complete version.
 */
import * as Effect from "effect/Effect"
import * as File from "../../../src/connectors/file/File.ts"
import type { FileStore } from "../../../src/connectors/file/FileStore.ts"
import type { PipelineError } from "../../../src/core/Errors.ts"
import * as Source from "../../../src/core/Source.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"

/** Records per part file. */
export const PART = 10

/** How many records version `v` has: versions differ in size, so a mix or a partial copy shows in the count. */
export const size = (v: number): number => 40 + (v % 5) * 20

export interface Row {
  readonly v: number
  readonly i: number
  readonly n: number
}

/** Overwrites `dir` with version `v`. */
export const overwrite = (dir: string, v: number): Effect.Effect<void, PipelineError, FileStore> =>
  Pipeline.from(
    Source.fromIterable(
      "rows",
      Array.from({ length: size(v) }, (_, i): Row => ({ v, i, n: size(v) })),
      { batchSize: 25 }
    )
  ).pipe(
    Pipeline.to(File.sink<Row>({ path: dir, format: { type: "jsonl" }, mode: "overwrite", maxRecordsPerFile: PART })),
    Pipeline.run,
    Effect.asVoid
  )

/**
 * What a reader found: the version when the records are exactly one complete version, otherwise why not.
 */
export const check = (rows: ReadonlyArray<Row>): { readonly version: number } | { readonly problem: string } => {
  if (rows.length === 0) return { problem: "no records" }
  const v = rows[0]!.v
  if (rows.some((r) => r.v !== v)) return { problem: `a mix of versions ${[...new Set(rows.map((r) => r.v))]}` }
  const ids = new Set(rows.map((r) => r.i))
  if (rows.length !== size(v) || ids.size !== size(v))
    return { problem: `version ${v} has ${rows.length} records (${ids.size} distinct), not ${size(v)}` }
  return { version: v }
}
