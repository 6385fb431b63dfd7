import { spawn } from "node:child_process"
import * as nodePath from "node:path"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { PgTest, pgUrl } from "../support/Databases.ts"

const script = nodePath.join(import.meta.dirname, "scripts/pgOverwriteKill.ts")

const runChild = (args: ReadonlyArray<string>) =>
  Effect.callback<{ code: number | null; stdout: string; stderr: string }>((resume) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString()
    })
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

layer(PgTest.layer, { timeout: 120_000, excludeTestServices: true })(
  "PostgreSQL overwrite under killed backends (issue 9, case 14)",
  (it) => {
    it.effect(
      "terminating the loading backend at random moments never crashes the process and always leaves a complete table",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest
          const table = `kill_${crypto.randomUUID().slice(0, 8)}`
          yield* db.sql(`CREATE TABLE "${table}" (id int PRIMARY KEY, v text NOT NULL)`)
          yield* db.sql(`INSERT INTO "${table}" SELECT i, 'old' FROM generate_series(1, 100) i`)
          const result = yield* runChild([pgUrl, db.schema, table, "30"])
          assert.strictEqual(result.code, 0, `${result.stderr}\n${result.stdout}`)
          const summary = JSON.parse(result.stdout.trim().split("\n").at(-1)!) as {
            iterations: number
            failed: number
            leftovers: number
          }
          assert.strictEqual(summary.iterations, 30)
          assert.isAbove(summary.failed, 0, "some loads were killed")
          assert.strictEqual(summary.leftovers, 0)
        })
    )
  }
)
