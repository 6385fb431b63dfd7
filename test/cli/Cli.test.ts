import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import avro from "avsc"

const root = nodePath.resolve(import.meta.dirname, "../..")

const cli = (
  args: ReadonlyArray<string>,
  options?: { readonly env?: Record<string, string>; readonly input?: string }
) => {
  const result = spawnSync(process.execPath, [nodePath.join(root, "src/main.ts"), ...args], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ...options?.env },
    ...(options?.input === undefined ? {} : { input: options.input })
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const tmp = () => fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-cli-"))

const quickstart = JSON.parse(fs.readFileSync(nodePath.join(root, "examples/quickstart.json"), "utf8")) as Record<
  string,
  Record<string, unknown>
>

const writeConfig = (dir: string, config: unknown) => {
  const file = nodePath.join(dir, "pipeline.json")
  fs.writeFileSync(file, typeof config === "string" ? config : JSON.stringify(config, null, 2))
  return file
}

const noStackTrace = (text: string) => assert.notMatch(text, /\n\s+at .+:\d+:\d+/)

describe("CLI", () => {
  it("runs the quickstart config: Avro out, dead letters with reasons, a RunReport on stdout", () => {
    const dir = tmp()
    const config = {
      ...quickstart,
      sink: { ...quickstart.sink, path: nodePath.join(dir, "settled") },
      dead_letters: { ...quickstart.dead_letters, path: nodePath.join(dir, "dead") }
    }
    const { code, stdout, stderr } = cli(["run", writeConfig(dir, config), "--quiet"])
    assert.strictEqual(code, 0, stderr)
    const report = JSON.parse(stdout) as {
      status: string
      records: { read: number; written: number; filtered: number; rejected: number; deadLettered: number }
      reconciliation: { ok: boolean }
    }
    assert.strictEqual(report.status, "succeeded")
    assert.strictEqual(report.records.read, 2000)
    assert.strictEqual(report.records.read, report.records.written + report.records.filtered + report.records.rejected)
    assert.strictEqual(report.records.deadLettered, report.records.rejected)
    assert.isTrue(report.reconciliation.ok)
    const parts = fs.readdirSync(nodePath.join(dir, "settled"))
    assert.include(parts, "_SUCCESS")
    assert.isTrue(parts.some((p) => p.endsWith(".avro")))
    const dead = fs
      .readdirSync(nodePath.join(dir, "dead"))
      .filter((f) => f.endsWith(".jsonl"))
      .flatMap((f) =>
        fs
          .readFileSync(nodePath.join(dir, "dead", f), "utf8")
          .trim()
          .split("\n")
      )
      .map((l) => JSON.parse(l) as { reason: string; origin?: string })
    assert.strictEqual(dead.length, report.records.rejected)
    assert.isTrue(dead.some((d) => d.reason === "decode-error" && d.origin?.includes("transactions.jsonl:") === true))
    assert.isTrue(dead.some((d) => d.reason === "rule:amount-range"))
    for (const line of stderr.trim().split("\n")) {
      const log = JSON.parse(line) as { runId?: string; pipeline?: string }
      assert.strictEqual(log.pipeline, "quickstart")
      assert.isString(log.runId)
    }
  })

  it("run --threads reads a big JSON Lines file in ranges on threads: the Avro records and the report of one thread", async () => {
    const dir = tmp()
    const lines: Array<string> = []
    const source = fs.readFileSync(nodePath.join(root, "examples/data/transactions.jsonl"), "utf8").trim().split("\n")
    for (let copy = 0; copy < 40; copy++) lines.push(...source)
    const input = nodePath.join(dir, "transactions.jsonl")
    fs.writeFileSync(input, `${lines.join("\n")}\n`)
    const config = (out: string) => ({
      ...quickstart,
      source: { ...quickstart.source, path: input },
      sink: { ...quickstart.sink, path: nodePath.join(dir, out, "settled"), format: { type: "avro", codec: "null" } },
      dead_letters: { ...quickstart.dead_letters, path: nodePath.join(dir, out, "dead") },
      quality: { max_rejected_ratio: 0.1 }
    })
    const run = (out: string, threads: string) => {
      const file = nodePath.join(dir, `${out}.json`)
      fs.writeFileSync(file, JSON.stringify(config(out)))
      const result = cli(["run", file, "--quiet", "--threads", threads, "--part-bytes", "1000000"])
      assert.strictEqual(result.code, 0, result.stderr.split("\n").slice(-3).join("\n"))
      return JSON.parse(result.stdout) as { records: Record<string, unknown>; status: string }
    }
    const one = run("one", "1")
    const two = run("two", "2")
    assert.deepStrictEqual(two.records, one.records)
    assert.strictEqual(two.status, "succeeded")
    const avroFiles = (out: string) => {
      const files = fs.readdirSync(nodePath.join(dir, out, "settled")).filter((f) => f.endsWith(".avro"))
      return { files: files.length, bytes: files.map((f) => fs.readFileSync(nodePath.join(dir, out, "settled", f))) }
    }
    // On threads each part writes its own files; the records are the same, in the same order.
    assert.isAbove(avroFiles("two").files, avroFiles("one").files)
    const records = async (out: string) => {
      const all: Array<unknown> = []
      const settled = nodePath.join(dir, out, "settled")
      for (const file of fs
        .readdirSync(settled)
        .filter((f) => f.endsWith(".avro"))
        .sort())
        await new Promise((resolve, reject) =>
          avro
            .createFileDecoder(nodePath.join(settled, file))
            .on("data", (record: unknown) => all.push(record))
            .on("end", resolve)
            .on("error", reject)
        )
      return all
    }
    const written = await records("two")
    assert.strictEqual(written.length, two.records.written)
    assert.strictEqual(JSON.stringify(written), JSON.stringify(await records("one")))
    const refused = cli(["run", nodePath.join(dir, "one.json"), "--threads", "0"])
    assert.strictEqual(refused.code, 2)
    assert.include(refused.stderr, "--threads must be 1 or more")
  })

  it("run --threads runs a pipeline module on threads: each worker imports the module", () => {
    const dir = tmp()
    const input = nodePath.join(dir, "orders.jsonl")
    const lines = Array.from({ length: 30_000 }, (_, i) =>
      i % 4999 === 0 ? "{broken" : JSON.stringify({ id: i, amount: i % 1000 })
    )
    fs.writeFileSync(input, `${lines.join("\n")}\n`)
    const run = (out: string, threads: string) => {
      const result = cli(
        ["run", "test/fixtures/threads-module.ts", "--quiet", "--threads", threads, "--part-bytes", "100000"],
        { env: { THREADS_INPUT: input, THREADS_OUTPUT: nodePath.join(dir, out) } }
      )
      assert.strictEqual(result.code, 0, result.stderr.split("\n").slice(-3).join("\n"))
      return JSON.parse(result.stdout) as { records: Record<string, number> }
    }
    const one = run("one", "1")
    const two = run("two", "2")
    assert.deepStrictEqual(two.records, one.records)
    assert.strictEqual(two.records.deadLettered, 7)
    const read = (out: string) =>
      fs
        .readdirSync(nodePath.join(dir, out))
        .filter((f) => f.endsWith(".jsonl"))
        .sort()
        .map((f) => fs.readFileSync(nodePath.join(dir, out, f), "utf8"))
        .join("")
    assert.isAbove(fs.readdirSync(nodePath.join(dir, "two")).length, 3)
    assert.strictEqual(read("two"), read("one"))
  })

  it("runs the daily-revenue example: a window and an aggregate into user summaries", () => {
    const dir = tmp()
    const example = JSON.parse(fs.readFileSync(nodePath.join(root, "examples/daily-revenue.json"), "utf8")) as Record<
      string,
      Record<string, unknown>
    >
    const out = nodePath.join(dir, "summary")
    const config = {
      ...example,
      sink: { ...example.sink, path: out, format: { type: "jsonl" } },
      dead_letters: { ...example.dead_letters, path: nodePath.join(dir, "dead") }
    }
    const { code, stdout, stderr } = cli(["run", writeConfig(dir, config), "--quiet"])
    assert.strictEqual(code, 0, stderr)
    const report = JSON.parse(stdout) as { records: { read: number; filtered: number; rejected: number } }
    const rows = fs
      .readdirSync(out)
      .filter((f) => f.endsWith(".jsonl"))
      .flatMap((f) => fs.readFileSync(nodePath.join(out, f), "utf8").trim().split("\n"))
      .map((l) => JSON.parse(l) as { transactionCount: number; windowStart: string; windowEnd: string })
    const counted = rows.reduce((n, r) => n + r.transactionCount, 0)
    assert.strictEqual(counted, report.records.read - report.records.filtered - report.records.rejected)
    for (const r of rows) assert.strictEqual(Date.parse(r.windowEnd) - Date.parse(r.windowStart), 86_400_000)
  })

  it("validate prints what the pipeline would do", () => {
    const { code, stdout } = cli(["validate", "examples/quickstart.json"])
    assert.strictEqual(code, 0)
    assert.include(stdout, "examples/quickstart.json is valid.")
    assert.include(stdout, 'transform    filter: filter status == "settled"')
    assert.include(stdout, "sink         sink: files under examples/out/settled/ (avro (codec deflate)) [overwrite]")
    const module = cli(["validate", "examples/quickstart.ts"])
    assert.strictEqual(module.code, 2)
    assert.include(module.stderr, "validate checks JSON configs")
    const daily = cli(["validate", "examples/daily-revenue.json"])
    assert.strictEqual(daily.code, 0, daily.stderr)
    assert.include(daily.stdout, "window")
  })

  it("exits 2 with the JSON path for a wrong type, an unknown key, a missing file and malformed JSON", () => {
    const dir = tmp()
    const wrongType = cli([
      "validate",
      writeConfig(dir, { ...quickstart, source: { ...quickstart.source, batch_size: "x" } })
    ])
    assert.strictEqual(wrongType.code, 2)
    assert.include(wrongType.stderr, '$.source.batch_size: Expected number, got "x"')
    noStackTrace(wrongType.stderr)

    const unknownKey = cli(["validate", writeConfig(dir, { ...quickstart, sinks: {} })])
    assert.strictEqual(unknownKey.code, 2)
    assert.include(unknownKey.stderr, "$.sinks: Unknown key")

    const missing = cli(["validate", nodePath.join(dir, "nope.json")])
    assert.strictEqual(missing.code, 2)
    assert.include(missing.stderr, "Cannot read the config: no such file")

    const malformed = cli(["validate", writeConfig(dir, '{ "name": "x", }')])
    assert.strictEqual(malformed.code, 2)
    assert.include(malformed.stderr, "Malformed JSON at line 1")
    noStackTrace(malformed.stderr)

    const unknownField = cli([
      "validate",
      writeConfig(dir, { ...quickstart, transforms: [{ type: "filter", condition: 'stauts == "settled"' }] })
    ])
    assert.strictEqual(unknownField.code, 2)
    assert.include(unknownField.stderr, "$.transforms[0].condition")
    assert.include(unknownField.stderr, 'did you mean "status"')
  })

  it("exits 1 when the run fails, still printing the report, and leaves no output behind", () => {
    const dir = tmp()
    const config = {
      ...quickstart,
      sink: { ...quickstart.sink, path: nodePath.join(dir, "settled") },
      dead_letters: { ...quickstart.dead_letters, path: nodePath.join(dir, "dead") },
      quality: { max_rejected: 0 }
    }
    const { code, stdout, stderr } = cli(["run", writeConfig(dir, config)])
    assert.strictEqual(code, 1)
    const report = JSON.parse(stdout) as { status: string; error: { tag: string; message: string } }
    assert.strictEqual(report.status, "failed")
    assert.strictEqual(report.error.tag, "QualityError")
    assert.include(stderr, "more than the allowed 0")
    assert.isFalse(fs.existsSync(nodePath.join(dir, "settled")))
  })

  it("runs a typed pipeline module", () => {
    const dir = tmp()
    const { code, stdout, stderr } = cli(["run", "examples/quickstart.ts", "--quiet"])
    assert.strictEqual(code, 0, stderr)
    const report = JSON.parse(stdout) as { status: string; records: { read: number } }
    assert.strictEqual(report.status, "succeeded")
    assert.strictEqual(report.records.read, 2000)
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("lists and shows schemas, and names the available ones when a schema is unknown", () => {
    const list = cli(["schema", "list"])
    assert.strictEqual(list.code, 0)
    assert.include(list.stdout, "transaction")
    const show = cli(["schema", "show", "transaction"])
    assert.strictEqual(show.code, 0)
    assert.strictEqual((JSON.parse(show.stdout) as { name: string }).name, "Transaction")
    const nope = cli(["schema", "show", "nope"])
    assert.strictEqual(nope.code, 2)
    assert.include(nope.stderr, "transaction")
    noStackTrace(nope.stderr)
  })

  it('keeps secrets in the vault and resolves {"$secret"} references in configs', () => {
    const dir = tmp()
    const env = { ETL_VAULT_FILE: nodePath.join(dir, "vault.json"), ETL_VAULT_PASSPHRASE: "test passphrase" }
    const set = cli(["vault", "set", "input-path"], { env, input: "examples/data/transactions.jsonl\n" })
    assert.strictEqual(set.code, 0, set.stderr)
    const list = cli(["vault", "list"], { env })
    assert.strictEqual(list.stdout.trim(), "input-path")
    assert.notInclude(fs.readFileSync(env.ETL_VAULT_FILE, "utf8"), "transactions")
    const config = writeConfig(dir, {
      ...quickstart,
      source: { ...quickstart.source, path: { $secret: "input-path" } }
    })
    const valid = cli(["validate", config], { env })
    assert.strictEqual(valid.code, 0, valid.stderr)
    assert.include(valid.stdout, "files examples/data/transactions.jsonl")
    const locked = cli(["validate", config], { env: { ...env, ETL_VAULT_PASSPHRASE: "wrong" } })
    assert.strictEqual(locked.code, 2)
    assert.include(locked.stderr, "$.source.path: Cannot open the vault")
  })

  it("has --help on every command and exits 2 on bad usage", () => {
    for (const args of [["--help"], ["run", "--help"], ["validate", "--help"], ["schema", "show", "--help"]]) {
      const { code, stdout } = cli(args)
      assert.strictEqual(code, 0, args.join(" "))
      assert.include(stdout, "USAGE")
    }
    const bad = cli(["run"])
    assert.strictEqual(bad.code, 2)
    const unknown = cli(["frobnicate"])
    assert.strictEqual(unknown.code, 2)
  })

  it("writes pretty log lines with --log-format pretty or ETL_LOG_FORMAT, and refuses an unknown format", () => {
    const dir = tmp()
    const config = writeConfig(dir, {
      ...quickstart,
      sink: { ...quickstart.sink, path: nodePath.join(dir, "settled") },
      dead_letters: { ...quickstart.dead_letters, path: nodePath.join(dir, "dead") }
    })
    for (const run of [
      cli(["run", config, "--quiet", "--log-format", "pretty"]),
      cli(["run", config, "--quiet"], { env: { ETL_LOG_FORMAT: "pretty" } })
    ]) {
      assert.strictEqual(run.code, 0, run.stderr)
      const lines = run.stderr.trim().split("\n")
      assert.match(lines[0]!, /^\d\d:\d\d:\d\d\.\d\d\d INFO {2}\[quickstart\] run started: quickstart$/)
      assert.isTrue(lines.some((l) => / WARN {2}\[quickstart\/validate\] /.test(l)))
      assert.notInclude(run.stderr, "\x1b[")
      assert.notInclude(run.stderr, "runId")
    }
    const json = cli(["run", config, "--quiet", "--log-format", "json"], { env: { ETL_LOG_FORMAT: "pretty" } })
    assert.strictEqual(json.code, 0, json.stderr)
    assert.strictEqual((JSON.parse(json.stderr.split("\n")[0]!) as { level: string }).level, "info")
    const bad = cli(["run", config, "--quiet"], { env: { ETL_LOG_FORMAT: "xml" } })
    assert.strictEqual(bad.code, 2)
    assert.include(bad.stderr, 'ETL_LOG_FORMAT is "xml": it must be pretty or json')
    assert.include(cli(["run", "--help"]).stdout, "--log-format <pretty|json>")
  })
})
