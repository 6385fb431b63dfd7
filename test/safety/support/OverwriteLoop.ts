/**
 * A child process for test/safety/FileOverwrite.test.ts: once it has loaded and read a line on stdin, it overwrites a
 * file sink directory on the local disk again and again, each time with a complete version of a small data set
 * (see Versions.ts), until it has done `count` overwrites or is killed.
 *
 * node test/safety/support/OverwriteLoop.ts <dir> <first version> <count>
 */
import * as Effect from "effect/Effect"
import * as References from "effect/References"
import * as NodeFileStore from "../../../src/connectors/file/NodeFileStore.ts"
import { overwrite } from "./Versions.ts"

const [dir, first, count] = process.argv.slice(2).map((arg, i) => (i === 0 ? arg : Number(arg))) as [
  string,
  number,
  number
]
const program = Effect.gen(function* () {
  for (let v = first; v < first + count; v++) yield* overwrite(dir, v)
})

process.stdout.write("ready\n")
process.stdin.once("data", () => {
  process.stdin.pause()
  Effect.runPromise(
    program.pipe(Effect.provide(NodeFileStore.layer), Effect.provideService(References.MinimumLogLevel, "None"))
  ).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${String(error)}\n`)
      process.exit(1)
    }
  )
})
