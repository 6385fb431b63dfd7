/**
 * Segment manifests: how an appending file sink stores source positions with its data (see `core/Checkpoint.ts`).
 *
 * A streaming segment's part files are written to a staging directory. Its commit point is one file: a manifest in
 * `<dir>/_checkpoints/`, written whole (a temporary name, then a rename), naming the pipeline, the source ranges the
 * segment covers, its staging directory and its part files. Only then are the part files renamed into `<dir>`. A run
 * killed before the manifest's rename committed nothing (the next run sweeps its staging directory and reads the
 * segment again); a run killed after it committed the segment, and the next run that opens the sink finishes moving its
 * part files in ({@link rollForward}) before anything else. So a segment appears whole and once, and a new run resumes
 * right after the last committed one ({@link load}: the largest position per part over the pipeline's manifests).
 *
 * `_checkpoints` is hidden from readers (names starting with `_` are not data). Manifests are merged into one per
 * pipeline once there are more than {@link KEEP} of them, so the directory stays small on a stream that runs for months.
 */
import * as nodePath from "node:path"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Checkpoint from "../../core/Checkpoint.ts"
import { FileError, reasons } from "./FileError.ts"
import type { FileStoreShape } from "./FileStore.ts"

/** The directory of manifests inside a sink's directory. */
export const DIRECTORY = "_checkpoints"

/** A staging directory's name inside a sink's directory: `.staging-<tag>.<writer>`. */
const STAGING = /^\.staging-[^.]+\.(.+)$/

/** Manifests kept before they are merged. */
export const KEEP = 64

/** A committed segment. */
export interface Manifest {
  readonly pipeline: string
  readonly positions: Checkpoint.Positions
  /** The staging directory the part files came from (relative to the sink's directory), empty when none. */
  readonly staging: string
  /** The segment's part files (names inside the sink's directory). */
  readonly files: ReadonlyArray<string>
}

const encoder = new TextEncoder()

const isRange = (u: unknown): u is Checkpoint.Range =>
  typeof u === "object" &&
  u !== null &&
  typeof (u as Checkpoint.Range).part === "string" &&
  /^\d+$/.test(String((u as Checkpoint.Range).from)) &&
  /^\d+$/.test(String((u as Checkpoint.Range).to))

const parse = (text: string): Manifest | undefined => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== "object" || value === null) return undefined
  const m = value as Record<string, unknown>
  if (typeof m.pipeline !== "string" || !Array.isArray(m.positions) || !m.positions.every(isRange)) return undefined
  const files = Array.isArray(m.files) ? m.files.filter((f): f is string => typeof f === "string") : []
  return {
    pipeline: m.pipeline,
    positions: m.positions,
    staging: typeof m.staging === "string" ? m.staging : "",
    files
  }
}

interface Stored {
  readonly name: string
  readonly manifest: Manifest
}

/** The manifests in `dir`, in name order; a file that is not a manifest is a clear error (it was not written by us). */
const readAll = (store: FileStoreShape, dir: string): Effect.Effect<ReadonlyArray<Stored>, FileError> =>
  Effect.gen(function* () {
    const path = nodePath.join(dir, DIRECTORY)
    const names = (yield* store.readDirectory(path)).filter((n) => n.endsWith(".json")).sort()
    const out: Array<Stored> = []
    for (const name of names) {
      const text = yield* Stream.mkString(Stream.decodeText(store.read(nodePath.join(path, name))))
      const manifest = parse(text)
      if (manifest === undefined)
        return yield* new FileError({
          reason: reasons.Unknown,
          operation: "read",
          path: nodePath.join(path, name),
          message: `${nodePath.join(path, name)} is not a segment manifest (expected JSON with "pipeline" and "positions"); effect-etl did not write it: move it out of ${path}`
        })
      out.push({ name, manifest })
    }
    return out
  })

