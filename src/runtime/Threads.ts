/**
 * Runs on the cores of one machine: a bounded pipeline whose source lists parts (files, ranges of lines of a big file,
 * S3 objects, table slices, Kafka partitions) reads its parts on a pool of worker threads, as a cluster reads them on
 * its runners (see `Split`), and finishes on the calling thread, where the sink stays one writer with one commit.
 *
 * Each worker thread loads the pipeline itself (from the config's text, or by importing the pipeline module: see
 * `cli/ThreadWorker.ts`), once, and reads the parts it is given: decode, validate, the stateless stages, partial states
 * of a merging aggregate, and, where the sink stages parts itself (files, SQL tables), the encoding and writing of its
 * records. What a part gives on to the finish crosses threads as bytes in a staging directory (`makeDirectory`), never
 * as objects. The finish reads the parts in their order, so a run on threads gives the records, counts and order of a
 * run on one thread.
 *
 * The number of threads is a setting (`threads` in a config, `--threads` on the command line); by default the machine's
 * cores. A pipeline that cannot be split (a stream, an incremental read, an interval join), or whose input is one part,
 * runs on the calling thread as before.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import * as readline from "node:readline"
import { Worker } from "node:worker_threads"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { ExtractError, ofTag, type PipelineError } from "../core/Errors.ts"
import { cutOf } from "../core/Flow.ts"
import type { Pipeline } from "../core/Plan.ts"
import type { RunReport } from "../core/RunReport.ts"
import * as Source from "../core/Source.ts"
import type { SplitPart } from "../core/Stage.ts"
import { LookupCache, makeLookupCache } from "../transforms/Join.ts"
import * as Runner from "./Runner.ts"
import * as Split from "./Split.ts"

/** The cores this process may use. */
export const cores = (): number => Math.max(1, os.availableParallelism())

/**
 * The threads a run whose parts do all the work takes by default on a machine of `cores` cores: all of them, from 3.
 * On 2 cores a second thread only competed with V8's collector threads and the rest of the machine: measured there, 2
 * threads ran at 0.99 and 0.57 of one (`bench/file.ts`) and a JSON Lines copy cut into ranges at 0.83–0.87 (a local
 * file and an S3 object of 1.5M lines).
 */
export const parallelismFor = (cores: number): number => (cores >= 3 ? cores : 1)

/**
 * The number of threads a pipeline runs on when nobody said: the machine's cores (see {@link parallelismFor}) when
 * the parts do all the work — every stage works record by record and the sink writes each part's records itself
 * (files, SQL tables), so that the finish only commits — and 1 otherwise. A pipeline whose finish merges partial states or writes every record (an
 * aggregate of many groups, a sink that cannot stage parts) may be slower on threads, so it runs on them only when
 * asked (`threads`, `--threads`). A table copied to a table as its server's text (see `PassThrough`) does almost no
 * work per record: threads would only add the staging tables' second copy on the server, so it runs on 1 thread.
 */
export const defaultThreads = <E, R>(p: Pipeline<E, R>): number =>
  p.passThrough === undefined && Split.problemOf(p) === undefined && Split.planOf(forThreads(p)).native
    ? parallelismFor(cores())
    : 1

/** What a worker thread is asked to do: read one part of a run into the staging directory. */
export interface Job {
  /** What the worker loads the pipeline from (JSON: the config's text and settings, or a module's path). */
  readonly load: unknown
  readonly runId: string
  readonly part: SplitPart
  readonly index: number
  /** The staging directory of the run (see `makeDirectory`). */
  readonly staging: string
}

/** A PipelineError as it crosses threads. */
export interface Failure {
  readonly tag: PipelineError["_tag"]
  readonly stage: string
  readonly message: string
  readonly retryable: boolean
}

/** What a worker answers. */
export type Reply =
  | { readonly id: number; readonly result: Split.PartResult }
  | { readonly id: number; readonly failure: Failure }

/** The message a worker receives. */
export interface Request {
  readonly id: number
  readonly job: Job
}

/** A PipelineError as it crosses threads. */
export const toFailure = (error: PipelineError): Failure => ({
  tag: error._tag,
  stage: error.stage,
  message: error.message,
  retryable: error.retryable
})

