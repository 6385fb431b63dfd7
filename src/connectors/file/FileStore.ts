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
import { FileError, type FileErrorReason, reasons } from "./FileError.ts"

/** A file found by `list`. */
export interface FileInfo {
  readonly path: string
  readonly size: number
}

/** What the file connector needs from a file system. Paths are as the user wrote them (relative to the cwd). */
export interface FileStoreShape {
  /** Files matching a path: one file, every file under a directory (recursively, sorted), or a glob. */
  readonly list: (pattern: string) => Effect.Effect<ReadonlyArray<FileInfo>, FileError>
  /** The bytes of a file, streamed; with `range`, those from `start` (inclusive) to `end` (exclusive). */
  readonly read: (path: string, range?: ByteRange) => Stream.Stream<Uint8Array, FileError>
  /** Writes a whole file from a stream of bytes (parent directories are created) and flushes it to disk. */
  readonly write: <E, R>(
    path: string,
    bytes: Stream.Stream<Uint8Array, E, R>
  ) => Effect.Effect<number, FileError | E, R>
  /**
   * Renames a file, a directory or a symbolic link (atomic on one file system). A file or link replaces a file or link
   * at `to`; a directory can only replace an empty directory.
   */
  readonly rename: (from: string, to: string) => Effect.Effect<void, FileError>
  /** Removes a file, a symbolic link (not what it points to) or a directory tree; missing paths are fine. */
  readonly remove: (path: string) => Effect.Effect<void, FileError>
  /** What is at a path, links followed: a file, a directory, or nothing (also for a link to nothing). */
  readonly kind: (path: string) => Effect.Effect<"file" | "directory" | "missing", FileError>
  /** Creates a symbolic link at `path` pointing to `target` (relative to the link's directory); `path` must be free. */
  readonly symlink: (target: string, path: string) => Effect.Effect<void, FileError>
  /** What the symbolic link at `path` points to, as written; `undefined` when `path` is not a link (or is missing). */
  readonly readLink: (path: string) => Effect.Effect<string | undefined, FileError>
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

/** A range of a file's bytes: from `start` (inclusive) to `end` (exclusive). */
export interface ByteRange {
  readonly start: number
  readonly end: number
}

/** The file store service. */
export class FileStore extends Context.Service<FileStore, FileStoreShape>()("effect-etl/connectors/file/FileStore") {}

/** The state of a memory file store, for assertions in tests. */
export interface MemoryFiles {
  /** Files by their real path (no symbolic link in it). */
  readonly files: Map<string, Uint8Array>
  /** Symbolic links by their real path: what each points to, as written (relative to the link's directory). */
  readonly links: Map<string, string>
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

const join = (dir: string, name: string): string => (dir === "" ? name : dir === "/" ? `/${name}` : `${dir}/${name}`)

const dirname = (path: string): string => {
  const at = path.lastIndexOf("/")
  return at < 0 ? "" : at === 0 ? "/" : path.slice(0, at)
}

/** How many links a path may go through, as the kernel's ELOOP limit. */
const MAX_LINKS = 40

/** Hidden files and folders (`.staging`, `_SUCCESS`) are not data: directory listings skip them, as Spark does. */
export const isHidden = Objects.isHidden

/** True when a path has glob characters. */
export const isGlob = Objects.isGlob

/**
 * A file store in memory: deterministic, no disk. Pass initial files (path → text or bytes); read the state back from
 * the returned `MemoryFiles`, or what a reader sees with `contents`.
 *
 * @example
 * const files = FileStore.memory({ "in/a.jsonl": '{"id":1}\n' })
 * Effect.provide(program, FileStore.layerMemory(files))
 */
export const memory = (initial?: Readonly<Record<string, string | Uint8Array>>): MemoryFiles => {
  const files = new Map<string, Uint8Array>()
  for (const [path, content] of Object.entries(initial ?? {}))
    files.set(normalize(path), typeof content === "string" ? new TextEncoder().encode(content) : content)
  return { files, links: new Map(), endedWriters: new Set() }
}

/** Path resolution and directory walks over a memory state, links followed as the kernel does. */
const paths = (state: MemoryFiles) => {
  const { files, links } = state
  const under = (dir: string) => {
    const prefix = dir === "" ? "" : dir.endsWith("/") ? dir : `${dir}/`
    return Array.from(files.keys()).filter((p) => p.startsWith(prefix))
  }
  /** The names directly in a real directory: files, subdirectories and links. */
  const names = (dir: string): ReadonlyArray<string> => {
    const prefix = dir === "" ? "" : dir.endsWith("/") ? dir : `${dir}/`
    const found = new Set<string>()
    for (const p of [...files.keys(), ...links.keys()])
      if (p.startsWith(prefix) && p.length > prefix.length) {
        const name = p.slice(prefix.length).split("/")[0]!
        if (name !== "") found.add(name)
      }
    return Array.from(found).sort()
  }
  /** The real path of `path`: every link in it followed, the last one only when `followLast`. */
  const resolve = (path: string, followLast: boolean, hops = 0): string => {
    const p = normalize(path)
    const parts = p.split("/").filter((part) => part !== "")
    let current = p.startsWith("/") ? "/" : ""
    for (let i = 0; i < parts.length; i++) {
      const candidate = join(current, parts[i]!)
      const target = links.get(candidate)
      if (target !== undefined && (followLast || i < parts.length - 1) && hops < MAX_LINKS)
        current = resolve(target.startsWith("/") ? target : join(dirname(candidate), target), true, hops + 1)
      else current = candidate
    }
    return current
  }
  const kindOf = (real: string): "file" | "directory" | "link" | "missing" =>
    files.has(real) ? "file" : links.has(real) ? "link" : names(real).length > 0 ? "directory" : "missing"
  /** Every file under a directory as a reader sees it: `visible` path (through links) → real path. */
  const walk = (visible: string, real: string, found: Map<string, string>, depth = 0): Map<string, string> => {
    for (const name of names(real)) {
      const v = join(visible, name)
      const r = resolve(join(real, name), true)
      const kind = kindOf(r)
      if (kind === "file") found.set(v, r)
      else if (kind === "directory" && depth < MAX_LINKS) walk(v, r, found, depth + 1)
    }
    return found
  }
  return { under, names, resolve, kindOf, walk }
}

/**
 * What a reader of a memory store sees: every file by each path that reaches it (through symbolic links too).
 *
 * @example
 * new TextDecoder().decode(FileStore.contents(files).get("out/settled/_SUCCESS"))
 */
export const contents = (state: MemoryFiles): ReadonlyMap<string, Uint8Array> => {
  const { walk } = paths(state)
  const found = walk("/", "/", walk("", "", new Map()))
  return new Map(Array.from(found, ([visible, real]) => [visible, state.files.get(real)!]))
}

/** A memory file store over `state` (see `memory`). */
export const makeMemory = (state: MemoryFiles): FileStoreShape => {
  const { files, links } = state
  const { under, names, resolve, kindOf, walk } = paths(state)
  const error = (reason: FileErrorReason, operation: string, path: string, detail: string) =>
    new FileError({ reason, operation, path, message: `${operation} ${path}: ${detail}` })
  const fail = (reason: FileErrorReason, operation: string, path: string, detail: string) =>
    Effect.fail(error(reason, operation, path, detail))
  const notFound = (operation: string, path: string) =>
    fail(reasons.NotFound, operation, path, "no such file or directory")
  /** Whether a path segment that a pattern did not spell out is hidden: `*` does not match a leading dot. */
  const dotsSpelled = (pattern: string) => {
    const spelled = new Set(pattern.split("/").filter((part) => part.startsWith(".")))
    return (path: string) => path.split("/").every((part) => !part.startsWith(".") || spelled.has(part))
  }
  return {
    list: (pattern) =>
      Effect.suspend(() => {
        const p = normalize(pattern)
        if (isGlob(p)) {
          const parts = p.split("/")
          const fixed = parts
            .slice(
              0,
              parts.findIndex((part) => isGlob(part))
            )
            .join("/")
          const base = fixed === "" && p.startsWith("/") ? "/" : fixed
          const matches = Objects.globToRegExp(p)
          const dots = dotsSpelled(p)
          const found = Array.from(walk(base, resolve(base, true), new Map()), ([path, real]) => ({
            path,
            size: files.get(real)!.length
          }))
          return Effect.succeed(found.filter((f) => matches.test(f.path) && dots(f.path)).sort(byPath))
        }
        const real = resolve(p, true)
        if (files.has(real)) return Effect.succeed([{ path: p, size: files.get(real)!.length }])
        const found = Array.from(walk(p, real, new Map()), ([path, r]) => ({ path, size: files.get(r)!.length }))
        const matches = found.filter((f) => !isHidden(f.path.slice(p.length + 1)))
        if (matches.length === 0) return notFound("list", pattern)
        return Effect.succeed(matches.sort(byPath))
      }),
    read: (path, range) =>
      Stream.suspend(() => {
        const whole = files.get(resolve(path, true))
        if (whole === undefined) return Stream.fail(error(reasons.NotFound, "read", path, "no such file or directory"))
        const data = range === undefined ? whole : whole.subarray(range.start, range.end)
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
          files.set(resolve(path, true), data)
          return size
        }
      ),
    rename: (from, to) =>
      Effect.suspend(() => {
        const f = resolve(from, false)
        const t = resolve(to, false)
        const source = kindOf(f)
        const target = kindOf(t)
        if (source === "missing") return notFound("rename", from)
        if (f === t) return Effect.void
        if (source !== "directory") {
          if (target === "directory") return fail(reasons.IsADirectory, "rename", to, "is a directory")
          files.delete(t)
          links.delete(t)
          if (source === "file") files.set(t, files.get(f)!)
          else links.set(t, links.get(f)!)
          files.delete(f)
          links.delete(f)
          return Effect.void
        }
        if (target === "file" || target === "link") return fail(reasons.NotADirectory, "rename", to, "not a directory")
        if (target === "directory") return fail(reasons.AlreadyExists, "rename", to, "directory not empty")
        if (t.startsWith(`${f}/`)) return fail(reasons.Unknown, "rename", to, "is inside the renamed directory")
        for (const p of under(f)) {
          files.set(t + p.slice(f.length), files.get(p)!)
          files.delete(p)
        }
        for (const [p, link] of Array.from(links).filter(([p]) => p.startsWith(`${f}/`))) {
          links.set(t + p.slice(f.length), link)
          links.delete(p)
        }
        return Effect.void
      }),
    remove: (path) =>
      Effect.sync(() => {
        const p = resolve(path, false)
        if (links.delete(p)) return
        files.delete(p)
        for (const f of under(p)) files.delete(f)
        for (const l of Array.from(links.keys()).filter((l) => l.startsWith(`${p}/`))) links.delete(l)
      }),
    kind: (path) =>
      Effect.sync(() => {
        const kind = kindOf(resolve(path, true))
        return kind === "link" ? "missing" : kind
      }),
    makeDirectory: () => Effect.void,
    symlink: (target, path) =>
      Effect.suspend(() => {
        const p = resolve(path, false)
        if (kindOf(p) !== "missing") return fail(reasons.AlreadyExists, "link", path, "already exists")
        links.set(p, target)
        return Effect.void
      }),
    readLink: (path) => Effect.sync(() => links.get(resolve(path, false))),
    writerId: "memory",
    writerEnded: (writerId) => Effect.sync(() => state.endedWriters.has(writerId)),
    readDirectory: (path) => Effect.sync(() => names(resolve(path, true)))
  }
}

const byPath = (a: FileInfo, b: FileInfo) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)

/** A layer with a memory file store over `state`. */
export const layerMemory = (state: MemoryFiles = memory()): Layer.Layer<FileStore> =>
  Layer.succeed(FileStore, FileStore.of(makeMemory(state)))
