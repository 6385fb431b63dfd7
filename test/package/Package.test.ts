import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { MysqlTest, mysqlUrl, PgTest, pgUrl } from "../support/Databases.ts"

const root = nodePath.resolve(import.meta.dirname, "../..")
const bin = (name: string) => nodePath.join(root, "node_modules/.bin", name)

/** The environment of child processes: npm's variables of the outer `npm test` would steer the inner npm. */
const childEnv = (extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_"))),
  ...extra
})

const run = (command: string, args: ReadonlyArray<string>, cwd: string, env?: Readonly<Record<string, string>>) => {
  const result = spawnSync(command, args, { cwd, env: childEnv(env), encoding: "utf8", maxBuffer: 64 << 20 })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, output: result.stdout + result.stderr }
}

/**
 * Packs the project as `npm pack` would after its `prepack` build, but into a scratch copy, so that the test never
 * rebuilds the checkout's own dist/ while other tests run.
 */
const pack = (work: string): string => {
  const staged = nodePath.join(work, "package")
  fs.mkdirSync(staged)
  for (const entry of ["package.json", "README.md", "schemas", "src"])
    fs.cpSync(nodePath.join(root, entry), nodePath.join(staged, entry), { recursive: true })
  execFileSync(bin("tsc"), [
    "-p",
    nodePath.join(root, "tsconfig.build.json"),
    "--outDir",
    nodePath.join(staged, "dist")
  ])
  const packed = run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], staged)
  assert.strictEqual(packed.status, 0, packed.output)
  const [info] = JSON.parse(packed.stdout) as ReadonlyArray<{
    filename: string
    files: ReadonlyArray<{ path: string }>
  }>
  const files = info!.files.map((f) => f.path)
  for (const expected of [
    "dist/index.js",
    "dist/index.d.ts",
    "dist/main.js",
    "schemas/transaction.avsc",
    "src/index.ts"
  ])
    assert.include(files, expected)
  return nodePath.join(work, info!.filename)
}

const Databases = Layer.mergeAll(PgTest.layer, MysqlTest.layer)

layer(Databases, { timeout: 300_000 })("the installed package", (it) => {
  it.effect(
    "installs into a project with its own effect, type-checks a typed PostgreSQL → MySQL pipeline under strict, runs it, and runs the CLI",
    () =>
      Effect.gen(function* () {
        const pg = yield* PgTest
        const my = yield* MysqlTest
        const work = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-package-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(work, { recursive: true, force: true })))
        const tarball = pack(work)

        // the package's metadata and types, as publint and arethetypeswrong judge them
        const publint = run(bin("publint"), ["--strict", tarball], root)
        assert.strictEqual(publint.status, 0, publint.output)
        const attw = run(bin("attw"), [tarball, "--profile", "esm-only", "--format", "ascii"], root)
        assert.strictEqual(attw.status, 0, attw.output)

        // a user's project: its own effect, the package from the tarball
        const project = nodePath.join(work, "project")
        fs.mkdirSync(project)
        for (const file of ["tsconfig.json", "pipeline.ts"])
          fs.copyFileSync(nodePath.join(import.meta.dirname, "project", file), nodePath.join(project, file))
        fs.writeFileSync(
          nodePath.join(project, "package.json"),
          JSON.stringify({ name: "user-project", private: true, type: "module" })
        )
        const install = run(
          "npm",
          ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball, "effect@^4.1.0", "@types/node@24"],
          project
        )
        assert.strictEqual(install.status, 0, install.output)
        const tree = run("npm", ["ls", "effect", "--all", "--parseable", "--long"], project)
        assert.strictEqual(tree.status, 0, tree.output)
        const copies = new Set(tree.stdout.split("\n").filter((line) => line.includes("node_modules/effect:")))
        assert.strictEqual(copies.size, 1, `one copy of effect in the project's tree:\n${tree.stdout}`)

        const typecheck = run(bin("tsc"), ["-p", "tsconfig.json"], project)
        assert.strictEqual(typecheck.status, 0, typecheck.output)

        // run it against the real servers
        const source = "pkg_transactions"
        const target = "pkg_user_totals"
        yield* pg.sql(
          `CREATE TABLE ${source} (id bigint PRIMARY KEY, user_id text NOT NULL, amount numeric(18,2) NOT NULL, currency text NOT NULL, status text NOT NULL);
           INSERT INTO ${source}
             SELECT g, 'u' || (g % 3 + 1), (g * 1.25)::numeric(18,2), CASE WHEN g % 2 = 0 THEN 'EUR' ELSE 'USD' END,
                    CASE WHEN g % 5 = 0 THEN 'failed' ELSE 'settled' END
             FROM generate_series(1, 1000) g`
        )
        yield* my.sql(
          `CREATE TABLE ${target} (user_id varchar(20) NOT NULL, country varchar(2) NOT NULL, currency varchar(3) NOT NULL,
             total decimal(18,2) NOT NULL, count int NOT NULL, PRIMARY KEY (user_id, currency))`
        )
        const result = run(process.execPath, ["pipeline.ts"], project, {
          PKG_PG_URL: pgUrl,
          PKG_PG_SCHEMA: pg.schema,
          PKG_PG_TABLE: source,
          PKG_MYSQL_URL: mysqlUrl,
          PKG_MYSQL_DATABASE: my.database,
          PKG_MYSQL_TABLE: target
        })
        assert.strictEqual(result.status, 0, result.output)
        const report = JSON.parse(result.stdout.trim().split("\n").at(-1)!) as {
          status: string
          records: { read: number; written: number }
        }
        assert.strictEqual(report.status, "succeeded")
        assert.strictEqual(report.records.read, 1000)
        const expected = yield* pg.sql(
          `SELECT user_id, currency, sum(amount)::text AS total, count(*)::int AS count FROM ${source}
            WHERE status = 'settled' GROUP BY 1, 2 ORDER BY 1, 2`
        )
        const written = yield* my.sql(
          `SELECT user_id, country, currency, CAST(total AS CHAR) AS total, count FROM ${target} ORDER BY 1, 3`
        )
        const countries: Readonly<Record<string, string>> = { u1: "DE", u2: "FR", u3: "US" }
        assert.deepStrictEqual(
          written.map((r) => ({ ...r, count: Number(r.count) })),
          expected.map((r) => ({
            user_id: r.user_id,
            country: countries[r.user_id!],
            currency: r.currency,
            total: r.total,
            count: Number(r.count)
          }))
        )
        assert.strictEqual(report.records.written, expected.length)

        // the command line of the installed package
        const help = run("npx", ["--no-install", "effect-etl", "--help"], project)
        assert.strictEqual(help.status, 0, help.output)
        assert.include(help.stdout, "validate")
        const schemas = run("npx", ["--no-install", "effect-etl", "schema", "list"], project)
        assert.strictEqual(schemas.status, 0, schemas.output)
        assert.match(
          schemas.stdout,
          /^transaction\tcom\.effectetl\.Transaction\t.*node_modules\/effect-etl\/schemas\/transaction\.avsc$/m
        )
      }).pipe(Effect.scoped)
  )
})
