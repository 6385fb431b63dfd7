import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as References from "effect/References"
import * as Stream from "effect/Stream"
import * as File from "../../src/connectors/file/File.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as NodeFileStore from "../../src/connectors/file/NodeFileStore.ts"
import { LoadError } from "../../src/core/Errors.ts"
import * as Sink from "../../src/core/Sink.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import { check, overwrite, PART, type Row, size } from "./support/Versions.ts"

const loop = nodePath.join(import.meta.dirname, "support/OverwriteLoop.ts")

const quiet = <A, E>(effect: Effect.Effect<A, E, FileStore.FileStore>, store: FileStore.FileStoreShape) =>
  effect.pipe(
    Effect.provide(Layer.succeed(FileStore.FileStore, FileStore.FileStore.of(store))),
    Effect.provideService(References.MinimumLogLevel, "None")
  )

const onDisk = (effect: Effect.Effect<void, unknown, FileStore.FileStore>) =>
  Effect.runPromise(quiet(effect, NodeFileStore.make))

type Seen = { readonly version: number } | { readonly problem: string } | "retired"

const code = (e: unknown) => (e as { readonly code?: string }).code

const isLink = (path: string) => {
  try {
    return fs.lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}

/**
 * What a reader of `out` on disk finds: it lists `out` (which must always work), then reads one generation through
 * the link resolved once, and checks afterwards that the generation was not retired while it read.
 */
const look = (out: string): Seen => {
  let real: string
  try {
    fs.readdirSync(out)
    real = fs.realpathSync(out)
  } catch (e) {
    // The link `out` is never removed, only replaced by a rename: a lookup through it that fails while it is still a
    // link read the link before a swap and reached the generation after a later run retired it. Retry, as a reader
    // does. Anything else (`out` missing, or a real directory that was missing for a moment) is what must not happen.
    if (code(e) === "ENOENT" && isLink(out)) return "retired"
    return { problem: `${out} is missing (${code(e)})` }
  }
  let rows: Array<Row>
  let names: Array<string>
  try {
    names = fs.readdirSync(real)
    rows = names
      .filter((n) => n.startsWith("part-"))
      .flatMap((n) =>
        fs
          .readFileSync(nodePath.join(real, n), "utf8")
          .split("\n")
          .filter((l) => l !== "")
          .map((l) => JSON.parse(l) as Row)
      )
  } catch (e) {
    if (!fs.existsSync(real)) return "retired"
    return { problem: `a file of ${real} vanished while the directory stayed (${code(e)})` }
  }
  if (!fs.existsSync(real)) return "retired"
  if (!names.includes("_SUCCESS")) return { problem: `${real} has no _SUCCESS` }
  return check(rows)
}

/** What the link `out` points to; `undefined` when it is not a link. */
const linkOf = (out: string): string | undefined => {
  try {
    return fs.readlinkSync(out)
  } catch {
    return undefined
  }
}

/**
 * The names next to `out` other than `out` and the generation it points to. After a successful run that is only the
 * generation it replaced (kept for readers until the next run); anything else is garbage.
 */
const leftovers = (out: string): ReadonlyArray<string> => {
  const current = linkOf(out)
  return fs.readdirSync(nodePath.dirname(out)).filter((n) => n !== nodePath.basename(out) && n !== current)
}

const startLoop = (out: string, first: number, count: number) => {
  const child = spawn(process.execPath, [loop, out, String(first), String(count)], { stdio: "pipe" })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (status) => resolve(status)))
  /** Whether the child loaded (false: it exited first). */
  const ready = new Promise<boolean>((resolve) => {
    child.stdout.once("data", () => resolve(true))
    child.once("exit", () => resolve(false))
  })
  let stderr = ""
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  return { child, exited, ready, stderr: () => stderr }
}

const go = (child: ChildProcessWithoutNullStreams) => child.stdin.write("go\n")

const tmp = () => fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-overwrite-"))

