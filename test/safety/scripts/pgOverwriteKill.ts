/**
 * A child process for test/safety/PostgresKill.test.ts: runs `iterations` overwrites of one table while another
 * connection terminates the loading backends at a random moment, and checks after each one that the table holds a
 * complete version (the one before, or the new one). An error event that escapes the driver crashes this process,
 * which the parent sees as a non-zero exit. Prints a JSON summary on success.
 *
 * Usage: node pgOverwriteKill.ts <url> <schema> <table> <iterations>
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as NodePostgres from "../../../src/connectors/postgres/NodePostgres.ts"
import * as Postgres from "../../../src/connectors/postgres/Postgres.ts"
import * as Batch from "../../../src/core/Batch.ts"
import * as Source from "../../../src/core/Source.ts"
import * as Pipeline from "../../../src/pipeline/Pipeline.ts"

const [url, schema, table, iterationsText] = process.argv.slice(2) as [string, string, string, string]
const iterations = Number(iterationsText)
const options = { url: Redacted.make(url), schema, poolSize: 2 }
const admin = { url: Redacted.make(url) }

const Kv = Schema.Struct({ id: Schema.Number, v: Schema.String })

/** 10 batches of 50 rows tagged `tag`, a few milliseconds apart: a load that takes a while. */
const rows = (tag: string) =>
  Source.make({
    name: "rows",
    type: "memory",
    description: "rows",
    bounded: true,
    batches: () =>
      Stream.fromIterable(Array.from({ length: 10 }, (_, b) => b)).pipe(
        Stream.mapEffect((b) =>
          Effect.as(
            Effect.sleep("5 millis"),
            Batch.make(Array.from({ length: 50 }, (_, i) => ({ id: b * 50 + i, v: tag })))
          )
        )
      )
  })

const killLoaders = NodePostgres.execute(
  admin,
  `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE $1`,
  [`%${table}%`]
)

const program = Effect.gen(function* () {
  let expected = { n: "100", v: "old" }
  let succeeded = 0
  let failed = 0
  for (let i = 0; i < iterations; i++) {
    const tag = `new-${i}`
    const fiber = yield* Pipeline.from(rows(tag)).pipe(
      Pipeline.to(Postgres.table(table, Kv, { mode: "overwrite" })),
      Pipeline.withRetry({ attempts: 1, initialDelay: "0 millis", factor: 1 }),
      Pipeline.run,
      Effect.provide(NodePostgres.layer(options)),
      Effect.forkChild
    )
    yield* Effect.sleep(`${Math.floor(Math.random() * 90)} millis`)
    yield* Effect.orDie(killLoaders)
    const outcome = yield* Fiber.join(fiber).pipe(Effect.result)
    if (outcome._tag === "Success") {
      succeeded++
      expected = { n: "500", v: tag }
    } else failed++
    const now = yield* Effect.orDie(
      NodePostgres.execute(options, `SELECT count(*)::text AS n, min(v) AS v, max(v) AS w FROM "${table}"`)
    )
    const row = now[0]!
    if (row.n !== expected.n || row.v !== expected.v || row.w !== expected.v)
      return yield* Effect.die(
        new Error(`iteration ${i}: the table holds ${JSON.stringify(row)}, expected ${JSON.stringify(expected)}`)
      )
  }
  const leftovers = yield* Effect.orDie(
    NodePostgres.execute(
      options,
      `SELECT count(*)::text AS n FROM pg_tables WHERE schemaname = $1 AND tablename LIKE $2`,
      [schema, `${table}__etl_%`]
    )
  )
  console.log(JSON.stringify({ iterations, succeeded, failed, leftovers: Number(leftovers[0]!.n) }))
})

Effect.runPromise(program).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(3)
  }
)
