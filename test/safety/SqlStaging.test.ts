import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import pg from "pg"
import * as Build from "../../src/config/Build.ts"
import * as Load from "../../src/config/Load.ts"
import * as FileStore from "../../src/connectors/file/FileStore.ts"
import * as Mysql from "../../src/connectors/mysql/Mysql.ts"
import * as NodeMysql from "../../src/connectors/mysql/NodeMysql.ts"
import * as NodePostgres from "../../src/connectors/postgres/NodePostgres.ts"
import * as Postgres from "../../src/connectors/postgres/Postgres.ts"
import * as ConfigError from "../../src/core/ConfigError.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import { MysqlTest, mysqlUrl, PgTest, pgUrl } from "../support/Databases.ts"

const root = nodePath.resolve(import.meta.dirname, "../..")
const main = nodePath.join(root, "src/main.ts")

const Kv = Schema.Struct({ id: Schema.Number, pad: Schema.String })

const rows = (n: number, pad: string) => Array.from({ length: n }, (_, i) => ({ id: i + 1, pad }))

/** The staging tables of `kill_target` in the MySQL test database. */
const mysqlStaging = Effect.flatMap(MysqlTest, (db) =>
  Effect.map(
    db.sql(
      "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'kill\\_target\\_\\_etl\\_%' ORDER BY 1"
    ),
    (found) => found.map((r) => String(r.name))
  )
)

const exited = (child: ChildProcess) =>
  Effect.promise(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve()
        else child.once("exit", () => resolve())
      })
  )

const overwrite = (connection: Record<string, unknown>) => ({
  name: "staging",
  connections: { db: connection },
  source: { type: "mysql", connection: "db", table: "kill_source" },
  sink: { type: "mysql", connection: "db", table: "kill_target", mode: "overwrite" }
})

