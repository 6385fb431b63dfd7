import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import fc from "fast-check"
import pg from "pg"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import * as Agg from "../../src/transforms/Aggregate.ts"
import type * as Join from "../../src/transforms/Join.ts"
import * as Window from "../../src/transforms/Window.ts"
import { bag, batchSizes, canonical, runSync, split, splitSource } from "./support.ts"

const url = process.env.ETL_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const schema = `etl_diff_${Math.random().toString(36).slice(2, 10)}`
const client = new pg.Client({ connectionString: url })

/** Doubles from SQL and from the operators agree to this relative tolerance (different summation orders). */
const FLOAT_TOLERANCE = 1e-9

const RUNS = Number(process.env.ETL_DIFF_RUNS ?? 100)

const query = async (text: string, values: ReadonlyArray<unknown> = []): Promise<Array<Record<string, unknown>>> =>
  (await client.query(text, values as Array<unknown>)).rows

const insert = async (table: string, columns: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<unknown>>) => {
  await query(`TRUNCATE ${table}`)
  for (let i = 0; i < rows.length; i += 500) {
    const chunk = rows.slice(i, i + 500)
    const params: Array<unknown> = []
    const tuples = chunk.map((row) => `(${row.map((v) => `$${params.push(v)}`).join(", ")})`)
    await query(`INSERT INTO ${table} (${columns.join(", ")}) VALUES ${tuples.join(", ")}`, params)
  }
}

const closeTo = (actual: unknown, expected: unknown, what: string) => {
  if (expected === null || actual === null) return assert.strictEqual(actual, expected, what)
  const a = Number(actual)
  const e = Number(expected)
  assert.isAtMost(Math.abs(a - e), FLOAT_TOLERANCE * Math.max(1, Math.abs(e)), `${what}: ${a} vs ${e}`)
}

/** A decimal from SQL (`numeric` arrives as text) compared by value. */
const sameDecimal = (actual: unknown, expected: unknown, what: string) => {
  if (expected === null || actual === null) return assert.strictEqual(actual, expected, what)
  const e = BigDecimal.fromStringUnsafe(String(expected))
  assert.isTrue(BigDecimal.equals(actual as BigDecimal.BigDecimal, e), `${what}: ${canonical(actual)} vs ${expected}`)
}

beforeAll(async () => {
  await client.connect()
  await query(`CREATE SCHEMA ${schema}`)
  await query(`SET search_path TO ${schema}`)
  await query(
    "CREATE TABLE txn (seq int PRIMARY KEY, k text, g int, x int, d numeric, f float8, s text, ts timestamptz NOT NULL)"
  )
  await query("CREATE TABLE ev (seq int PRIMARY KEY, u text, x int, ms bigint NOT NULL)")
  await query("CREATE TABLE l (seq int PRIMARY KEY, k text, g int, v int)")
  await query("CREATE TABLE r (rid int PRIMARY KEY, k text, g int, name text, score int)")
})

afterAll(async () => {
  await query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  await client.end()
})

interface Txn {
  readonly seq: number
  readonly k: string | null
  readonly g: number
  readonly x: number | null
  readonly d: BigDecimal.BigDecimal | null
  readonly f: number | null
  readonly s: string | null
  readonly ts: Date
}

const skewed = <A>(hot: A, cold: ReadonlyArray<A>) =>
  fc.oneof(
    { arbitrary: fc.constant(hot), weight: 6 },
    { arbitrary: fc.constantFrom(...cold), weight: 3 },
    { arbitrary: fc.constant(null), weight: 1 }
  )

const txns = fc
  .array(
    fc.record({
      k: skewed("hot", ["a", "b", "c", "d"]),
      g: fc.integer({ min: 0, max: 2 }),
      x: fc.option(fc.integer({ min: -10_000, max: 10_000 }), { nil: null, freq: 5 }),
      d: fc.option(
        fc
          .tuple(fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }), fc.integer({ min: 0, max: 6 }))
          .map(([v, scale]) => BigDecimal.make(v, scale)),
        { nil: null, freq: 5 }
      ),
      f: fc.option(fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }), { nil: null, freq: 5 }),
      s: fc.option(fc.string({ unit: "grapheme-ascii", maxLength: 4 }), { nil: null, freq: 3 }),
      ms: fc.integer({ min: 1_700_000_000_000, max: 1_700_100_000_000 })
    }),
    { minLength: 1, maxLength: 400 }
  )
  .map((rows): Array<Txn> => rows.map(({ ms, ...r }, seq) => ({ seq, ...r, ts: new Date(ms) })))

