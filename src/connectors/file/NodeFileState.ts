/**
 * A state store (see `core/State.ts`) in a local directory: one JSON file per pipeline, replaced whole (a temporary
 * file written and flushed, then one rename), so a process killed while saving leaves the previous snapshot.
 *
 * The default store of streaming runs started by the CLI (`.etl-state/` in the working directory); it serves the
 * processes of one machine. Processes on several machines share a PostgreSQL store (`NodePostgres.stateStore`).
 */
import * as fsp from "node:fs/promises"
import * as nodePath from "node:path"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as KeyValueStore from "effect/persistence/KeyValueStore"
import * as State from "../../core/State.ts"

const fileOf = (dir: string, key: string) => nodePath.join(dir, `${encodeURIComponent(key)}.json`)

const fail = (method: string, key: string | undefined, cause: unknown) =>
  new KeyValueStore.KeyValueStoreError({
    method,
    ...(key === undefined ? {} : { key }),
    message: cause instanceof Error ? cause.message : String(cause),
    cause
  })

const missing = (cause: unknown): boolean => (cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT"

/** The key-value store over a directory. */
export const keyValueStore = (dir: string): KeyValueStore.KeyValueStore => {
  const names = Effect.tryPromise({
    try: () =>
      fsp.readdir(dir).then(
        (all) => all.filter((n) => n.endsWith(".json")).map((n) => decodeURIComponent(n.slice(0, -5))),
        (cause: unknown) => (missing(cause) ? [] : Promise.reject(cause))
      ),
    catch: (cause) => fail("keys", undefined, cause)
  })
  return KeyValueStore.makeStringOnly({
    get: (key) =>
      Effect.tryPromise({
        try: () =>
          fsp.readFile(fileOf(dir, key), "utf8").then(
            (text) => text as string | undefined,
            (cause: unknown) => (missing(cause) ? undefined : Promise.reject(cause))
          ),
        catch: (cause) => fail("get", key, cause)
      }),
    set: (key, value) =>
      Effect.tryPromise({
        try: async () => {
          await fsp.mkdir(dir, { recursive: true })
          const path = fileOf(dir, key)
          const temporary = `${path}.${process.pid}.tmp`
          const handle = await fsp.open(temporary, "w")
          try {
            await handle.writeFile(value, "utf8")
            await handle.sync()
          } finally {
            await handle.close()
          }
          await fsp.rename(temporary, path)
        },
        catch: (cause) => fail("set", key, cause)
      }),
    remove: (key) =>
      Effect.tryPromise({
        try: () => fsp.rm(fileOf(dir, key), { force: true }),
        catch: (cause) => fail("remove", key, cause)
      }),
    clear: Effect.flatMap(names, (keys) =>
      Effect.tryPromise({
        try: () => Promise.all(keys.map((key) => fsp.rm(fileOf(dir, key), { force: true }))).then(() => undefined),
        catch: (cause) => fail("clear", undefined, cause)
      })
    ),
    size: Effect.map(names, (keys) => keys.length),
    keys: names
  })
}

/**
 * The state store in a directory (created when first saved to).
 *
 * @example
 * Pipeline.run(p).pipe(Effect.provide(NodeFileState.layer(".etl-state")))
 */
export const layer = (dir: string): Layer.Layer<State.StateStore> =>
  Layer.succeed(State.StateStore, State.fromKeyValueStore(keyValueStore(dir), `directory ${dir}`))
