import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { PgTest, pgUrl } from "../support/Databases.ts"

const root = nodePath.resolve(import.meta.dirname, "../..")

const validate = (dir: string, config: unknown) => {
  fs.writeFileSync(nodePath.join(dir, "p.json"), JSON.stringify(config))
  const result = spawnSync(process.execPath, [nodePath.join(root, "src/main.ts"), "validate", "--connect", "p.json"], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" }
  })
  return { code: result.status, out: result.stdout, err: result.stderr }
}

layer(PgTest.layer, { timeout: 60_000, excludeTestServices: true })(
  "validate --connect checks the sink targets without writing (issue 9, case 2)",
  (it) => {
    it.effect("a renamed field with no column is reported before any run; a matching config is ready", () =>
      Effect.gen(function* () {
        const db = yield* PgTest
        yield* db.sql("CREATE TABLE summary (user_id text PRIMARY KEY, avg_amount numeric(18,2))")
        yield* db.sql("INSERT INTO summary VALUES ('u1', 10.00)")
        const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-connect-"))
        fs.writeFileSync(
          nodePath.join(dir, "in.jsonl"),
          ['{"user_id":"u1","amount":4}', '{"user_id":"u1","amount":6}'].join("\n")
        )
        const config = (field: string) => ({
          name: "summary",
          connections: { db: { type: "postgres", url: pgUrl, schema: db.schema } },
          source: { type: "file", path: "in.jsonl" },
          transforms: [
            { type: "aggregate", group_by: ["user_id"], fields: { [field]: { fn: "avg", field: "amount" } } }
          ],
          sink: { type: "postgres", connection: "db", table: "summary", mode: "upsert", keys: ["user_id"] }
        })
        const bad = validate(dir, config("avg_amt"))
        assert.strictEqual(bad.code, 1, bad.out + bad.err)
        assert.include(bad.err, '"avg_amt" has no column in summary')
        const good = validate(dir, config("avg_amount"))
        assert.strictEqual(good.code, 0, good.out + good.err)
        assert.match(good.out, /^ {2}sink: ready$/m)
        const rows = yield* db.sql("SELECT user_id, avg_amount::text AS avg FROM summary")
        assert.deepStrictEqual(rows, [{ user_id: "u1", avg: "10.00" }])
      })
    )
  }
)