/** Where a new run of `pipeline` resumes: the largest position per part over its manifests in `dir`. */
export const load = (
  store: FileStoreShape,
  dir: string,
  pipeline: string
): Effect.Effect<Checkpoint.Resume, FileError> =>
  Effect.map(readAll(store, dir), (stored) => {
    const resume = new Map<string, string>()
    for (const { manifest } of stored) {
      if (manifest.pipeline !== pipeline) continue
      for (const range of manifest.positions) {
        const held = resume.get(range.part)
        resume.set(range.part, held === undefined ? range.to : Checkpoint.max(held, range.to))
      }
    }
    return resume
  })

/**
 * Writes a manifest into `into` (a sink's directory, or a staging generation about to be published): a temporary
 * name, then one rename — the commit point.
 */
export const write = (
  store: FileStoreShape,
  into: string,
  manifest: Manifest,
  tag: string
): Effect.Effect<void, FileError> =>
  Effect.gen(function* () {
    const path = nodePath.join(into, DIRECTORY)
    const name = `${String(Date.now()).padStart(15, "0")}-${tag}.json`
    const temporary = nodePath.join(path, `.${name}.tmp`)
    yield* store.write(temporary, Stream.make(encoder.encode(JSON.stringify(manifest))))
    yield* store.rename(temporary, nodePath.join(path, name))
  })

/**
 * Finishes the segments a killed run committed but did not finish moving in: every part file a manifest names that is
 * not in `dir` yet and is still in its staging directory is renamed in. Then merges manifests when there are many.
 */
export const rollForward = (store: FileStoreShape, dir: string): Effect.Effect<void, FileError> =>
  Effect.gen(function* () {
    const stored = yield* readAll(store, dir)
    for (const { manifest } of stored) {
      // A live writer (another process appending to the same directory) moves its own files in.
      const writer = STAGING.exec(manifest.staging)?.[1]
      if (writer === undefined || !(yield* store.writerEnded(writer))) continue
      const staging = nodePath.join(dir, manifest.staging)
      let moved = 0
      for (const file of manifest.files) {
        const target = nodePath.join(dir, file)
        if ((yield* store.kind(target)) === "file") continue
        const from = nodePath.join(staging, file)
        if ((yield* store.kind(from)) !== "file") continue
        yield* store.rename(from, target)
        moved++
      }
      if (moved > 0) {
        yield* store.remove(staging)
        yield* Effect.logInfo(`moved ${moved} part files of a committed segment into ${dir}, left by a run cut short`)
      }
    }
    if (stored.length <= KEEP) return
    // Only manifests whose files are all in place are merged: a live writer may still be moving its files in, and its
    // manifest is what finishes the move if it dies.
    const settled: Array<Stored> = []
    for (const entry of stored) {
      let inPlace = true
      for (const file of entry.manifest.files)
        if ((yield* store.kind(nodePath.join(dir, file))) !== "file") {
          inPlace = false
          break
        }
      if (inPlace) settled.push(entry)
    }
    if (settled.length > KEEP) yield* merge(store, dir, settled)
  })

/** Replaces many manifests by one per pipeline holding their largest positions (written before the others go). */
const merge = (store: FileStoreShape, dir: string, stored: ReadonlyArray<Stored>): Effect.Effect<void, FileError> =>
  Effect.gen(function* () {
    const byPipeline = new Map<string, Map<string, Checkpoint.Range>>()
    for (const { manifest } of stored) {
      let ranges = byPipeline.get(manifest.pipeline)
      if (ranges === undefined) {
        ranges = new Map()
        byPipeline.set(manifest.pipeline, ranges)
      }
      Checkpoint.gather(ranges, manifest.positions)
    }
    let i = 0
    for (const [pipeline, ranges] of byPipeline)
      yield* write(
        store,
        dir,
        { pipeline, positions: Checkpoint.sorted(ranges), staging: "", files: [] },
        `merged-${i++}`
      )
    for (const { name } of stored) yield* store.remove(nodePath.join(dir, DIRECTORY, name))
  })