describe("file sink overwrite on the local disk", () => {
  it("a reader polling the directory during 40 overwrites always finds one complete version, never nothing", async () => {
    const dir = tmp()
    const out = nodePath.join(dir, "out")
    await onDisk(overwrite(out, 0))
    const writer = startLoop(out, 1, 40)
    assert.isTrue(await writer.ready, writer.stderr())
    let finished = false
    void writer.exited.then(() => {
      finished = true
    })
    go(writer.child)
    const problems: Array<string> = []
    const versions = new Set<number>()
    let complete = 0
    while (!finished) {
      // Poll without yielding for a few milliseconds at a time: the writer runs in its own process meanwhile.
      const until = performance.now() + 5
      while (performance.now() < until) {
        const seen = look(out)
        if (seen === "retired") continue
        if ("problem" in seen) problems.push(seen.problem)
        else {
          complete++
          versions.add(seen.version)
        }
      }
      await new Promise((resolve) => setImmediate(resolve))
    }
    assert.strictEqual(await writer.exited, 0, writer.stderr())
    assert.deepStrictEqual(problems.slice(0, 5), [])
    // the reader ran while the writer did: it found several versions, each complete
    assert.isAbove(versions.size, 1)
    assert.isAbove(complete, versions.size)
    assert.deepStrictEqual(look(out), { version: 40 })
    assert.lengthOf(leftovers(out), 1)
    assert.match(leftovers(out)[0]!, /^\.out\.gen-[0-9a-f]{8}\./)
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("after each SIGKILL of a running overwrite the directory holds one complete version, and the next run leaves no garbage", async () => {
    const dir = tmp()
    const out = nodePath.join(dir, "out")
    await onDisk(overwrite(out, 0))
    const rounds = 12
    let next = startLoop(out, 1000, 1000)
    const transitional = (name: string) => name !== "out" && !name.startsWith(".out.staging-") && name !== linkOf(out)
    for (let round = 1; round <= rounds; round++) {
      const writer = next
      assert.isTrue(await writer.ready, writer.stderr())
      go(writer.child)
      if (round % 2 === 1) {
        // A random moment.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 150))
      } else {
        // The moment the swap is under way: something besides the data and the staging appears next to `out`.
        const until = performance.now() + 20_000
        while (performance.now() < until) {
          try {
            if (fs.readdirSync(dir).some(transitional)) break
          } catch {
            break
          }
        }
      }
      writer.child.kill("SIGKILL")
      await writer.exited
      // The next writer loads while this round's checks run; it writes nothing until told to.
      next = startLoop(out, 1000 * (round + 1), 1000)

      const afterKill = look(out)
      assert.isObject(afterKill, `round ${round}: ${JSON.stringify(afterKill)}`)
      assert.notProperty(afterKill, "problem", `round ${round}: ${JSON.stringify(afterKill)}`)
      if (round % 3 === 0) {
        const version = 1000 * round + 999
        const replaced = linkOf(out)
        await onDisk(overwrite(out, version))
        assert.deepStrictEqual(look(out), { version }, `round ${round}`)
        assert.deepStrictEqual(leftovers(out), replaced === undefined ? [] : [replaced], `round ${round}`)
      }
    }
    next.child.kill("SIGKILL")
    await next.exited
    fs.rmSync(dir, { recursive: true, force: true })
  }, 60_000)
})

/**
 * A store over `store` that dies like a killed process after `budget` changes: every later change fails without
 * touching anything, so the state is what a SIGKILL at that point would leave. Its writer id names an ended process.
 */
const dying = (store: FileStore.FileStoreShape, writerId: string, budget: number): FileStore.FileStoreShape => {
  let left = budget
  const step = <A, E, R>(change: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => (left-- > 0 ? change : Effect.die("killed")))
  return {
    ...store,
    writerId,
    write: (path, bytes) => step(store.write(path, bytes)),
    rename: (from, to) => step(store.rename(from, to)),
    remove: (path) => step(store.remove(path)),
    symlink: (target, path) => step(store.symlink(target, path)),
    makeDirectory: (path) => step(store.makeDirectory(path))
  }
}

interface World {
  /** The target directory. */
  readonly target: string
  readonly store: FileStore.FileStoreShape
  /** The id of a writer that has ended. */
  readonly deadWriter: string
}

const readVersion = (world: World) =>
  Effect.gen(function* () {
    const out = Sink.collect<Row>("check")
    const read = yield* Pipeline.from(File.source<Row>({ path: world.target, format: { type: "jsonl" } })).pipe(
      Pipeline.to(out),
      Pipeline.run,
      Effect.exit
    )
    if (Exit.isFailure(read)) return "missing"
    const seen = check(out.collected().records)
    return "version" in seen ? seen.version : seen.problem
  })

/** A run that opens the sink (so recovers and sweeps) and then fails before it commits. */
const failingRun = (world: World) =>
  Pipeline.from(
    Source.make<Row, LoadError>({
      name: "failing",
      type: "memory",
      description: "fails",
      bounded: true,
      batches: () => Stream.fail(new LoadError({ stage: "failing", message: "source broke", retryable: false }))
    })
  ).pipe(
    Pipeline.to(
      File.sink<Row>({ path: world.target, format: { type: "jsonl" }, mode: "overwrite", maxRecordsPerFile: PART })
    ),
    Pipeline.run,
    Effect.exit
  )

/** What is next to the target besides it and its current generation. */
const garbage = (world: World) =>
  Effect.gen(function* () {
    const current = yield* world.store.readLink(world.target)
    const names = yield* world.store.readDirectory(nodePath.dirname(world.target))
    return names.filter((n) => n !== nodePath.basename(world.target) && n !== current)
  })

/**
 * What may stay next to the target after the next successful overwrite: the generation the target links to now; or,
 * when it is a real directory, that directory under a generation name; or, when it is missing, the generation the next
 * run finds in a killed run's pending link. Anything else is garbage.
 */
const replacedBy = (world: World) =>
  Effect.gen(function* () {
    const link = yield* world.store.readLink(world.target)
    const kind = yield* world.store.kind(world.target)
    return (names: ReadonlyArray<string>) =>
      link !== undefined
        ? names.length === 1 && names[0] === link
        : names.length <= (kind === "missing" ? 1 : 0) + (kind === "directory" ? 1 : 0) &&
          (kind !== "directory" || names.length === 1) &&
          names.every((n) => /^\.t\.gen-[0-9a-f]{8}\./.test(n))
  })

/** The versions of the crash-point tests: the data there, the overwrite that is killed, the next run's. */
const OLD = 5
const NEW = 10
const NEXT = 15

/**
 * Kills an overwrite of version OLD by version NEW after every number of changes in turn, and after each kill runs a
 * failing run and then an overwrite with version NEXT. Returns what a reader saw after each kill and after the failing run.
 */
const everyCrashPoint = (fresh: () => Effect.Effect<World, unknown>) =>
  Effect.gen(function* () {
    const outcomes: Array<string> = []
    for (let budget = 0; budget < 200; budget++) {
      const world = yield* fresh()
      const killed = yield* quiet(
        Effect.exit(overwrite(world.target, NEW)),
        dying(world.store, world.deadWriter, budget)
      )
      const afterKill = yield* quiet(readVersion(world), world.store)
      const failed = yield* quiet(failingRun(world), world.store)
      assert.isTrue(Exit.isFailure(failed))
      const afterFailedRun = yield* quiet(readVersion(world), world.store)
      const replaced = yield* replacedBy(world)
      yield* quiet(overwrite(world.target, NEXT), world.store)
      assert.strictEqual(yield* quiet(readVersion(world), world.store), NEXT, `killed after ${budget} changes`)
      const left = yield* garbage(world)
      assert.isTrue(replaced(left), `killed after ${budget} changes: ${left}`)
      outcomes.push(`${afterKill} ${afterFailedRun}`)
      if (Exit.isSuccess(killed)) return outcomes
    }
    return assert.fail("the overwrite never finished")
  })

const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid

const legacyFiles = (v: number) => {
  const rows = Array.from({ length: size(v) }, (_, i) => JSON.stringify({ v, i, n: size(v) })).join("\n")
  return { "part-legacy.jsonl": `${rows}\n`, _SUCCESS: "" }
}

interface MemoryWorld extends World {
  readonly state: FileStore.MemoryFiles
}

const memoryWorld = (start: "generation" | "real directory"): Effect.Effect<MemoryWorld, unknown> =>
  Effect.gen(function* () {
    const state = FileStore.memory(
      start === "real directory"
        ? Object.fromEntries(Object.entries(legacyFiles(OLD)).map(([name, text]) => [`out/t/${name}`, text]))
        : {}
    )
    state.endedWriters.add("killed")
    const store = FileStore.makeMemory(state)
    if (start === "generation") yield* quiet(overwrite("out/t", OLD), store)
    return { target: "out/t", store, deadWriter: "killed", state }
  })

const diskWorld = (root: string, start: "generation" | "real directory") => {
  let n = 0
  return () =>
    Effect.gen(function* () {
      const target = nodePath.join(root, String(n++), "t")
      if (start === "real directory") {
        fs.mkdirSync(target, { recursive: true })
        for (const [name, text] of Object.entries(legacyFiles(OLD))) fs.writeFileSync(nodePath.join(target, name), text)
      } else yield* quiet(overwrite(target, OLD), NodeFileStore.make)
      return { target, store: NodeFileStore.make, deadWriter: `${deadPid()}@${os.hostname()}` }
    })
}

describe("file sink overwrite killed after every change", () => {
  for (const start of ["generation", "real directory"] as const)
    it.effect(
      `from a ${start}: readers find the old version or the new, a failing run after it finds one too, and the next run leaves no garbage — on disk and in memory alike`,
      () =>
        Effect.gen(function* () {
          const root = tmp()
          const memory = yield* everyCrashPoint(() => memoryWorld(start))
          const disk = yield* everyCrashPoint(diskWorld(root, start))
          fs.rmSync(root, { recursive: true, force: true })
          assert.deepStrictEqual(disk, memory)
          for (const outcome of memory) {
            const [afterKill, afterFailedRun] = outcome.split(" ")
            assert.include([`${OLD}`, `${NEW}`], afterFailedRun, outcome)
            // Only a real directory has a moment without a target: the one rename before its first link.
            assert.include(
              start === "generation" ? [`${OLD}`, `${NEW}`] : [`${OLD}`, `${NEW}`, "missing"],
              afterKill,
              outcome
            )
          }
          assert.include(memory, `${OLD} ${OLD}`)
          assert.include(memory, `${NEW} ${NEW}`)
          if (start === "real directory") assert.strictEqual(memory.filter((o) => o.startsWith("missing")).length, 1)
        })
    )
})

describe("file sink overwrite killed, then killed again while the next run recovers (memory store)", () => {
  for (const start of ["generation", "real directory"] as const)
    it.effect(
      `from a ${start}: every pair of crash points leaves one complete version, and a third run no garbage`,
      () =>
        Effect.gen(function* () {
          let pairs = 0
          for (let first = 0; first < 200; first++) {
            const world = yield* memoryWorld(start)
            const { state } = world
            const killed = yield* quiet(Effect.exit(overwrite(world.target, NEW)), dying(world.store, "killed", first))
            for (let second = 0; second < 200; second++) {
              const copy = FileStore.memory()
              for (const [path, data] of state.files) copy.files.set(path, data)
              for (const [path, target] of state.links) copy.links.set(path, target)
              copy.endedWriters.add("killed").add("killed again")
              const again: World = {
                target: world.target,
                store: FileStore.makeMemory(copy),
                deadWriter: "killed again"
              }
              const killedAgain = yield* quiet(
                Effect.exit(overwrite(again.target, NEXT)),
                dying(again.store, again.deadWriter, second)
              )
              const seen = yield* quiet(readVersion(again), again.store)
              const where = `killed after ${first} and ${second} changes`
              assert.include(
                start === "generation" ? [OLD, NEW, NEXT] : [OLD, NEW, NEXT, "missing"],
                seen,
                `${where}: ${seen}`
              )
              const replaced = yield* replacedBy(again)
              yield* quiet(overwrite(again.target, 20), again.store)
              assert.strictEqual(yield* quiet(readVersion(again), again.store), 20, where)
              const left = yield* garbage(again)
              assert.isTrue(replaced(left), `${where}: ${left}`)
              pairs++
              if (Exit.isSuccess(killedAgain)) break
            }
            if (Exit.isSuccess(killed)) break
          }
          assert.isAbove(pairs, 100)
        })
    )
})
