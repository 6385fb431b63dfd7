import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { pgUrl } from "../support/Databases.ts"

const root = nodePath.resolve(import.meta.dirname, "../..")

const cli = (
  cwd: string,
  args: ReadonlyArray<string>,
  options?: { readonly env?: Record<string, string>; readonly input?: string }
) => {
  const result = spawnSync(process.execPath, [nodePath.join(root, "src/main.ts"), ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ...options?.env },
    ...(options?.input === undefined ? {} : { input: options.input })
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, all: result.stdout + result.stderr }
}

const project = () => {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-safety-cli-"))
  fs.writeFileSync(
    nodePath.join(dir, "in.jsonl"),
    Array.from({ length: 8 }, (_, i) =>
      JSON.stringify({ id: i, t: new Date(Date.UTC(2026, 0, 1, 0, i * 10)).toISOString() })
    ).join("\n")
  )
  const config = (value: unknown) => {
    const file = nodePath.join(dir, "pipeline.json")
    fs.writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value))
    return file
  }
  return { dir, config }
}

const base = {
  name: "safety",
  source: { type: "file", path: "in.jsonl" },
  sink: { type: "file", path: "out", format: { type: "jsonl" } }
}

/** The lines of stderr that are not JSON log lines: what a person reads. */
const plainLines = (stderr: string) => stderr.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("{"))

const stackTrace = /\n\s+at .+:\d+:\d+/

const pgServer = new URL(pgUrl)

const suffix = () => crypto.randomUUID().replaceAll("-", "").slice(0, 10)

describe("the CLI never exits without a message", () => {
  it("a config nested 3,000 or 50,000 levels deep exits 2 naming the JSON path", () => {
    const { dir, config } = project()
    for (const [depth, open, close] of [
      [3_000, '{"a":', "}"],
      [50_000, "[", "]"]
    ] as const) {
      const file = config(`{"name":"t","description":${open.repeat(depth)}1${close.repeat(depth)}}`)
      const { code, stderr } = cli(dir, ["validate", file])
      assert.strictEqual(code, 2, stderr)
      assert.include(stderr, "$.description")
      assert.include(stderr, "Nested deeper than 64 levels")
      assert.notMatch(stderr, stackTrace)
    }
  })

  it("a defect in the program prints one line with the --log-level debug hint and exits 1; the flag shows the trace", () => {
    const { dir } = project()
    const module = nodePath.join(root, "test/safety/fixtures/DefectPipeline.ts")
    const env = { ETL_DEFECT_INPUT: "in.jsonl", ETL_DEFECT_OUTPUT: "out" }
    const plain = cli(dir, ["run", module, "--quiet"], { env })
    assert.strictEqual(plain.code, 1)
    const [line, ...more] = plainLines(plain.stderr)
    assert.deepStrictEqual(more, [])
    assert.include(line, "unexpected error (RangeError: simulated bug in a derive function")
    assert.include(line, "--log-level debug")
    assert.notMatch(plain.stderr, stackTrace)
    const debug = cli(dir, ["run", module, "--quiet", "--log-level", "debug"], { env })
    assert.strictEqual(debug.code, 1)
    assert.include(debug.stderr, "Its trace follows.")
    assert.match(debug.stderr, /\n\s+at doubled .+DefectPipeline\.ts:\d+:\d+/)
  })

  it("an exception thrown outside the program prints one line, not Node's stack trace, and exits 1", () => {
    const { dir } = project()
    const { code, stderr } = cli(dir, ["run", nodePath.join(root, "test/safety/fixtures/CrashPipeline.ts"), "--quiet"])
    assert.strictEqual(code, 1)
    const crash = plainLines(stderr).filter((l) => l.includes("simulated crash"))
    assert.lengthOf(crash, 1)
    assert.include(crash[0], "unexpected error (TypeError: simulated crash outside the program")
    assert.include(crash[0], "--log-level debug")
    assert.notMatch(stderr, stackTrace)
  })
})