const percentiles = [
  ["p50", 0.5],
  ["p95", 0.95],
  ["p99", 0.99]
] as const

const exactPercentile = (q: number) =>
  `(array_agg(f ORDER BY f) FILTER (WHERE f IS NOT NULL))[floor(${q}::float8 * (count(f) - 1))::int + 1]`

const aggregateSql = `
  SELECT k, g, count(*)::int AS n, count(x)::int AS nx, count(DISTINCT x)::int AS cdx, sum(x)::int AS sx,
    avg(x)::float8 AS ax, min(x) AS mnx, max(x) AS mxx, sum(d)::text AS sd, min(d)::text AS mnd, max(d)::text AS mxd,
    avg(d)::float8 AS ad, avg(f) AS af, sum(f) AS sf, min(s COLLATE "C") AS mns, max(s COLLATE "C") AS mxs,
    (array_agg(x ORDER BY seq) FILTER (WHERE x IS NOT NULL))[1] AS fx,
    (array_agg(x ORDER BY seq DESC) FILTER (WHERE x IS NOT NULL))[1] AS lx,
    min(ts) AS mnts, max(ts) AS mxts,
    ${percentiles.map(([name, q]) => `${exactPercentile(q)} AS ${name}`).join(", ")}
  FROM txn GROUP BY k, g`

