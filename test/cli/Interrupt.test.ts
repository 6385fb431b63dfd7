import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Transactions from "../../scripts/transactions.ts"

const root = nodePath.resolve(import.meta.dirname, "../..")
const main = nodePath.join(root, "src/main.ts")

const waitFor = async (condition: () => boolean, timeoutMs: number) => {
  const started = Date.now()
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error("condition not met in time")
    await new Promise((resolve) => setImmediate(resolve))
  }
}

describe("an interrupted overwrite", () => {
  it("leaves the old data in place when the process is killed mid-write, and the next run replaces it", async () => {
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-kill-"))
    const input = nodePath.join(dir, "in.jsonl")
    Transactions.writeFile(input, 300_000, { clean: true })
    const out = nodePath.join(dir, "out")
    const config = nodePath.join(dir, "p.json")
    fs.writeFileSync(
      config,
      JSON.stringify({
        name: "kill",
        source: { type: "file", path: input, schema: "transaction" },
        sink: { type: "file", path: out, format: { type: "jsonl" }, mode: "overwrite", max_records_per_file: 1000 }
      })
    )
    fs.mkdirSync(out)
    fs.writeFileSync(nodePath.join(out, "part-old.jsonl"), '{"old":true}\n')
    fs.writeFileSync(nodePath.join(out, "_SUCCESS"), "")

    const child = spawn(process.execPath, [main, "run", config, "--quiet"], { cwd: root, stdio: "ignore" })
    const staging = () => fs.readdirSync(dir).some((name) => name.startsWith(".out.staging-"))
    const stagedParts = () => {
      const name = fs.readdirSync(dir).find((n) => n.startsWith(".out.staging-"))
      return name === undefined ? 0 : fs.readdirSync(nodePath.join(dir, name)).length
    }
    await waitFor(() => staging() && stagedParts() >= 2, 60_000)
    child.kill("SIGKILL")
    await new Promise((resolve) => child.once("exit", resolve))

    assert.deepStrictEqual(fs.readdirSync(out).sort(), ["_SUCCESS", "part-old.jsonl"])
    assert.strictEqual(fs.readFileSync(nodePath.join(out, "part-old.jsonl"), "utf8"), '{"old":true}\n')

    const rerun = spawnSync(process.execPath, [main, "run", config, "--quiet"], { cwd: root, encoding: "utf8" })
    assert.strictEqual(rerun.status, 0, rerun.stderr)
    const parts = fs.readdirSync(out).filter((n) => n.startsWith("part-"))
    // 1,000 records per file; on threads each part of the input ends its own last file.
    assert.isAtLeast(parts.length, 300)
    assert.notInclude(parts, "part-old.jsonl")
    const lines = parts.reduce(
      (sum, name) =>
        sum +
        fs
          .readFileSync(nodePath.join(out, name), "utf8")
          .split("\n")
          .filter((l) => l !== "").length,
      0
    )
    assert.strictEqual(lines, 300_000)
    // the killed run's staging directory is gone: its process has ended
    assert.deepStrictEqual(
      fs.readdirSync(dir).filter((name) => name.includes("staging")),
      []
    )
    fs.rmSync(dir, { recursive: true, force: true })
  })
})
