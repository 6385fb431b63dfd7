import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"

const root = nodePath.resolve(import.meta.dirname, "../..")

const cli = (args: ReadonlyArray<string>) => {
  const result = spawnSync(process.execPath, [nodePath.join(root, "src/main.ts"), ...args], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" }
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const quickstart = JSON.parse(fs.readFileSync(nodePath.join(root, "examples/quickstart.json"), "utf8")) as {
  readonly transforms: ReadonlyArray<{ readonly rules?: ReadonlyArray<Record<string, unknown>> }>
} & Record<string, unknown>

const lines = (dir: string): ReadonlyArray<Record<string, unknown>> =>
  fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => f.endsWith(".jsonl"))
        .flatMap((f) => fs.readFileSync(nodePath.join(dir, f), "utf8").trim().split("\n"))
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : []

interface Report {
  readonly status: string
  readonly records: {
    readonly read: number
    readonly written: number
    readonly filtered: number
    readonly deadLettered: number
  }
  readonly reconciliation: { readonly ok: boolean }
}

describe("CLI replay", () => {
  it("replays the quickstart's dead letters after a fix: refused without --force into an append sink, then written", () => {
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-replay-"))
    const config = (currency: string) => ({
      ...quickstart,
      transforms: quickstart.transforms.map((t) =>
        t.rules === undefined
          ? t
          : { ...t, rules: t.rules.map((r) => (r.field === "currency" ? { ...r, regex: currency } : r)) }
      ),
      sink: { type: "file", path: nodePath.join(dir, "settled"), format: { type: "jsonl" }, mode: "append" },
      dead_letters: { type: "file", path: nodePath.join(dir, "dead"), format: { type: "jsonl" } }
    })
    const original = nodePath.join(dir, "pipeline.json")
    fs.writeFileSync(original, JSON.stringify(config("^[A-Z]{3}$")))
    const first = cli(["run", original, "--quiet"])
    assert.strictEqual(first.code, 0, first.stderr)
    const firstReport = JSON.parse(first.stdout) as Report
    const dead = lines(nodePath.join(dir, "dead"))
    assert.strictEqual(dead.length, firstReport.records.deadLettered)
    const lowerCase = dead.filter((d) => d.reason === "rule:currency-pattern").length
    assert.isAbove(lowerCase, 0)

    // The fix: currencies in lower case are accepted.
    const fixed = nodePath.join(dir, "fixed.json")
    fs.writeFileSync(fixed, JSON.stringify(config("^[A-Za-z]{3}$")))
    const from = nodePath.join(dir, "dead")
    const again = nodePath.join(dir, "dead-2")
    const refused = cli(["replay", fixed, "--from", from, "--dead-letters", again, "--quiet"])
    assert.strictEqual(refused.code, 2)
    assert.include(refused.stderr, "appends without keys")
    assert.include(refused.stderr, "--force")
    assert.strictEqual(refused.stdout, "")
    assert.isFalse(fs.existsSync(again))
    assert.strictEqual(lines(nodePath.join(dir, "settled")).length, firstReport.records.written)

    const replayed = cli(["replay", fixed, "--from", from, "--dead-letters", again, "--force", "--quiet"])
    assert.strictEqual(replayed.code, 0, replayed.stderr)
    const report = JSON.parse(replayed.stdout) as Report
    assert.strictEqual(report.status, "succeeded")
    assert.isTrue(report.reconciliation.ok)
    assert.strictEqual(report.records.read, dead.length)
    assert.strictEqual(
      report.records.read,
      report.records.written + report.records.deadLettered + report.records.filtered
    )
    // Every lower-case currency now passes validate; the settled ones among them are written.
    assert.strictEqual(report.records.written + report.records.filtered, lowerCase)
    assert.isAbove(report.records.written, 0)
    assert.strictEqual(
      lines(nodePath.join(dir, "settled")).length,
      firstReport.records.written + report.records.written
    )
    const still = lines(again)
    assert.strictEqual(still.length, dead.length - lowerCase)
    assert.isFalse(still.some((d) => d.reason === "rule:currency-pattern"))
    const decodeErrors = still.filter((d) => d.reason === "decode-error")
    assert.deepStrictEqual(
      decodeErrors.map((d) => d.origin).sort(),
      dead
        .filter((d) => d.reason === "decode-error")
        .map((d) => d.origin)
        .sort()
    )
    assert.isTrue(decodeErrors.every((d) => typeof d.origin === "string" && /transactions\.jsonl:\d+$/.test(d.origin)))
  })

  it("names the problem when --from is missing or the config is a module", () => {
    const missing = cli(["replay", "examples/quickstart.json"])
    assert.strictEqual(missing.code, 2)
    assert.include(missing.stderr, "--from")
    const module = cli(["replay", "test/fixtures/threads-module.ts", "--from", "x"])
    assert.strictEqual(module.code, 2)
    assert.include(module.stderr, "replay takes a JSON config")
  })
})
