/**
 * The file store over `node:fs`: the only file of the file connector that touches the disk.
 */
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { FileError, type FileErrorReason, reasons } from "./FileError.ts"
import { type FileInfo, FileStore, type FileStoreShape, isGlob, isHidden } from "./FileStore.ts"

const WRITE_BUFFER = 1 << 20

/** Maps a Node.js file-system error (its errno code) to a reason. */
export const classifyError = (cause: unknown): FileErrorReason => {
  const code = typeof cause === "object" && cause !== null ? (cause as { readonly code?: unknown }).code : undefined
  switch (code) {
    case "ENOENT":
      return reasons.NotFound
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return reasons.PermissionDenied
    case "EEXIST":
    case "ENOTEMPTY":
      return reasons.AlreadyExists
    case "ENOTDIR":
      return reasons.NotADirectory
    case "EISDIR":
      return reasons.IsADirectory
    case "ENOSPC":
    case "EDQUOT":
      return reasons.NoSpace
    case "EBUSY":
    case "EAGAIN":
      return reasons.Busy
    case "EMFILE":
    case "ENFILE":
      return reasons.TooManyOpenFiles
    case "EINTR":
      return reasons.Interrupted
    default:
      return reasons.Unknown
  }
}

const describeReason: Record<FileErrorReason["_tag"], string> = {
  NotFound: "no such file or directory",
  PermissionDenied: "permission denied",
  AlreadyExists: "already exists",
  NotADirectory: "not a directory",
  IsADirectory: "is a directory",
  NoSpace: "no space left on device",
  Busy: "resource busy",
  TooManyOpenFiles: "too many open files",
  Interrupted: "interrupted",
  PositionsMoved: "positions moved by another process",
  Unknown: "failed"
}

const toError = (operation: string, path: string) => (cause: unknown) => {
  const reason = classifyError(cause)
  const detail = reason._tag === "Unknown" && cause instanceof Error ? cause.message : describeReason[reason._tag]
  return new FileError({ reason, operation, path, message: `Cannot ${operation} ${path}: ${detail}`, cause })
}

const attempt = <A>(operation: string, path: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: toError(operation, path) })

const byPath = (a: FileInfo, b: FileInfo) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)

/**
 * Walks a directory tree, following symbolic links (an overwritten sink directory is one), and calls `visit` with every
 * file. `descend` says whether a subdirectory (path, depth) is worth entering; a link back to a directory being walked
 * is not entered again.
 */
const walk = async (
  dir: string,
  descend: (path: string, name: string, depth: number) => boolean,
  visit: (path: string, size: number) => void,
  depth = 0,
  ancestors: ReadonlySet<string> = new Set()
): Promise<void> => {
  const real = await fsp.realpath(dir)
  if (ancestors.has(real)) return
  const within = new Set(ancestors).add(real)
  for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
    const path = dir === "." ? entry.name : nodePath.join(dir, entry.name)
    let isFile = entry.isFile()
    let isDirectory = entry.isDirectory()
    let size = -1
    if (entry.isSymbolicLink()) {
      const stat = await fsp.stat(path).catch(() => undefined)
      if (stat === undefined) continue
      isFile = stat.isFile()
      isDirectory = stat.isDirectory()
      size = stat.size
    }
    if (isDirectory && descend(path, entry.name, depth + 1)) await walk(path, descend, visit, depth + 1, within)
    else if (isFile) visit(path, size >= 0 ? size : (await fsp.stat(path)).size)
  }
}

const listFiles = async (pattern: string): Promise<ReadonlyArray<FileInfo>> => {
  const found: Array<FileInfo> = []
  const visit = (path: string, size: number) => found.push({ path, size })
  if (isGlob(pattern)) {
    // fs.glob does not enter symbolic links to directories: walk from the pattern's fixed part and match each file.
    const normalized = nodePath.normalize(pattern)
    const segments = normalized.split(nodePath.sep)
    const fixed = segments.findIndex((segment) => isGlob(segment))
    const base = fixed === 0 ? "." : segments.slice(0, fixed).join(nodePath.sep) || nodePath.sep
    const rest = segments.slice(fixed)
    const deep = rest.includes("**")
    const dots = rest.some((segment) => segment.startsWith("."))
    const exists = await fsp.stat(base).then(
      (stat) => stat.isDirectory(),
      () => false
    )
    if (!exists) return []
    await walk(
      base,
      (_, name, depth) => (deep || depth < rest.length) && (dots || !name.startsWith(".")),
      (path, size) => {
        if (nodePath.matchesGlob(path, normalized)) visit(path, size)
      }
    )
    return found.sort(byPath)
  }
  const stat = await fsp.stat(pattern)
  if (stat.isFile()) return [{ path: pattern, size: stat.size }]
  // Hidden entries (staging, generations of an overwritten directory, `_SUCCESS`) are not data.
  await walk(
    pattern,
    (_, name) => !isHidden(name),
    (path, size) => {
      if (!isHidden(nodePath.relative(pattern, path))) visit(path, size)
    }
  )
  return found.sort(byPath)
}