layer(Layer.mergeAll(PgTest.layer, MysqlTest.layer), { timeout: 120_000, excludeTestServices: true })(
  "staging tables of killed runs are swept by the next run, never a live run's",
  (it) => {
    it.effect("MySQL: after SIGKILLed overwrites, one run drops every dead staging table and keeps a live run's", () =>
      Effect.gen(function* () {
        const my = yield* MysqlTest
        const total = 200_000
        yield* my.sql("CREATE TABLE kill_source (id INT PRIMARY KEY, pad VARCHAR(100))")
        yield* my.sql(`INSERT INTO kill_source SELECT seq, REPEAT('n', 100) FROM seq_1_to_${total}`)
        yield* my.sql("CREATE TABLE kill_target (id INT PRIMARY KEY, pad VARCHAR(100))")
        yield* my.sql("INSERT INTO kill_target SELECT seq, 'old' FROM seq_1_to_10")
        const connection = { type: "mysql", url: mysqlUrl, database: my.database }
        const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-staging-"))
        const config = nodePath.join(dir, "overwrite.json")
        fs.writeFileSync(config, JSON.stringify(overwrite(connection)))

        // Each child is killed at a random moment after its staging table appeared (mid-load, usually).
        let leaked = 0
        for (let kill = 0; kill < 6; kill++) {
          const before = new Set(yield* mysqlStaging)
          const child = spawn(process.execPath, [main, "run", config, "--quiet"], { cwd: root, stdio: "ignore" })
          for (;;) {
            const now = yield* mysqlStaging
            if (now.some((name) => !before.has(name)) || child.exitCode !== null) break
            yield* Effect.sleep("2 millis")
          }
          yield* Effect.sleep(`${Math.floor(Math.random() * 300)} millis`)
          child.kill("SIGKILL")
          yield* exited(child)
          leaked = (yield* mysqlStaging).length
          const target = yield* my.sql("SELECT COUNT(*) AS n, MIN(pad) AS pad FROM kill_target")
          assert.include(["10 old", `${total} ${"n".repeat(100)}`], `${target[0]!.n} ${target[0]!.pad}`)
        }
        assert.isAbove(leaked, 0, "the last killed run left its staging table")
        // A killed client's session lingers on the server until the server notices (its run still counts as live).
        for (;;) {
          const sessions = yield* my.sql(
            "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()"
          )
          if (Number(sessions[0]!.n) === 0) break
          yield* Effect.sleep("5 millis")
        }

        yield* Effect.gen(function* () {
          // A live run: its staging table exists while it writes, and its session holds the marker lock.
          const before = new Set(yield* mysqlStaging)
          const writer = yield* Mysql.table("kill_target", Kv, { mode: "overwrite" }).open
          yield* writer.write(rows(5, "live"))
          const live = (yield* mysqlStaging).filter((name) => !before.has(name))
          assert.strictEqual(live.length, 1)

          const decoded = yield* Load.decode("overwrite.json", overwrite(connection))
          const pipeline = yield* Build.build(decoded, {
            file: "overwrite.json",
            schema: (name, path) => Effect.fail(ConfigError.single("overwrite.json", path, name))
          })
          const report = yield* Pipeline.run(pipeline).pipe(
            Effect.provide(Layer.merge(Build.connections(decoded), FileStore.layerMemory()))
          )
          assert.strictEqual(report.records.written, total)
          assert.deepStrictEqual(yield* mysqlStaging, live)

          yield* writer.commit
        }).pipe(Effect.scoped, Effect.provide(NodeMysql.layer(my.options)))
        assert.deepStrictEqual(yield* mysqlStaging, [])
        const target = yield* my.sql("SELECT COUNT(*) AS n, MIN(pad) AS pad FROM kill_target")
        assert.deepStrictEqual(target[0], { n: "5", pad: "live" })
        fs.rmSync(dir, { recursive: true, force: true })
      })
    )

    it.effect("PostgreSQL: a dead run's staging table is dropped by the next load; a live run's marker keeps it", () =>
      Effect.gen(function* () {
        const db = yield* PgTest
        const dead = "0123456789ab"
        const alive = "fedcba987654"
        yield* db.sql("CREATE TABLE swept (id int PRIMARY KEY, pad text)")
        yield* db.sql("INSERT INTO swept VALUES (1, 'old')")
        for (const name of [
          `swept__etl_${dead}`,
          `swept__etl_${alive}`,
          "swept__etl_notatag",
          `other__etl_${dead}`,
          `swept__etl_${dead}x`
        ])
          yield* db.sql(`CREATE TABLE "${name}" (LIKE swept)`)
        const holder = new pg.Client({ connectionString: pgUrl })
        yield* Effect.promise(() => holder.connect())
        yield* Effect.promise(() =>
          holder.query("SELECT pg_advisory_lock($1, $2)", [...NodePostgres.stagingLock(alive)])
        )
        const staged = Effect.map(
          db.sql(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE '%\\_\\_etl\\_%' ORDER BY 1"
          ),
          (found) => found.map((r) => r.name)
        )
        const load = Pipeline.from(Source.fromIterable("in", rows(3, "new"))).pipe(
          Pipeline.to(Postgres.table("swept", Kv, { mode: "overwrite" })),
          Pipeline.run,
          Effect.provide(NodePostgres.layer(db.options))
        )
        yield* load
        assert.deepStrictEqual(yield* staged, [
          `other__etl_${dead}`,
          `swept__etl_${dead}x`,
          `swept__etl_${alive}`,
          "swept__etl_notatag"
        ])
        yield* Effect.promise(() => holder.end())
        yield* load
        assert.deepStrictEqual(yield* staged, [`other__etl_${dead}`, `swept__etl_${dead}x`, "swept__etl_notatag"])
        const target = yield* db.sql("SELECT count(*) AS n, min(pad) AS pad FROM swept")
        assert.deepStrictEqual(target[0], { n: "3", pad: "new" })
      })
    )
  }
)
