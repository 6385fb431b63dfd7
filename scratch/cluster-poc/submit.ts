/**
 * Client-only process (no runner server, never gets shards).
 *
 *   node submit.ts <runId> [--mode inline|fanout] [--parts a,b,c] [--sleep ms] [--discard] [--poll]
 *
 *   default          : execute + wait for the result
 *   --discard        : submit, print executionId, exit (does not wait)
 *   --poll           : only poll the status of runId (Workflow.poll), never submit
 *   --wait-poll      : submit with discard, then poll until Complete
 *   --n 100          : generate parts p1..p100
 *   --seq            : run parts sequentially (concurrency 1)
 *   --quiet          : print only a one-line summary of the result
 */
import * as NodeRuntime from "@effect/platform-node-shared/NodeRuntime"
import { Effect, Exit, Option } from "effect"
import { FanoutJob, Job, makeWorkflowEngineLayer, say } from "./cluster.ts"

const args = process.argv.slice(2)
const flag = (name: string) => args.includes(name)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : def
}
const runId = args[0] ?? `run-${Date.now()}`
const mode = opt("--mode", "fanout")
const n = Number(opt("--n", "0")) // --n 100 => parts p1..p100
const parts = n > 0
  ? Array.from({ length: n }, (_, i) => `p${i + 1}`)
  : opt("--parts", "a,b,c,d,e,f").split(",").filter((s) => s.length > 0)
const sleepMs = Number(opt("--sleep", "3000"))
const W = mode === "inline" ? Job : FanoutJob
const payload = { runId, parts, sleepMs, sequential: flag("--seq") }

const pollUntilDone = (executionId: string) =>
  Effect.gen(function*() {
    while (true) {
      const r = yield* W.poll(executionId)
      if (Option.isSome(r) && r.value._tag === "Complete") return r.value.exit
      yield* say(`poll: ${Option.isNone(r) ? "no result yet" : r.value._tag}`)
      yield* Effect.sleep("1 second")
    }
  })

const program = Effect.gen(function*() {
  const executionId = yield* W.executionId(payload)
  yield* say(`workflow=${W._tag} runId=${runId} executionId=${executionId}`)
  const t0 = Date.now()
  if (flag("--poll")) {
    const r = yield* W.poll(executionId)
    yield* say(`poll => ${Option.isNone(r) ? "None (unknown or still running)" : JSON.stringify(r.value)}`)
    return
  }
  if (flag("--discard")) {
    const id = yield* W.execute(payload, { discard: true })
    yield* say(`submitted (discard) executionId=${id} in ${Date.now() - t0}ms`)
    return
  }
  if (flag("--wait-poll")) {
    yield* W.execute(payload, { discard: true })
    const exit = yield* pollUntilDone(executionId)
    yield* say(`poll result after ${Date.now() - t0}ms: ${JSON.stringify(exit, null, 2)}`)
    return
  }
  // execute and wait. If an execution with this idempotency key already exists,
  // this attaches to it (or returns the stored result when it is complete).
  const exit = yield* Effect.exit(W.execute(payload))
  if (Exit.isSuccess(exit)) {
    const ports = [...new Set(exit.value.results.map((r) => r.port))].join(",")
    if (flag("--quiet")) {
      yield* say(`RESULT after ${Date.now() - t0}ms: ${exit.value.results.length} parts on ports ${ports}`)
    } else {
      yield* say(`RESULT after ${Date.now() - t0}ms:\n${JSON.stringify(exit.value, null, 2)}`)
    }
  } else {
    yield* say(`FAILED after ${Date.now() - t0}ms: ${JSON.stringify(exit.cause)}`)
  }
})

program.pipe(
  Effect.provide(makeWorkflowEngineLayer({ clientOnly: true })),
  NodeRuntime.runMain
)
