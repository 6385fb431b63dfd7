#!/usr/bin/env node
/**
 * The `effect-etl` executable: `node dist/main.js run examples/quickstart.json`.
 *
 * Signals: while a streaming run is going, the first SIGINT/SIGTERM stops it gracefully (it commits what it read, prints
 * its report and exits 0) and a second one aborts it; at any other time a signal aborts at once, as Node's runner does.
 *
 * Crashes: a defect, in the program or outside it, prints one line and exits 1 (`--log-level debug` adds the trace).
 */
import { readFileSync } from "node:fs"
import * as NodeChildProcessSpawner from "@effect/platform-node-shared/NodeChildProcessSpawner"
import * as NodeFileSystem from "@effect/platform-node-shared/NodeFileSystem"
import * as NodePath from "@effect/platform-node-shared/NodePath"
import * as NodeStdio from "@effect/platform-node-shared/NodeStdio"
import * as NodeTerminal from "@effect/platform-node-shared/NodeTerminal"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import * as Cli from "./cli/Cli.ts"
import * as Redaction from "./secrets/Redaction.ts"

const version = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string })
  .version

/** Node's file system, paths, stdio, terminal and child processes: what the command line needs of the platform. */
const platform = Layer.provideMerge(
  NodeChildProcessSpawner.layer,
  Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeStdio.layer, NodeTerminal.layer)
)

const stopRequested = Deferred.makeUnsafe<void>()
let streaming = false

const runMain = Runtime.makeRunMain(({ fiber, teardown }) => {
  let aborted = false
  let stopping = false
  const onSignal = () => {
    if (streaming && !stopping) {
      stopping = true
      process.stderr.write("stopping: finishing the batches in flight and committing (signal again to abort)\n")
      Deferred.doneUnsafe(stopRequested, Effect.void)
      return
    }
    aborted = true
    fiber.interruptUnsafe(fiber.id)
  }
  fiber.addObserver((exit) => {
    process.removeListener("SIGINT", onSignal)
    process.removeListener("SIGTERM", onSignal)
    teardown(exit, (code) => {
      if (aborted || stopping || code !== 0) process.exit(code)
    })
  })
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
})

const args = process.argv.slice(2)
const secrets = Redaction.registry()

// The last resort, for an error thrown outside any fiber (a driver's event without a listener, a callback): one line,
// scrubbed, and exit 1, as for a defect inside the program; never Node's stack trace, which may quote a secret.
const crash = (error: unknown) => {
  process.stderr.write(`${secrets.scrub(Cli.defectLine(error, Cli.wantsTrace(args)))}\n`)
  if (Cli.wantsTrace(args) && error instanceof Error && error.stack !== undefined)
    process.stderr.write(`${secrets.scrub(error.stack)}\n`)
  process.exit(1)
}
process.on("uncaughtException", crash)
process.on("unhandledRejection", crash)

Cli.main(args, version, {
  secrets,
  stop: {
    signal: Deferred.await(stopRequested),
    armed: (on) => {
      streaming = on
    }
  }
}).pipe(Effect.provide(platform), runMain({ disableErrorReporting: true }))
