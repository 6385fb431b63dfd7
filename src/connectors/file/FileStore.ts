/**
 * The file store: the file system as the file connector sees it.
 *
 * This contract imports no driver; `NodeFileStore.ts` implements it over `node:fs`, and `layerMemory` keeps files in
 * a Map, so users' tests of file pipelines need no disk.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Objects from "../internal/Objects.ts"
import { FileError, reasons } from "./FileError.ts"

/** A file found by `list`. */
export interface FileInfo {
  readonly path: string
  readonly size: number
}

/** What the file connector needs from a file system. Paths are as the user wrote them (relative to the cwd). */
export interface FileStoreShape {
  /** Files matching a path: one file, every file under a directory (recursively, sorted), or a glob. */
  readonly list: (pattern: string) => Effect.Effect<ReadonlyArray<FileInfo>, FileError>
  /** The bytes of a file, streamed. */
  readonly read: (path: string) => Stream.Stream<Uint8Array, FileError>
  /** Writes a whole file from a stream of bytes (parent directories are created) and flushes it to disk. */
  readonly write: <E, R>(
    path: string,
    bytes: Stream.Stream<Uint8Array, E, R>
  ) => Effect.Effect<number, FileError | E, R>
  /** Renames a file or directory (atomic on one file system). */
  readonly rename: (from: string, to: string) => Effect.Effect<void, FileError>
  /** Removes a file or a directory tree; missing paths are fine. */
  readonly remove: (path: string) => Effect.Effect<void, FileError>
  /** What is at a path: a file, a directory, or nothing. */
  readonly kind: (path: string) => Effect.Effect<"file" | "directory" | "missing", FileError>
  /** Creates a directory and its parents. */
  readonly makeDirectory: (path: string) => Effect.Effect<void, FileError>
  /**
   * This process as a writer (e.g. `4242@host`): sinks put it in their staging names, so that what a killed run left
   * behind can be told from what a live run is writing.
   */
  readonly writerId: string
  /** Whether the writer with this id has ended (so its leftovers can go); `false` when that cannot be known. */
  readonly writerEnded: (writerId: string) => Effect.Effect<boolean>
  /** The names of a directory's entries (not recursive); an empty array for a missing directory. */
  readonly readDirectory: (path: string) => Effect.Effect<ReadonlyArray<string>, FileError>
}

/** The file store service. */
export class FileStore extends Context.Service<FileStore, FileStoreShape>()("effect-etl/connectors/file/FileStore") {}

/** The state of a memory file store, for assertions in tests. */
export interface MemoryFiles {
  readonly files: Map<string, Uint8Array>
  /** Writer ids of runs that have ended (tests add ids here to simulate a killed run). */
  readonly endedWriters: Set<string>
}

const normalize = (path: string): string => {
  const parts: Array<string> = []
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue
    if (part === "..") parts.pop()
    else parts.push(part)
  }
  return (path.startsWith("/") ? "/" : "") + parts.join("/")
}

/** Hidden files and folders (`.staging`, `_SUCCESS`) are not data: directory listings skip them, as Spark does. */
export const isHidden = Objects.isHidden

/** True when a path has glob characters. */
export const isGlob = Objects.isGlob

/**
 * A file store in memory: deterministic, no disk. Pass initial files (path → text or bytes); read the state back from
 * the returned `MemoryFiles`.
 *
 * @example
 * const files = FileStore.memory({ "in/a.jsonl": '{"id":1}\n' })
 * Effect.provide(program, FileStore.layerMemory(files))
 */
export const memory = (initial?: Readonly<Record<string, string | Uint8Array>>): MemoryFiles => {
  const files = new Map<string, Uint8Array>()
  for (const [path, content] of Object.entries(initial ?? {}))
    files.set(normalize(path), typeof content === "string" ? new TextEncoder().encode(content) : content)
  return { files, endedWriters: new Set() }
}

/** A memory file store over `state` (see `memory`). */
export const makeMemory = (state: MemoryFiles): FileStoreShape => {
  const { files } = state
  const under = (dir: string) => {
    const prefix = dir === "" ? "" : `${dir}/`
    return Array.from(files.keys()).filter((p) => p.startsWith(prefix))
  }
  const notFound = (operation: string, path: string) =>
    new FileError({
      reason: reasons.NotFound,
      operation,
      path,
      message: `${operation} ${path}: no such file or directory`
    })
  return {
    list: (pattern) =>
      Effect.suspend(() => {
        const p = normalize(pattern)
        if (files.has(p)) return Effect.succeed([{ path: p, size: files.get(p)!.length }])
        const matches = isGlob(p)
          ? Array.from(files.keys()).filter((f) => Objects.globToRegExp(p).test(f))
          : under(p).filter((f) => !isHidden(f.slice(p.length + 1)))
        if (matches.length === 0 && !isGlob(p)) return Effect.fail(notFound("list", pattern))
        return Effect.succeed(matches.sort().map((path) => ({ path, size: files.get(path)!.length })))
      }),
    read: (path) =>
      Stream.suspend(() => {
        const data = files.get(normalize(path))
        if (data === undefined) return Stream.fail(notFound("read", path))
        const chunks: Array<Uint8Array> = []
        for (let i = 0; i < data.length; i += 65536) chunks.push(data.subarray(i, i + 65536))
        return Stream.fromIterable(chunks)
      }),
    write: (path, bytes) =>
      Effect.map(
        Stream.runFold(
          bytes,
          () => [] as Array<Uint8Array>,
          (acc, chunk) => {
            acc.push(chunk)
            return acc
          }
        ),
        (chunks) => {
          const size = chunks.reduce((n, c) => n + c.length, 0)
          const data = new Uint8Array(size)
          let offset = 0
          for (const c of chunks) {
            data.set(c, offset)
            offset += c.length
          }
          files.set(normalize(path), data)
          return size
        }
      ),
    rename: (from, to) =>
      Effect.suspend(() => {
        const f = normalize(from)
        const t = normalize(to)
        if (files.has(f)) {
          files.set(t, files.get(f)!)
          files.delete(f)
          return Effect.void
        }
        const moved = under(f)
        if (moved.length === 0) return Effect.fail(notFound("rename", from))
        for (const p of moved) {
          files.set(t + p.slice(f.length), files.get(p)!)
          files.delete(p)
        }
        return Effect.void
      }),
    remove: (path) =>
      Effect.sync(() => {
        const p = normalize(path)
        files.delete(p)
        for (const f of under(p)) files.delete(f)
      }),
    kind: (path) =>
      Effect.sync(() => {
        const p = normalize(path)
        return files.has(p) ? "file" : under(p).length > 0 ? "directory" : "missing"
      }),
    makeDirectory: () => Effect.void,
    writerId: "memory",
    writerEnded: (writerId) => Effect.sync(() => state.endedWriters.has(writerId)),
    readDirectory: (path) =>
      Effect.sync(() => {
        const p = normalize(path)
        const names = new Set<string>()
        for (const f of under(p)) names.add(f.slice(p === "" ? 0 : p.length + 1).split("/")[0]!)
        return Array.from(names).sort()
      })
  }
}

/** A layer with a memory file store over `state`. */
export const layerMemory = (state: MemoryFiles = memory()): Layer.Layer<FileStore> =>
  Layer.succeed(FileStore, FileStore.of(makeMemory(state)))