/** The PipelineError a worker's failure stands for. */
export const fromFailure = (failure: Failure): PipelineError =>
  ofTag(failure.tag, { stage: failure.stage, message: failure.message, retryable: failure.retryable })

const ioError = (what: string, path: string) => (cause: unknown) =>
  new Split.StagingError({
    message: `${what} ${path}: ${cause instanceof Error ? cause.message : String(cause)}`,
    retryable: false,
    cause
  })

/** A file-name-safe name for a run's part and kind. */
const fileName = (part: string, kind: Split.StagedKind): string =>
  `${Buffer.from(part).toString("base64url")}.${kind === "records" ? "r" : "d"}`

/**
 * Staging in a local directory, shared by the threads of one process: a part's read writes its batches, each as one
 * line of JSON (see `Split.encodeValues`), to a temporary file that its commit renames into place; the finish reads
 * them back line by line, so memory stays bounded whatever the parts hold.
 */
export const makeDirectory = (dir: string): Split.StagingShape => ({
  description: `directory ${dir}`,
  open: (run, part, kind) =>
    Effect.gen(function* () {
      const runDir = nodePath.join(dir, Buffer.from(run).toString("base64url"))
      const target = nodePath.join(runDir, fileName(part, kind))
      const temporary = `${target}.${crypto.randomUUID()}.tmp`
      yield* Effect.tryPromise({
        try: () => fs.promises.mkdir(runDir, { recursive: true }),
        catch: ioError("cannot create", runDir)
      })
      const handle = yield* Effect.acquireRelease(
        Effect.tryPromise({ try: () => fs.promises.open(temporary, "w"), catch: ioError("cannot create", temporary) }),
        (file) => Effect.promise(() => file.close().then(() => fs.promises.rm(temporary, { force: true })))
      )
      return {
        write: (values) =>
          Effect.tryPromise({
            try: () => handle.write(`${Split.encodeValues(values)}\n`),
            catch: ioError("cannot write", temporary)
          }),
        commit: Effect.tryPromise({
          try: async () => {
            await handle.sync()
            await fs.promises.rename(temporary, target)
          },
          catch: ioError("cannot commit", target)
        })
      }
    }),
  read: (run, part, kind) => {
    const path = nodePath.join(dir, Buffer.from(run).toString("base64url"), fileName(part, kind))
    return Stream.unwrap(
      Effect.tryPromise({
        try: () =>
          fs.promises.access(path).then(
            () => true,
            () => false
          ),
        catch: ioError("cannot read", path)
      }).pipe(
        Effect.map((exists) =>
          exists
            ? Stream.fromAsyncIterable(
                readline.createInterface({ input: fs.createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY }),
                ioError("cannot read", path)
              ).pipe(Stream.map(Split.decodeValues))
            : Stream.empty
        )
      )
    )
  },
  clear: (run) => {
    const runDir = nodePath.join(dir, Buffer.from(run).toString("base64url"))
    return Effect.tryPromise({
      try: () => fs.promises.rm(runDir, { recursive: true, force: true }),
      catch: ioError("cannot remove", runDir)
    })
  }
})

/** A worker thread, answering one job at a time. */
export interface Thread {
  readonly read: (job: Job) => Effect.Effect<Split.PartResult, PipelineError>
  /** Ends the thread (what it was doing is cut short). */
  readonly stop: Effect.Effect<void>
}