describe("differential tests against PostgreSQL", () => {
  it("aggregate equals GROUP BY: exact for integers and decimals, close for doubles, within α for percentiles", async () => {
    await fc.assert(
      fc.asyncProperty(txns, batchSizes, async (records, sizes) => {
        await insert(
          "txn",
          ["seq", "k", "g", "x", "d", "f", "s", "ts"],
          records.map((r) => [r.seq, r.k, r.g, r.x, r.d === null ? null : BigDecimal.format(r.d), r.f, r.s, r.ts])
        )
        const expected = await query(aggregateSql)
        const run = runSync(
          Pipeline.from(
            splitSource(
              "txn",
              split(
                records,
                sizes.map((n) => n * 20)
              )
            )
          ).pipe(
            Pipeline.aggregate({
              groupBy: ["k", "g"],
              fields: {
                n: Agg.count(),
                nx: Agg.count("x"),
                cdx: Agg.countDistinct("x"),
                sx: Agg.sum("x"),
                ax: Agg.avg("x"),
                mnx: Agg.min("x"),
                mxx: Agg.max("x"),
                sd: Agg.sum("d"),
                mnd: Agg.min("d"),
                mxd: Agg.max("d"),
                ad: Agg.avg("d"),
                af: Agg.avg("f"),
                sf: Agg.sum("f"),
                mns: Agg.min("s"),
                mxs: Agg.max("s"),
                fx: Agg.first("x"),
                lx: Agg.last("x"),
                mnts: Agg.min("ts"),
                mxts: Agg.max("ts"),
                p50: Agg.p50("f"),
                p95: Agg.p95("f"),
                p99: Agg.p99("f")
              }
            })
          )
        )
        assert.strictEqual(run.records.length, expected.length)
        const byKey = new Map(run.records.map((r) => [`${canonical(r.k)}|${r.g}`, r]))
        for (const e of expected) {
          const a = byKey.get(`${canonical(e.k)}|${e.g}`)!
          assert.isDefined(a, `group ${e.k}/${e.g}`)
          for (const f of ["n", "nx", "cdx", "sx", "mnx", "mxx", "mns", "mxs", "fx", "lx"] as const)
            assert.strictEqual(a[f], e[f], f)
          for (const f of ["sd", "mnd", "mxd"] as const) sameDecimal(a[f], e[f], f)
          for (const f of ["ax", "ad", "af", "sf"] as const) closeTo(a[f], e[f], f)
          assert.strictEqual(a.mnts.getTime(), (e.mnts as Date).getTime())
          assert.strictEqual(a.mxts.getTime(), (e.mxts as Date).getTime())
          for (const [name] of percentiles) {
            const exact = e[name] as number | null
            if (exact === null) assert.strictEqual(a[name], null)
            else
              assert.isAtMost(
                Math.abs((a[name] as number) - exact),
                Agg.DEFAULT_RELATIVE_ACCURACY * Math.abs(exact) + 1e-9,
                `${name}: ${a[name]} vs exact ${exact}`
              )
          }
        }
      }),
      { numRuns: RUNS }
    )
  })

  interface Ev {
    readonly seq: number
    readonly u: string | null
    readonly x: number | null
    readonly t: Date
  }

  const events = fc
    .array(
      fc.record({
        u: skewed("hot", ["a", "b"]),
        x: fc.option(fc.integer({ min: -100, max: 100 }), { nil: null, freq: 5 }),
        step: fc.integer({ min: 0, max: 4 }).map((n) => n * 1000),
        jitter: fc.oneof(
          fc.integer({ min: -20, max: 3 }).map((n) => n * 1000),
          fc.integer({ min: -20_000, max: 3000 })
        )
      }),
      { minLength: 1, maxLength: 300 }
    )
    .map((raw): Array<Ev> => {
      let clock = 1_700_000_000_000
      return raw.map((r, seq) => {
        clock += r.step
        return { seq, u: r.u, x: r.x, t: new Date(clock + r.jitter) }
      })
    })

  const accepted = (lateness: number) => `
    WITH marked AS (
      SELECT *, max(ms) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_max FROM ev
    ), accepted AS (SELECT * FROM marked WHERE prev_max IS NULL OR ms >= prev_max - ${lateness})`

  const windowAggregates =
    "count(*)::int AS n, sum(x)::int AS sx, min(x) AS mnx, (array_agg(x ORDER BY seq) FILTER (WHERE x IS NOT NULL))[1] AS fx"

  const windowSql = (spec: Window.WindowSpec): string => {
    const c = spec.config
    if (c.kind === "tumbling")
      return `${accepted(c.latenessMs)}
        SELECT u, date_bin(make_interval(secs => ${c.sizeMs / 1000}), to_timestamp(ms / 1000.0), TIMESTAMPTZ '1970-01-01 00:00:00+00') AS ws,
          ${windowAggregates}
        FROM accepted GROUP BY 1, 2`
    if (c.kind === "sliding")
      return `${accepted(c.latenessMs)}
        SELECT u, to_timestamp(ws / 1000.0) AS ws, ${windowAggregates}
        FROM accepted a
        CROSS JOIN LATERAL generate_series(0, ceil(${c.sizeMs}::numeric / ${c.slideMs})::int) AS k
        CROSS JOIN LATERAL (SELECT a.ms - mod(a.ms, ${c.slideMs}) - k * ${c.slideMs} AS ws) w
        WHERE w.ws + ${c.sizeMs} > a.ms
        GROUP BY 1, 2`
    return `${accepted(c.latenessMs)},
      breaks AS (
        SELECT *, CASE WHEN ms - lag(ms) OVER (PARTITION BY u ORDER BY ms, seq) < ${c.gapMs} THEN 0 ELSE 1 END AS brk
        FROM accepted
      ), islands AS (
        SELECT *, sum(brk) OVER (PARTITION BY u ORDER BY ms, seq ROWS UNBOUNDED PRECEDING) AS sid FROM breaks
      )
      SELECT u, to_timestamp(min(ms) / 1000.0) AS ws, to_timestamp((max(ms) + ${c.gapMs}) / 1000.0) AS we, ${windowAggregates}
      FROM islands GROUP BY u, sid`
  }

  const windows = fc.oneof(
    fc
      .tuple(fc.constantFrom(10_000, 60_000), fc.constantFrom(0, 5000, 30_000))
      .map(([size, lateness]) => Window.tumbling(size, { time: "t", allowedLateness: lateness })),
    fc
      .tuple(fc.constantFrom([30_000, 10_000], [20_000, 7000], [5000, 10_000]), fc.constantFrom(0, 10_000))
      .map(([[size, slide], lateness]) => Window.sliding(size!, slide!, { time: "t", allowedLateness: lateness })),
    fc
      .tuple(fc.constantFrom(3000, 8000), fc.constantFrom(0, 15_000))
      .map(([gap, lateness]) => Window.session(gap, { time: "t", by: ["u"], allowedLateness: lateness }))
  )

  it("windowed aggregates equal date_bin, hopping-window and gaps-and-islands queries, late records included", async () => {
    await fc.assert(
      fc.asyncProperty(events, windows, batchSizes, async (input, spec, sizes) => {
        await insert(
          "ev",
          ["seq", "u", "x", "ms"],
          input.map((e) => [e.seq, e.u, e.x, e.t.getTime()])
        )
        const expected = await query(windowSql(spec))
        const late = await query(`${accepted(spec.config.latenessMs)}
          SELECT seq FROM ev WHERE seq NOT IN (SELECT seq FROM accepted) ORDER BY seq`)
        const run = runSync(
          Pipeline.from(
            splitSource(
              "ev",
              split(
                input,
                sizes.map((n) => n * 10)
              )
            )
          ).pipe(
            Pipeline.window(spec),
            Pipeline.aggregate({
              groupBy: ["u", "windowStart", "windowEnd"],
              fields: { n: Agg.count(), sx: Agg.sum("x"), mnx: Agg.min("x"), fx: Agg.first("x") }
            })
          )
        )
        const size = spec.config.kind === "session" ? 0 : spec.config.sizeMs
        const sql = expected.map((e) => {
          const start = (e.ws as Date).getTime()
          return {
            u: e.u,
            windowStart: new Date(start),
            windowEnd: e.we === undefined ? new Date(start + size) : (e.we as Date),
            n: e.n,
            sx: e.sx,
            mnx: e.mnx,
            fx: e.fx
          }
        })
        assert.deepStrictEqual(bag(run.records), bag(sql))
        assert.deepStrictEqual(
          run.deadLetters.map((d) => (d.record as Ev).seq),
          late.map((r) => r.seq)
        )
        assert.isTrue(run.deadLetters.every((d) => d.reason === "late"))
      }),
      { numRuns: RUNS }
    )
  })

  interface L {
    readonly seq: number
    readonly k: string | null
    readonly g: number
    readonly v: number | null
  }
  interface R {
    readonly rid: number
    readonly k: string | null
    readonly g: number
    readonly name: string
    readonly score: number | null
  }

  const left = fc
    .array(
      fc.record({
        k: skewed("hot", ["a", "b", "c"]),
        g: fc.integer({ min: 0, max: 1 }),
        v: fc.option(fc.integer({ min: 0, max: 999 }), { nil: null })
      }),
      { minLength: 1, maxLength: 200 }
    )
    .map((rows): Array<L> => rows.map((r, seq) => ({ seq, ...r })))

  const right = fc
    .array(
      fc.record({
        k: skewed("hot", ["a", "b", "d"]),
        g: fc.integer({ min: 0, max: 1 }),
        name: fc.string({ unit: "grapheme-ascii", maxLength: 5 }),
        score: fc.option(fc.integer({ min: 0, max: 9 }), { nil: null })
      }),
      { minLength: 1, maxLength: 40 }
    )
    .map((rows): Array<R> => rows.map((r, rid) => ({ rid, ...r })))

  it("joins equal INNER, LEFT, RIGHT and FULL OUTER JOIN ... USING, duplicates and NULL keys included", async () => {
    await fc.assert(
      fc.asyncProperty(
        left,
        right,
        fc.constantFrom<Join.JoinType>("inner", "left", "right", "full"),
        batchSizes,
        async (ls, rs, type, sizes) => {
          await insert(
            "l",
            ["seq", "k", "g", "v"],
            ls.map((r) => [r.seq, r.k, r.g, r.v])
          )
          await insert(
            "r",
            ["rid", "k", "g", "name", "score"],
            rs.map((r) => [r.rid, r.k, r.g, r.name, r.score])
          )
          const sqlType = { inner: "INNER", left: "LEFT", right: "RIGHT", full: "FULL OUTER" }[type]
          const expected = await query(
            `SELECT l.seq, k, g, l.v, r.rid, r.name, r.score FROM l ${sqlType} JOIN r USING (k, g)`
          )
          const run = runSync(
            Pipeline.from(
              splitSource(
                "l",
                split(
                  ls,
                  sizes.map((n) => n * 10)
                )
              )
            ).pipe(Pipeline.join(splitSource("r", split(rs, [7])), { on: ["k", "g"], type }))
          )
          assert.deepStrictEqual(bag(run.records), bag(expected))
        }
      ),
      { numRuns: RUNS }
    )
  })
})
