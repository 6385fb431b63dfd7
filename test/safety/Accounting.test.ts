import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"

const root = nodePath.resolve(import.meta.dirname, "../..")

const cli = (cwd: string, args: ReadonlyArray<string>) => {
  const result = spawnSync(process.execPath, [nodePath.join(root, "src/main.ts"), ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" }
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const lines = (dir: string): ReadonlyArray<Record<string, unknown>> =>
  fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => f.endsWith(".jsonl"))
        .flatMap((f) =>
          fs
            .readFileSync(nodePath.join(dir, f), "utf8")
            .split("\n")
            .filter((l) => l !== "")
            .map((l) => JSON.parse(l) as Record<string, unknown>)
        )
    : []

/** A project directory with `n` records in `in/data.jsonl`, and a config writer. */
const project = (amounts: ReadonlyArray<number>) => {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-safety-"))
  fs.mkdirSync(nodePath.join(dir, "in"))
  fs.writeFileSync(
    nodePath.join(dir, "in/data.jsonl"),
    amounts.map((amount, i) => JSON.stringify({ id: i, amount })).join("\n")
  )
  const config = (extra: Record<string, unknown>) => {
    const file = nodePath.join(dir, "pipeline.json")
    fs.writeFileSync(
      file,
      JSON.stringify({
        name: "accounting",
        source: { type: "file", path: "in/data.jsonl" },
        transforms: [{ type: "validate", rules: [{ rule: "range", field: "amount", min: 0 }] }],
        sink: { type: "file", path: "out", format: { type: "jsonl" }, mode: "overwrite" },
        ...extra
      })
    )
    return file
  }
  return { dir, config }
}

const rewrite = (dir: string, amounts: ReadonlyArray<number>) =>
  fs.writeFileSync(
    nodePath.join(dir, "in/data.jsonl"),
    amounts.map((amount, i) => JSON.stringify({ id: i, amount })).join("\n")
  )

describe("every record is accounted for (issue 9, case 1)", () => {
  it("an overwrite whose every record is rejected fails and leaves the good data in place", () => {
    const { dir, config } = project(Array.from({ length: 48 }, (_, i) => i))
    const deadLetters = { type: "file", path: "rejected", format: { type: "jsonl" } }
    const first = cli(dir, ["run", "--quiet", config({ dead_letters: deadLetters })])
    assert.strictEqual(first.code, 0, first.stderr)
    assert.strictEqual(lines(nodePath.join(dir, "out")).length, 48)

    rewrite(
      dir,
      Array.from({ length: 100 }, () => -1)
    )
    const second = cli(dir, ["run", "--quiet", config({ dead_letters: deadLetters })])
    assert.strictEqual(second.code, 1)
    const failedReport = JSON.parse(second.stdout) as { status: string; error: { message: string } }
    assert.strictEqual(failedReport.status, "failed")
    assert.include(failedReport.error.message, "an overwrite would replace the existing data with nothing")
    assert.include(failedReport.error.message, "allow_empty_overwrite")
    assert.strictEqual(lines(nodePath.join(dir, "out")).length, 48)

    const allowed = cli(dir, [
      "run",
      "--quiet",
      config({ dead_letters: deadLetters, quality: { allow_empty_overwrite: true } })
    ])
    assert.strictEqual(allowed.code, 0, allowed.stderr)
    assert.strictEqual(lines(nodePath.join(dir, "out")).length, 0)
    assert.strictEqual(lines(nodePath.join(dir, "rejected")).length, 100)
  })

  it("rejected records without a dead-letter sink fail the run unless the config drops them by name", () => {
    const { dir, config } = project([...Array.from({ length: 100 }, () => -5), 1, 2, 3])
    const failed = cli(dir, ["run", "--quiet", config({})])
    assert.strictEqual(failed.code, 1)
    const failedReport = JSON.parse(failed.stdout) as { status: string; error: { message: string } }
    assert.include(failedReport.error.message, "validate rejected a record and the pipeline has no dead-letter sink")
    assert.include(failedReport.error.message, '"drop_rejected": ["validate"]')
    assert.isFalse(fs.existsSync(nodePath.join(dir, "out")))

    const dropped = cli(dir, ["run", "--quiet", config({ quality: { drop_rejected: ["validate"] } })])
    assert.strictEqual(dropped.code, 0, dropped.stderr)
    const report = JSON.parse(dropped.stdout) as { records: Record<string, number> }
    assert.deepInclude(report.records, { read: 103, written: 3, rejected: 100, dropped: 100, deadLettered: 0 })
    assert.strictEqual(lines(nodePath.join(dir, "out")).length, 3)

    const otherStage = cli(dir, ["run", "--quiet", config({ quality: { drop_rejected: ["some-other-stage"] } })])
    assert.strictEqual(otherStage.code, 1)
  })
})