const writeFile = <E, R>(
  path: string,
  bytes: Stream.Stream<Uint8Array, E, R>
): Effect.Effect<number, FileError | E, R> =>
  Effect.acquireUseRelease(
    attempt("create", path, async () => {
      await fsp.mkdir(nodePath.dirname(path), { recursive: true })
      return fsp.open(path, "w")
    }),
    (handle) => {
      let pending: Array<Uint8Array> = []
      let pendingBytes = 0
      let total = 0
      const flush = attempt("write", path, async () => {
        if (pendingBytes === 0) return
        const data = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes)
        pending = []
        pendingBytes = 0
        let offset = 0
        while (offset < data.length) {
          const { bytesWritten } = await handle.write(data, offset, data.length - offset)
          offset += bytesWritten
        }
      })
      return Stream.runForEach(bytes, (chunk) => {
        pending.push(chunk)
        pendingBytes += chunk.length
        total += chunk.length
        return pendingBytes >= WRITE_BUFFER ? flush : Effect.void
      }).pipe(
        Effect.andThen(flush),
        Effect.andThen(attempt("sync", path, () => handle.sync())),
        Effect.map(() => total)
      )
    },
    (handle) => Effect.promise(() => handle.close().catch(() => undefined))
  )

/** The Node.js implementation of the file store. */
export const make: FileStoreShape = {
  list: (pattern) => attempt("list", pattern, () => listFiles(pattern)),
  read: (path, range) =>
    Stream.fromAsyncIterable(
      (range === undefined
        ? fs.createReadStream(path, { highWaterMark: 1 << 20 })
        : range.end <= range.start
          ? []
          : fs.createReadStream(path, {
              highWaterMark: 1 << 20,
              start: range.start,
              end: range.end - 1
            })) as AsyncIterable<Uint8Array>,
      toError("read", path)
    ),
  write: writeFile,
  rename: (from, to) =>
    attempt("rename", from, async () => {
      await fsp.mkdir(nodePath.dirname(to), { recursive: true })
      await fsp.rename(from, to)
    }),
  remove: (path) => attempt("remove", path, () => fsp.rm(path, { recursive: true, force: true })),
  kind: (path) =>
    attempt("stat", path, () =>
      fsp.stat(path).then(
        (stat): "file" | "directory" => (stat.isDirectory() ? "directory" : "file"),
        (e: unknown) => {
          if (classifyError(e)._tag === "NotFound") return "missing" as const
          throw e
        }
      )
    ),
  writerId: `${process.pid}@${os.hostname()}`,
  writerEnded: (writerId) =>
    Effect.sync(() => {
      const at = writerId.indexOf("@")
      const pid = Number(writerId.slice(0, at))
      // Only a process of this host can be checked; anything else may still be running.
      if (at < 0 || writerId.slice(at + 1) !== os.hostname() || !Number.isSafeInteger(pid) || pid === process.pid)
        return false
      try {
        process.kill(pid, 0)
        return false
      } catch (e) {
        return (e as { readonly code?: string }).code === "ESRCH"
      }
    }),
  symlink: (target, path) => attempt("link", path, () => fsp.symlink(target, path, "dir")),
  readLink: (path) =>
    attempt("read link", path, () =>
      fsp.readlink(path).then(
        (target): string | undefined => target,
        (e: unknown) => {
          const code = (e as { readonly code?: unknown }).code
          if (code === "EINVAL" || code === "ENOENT" || code === "ENOTDIR") return undefined
          throw e
        }
      )
    ),
  makeDirectory: (path) =>
    attempt("create directory", path, () => fsp.mkdir(path, { recursive: true }).then(() => undefined)),
  readDirectory: (path) =>
    attempt("list directory", path, () =>
      fsp.readdir(path).then(
        (names) => names.sort(),
        (e: unknown) => {
          if (classifyError(e)._tag === "NotFound") return []
          throw e
        }
      )
    )
}

/** The file store on the local disk. */
export const layer: Layer.Layer<FileStore> = Layer.succeed(FileStore, FileStore.of(make))
