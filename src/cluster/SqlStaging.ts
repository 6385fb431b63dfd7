/**
 * Staging in PostgreSQL, for split runs on a cluster: every runner reads and writes the same two tables in the
 * cluster's database, so the runner that finishes a run reads what the others staged.
 *
 * - `etl_staging` holds the staged batches: one row per batch of values (JSON text, see `Split.encodeValues`), keyed by
 *   run, part, kind (records or dead letters), the token of the read that wrote it, and its number within that read.
 * - `etl_runs` keeps how many parts a run has, for the submitter's progress, until the run is cleared.
 * - `etl_staged` says which read of a part counts: its token, set by the read's commit, which deletes the rows of any
 *   other read of the part in the same transaction. A read that dies before its commit leaves rows nobody reads (its
 *   scope deletes them when it can, and the run's `clear` does in the end).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import * as Split from "../runtime/Split.ts"

/** Rows of staged values read at a time by the finish phase (each row is one batch). */
const PAGE = 8

const stagingError = (action: string) => (e: SqlError) =>
  new Split.StagingError({
    message: `cannot ${action} (cluster storage): ${e.message}`,
    retryable: e.isRetryable,
    cause: e
  })

/** Creates the staging tables when they are missing (one runner at a time: an advisory lock). */
const migrate = (sql: SqlClient.SqlClient) =>
  sql.withTransaction(
    Effect.gen(function* () {
      yield* sql`SELECT pg_advisory_xact_lock(hashtext('effect-etl/staging'))`
      const found = yield* sql<{ readonly found: boolean }>`SELECT to_regclass('etl_staging') IS NOT NULL AS found`
      if (found[0]?.found !== true) {
        yield* sql`CREATE TABLE etl_staging (
          run_id text NOT NULL, part text NOT NULL, kind text NOT NULL, token text NOT NULL, seq integer NOT NULL,
          body text NOT NULL, PRIMARY KEY (run_id, part, kind, token, seq))`
        // Staged batches are written once and read once: compressing them costs the database more than it saves.
        yield* sql`ALTER TABLE etl_staging ALTER COLUMN body SET STORAGE EXTERNAL`
      }
      yield* sql`CREATE TABLE IF NOT EXISTS etl_runs (
        run_id text PRIMARY KEY, parts integer NOT NULL, planned_at timestamptz NOT NULL DEFAULT now())`
      yield* sql`CREATE TABLE IF NOT EXISTS etl_staged (
        run_id text NOT NULL, part text NOT NULL, kind text NOT NULL, token text NOT NULL,
        staged_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run_id, part, kind))`
    })
  )

/** Staging over the SQL client in context (PostgreSQL). */
export const make: Effect.Effect<Split.StagingShape, Split.StagingError, SqlClient.SqlClient> = Effect.gen(
  function* () {
    const sql = yield* SqlClient.SqlClient
    yield* Effect.mapError(migrate(sql), stagingError("create the staging tables"))
    return {
      description: "cluster storage",
      open: (run, part, kind) =>
        Effect.gen(function* () {
          const token = crypto.randomUUID()
          let seq = 0
          let committed = false
          // A read that ends without its commit leaves nothing behind, when the database can still be reached.
          yield* Effect.addFinalizer(() =>
            committed
              ? Effect.void
              : Effect.ignore(
                  sql`DELETE FROM etl_staging WHERE run_id = ${run} AND part = ${part} AND kind = ${kind} AND token = ${token}`
                )
          )
          return {
            write: (values) =>
              values.length === 0
                ? Effect.void
                : Effect.mapError(
                    sql`INSERT INTO etl_staging (run_id, part, kind, token, seq, body) VALUES (${run}, ${part}, ${kind}, ${token}, ${seq++}, ${Split.encodeValues(values)})`,
                    stagingError(`stage part ${part}`)
                  ).pipe(Effect.asVoid),
            commit: sql
              .withTransaction(
                Effect.gen(function* () {
                  yield* sql`INSERT INTO etl_staged (run_id, part, kind, token) VALUES (${run}, ${part}, ${kind}, ${token})
                    ON CONFLICT (run_id, part, kind) DO UPDATE SET token = EXCLUDED.token, staged_at = now()`
                  yield* sql`DELETE FROM etl_staging WHERE run_id = ${run} AND part = ${part} AND kind = ${kind} AND token <> ${token}`
                })
              )
              .pipe(
                Effect.mapError(stagingError(`commit the staging of part ${part}`)),
                Effect.tap(() => Effect.sync(() => (committed = true)))
              )
          }
        }),
      read: (run, part, kind) =>
        Stream.paginate(-1, (after: number) =>
          Effect.map(
            sql<{ readonly seq: number; readonly body: string }>`SELECT s.seq, s.body FROM etl_staging s
              JOIN etl_staged t ON t.run_id = s.run_id AND t.part = s.part AND t.kind = s.kind AND t.token = s.token
              WHERE s.run_id = ${run} AND s.part = ${part} AND s.kind = ${kind} AND s.seq > ${after}
              ORDER BY s.seq LIMIT ${PAGE}`,
            (rows) =>
              [
                rows.map((row) => Split.decodeValues(row.body)),
                rows.length < PAGE ? Option.none<number>() : Option.some(rows[rows.length - 1]!.seq)
              ] as const
          ).pipe(Effect.mapError(stagingError(`read the staging of part ${part}`)))
        ),
      clear: (run) =>
        sql
          .withTransaction(
            Effect.gen(function* () {
              yield* sql`DELETE FROM etl_staging WHERE run_id = ${run}`
              yield* sql`DELETE FROM etl_staged WHERE run_id = ${run}`
              yield* sql`DELETE FROM etl_runs WHERE run_id = ${run}`
            })
          )
          .pipe(Effect.mapError(stagingError(`clear the staging of run ${run}`))),
      planned: (run, parts) =>
        sql`INSERT INTO etl_runs (run_id, parts) VALUES (${run}, ${parts})
          ON CONFLICT (run_id) DO UPDATE SET parts = EXCLUDED.parts`.pipe(
          Effect.asVoid,
          Effect.mapError(stagingError(`record the plan of run ${run}`))
        )
    }
  }
)

/** The staging service over the SQL client in context. */
export const layer: Layer.Layer<Split.Staging, Split.StagingError, SqlClient.SqlClient> = Layer.effect(
  Split.Staging,
  make
)
