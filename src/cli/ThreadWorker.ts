/**
 * A worker thread of a run on threads (see `runtime/Threads.ts`): it loads the run's pipeline once — from the config's
 * text, or by importing the pipeline module, as the command line does — with its connections, and reads the parts it
 * is sent into the run's staging directory (`Split.readPart`), answering each with the part's counts or its error.
 */
import * as nodePath from "node:path"
import { pathToFileURL } from "node:url"
import { parentPort } from "node:worker_threads"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { BuildError, messageOf, type PipelineError } from "../core/Errors.ts"
import type { Pipeline } from "../core/Plan.ts"
import * as Logging from "../observability/Logging.ts"
import * as Split from "../runtime/Split.ts"
import * as Threads from "../runtime/Threads.ts"
import * as Redaction from "../secrets/Redaction.ts"
import { LookupCache, makeLookupCache } from "../transforms/Join.ts"
import { loadConfigText, services } from "./Shared.ts"

/** What a worker loads the pipeline of a run from. */
export type Load = (
  | {
      readonly kind: "config"
      /** The config's path (names it in errors). */
      readonly file: string
      readonly text: string
    }
  | { readonly kind: "module"; readonly path: string }
) & {
  /** The `--schemas` directory ("" for the default). */
  readonly schemas: string
  /** The logs of the thread: as the command line's (`--log-level`, `--log-format`). */
  readonly log?: { readonly level: LogLevel.LogLevel; readonly format: Logging.LogFormat } | undefined
}

/** The worker's script, for `Threads.run` (the compiled `.js` beside this file, or this `.ts` file from sources). */
export const script: URL = new URL(
  import.meta.url.endsWith(".ts") ? "./ThreadWorker.ts" : "./ThreadWorker.js",
  import.meta.url
)

interface Loaded {
  readonly pipeline: Pipeline<unknown, unknown>
  readonly runtime: ManagedRuntime.ManagedRuntime<unknown, unknown>
}

const secrets = Redaction.registry()
const baseOf = (spec: Load) =>
  Layer.mergeAll(Logging.layer(spec.log?.level, spec.log?.format), Layer.succeed(Redaction.Secrets, secrets))

const loadError = (what: string, cause: unknown): PipelineError =>
  new BuildError({ stage: "thread", message: `cannot load ${what} on a thread: ${messageOf(cause)}`, retryable: false })

const load = (spec: Load): Effect.Effect<Loaded, PipelineError> =>
  Effect.gen(function* () {
    const base = baseOf(spec)
    if (spec.kind === "config") {
      const { pipeline, connections } = yield* loadConfigText(spec.file, spec.text, spec.schemas).pipe(
        Effect.provide(base),
        Effect.mapError((e) => loadError(spec.file, e))
      )
      const layer = Layer.mergeAll(services(spec.schemas), connections as Layer.Layer<unknown>, base)
      return { pipeline: pipeline as Pipeline<unknown, unknown>, runtime: ManagedRuntime.make(layer) }
    }
    const url = pathToFileURL(nodePath.resolve(spec.path)).href
    const mod = yield* Effect.tryPromise({
      try: () => import(url) as Promise<Record<string, unknown>>,
      catch: (cause) => loadError(spec.path, cause)
    })
    const pipeline = (mod.default ?? mod.pipeline) as Pipeline<unknown, unknown>
    const own = Layer.isLayer(mod.layer) ? (mod.layer as Layer.Layer<unknown>) : Layer.empty
    return {
      pipeline,
      runtime: ManagedRuntime.make(Layer.mergeAll(services(spec.schemas), own, base) as Layer.Layer<unknown>)
    }
  })

const loaded = new Map<string, Promise<Loaded>>()
const lookups = makeLookupCache(4)

/** Loads a run's pipeline once per thread (the load's JSON is its key). */
const pipelineOf = (spec: Load): Promise<Loaded> => {
  const key = JSON.stringify(spec)
  let found = loaded.get(key)
  if (found === undefined) {
    found = Effect.runPromise(Effect.result(load(spec))).then((result) =>
      result._tag === "Success" ? result.success : Promise.reject(result.failure)
    )
    loaded.set(key, found)
  }
  return found
}

/** Reads the part of a request (the boundary between the thread's messages and Effect). */
const answer = async ({ id, job }: Threads.Request): Promise<Threads.Reply> => {
  const found = await pipelineOf(job.load as Load).then(
    (ready) => ({ ready }),
    (failure: PipelineError) => ({ failure })
  )
  if ("failure" in found) return { id, failure: Threads.toFailure(found.failure) }
  const { pipeline, runtime } = found.ready
  const read = Split.readPart(Threads.forThreads(pipeline), {
    runId: job.runId,
    part: job.part,
    index: job.index
  }).pipe(
    Effect.provideService(Split.Staging, Threads.makeDirectory(job.staging)),
    Effect.provideService(LookupCache, lookups),
    Effect.result
  )
  const result = await runtime.runPromise(read)
  return result._tag === "Success" ? { id, result: result.success } : { id, failure: Threads.toFailure(result.failure) }
}

parentPort?.on("message", (request: Threads.Request) => {
  answer(request).then(
    (reply) => parentPort?.postMessage(reply),
    (cause: unknown) =>
      parentPort?.postMessage({
        id: request.id,
        failure: {
          tag: "ExtractError",
          stage: "thread",
          message: `part ${request.job.part.id}: ${secrets.scrub(messageOf(cause))}`,
          retryable: false
        }
      } satisfies Threads.Reply)
  )
})