describe("values from $env and $secret never appear in what the CLI prints", () => {
  it("a user name from $env that the server rejects", () => {
    const { dir, config } = project()
    const role = `etl_safety_role_${suffix()}`
    const file = config({
      ...base,
      connections: {
        db: {
          type: "postgres",
          host: pgServer.hostname,
          port: Number(pgServer.port || 5432),
          database: pgServer.pathname.slice(1),
          user: { $env: "ETL_SAFETY_PG_USER" }
        }
      },
      sink: { type: "postgres", connection: "db", table: "anything" }
    })
    const { code, all } = cli(dir, ["run", file, "--quiet"], { env: { ETL_SAFETY_PG_USER: role } })
    assert.strictEqual(code, 1, all)
    assert.notInclude(all, role)
    assert.include(all, "<redacted>")
  })

  it("a table name from the vault that does not exist", () => {
    const { dir, config } = project()
    const table = `etl_safety_secret_table_${suffix()}`
    const env = { ETL_VAULT_FILE: nodePath.join(dir, "vault.json"), ETL_VAULT_PASSPHRASE: "test passphrase" }
    assert.strictEqual(cli(dir, ["vault", "set", "table"], { env, input: table }).code, 0)
    const file = config({
      ...base,
      connections: { db: { type: "postgres", url: pgUrl } },
      sink: { type: "postgres", connection: "db", table: { $secret: "table" } }
    })
    const { code, all } = cli(dir, ["run", file, "--quiet"], { env })
    assert.strictEqual(code, 1, all)
    assert.notInclude(all, table)
    assert.include(all, "<redacted>")
  })

  it("a connection name from $env that is not declared", () => {
    const { dir, config } = project()
    const name = `conn-${suffix()}`
    const file = config({
      ...base,
      connections: { db: { type: "postgres", url: pgUrl } },
      sink: { type: "postgres", connection: { $env: "ETL_SAFETY_CONNECTION" }, table: "t" }
    })
    const { code, stderr } = cli(dir, ["validate", file], { env: { ETL_SAFETY_CONNECTION: name } })
    assert.strictEqual(code, 2)
    assert.include(stderr, '$.sink.connection: Unknown connection "<redacted>"')
    assert.notInclude(stderr, name)
  })
})

describe("harmful config values stop the CLI before anything runs", () => {
  it("a negative allowed lateness and an overwrite of the working directory exit 2 and touch nothing", () => {
    const { dir, config } = project()
    const late = cli(dir, [
      "run",
      config({
        ...base,
        source: { ...base.source, format: { type: "jsonl" } },
        transforms: [
          { type: "cast", fields: { t: "timestamp" } },
          { type: "window", kind: "tumbling", size: "1 hour", time: "t", allowed_lateness: "-1 hours" }
        ]
      }),
      "--quiet"
    ])
    assert.strictEqual(late.code, 2, late.all)
    assert.include(late.stderr, "$.transforms[1].allowed_lateness: Expected a duration that is not negative")
    assert.isFalse(fs.existsSync(nodePath.join(dir, "out")))
    const before = fs.readdirSync(dir).sort()
    const wipe = cli(dir, ["run", config({ ...base, sink: { ...base.sink, path: ".", mode: "overwrite" } }), "--quiet"])
    assert.strictEqual(wipe.code, 2, wipe.all)
    assert.include(wipe.stderr, "$.sink.path: This is the working directory")
    assert.deepStrictEqual(fs.readdirSync(dir).sort(), before)
  })

  it("a vault file naming scrypt costs above the vault's own is refused with the reason", () => {
    const { dir, config } = project()
    const env = { ETL_VAULT_FILE: nodePath.join(dir, "vault.json"), ETL_VAULT_PASSPHRASE: "test passphrase" }
    assert.strictEqual(cli(dir, ["vault", "set", "path"], { env, input: "in.jsonl" }).code, 0)
    const stored = JSON.parse(fs.readFileSync(env.ETL_VAULT_FILE, "utf8")) as { kdf: Record<string, unknown> }
    fs.writeFileSync(env.ETL_VAULT_FILE, JSON.stringify({ ...stored, kdf: { ...stored.kdf, N: 1 << 20 } }))
    const file = config({ ...base, source: { ...base.source, path: { $secret: "path" } } })
    const { code, stderr } = cli(dir, ["validate", file], { env })
    assert.strictEqual(code, 2)
    assert.include(stderr, "$.source.path: Cannot open the vault")
    assert.include(stderr, "above the ones this vault writes (at most N=32768, r=8, p=1)")
  })
})