/** Starts a worker thread running `script`; it ends with the scope. */
export const spawn = (script: URL, stage: string): Effect.Effect<Thread, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => new Worker(script, { stdout: false, stderr: false })),
      (worker) => Effect.promise(() => worker.terminate())
    ),
    (worker): Thread => {
      let next = 0
      return {
        stop: Effect.promise(() => worker.terminate()),
        read: (job) =>
          Effect.callback<Split.PartResult, PipelineError>((resume) => {
            const id = next++
            const onMessage = (reply: Reply) => {
              if (reply.id !== id) return
              cleanup()
              resume("result" in reply ? Effect.succeed(reply.result) : Effect.fail(fromFailure(reply.failure)))
            }
            const onError = (cause: unknown) => {
              cleanup()
              resume(
                Effect.fail(
                  new ExtractError({
                    stage,
                    message: `part ${job.part.id} (${job.part.description}): its thread failed: ${cause instanceof Error ? cause.message : String(cause)}`,
                    retryable: false,
                    cause
                  })
                )
              )
            }
            const onExit = (code: number) => onError(new Error(`the thread ended with code ${code}`))
            const cleanup = () => {
              worker.off("message", onMessage)
              worker.off("error", onError)
              worker.off("exit", onExit)
            }
            worker.on("message", onMessage)
            worker.on("error", onError)
            worker.on("exit", onExit)
            worker.postMessage({ id, job } satisfies Request)
            return Effect.sync(cleanup)
          })
      }
    }
  )

/** How a pipeline runs on threads. */
export interface Options {
  /** How many parts are read at once, each on a thread of its own; 1 runs the pipeline on the calling thread. */
  readonly threads: number
  /** The module a worker thread runs (it answers `Request`s with `Reply`s: see `cli/ThreadWorker.ts`). */
  readonly worker: URL
  /** What a worker loads the pipeline from (handed to it with each job). */
  readonly load: unknown
  readonly runId?: string | undefined
  /** The target size of a part; by default the input is cut into about four parts per thread, 8 to 128 MiB each. */
  readonly targetBytes?: number | undefined
}

const MiB = 1024 * 1024

/** The size of a part for an input of `bytes` read on `threads` threads. */
export const partBytes = (bytes: number | undefined, threads: number): number =>
  bytes === undefined
    ? Source.defaultSplit.targetBytes
    : Math.min(128 * MiB, Math.max(8 * MiB, Math.ceil(bytes / (threads * 4))))

/**
 * Runs a pipeline on threads when it can: its parts read on `threads` worker threads, then finished here. A pipeline
 * that cannot be split, or whose input is one part, runs here whole (`Runner.execute`).
 */
export const run = <E, R>(
  p: Pipeline<E, R>,
  options: Options
): Effect.Effect<{ readonly report: RunReport; readonly error: PipelineError | undefined }, never, R> =>
  Effect.gen(function* () {
    const runId = options.runId ?? crypto.randomUUID()
    const whole = Runner.execute(p, { runId })
    if (options.threads <= 1 || Split.problemOf(p) !== undefined) return yield* whole
    const startedAt = yield* Clock.currentTimeMillis
    const size = p.inputSize === undefined ? undefined : yield* Effect.option(p.inputSize)
    const bytes = size?._tag === "Some" ? size.value.bytes : undefined
    const targetBytes = options.targetBytes ?? partBytes(bytes, options.threads)
    // An input that will have parts: the worker threads start now, loading their modules while this thread lists the
    // parts (which may read a big file once to cut it into ranges of lines).
    const scope = yield* Scope.make()
    const early =
      bytes !== undefined && bytes >= 2 * targetBytes
        ? yield* Effect.forEach(
            Array.from({ length: Math.min(options.threads, Math.floor(bytes / targetBytes)) - 1 }),
            () => Scope.provide(spawn(options.worker, p.stages[0]!.name), scope)
          )
        : []
    const listed = yield* Effect.exit(p.split!({ targetBytes, withinFiles: withinFiles(p) }))
    // A source that cannot list its parts now fails the same way when the whole run reads it.
    if (Exit.isFailure(listed) || listed.value.length < 2)
      return yield* Effect.andThen(Scope.close(scope, Exit.void), whole)
    return yield* onThreads(forThreads(p), { ...options, runId, startedAt, parts: listed.value, early }).pipe(
      Effect.scoped,
      Effect.ensuring(Scope.close(scope, Exit.void))
    )
  })

/**
 * The pipeline as a run on threads runs it: its sink stages the parts in its thread staging when it has one (local
 * files), else as on a cluster. The worker threads run it so too.
 */
export const forThreads = <E, R>(p: Pipeline<E, R>): Pipeline<E, R> =>
  p.sink.threadStaging === undefined
    ? p
    : Object.assign(Object.create(Object.getPrototypeOf(p)) as Pipeline<E, R>, p, {
        sink: { ...p.sink, staging: p.sink.threadStaging }
      })

