/**
 * How a file sink replaces a directory so that readers always find a complete one.
 *
 * The sink's directory `out/t` is a symbolic link to a complete generation directory next to it,
 * `out/.t.gen-<tag>.<writer>`. Readers list and read `out/t/*` as before (the link is followed) and see one generation:
 * the old one or the new one, never a mix and never nothing. A new generation is written in a staging directory and
 * published in three steps: a pending link `out/.t.link-<tag>.<writer>` to the generation's name is made, the staging
 * directory is renamed whole to that name, and the pending link is renamed over `out/t` — one atomic rename. The
 * generation it replaced stays until the next run on `out/t` starts, so that a reader that resolved the link just
 * before the swap can still open it; that run retires it: renamed to `out/.t.trash-<tag>.<writer>`, then deleted, so
 * that a half-deleted directory always has a trash name and is never taken for data.
 *
 * Every name carries its writer (`<pid>@<host>`), so that the next run can tell what a killed run left behind from what
 * a run that is still going is writing:
 * - staging, pending links and trash are garbage once their writer has ended;
 * - a generation is data while `out/t` points to it, and is being published while its writer is alive and its pending
 *   link exists; any other generation is garbage to the next run (the one replaced last, or one never published).
 * Nothing but a complete generation is ever published: when `out/t` is missing (a kill in the one moment a
 * pre-existing real directory is moved aside for its first link), the next run puts the killed run's pending link in
 * place if its generation exists. Trash is never restored.
 */
import * as nodePath from "node:path"
import * as Effect from "effect/Effect"
import { FileError, reasons } from "./FileError.ts"
import type { FileStoreShape } from "./FileStore.ts"

/** What a name next to a sink directory is: staging, a generation, a pending link, or trash. */
type Role = "staging" | "gen" | "link" | "trash"

interface Entry {
  readonly path: string
  readonly role: Role
  readonly tag: string
  readonly writer: string
}

const ENTRY = /^(staging|gen|link|trash)-([0-9a-f]{8})\.(.+)$/

/** The path `.<base>.<role>-<tag>.<writer>` next to `dir`. */
const siblingOf = (dir: string, role: Role, tag: string, writer: string): string =>
  nodePath.join(nodePath.dirname(dir), `.${nodePath.basename(dir)}.${role}-${tag}.${writer}`)

/** The path of a sibling of `dir` with a role, for this writer: `.<base>.<role>-<tag>.<writer>`. */
export const sibling = (store: FileStoreShape, dir: string, role: Role, tag: string): string =>
  siblingOf(dir, role, tag, store.writerId)

/** A fresh tag for sibling names. */
export const newTag = (): string => crypto.randomUUID().slice(0, 8)

/** The siblings of `dir` this module made, with their roles and writers. */
const siblings = (store: FileStoreShape, dir: string): Effect.Effect<ReadonlyArray<Entry>, FileError> =>
  Effect.map(store.readDirectory(nodePath.dirname(dir)), (names) => {
    const prefix = `.${nodePath.basename(dir)}.`
    const found: Array<Entry> = []
    for (const name of names) {
      const match = name.startsWith(prefix) ? ENTRY.exec(name.slice(prefix.length)) : null
      if (match !== null)
        found.push({
          path: nodePath.join(nodePath.dirname(dir), name),
          role: match[1] as Role,
          tag: match[2]!,
          writer: match[3]!
        })
    }
    return found
  })

/** The generation `dir` links to now, as a path, when it is one of ours; `undefined` otherwise. */
const currentGeneration = (store: FileStoreShape, dir: string): Effect.Effect<string | undefined, FileError> =>
  Effect.map(store.readLink(dir), (target) => {
    if (target === undefined) return undefined
    const path = nodePath.join(nodePath.dirname(dir), target)
    const prefix = `.${nodePath.basename(dir)}.`
    const name = nodePath.basename(path)
    return nodePath.dirname(path) === nodePath.dirname(dir) &&
      name.startsWith(prefix) &&
      ENTRY.exec(name.slice(prefix.length))?.[1] === "gen"
      ? path
      : undefined
  })

/** Another run did it first: what was to be removed is gone already. */
const goneAlready = (error: FileError) => error.reason._tag === "NotFound"

/**
 * Finishes what a killed run left half done: when `dir` is missing and a run that has ended left a pending link whose
 * generation exists (it is complete: it got its name by one rename of a finished staging directory), that link is put
 * in place. Nothing else is ever restored.
 */
