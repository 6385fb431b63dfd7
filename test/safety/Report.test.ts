import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"

const root = nodePath.resolve(import.meta.dirname, "../..")

interface Report {
  readonly status: string
  readonly records: {
    readonly read: number
    readonly written: number
    readonly filtered: number
    readonly rejected: number
    readonly deadLettered: number
    readonly dropped: number
    readonly combined: { readonly in: number; readonly out: number }
  }
  readonly stages: ReadonlyArray<{
    readonly name: string
    readonly recordsIn: number
    readonly recordsOut: number
    readonly rejected: number
    readonly filtered: number
  }>
  readonly sink: { readonly details: { readonly bytes: number } }
  readonly deadLetters: { readonly written: number }
  readonly reconciliation: { readonly ok: boolean }
}

const run = (dir: string, config: unknown): Report => {
  fs.writeFileSync(nodePath.join(dir, "p.json"), JSON.stringify(config))
  const result = spawnSync(process.execPath, [nodePath.join(root, "src/main.ts"), "run", "--quiet", "p.json"], {
    cwd: dir,
    encoding: "utf8"
  })
  assert.strictEqual(result.status, 0, result.stderr)
  return JSON.parse(result.stdout) as Report
}

const sizeOf = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((f) => f.startsWith("part-"))
    .reduce((acc, f) => acc + fs.statSync(nodePath.join(dir, f)).size, 0)

describe("the RunReport adds up for every pipeline shape (issue 9, case 12)", () => {
  it("a window and its aggregate are two stages, late records are the window's, and read + combined out = written + filtered + rejected + combined in", () => {
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-report-"))
    const base = Date.parse("2026-11-01T00:00:00Z")
    const events = Array.from({ length: 500 }, (_, i) => ({
      user: `u${i % 7}`,
      amount: (i % 13) + 0.5,
      // mostly in order; every 50th record is two hours late
      at: new Date(base + i * 60_000 - (i % 50 === 49 ? 2 * 3_600_000 : 0)).toISOString()
    }))
    fs.writeFileSync(nodePath.join(dir, "events.jsonl"), events.map((e) => JSON.stringify(e)).join("\n"))
    const report = run(dir, {
      name: "report",
      source: { type: "file", path: "events.jsonl" },
      transforms: [
        { type: "cast", fields: { at: "timestamp" } },
        { type: "filter", condition: 'user != "u0"' },
        { type: "window", kind: "tumbling", size: "1 hour", time: "at", allowed_lateness: "10 minutes" },
        {
          type: "aggregate",
          group_by: ["user", "windowStart", "windowEnd"],
          fields: { total: { fn: "sum", field: "amount" }, n: { fn: "count" } }
        }
      ],
      sink: { type: "file", path: "out", format: { type: "jsonl" } },
      dead_letters: { type: "file", path: "rejected", format: { type: "jsonl" } }
    })
    assert.strictEqual(report.status, "succeeded")
    assert.isTrue(report.reconciliation.ok)
    const names = report.stages.map((s) => s.name)
    assert.includeMembers(names, ["window", "aggregate"])
    const window = report.stages.find((s) => s.name === "window")!
    const aggregate = report.stages.find((s) => s.name === "aggregate")!
    const late = events.filter((e, i) => i % 50 === 49 && e.user !== "u0").length
    assert.isAbove(late, 0)
    assert.strictEqual(window.rejected, late)
    assert.strictEqual(aggregate.rejected, 0)
    const letters = fs
      .readFileSync(
        nodePath.join(
          dir,
          "rejected",
          fs.readdirSync(nodePath.join(dir, "rejected")).find((f) => f.startsWith("part-"))!
        ),
        "utf8"
      )
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { stage: string; reason: string })
    assert.isTrue(letters.every((l) => l.stage === "window" && l.reason === "late"))
    const r = report.records
    assert.strictEqual(r.read, 500)
    assert.strictEqual(r.read + r.combined.out, r.written + r.filtered + r.rejected + r.combined.in)
    assert.strictEqual(r.rejected, r.deadLettered + r.dropped)
    assert.strictEqual(r.deadLettered, late)
    const written = fs
      .readdirSync(nodePath.join(dir, "out"))
      .filter((f) => f.startsWith("part-"))
      .flatMap((f) =>
        fs
          .readFileSync(nodePath.join(dir, "out", f), "utf8")
          .trim()
          .split("\n")
      )
    assert.strictEqual(r.written, written.length)
  })

  it("a file sink reports the bytes it wrote", () => {
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-report-"))
    fs.writeFileSync(
      nodePath.join(dir, "in.jsonl"),
      Array.from({ length: 300 }, (_, i) => JSON.stringify({ id: i, name: `n${i}` })).join("\n")
    )
    const report = run(dir, {
      name: "bytes",
      source: { type: "file", path: "in.jsonl" },
      sink: { type: "file", path: "out", format: { type: "jsonl" } }
    })
    assert.isAbove(report.sink.details.bytes, 0)
    assert.strictEqual(report.sink.details.bytes, sizeOf(nodePath.join(dir, "out")))
  })
})