const onThreads = <E, R>(
  p: Pipeline<E, R>,
  options: Options & {
    readonly runId: string
    readonly startedAt: number
    readonly parts: ReadonlyArray<SplitPart>
    /** Worker threads started already. */
    readonly early: ReadonlyArray<Thread>
  }
) =>
  Effect.gen(function* () {
    const { runId, parts, startedAt } = options
    yield* Effect.logInfo(
      `run started: ${p.name} (${parts.length} parts on ${Math.min(parts.length, options.threads)} threads)`
    ).pipe(Effect.annotateLogs({ pipeline: p.name, runId }))
    const dir = yield* tempDirectory
    const staging = makeDirectory(dir)
    const stage = p.stages[0]!.name
    const lookups = makeLookupCache(4)
    // The parts go to the first reader free: this thread, which reads at once, and the worker threads, each once it
    // has started (loading the pipeline takes a worker a second or two).
    let next = 0
    const results: Array<Split.PartResult> = []
    const take = (read: (part: SplitPart, index: number) => Effect.Effect<Split.PartResult, PipelineError, R>) =>
      Effect.whileLoop({
        while: () => next < parts.length,
        body: () => {
          const index = next++
          return Effect.map(read(parts[index]!, index), (result) => {
            results[index] = result
          })
        },
        step: () => {}
      })
    const here = take((part, index) =>
      Split.readPart(p, { runId, part, index }).pipe(
        Effect.provideService(Split.Staging, staging),
        Effect.provideService(LookupCache, lookups)
      )
    )
    const threads: Array<Thread> = [...options.early]
    const readOn = (thread: Thread) =>
      take((part, index) => thread.read({ load: options.load, runId, part, index, staging: dir }))
    const more = Math.max(0, Math.min(options.threads, parts.length) - 1 - options.early.length)
    const workers = [
      ...options.early.map(readOn),
      ...Array.from({ length: more }, () =>
        Effect.scoped(
          Effect.flatMap(spawn(options.worker, stage), (thread) => {
            threads.push(thread)
            return readOn(thread)
          })
        )
      )
    ]
    const read = yield* Effect.exit(
      Effect.map(Effect.all([here, ...workers], { concurrency: "unbounded", discard: true }), () => results)
    )
    // The threads end before the finish: a part cut short by another's failure writes nothing more, and their memory
    // is free for the finish.
    yield* Effect.forEach(threads, (thread) => thread.stop, { discard: true })
    const outcome = Exit.isSuccess(read)
      ? yield* Split.finish(p, { runId, parts, results: read.value, startedAt }).pipe(
          Effect.provideService(LookupCache, lookups),
          Effect.provideService(Split.Staging, staging)
        )
      : yield* Effect.map(Clock.currentTimeMillis, (finishedAt) => {
          const found = Exit.findErrorOption(read)
          const error =
            found._tag === "Some"
              ? found.value
              : new ExtractError({ stage, message: "the run's threads were interrupted", retryable: false })
          return {
            report: Split.failedReport(p, {
              runId,
              results: results.filter((r) => r !== undefined),
              error: { tag: error._tag, stage: error.stage, message: error.message, retryable: error.retryable },
              startedAt,
              finishedAt
            }),
            error
          }
        })
    yield* Split.clear(p, runId, parts).pipe(Effect.provideService(Split.Staging, staging))
    return outcome
  })

/**
 * Whether a big file may be cut into ranges of lines: only where every stage works record by record (no aggregate,
 * window or other stage that keeps state across records, whose results could depend on where a file is cut).
 */
const withinFiles = <E, R>(p: Pipeline<E, R>): boolean => cutOf(p.stages) === p.stages.length

/** A fresh temporary directory for a run's staging, removed with the scope of the run. */
const tempDirectory = Effect.acquireRelease(
  Effect.promise(() => fs.promises.mkdtemp(nodePath.join(os.tmpdir(), "effect-etl-threads-"))),
  (dir) => Effect.promise(() => fs.promises.rm(dir, { recursive: true, force: true }))
)