export const recover = (store: FileStoreShape, dir: string): Effect.Effect<void, FileError> =>
  Effect.gen(function* () {
    if ((yield* store.kind(dir)) !== "missing" || (yield* store.readLink(dir)) !== undefined) return
    for (const entry of yield* siblings(store, dir)) {
      if (entry.role !== "link" || !(yield* store.writerEnded(entry.writer))) continue
      if ((yield* store.kind(entry.path)) !== "directory") continue
      yield* store.rename(entry.path, dir)
      yield* Effect.logInfo(`published ${dir} from ${entry.path}, left complete by a run that ended before it could`)
      return
    }
  })

/**
 * Removes what runs left next to and inside `dir` that is garbage (see the module comment): staging, pending links and
 * trash of runs that have ended, and generations that are neither current nor being published. What a run that may
 * still be going is writing is kept.
 */
export const sweep = (store: FileStoreShape, dir: string): Effect.Effect<void, FileError> =>
  Effect.gen(function* () {
    const inside = (yield* store.readDirectory(dir)).flatMap((name): ReadonlyArray<Entry> => {
      const match = name.startsWith(".staging-") ? ENTRY.exec(name.slice(1)) : null
      return match === null
        ? []
        : [{ path: nodePath.join(dir, name), role: "staging", tag: match[2]!, writer: match[3]! }]
    })
    for (const entry of [...(yield* siblings(store, dir)), ...inside]) {
      const ended = yield* store.writerEnded(entry.writer)
      if (entry.role === "gen") {
        const pending = siblingOf(dir, "link", entry.tag, entry.writer)
        const published = (yield* store.readLink(pending)) === undefined
        if (!ended && !published) continue
        // Read the link again right before: the current generation is data, whoever wrote it.
        if ((yield* currentGeneration(store, dir)) === entry.path) continue
        yield* retire(store, dir, entry.path).pipe(Effect.catchIf(goneAlready, () => Effect.void))
        // The generation the last overwrite replaced is retired by the next run as a matter of course.
        if (published) {
          yield* Effect.logDebug(`removed ${entry.path}, the generation the last overwrite replaced`)
          continue
        }
      } else if (ended) yield* store.remove(entry.path)
      else continue
      yield* Effect.logInfo(`removed ${entry.path}, left behind by a run that ended or was cut short`)
    }
  })

/** Deletes a generation: first renamed to trash, so that a kill while deleting leaves nothing that looks like data. */
const retire = (store: FileStoreShape, dir: string, generation: string): Effect.Effect<void, FileError> =>
  Effect.gen(function* () {
    const trash = sibling(store, dir, "trash", newTag())
    yield* store.rename(generation, trash)
    yield* store.remove(trash)
  })

/**
 * Publishes the complete directory `staging` as the content of `dir`, in one atomic rename of a link. The generation
 * it replaced is left for the next run's `sweep`. A failure leaves `dir` as it was (and removes what this call made).
 * The swap is not interruptible: a rename in flight must not race with the undoing of it.
 */
export const publish = (
  store: FileStoreShape,
  dir: string,
  staging: string,
  tag: string
): Effect.Effect<void, FileError> =>
  Effect.gen(function* () {
    const generation = sibling(store, dir, "gen", tag)
    const pending = sibling(store, dir, "link", tag)
    const undo = Effect.ignore(Effect.andThen(store.remove(pending), store.remove(generation)))
    const swap = Effect.gen(function* () {
      yield* store.symlink(nodePath.basename(generation), pending)
      yield* store.rename(staging, generation).pipe(Effect.onError(() => undo))
      const isLink = (yield* store.readLink(dir)) !== undefined
      const kind = yield* store.kind(dir)
      if (!isLink && kind === "file")
        return yield* Effect.andThen(
          undo,
          Effect.fail(
            new FileError({
              reason: reasons.NotADirectory,
              operation: "write",
              path: dir,
              message: `Cannot write to ${dir}: it is a file; a file sink writes part files into a directory (nothing was changed)`
            })
          )
        )
      if (isLink || kind === "missing") return yield* store.rename(pending, dir).pipe(Effect.onError(() => undo))
      // A real directory (written before generations, or by hand) cannot be replaced by a link in one rename: it
      // becomes a generation first. Until the next rename there is no `dir`; a kill there is finished by `recover`.
      const moved = sibling(store, dir, "gen", newTag())
      yield* store.rename(dir, moved).pipe(Effect.onError(() => undo))
      yield* store
        .rename(pending, dir)
        .pipe(Effect.onError(() => Effect.ignore(Effect.andThen(store.rename(moved, dir), undo))))
    })
    yield* Effect.uninterruptible(swap)
  })
