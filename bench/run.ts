/**
 * `npm run bench`: runs the benchmarks one after the other, each in its own process, and prints where each wrote
 * its results (bench/results/*.json). Pass names to run only some: `npm run bench -- file complex`.
 * Benchmarks are never part of `npm test`.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"

const dir = import.meta.dirname
const available = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts")
  .map((f) => f.slice(0, -3))
  .sort()
const wanted = process.argv.slice(2)
const unknown = wanted.filter((w) => !available.includes(w))
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")}; available: ${available.join(", ")}`)
  process.exit(2)
}
let failed = 0
for (const name of wanted.length > 0 ? wanted : available) {
  console.log(`\n=== bench/${name}.ts ===`)
  const run = spawnSync(process.execPath, [nodePath.join(dir, `${name}.ts`)], { stdio: "inherit", env: process.env })
  if (run.status !== 0) {
    failed++
    console.error(`bench/${name}.ts failed (exit ${run.status})`)
  }
}
console.log(`\nresults in ${nodePath.join(dir, "results")}`)
process.exit(failed === 0 ? 0 : 1)
