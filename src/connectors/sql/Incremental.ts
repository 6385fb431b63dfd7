/**
 * Incremental extraction: where a SQL source keeps the high-water mark of its cursor column between runs.
 *
 * A source with `incremental: { column, lag, state }` reads only rows whose cursor is above the mark saved by the
 * last successful run, and at most `MAX(cursor) - lag`. The new mark (that upper limit) is saved by the
 * acknowledgement of the run's last batch, which the runtime runs only after the sink has committed every batch: a
 * failed or interrupted run saves nothing and the next run reads the same rows again.
 *
 * Rows committed late: a row whose cursor value is lower than the newest one but commits later (a long transaction,
 * `updated_at` set by a slow client, a sequence value taken before another) would be skipped by a plain `> mark`
 * read. The `lag` holds back the newest rows: each run stops at `MAX(cursor) - lag`, so a row that commits within
 * `lag` of the newest value is still read by the next run. Choose a lag longer than your longest writing transaction;
 * a row that commits later than that is not read. Rows within the lag of the newest row wait for the next run.
 *
 * The state lives wherever a `CursorState` puts it: `File.cursorState(path)` keeps it in a small JSON file (the
 * default of config-built sources), `Incremental.memory()` in memory for tests.
 */
export { type CursorState, type Mark, memory } from "../../core/Cursor.ts"
