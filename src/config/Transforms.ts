/**
 * The transforms a JSON config can use, listed explicitly: each entry is a config Schema and a builder that turns a
 * decoded config into the same transform the typed API gives. Filter conditions, derived fields and expression rules
 * are CEL, compiled once when the pipeline is built.
 *
 * Config names are snake_case (`on_fail`, `exclusive_min`); the typed API's are camelCase.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as ConfigError from "../core/ConfigError.ts"
import { DurationString, durationString, intBetween, NonEmpty, StageName } from "../core/ConfigFields.ts"
import type { Flow } from "../core/Flow.ts"
import * as FlowModule from "../core/Flow.ts"
import * as Expression from "../expr/Expression.ts"
import type { AggSpec } from "../transforms/Aggregate.ts"
import * as Aggregate from "../transforms/Aggregate.ts"
import * as Expressions from "../transforms/Expressions.ts"
import * as IntervalJoin from "../transforms/IntervalJoin.ts"
import * as Join from "../transforms/Join.ts"
import * as Rule from "../transforms/Rule.ts"
import * as Stateless from "../transforms/Stateless.ts"
import { validate } from "../transforms/Validate.ts"
import * as Window from "../transforms/Window.ts"
import * as Connectors from "./Connectors.ts"

/** The records of a config-built pipeline: plain objects. */
export type { AnyRecord } from "./Records.ts"

import type { AnyRecord } from "./Records.ts"

/** A transform of config-built flows. */
export type FlowTransform = <E, R>(self: Flow<AnyRecord, E, R>) => Flow<AnyRecord, E, R>

const OnFail = Schema.Literals(["reject", "fail", "warn"]).annotate({
  description:
    "What to do with a record that breaks the rule: reject it to the dead letters (default), fail the run, or warn and keep it"
})

const ruleBase = {
  field: NonEmpty.annotate({ description: "The field the rule checks" }),
  name: Schema.optionalKey(StageName.annotate({ description: "The rule's name in dead letters and logs" })),
  on_fail: Schema.optionalKey(OnFail)
}

const Comparable = Schema.Union([Schema.Finite, Schema.String]).annotate({
  description: "A number, or a decimal / ISO-8601 timestamp string"
})

/** A validation rule in a config. */
export const RuleConfig = Schema.Union([
  Schema.Struct({ rule: Schema.Literal("not_null"), ...ruleBase }),
  Schema.Struct({
    rule: Schema.Literal("range"),
    ...ruleBase,
    min: Schema.optionalKey(Comparable),
    max: Schema.optionalKey(Comparable),
    exclusive_min: Schema.optionalKey(Schema.Boolean),
    exclusive_max: Schema.optionalKey(Schema.Boolean)
  }),
  Schema.Struct({
    rule: Schema.Literal("pattern"),
    ...ruleBase,
    regex: NonEmpty.annotate({ description: "A JavaScript regular expression the value must match" })
  }),
  Schema.Struct({
    rule: Schema.Literal("one_of"),
    ...ruleBase,
    values: Schema.Array(Schema.Union([Schema.String, Schema.Finite, Schema.Boolean]))
  }),
  Schema.Struct({
    rule: Schema.Literal("expression"),
    name: StageName.annotate({ description: "The rule's name in dead letters and logs" }),
    condition: NonEmpty.annotate({ description: "A CEL condition every valid record satisfies" }),
    message: Schema.optionalKey(Schema.String),
    on_fail: Schema.optionalKey(OnFail)
  })
]).annotate({ description: "A business rule: not_null, range, pattern, one_of or a CEL expression" })

const positiveMillis = (text: string | undefined): boolean =>
  text === undefined || Duration.toMillis(text as Duration.Input) > 0

const AggFunction = Schema.Literals([
  "count",
  "count_distinct",
  "sum",
  "avg",
  "min",
  "max",
  "first",
  "last",
  "percentile",
  "p50",
  "p95",
  "p99"
]).annotate({
  description:
    "count (rows; non-NULL values with a field), count_distinct, sum (exact for decimals), avg, min, max, first, last (non-NULL, in arrival order), percentile with a quantile, or p50/p95/p99 (approximate, within relative_accuracy)"
})

/** One aggregate function in a config: `{"fn": "sum", "field": "amount"}`. */
export const AggregateFieldConfig = Schema.Struct({
  fn: AggFunction,
  field: Schema.optionalKey(NonEmpty.annotate({ description: "The field it reads (not needed by count)" })),
  quantile: Schema.optionalKey(
    Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })).annotate({
      description: 'For "percentile": the quantile, between 0 and 1 (0.95 for the 95th percentile)'
    })
  ),
  relative_accuracy: Schema.optionalKey(
    Schema.Finite.check(Schema.isGreaterThan(0), Schema.isLessThan(1)).annotate({
      description:
        "For percentiles: the sketch's relative accuracy (default 0.01: estimates within ±1% of the exact value)"
    })
  )
})
  .check(
    Schema.makeFilter((f) => {
      if (f.fn !== "count" && f.field === undefined)
        return { path: ["field"], issue: `"${f.fn}" needs the field it aggregates, e.g. "field": "amount"` }
      if (f.fn === "percentile" && f.quantile === undefined)
        return { path: ["quantile"], issue: '"percentile" needs a "quantile" between 0 and 1, e.g. "quantile": 0.95' }
      if (f.fn !== "percentile" && f.quantile !== undefined)
        return { path: ["quantile"], issue: `"quantile" only applies to "fn": "percentile", not "${f.fn}"` }
      if (f.relative_accuracy !== undefined && !["percentile", "p50", "p95", "p99"].includes(f.fn))
        return { path: ["relative_accuracy"], issue: `"relative_accuracy" only applies to percentiles, not "${f.fn}"` }
      return undefined
    })
  )
  .annotate({ description: 'An aggregate function over a field, e.g. {"fn": "sum", "field": "amount"}' })

const AggregateConfig = Schema.Struct({
  type: Schema.Literal("aggregate"),
  name: Schema.optionalKey(StageName),
  group_by: Schema.optionalKey(
    Schema.Array(NonEmpty).annotate({
      description:
        "The grouping fields (none: one group). After a window, include windowStart/windowEnd for per-window groups"
    })
  ),
  fields: Schema.Record(Schema.String, AggregateFieldConfig).annotate({
    description:
      'Output field → aggregate function, e.g. {"total": {"fn": "sum", "field": "amount"}, "n": {"fn": "count"}}'
  })
}).check(
  Schema.makeFilter((a) => {
    const clash = Object.keys(a.fields).find((name) => (a.group_by ?? []).includes(name))
    return clash === undefined
      ? undefined
      : { path: ["fields", clash], issue: `"${clash}" is also a grouping field; give the aggregate another name` }
  })
)

const WindowConfig = Schema.Struct({
  type: Schema.Literal("window"),
  name: Schema.optionalKey(StageName),
  kind: Schema.Literals(["tumbling", "sliding", "session"]).annotate({
    description: "tumbling (size), sliding/hopping (size and slide) or session (gap) windows over event time"
  }),
  time: Schema.optionalKey(
    NonEmpty.annotate({
      description:
        'The field holding each record\'s event time: a timestamp (cast it with a cast transform if it is a string); required unless "watermark" is "processing-time"'
    })
  ),
  watermark: Schema.optionalKey(
    Schema.Literals(["event-time", "processing-time"]).annotate({
      description:
        '"event-time" (default): records\' times come from "time" and the watermark from the slowest input part; "processing-time": a record\'s time is when it is processed, and windows close by the clock (within a second of their end, even when no record arrives)'
    })
  ),
  idle_timeout: Schema.optionalKey(
    durationString({ max: "366 days", positive: true }).annotate({
      description:
        'How long a partition of an unbounded source (streaming Kafka) may send nothing before it stops holding the watermark back, until it sends again (default "30 seconds"); bounded sources are not affected'
    })
  ),
  size: Schema.optionalKey(DurationString.annotate({ description: "Window length (tumbling, sliding)" })),
  slide: Schema.optionalKey(DurationString.annotate({ description: "How far apart sliding windows start" })),
  gap: Schema.optionalKey(
    DurationString.annotate({ description: "A session ends when no event follows within this gap (session)" })
  ),
  by: Schema.optionalKey(
    Schema.Array(NonEmpty).annotate({ description: "Session windows are kept per value of these fields (session)" })
  ),
  allowed_lateness: Schema.optionalKey(
    DurationString.annotate({
      description:
        'How far behind the latest event time a record may be and still count (default "0 seconds"); the watermark is the latest event time minus this'
    })
  ),
  on_late: Schema.optionalKey(
    Schema.Literals(["reject", "drop"]).annotate({
      description:
        'Records behind the watermark: "reject" sends them to the dead letters with reason "late" (default), "drop" counts them as filtered'
    })
  )
}).check(
  Schema.makeFilter((w) => {
    const needs = (key: "size" | "slide" | "gap", example: string) =>
      w[key] === undefined
        ? { path: [key], issue: `A ${w.kind} window needs "${key}", e.g. "${key}": "${example}"` }
        : positiveMillis(w[key])
          ? undefined
          : { path: [key], issue: `"${key}" must be a positive duration` }
    const not = (key: "size" | "slide" | "gap" | "by") =>
      w[key] === undefined ? undefined : { path: [key], issue: `"${key}" does not apply to a ${w.kind} window` }
    const first = (...issues: ReadonlyArray<{ path: ReadonlyArray<string>; issue: string } | undefined>) =>
      issues.find((i) => i !== undefined)
    const timing =
      w.watermark === "processing-time"
        ? first(
            ...(["time", "allowed_lateness", "on_late", "idle_timeout"] as const).map((key) =>
              w[key] === undefined
                ? undefined
                : {
                    path: [key],
                    issue: `"${key}" does not apply to a processing-time window: records' times are the clock, so none is late`
                  }
            )
          )
        : w.time === undefined
          ? {
              path: ["time"],
              issue:
                'An event-time window needs "time", the field holding each record\'s event time (or "watermark": "processing-time")'
            }
          : undefined
    if (timing !== undefined) return timing
    switch (w.kind) {
      case "tumbling":
        return first(needs("size", "1 hour"), not("slide"), not("gap"), not("by"))
      case "sliding":
        return first(needs("size", "1 hour"), needs("slide", "10 minutes"), not("gap"), not("by"))
      case "session":
        return first(needs("gap", "30 minutes"), not("size"), not("slide"))
    }
  })
)

const JoinConfig = Schema.Struct({
  type: Schema.Literal("join"),
  name: Schema.optionalKey(StageName),
  source: Connectors.SourceConfig.annotate({
    description: "The joined side: a bounded source read to its end into memory when the run starts"
  }),
  on: Schema.Union([
    NonEmpty,
    Schema.Array(NonEmpty).check(Schema.isMinLength(1)),
    Schema.Record(Schema.String, NonEmpty)
  ]).annotate({
    description:
      'The key fields: "userId", ["tenant", "userId"], or {"userId": "id"} (this flow\'s field → the joined field)'
  }),
  kind: Schema.optionalKey(
    Schema.Literals(["inner", "left", "right", "full"]).annotate({
      description: "inner (default), left, right or full (outer) join"
    })
  ),
  select: Schema.optionalKey(
    Schema.Array(NonEmpty).annotate({ description: "The joined side's fields to take (default: all)" })
  ),
  rename: Schema.optionalKey(
    Schema.Record(Schema.String, NonEmpty).annotate({
      description: "New names for fields of the joined side, to resolve name clashes"
    })
  ),
  max_rows: Schema.optionalKey(
    intBetween(0, 100_000_000, "the joined side is held in memory").annotate({
      description:
        "The most rows the joined side may have (default 1000000, at most 100000000); more fails the run with a clear error"
    })
  ),
  refresh: Schema.optionalKey(
    DurationString.annotate({
      description:
        "Reload the joined side when this much time has passed (inner and left joins, long-running pipelines)"
    })
  )
}).check(
  Schema.makeFilter((j) => {
    if (j.refresh !== undefined && (j.kind === "right" || j.kind === "full"))
      return {
        path: ["refresh"],
        issue: `"refresh" works with inner and left joins only: a ${j.kind} join emits the unmatched rows of one table at the end`
      }
    if (!positiveMillis(j.refresh)) return { path: ["refresh"], issue: '"refresh" must be a positive duration' }
    return undefined
  })
)

const FilterConfig = Schema.Struct({
  type: Schema.Literal("filter"),
  name: Schema.optionalKey(StageName),
  condition: NonEmpty.annotate({
    description: 'A CEL condition; records for which it is false are filtered out, e.g. status == "settled"'
  })
})

const DeriveConfig = Schema.Struct({
  type: Schema.Literal("derive"),
  name: Schema.optionalKey(StageName),
  fields: Schema.Record(Schema.String, NonEmpty).annotate({
    description: "New (or replaced) fields, each computed by a CEL expression over the record"
  })
})

const SelectConfig = Schema.Struct({
  type: Schema.Literal("select"),
  fields: Schema.Array(NonEmpty).annotate({ description: "The fields to keep, in order" })
})

const RenameConfig = Schema.Struct({
  type: Schema.Literal("rename"),
  fields: Schema.Record(Schema.String, NonEmpty).annotate({ description: "Old name → new name" })
})

const CastConfig = Schema.Struct({
  type: Schema.Literal("cast"),
  fields: Schema.Record(
    Schema.String,
    Schema.Literals(["string", "number", "integer", "boolean", "timestamp", "decimal"])
  ).annotate({ description: "Field → target type; values that cannot be converted reject their record" })
})

const ValidateConfig = Schema.Struct({
  type: Schema.Literal("validate"),
  name: Schema.optionalKey(StageName),
  rules: Schema.Array(RuleConfig)
})

/** A transform of one record at a time (no state): what the second input of an interval join may have. */
export const RecordTransformConfig = Schema.Union([
  FilterConfig,
  DeriveConfig,
  SelectConfig,
  RenameConfig,
  CastConfig,
  ValidateConfig
]).annotate({ description: "A transform of one record at a time: filter, derive, select, rename, cast or validate" })

const offsetPattern = /^-?\d+(?:\.\d+)?\s+(?:nanos?|micros?|millis?|seconds?|minutes?|hours?|days?|weeks?)$/u

/** A duration that may be negative (before the left record's time), at most a year either way. */
const Offset = Schema.String.check(
  Schema.makeFilter(
    (s: string) => {
      if (!offsetPattern.test(s)) return 'Expected a duration like "-5 minutes", "0 seconds" or "1 hour"'
      const ms = Math.abs(Duration.toMillis(s as Duration.Input))
      return ms > 366 * 86_400_000 ? "Expected a duration of at most 366 days either way" : undefined
    },
    { toJsonSchema: () => [{ pattern: offsetPattern.source }, true] }
  )
).annotate({
  description: 'A duration relative to the left record\'s time, negative for before: "-5 minutes", "0 seconds"'
})

const KeyFields = Schema.Union([NonEmpty, Schema.Array(NonEmpty).check(Schema.isMinLength(1))])

const IntervalJoinConfig = Schema.Struct({
  type: Schema.Literal("interval_join"),
  name: Schema.optionalKey(StageName),
  source: Connectors.SourceConfig.annotate({
    description:
      "The second input (the right side), read at the same time as the pipeline's source: in streaming mode typically another Kafka topic"
  }),
  transforms: Schema.optionalKey(
    Schema.Array(RecordTransformConfig).annotate({
      description:
        "Transforms of the second input's records before the join (filter, derive, select, rename, cast, validate), e.g. a cast of its time field"
    })
  ),
  key: Schema.optionalKey(
    KeyFields.annotate({
      description: 'The key field(s), named alike on both sides: "orderId" or ["tenant", "orderId"]'
    })
  ),
  left_key: Schema.optionalKey(
    KeyFields.annotate({ description: "The key field(s) of this flow, when the sides name them differently" })
  ),
  right_key: Schema.optionalKey(
    KeyFields.annotate({ description: "The key field(s) of the second input, compared with left_key in order" })
  ),
  left_time: NonEmpty.annotate({ description: "This flow's event-time field (a timestamp or epoch milliseconds)" }),
  right_time: NonEmpty.annotate({ description: "The second input's event-time field" }),
  between: Schema.Tuple([Offset, Offset]).annotate({
    description:
      'The interval [lower, upper] relative to left_time: a right record joins when left_time + lower <= right_time <= left_time + upper, e.g. ["-5 minutes", "0 minutes"]'
  }),
  kind: Schema.optionalKey(
    Schema.Literals(["inner", "left"]).annotate({
      description:
        'inner (default) emits the pairs; left also emits each record of this flow that met nothing (null under "as") once the second input\'s watermark passes it'
    })
  ),
  as: Schema.optionalKey(
    NonEmpty.annotate({
      description:
        "Nest the matched record of the second input under this field (needed by a left join); without it, its fields are added to the output"
    })
  ),
  allowed_lateness: Schema.optionalKey(
    DurationString.annotate({
      description: 'How far behind its side\'s latest event time a record may be and still count (default "0 seconds")'
    })
  ),
  on_late: Schema.optionalKey(
    Schema.Literals(["reject", "drop"]).annotate({
      description:
        'Records behind their side\'s watermark: "reject" sends them to the dead letters with reason "late" (default), "drop" counts them as filtered'
    })
  ),
  idle_timeout: Schema.optionalKey(
    durationString({ max: "366 days", positive: true }).annotate({
      description:
        'How long a partition of an unbounded input (streaming Kafka) may send nothing before it stops holding its side\'s watermark back, until it sends again (default "30 seconds"); bounded inputs are not affected'
    })
  )
}).check(
  Schema.makeFilter((j) => {
    if (j.key !== undefined && (j.left_key !== undefined || j.right_key !== undefined))
      return { path: ["key"], issue: '"key" names the key on both sides; leave out "left_key" and "right_key"' }
    if (j.key === undefined && (j.left_key === undefined || j.right_key === undefined))
      return {
        path: [j.left_key === undefined ? "left_key" : "right_key"],
        issue: 'An interval join needs its key: "key" (named alike on both sides) or both "left_key" and "right_key"'
      }
    const count = (k: string | ReadonlyArray<string> | undefined) => (typeof k === "string" ? 1 : (k?.length ?? 0))
    if (j.key === undefined && count(j.left_key) !== count(j.right_key))
      return { path: ["right_key"], issue: '"right_key" must name as many fields as "left_key" (compared in order)' }
    const [lower, upper] = j.between.map((b) => Duration.toMillis(b as Duration.Input))
    if (lower! > upper!)
      return { path: ["between"], issue: `The interval is empty: "${j.between[0]}" is after "${j.between[1]}"` }
    if (j.kind === "left" && j.as === undefined)
      return {
        path: ["as"],
        issue: 'A left interval join needs "as": the field for the matched record, null when none matched'
      }
    return undefined
  })
)

/** A transform in a config. */
export const TransformConfig = Schema.Union([
  FilterConfig,
  DeriveConfig,
  SelectConfig,
  RenameConfig,
  CastConfig,
  ValidateConfig,
  AggregateConfig,
  WindowConfig,
  JoinConfig,
  IntervalJoinConfig
]).annotate({
  description: "A transform: filter, derive, select, rename, cast, validate, aggregate, window, join or interval_join"
})

/** A decoded transform config. */
export type TransformConfig = typeof TransformConfig.Type
/** A decoded rule config. */
export type RuleConfig = typeof RuleConfig.Type

/** What a transform builder knows: the config file (for errors) and the fields records have here, when known. */
export interface BuildContext {
  readonly file: string
  /** The JSON path of this transform, e.g. `$.transforms[2]`. */
  readonly path: string
  /** The fields records have before this transform, when the source has a schema. */
  readonly fields: ReadonlyArray<string> | undefined
  /** Finds record schemas by name, for the source of a `join` (without it, a joined source cannot name a schema). */
  readonly schema?: Connectors.BuildEnv["schema"]
  /** The connections the config declares, for the source of a `join` (the same ones the main source can name). */
  readonly connections?: Connectors.BuildEnv["connections"]
  /** The pipeline's name (the default name of a joined source's state files). */
  readonly pipeline?: string
  /** True for `"mode": "streaming"`: the second input of an interval join may stream too. */
  readonly streaming?: boolean
}

/** A built transform and the fields records have after it (when known). */
export interface Built {
  readonly apply: FlowTransform
  readonly fields: ReadonlyArray<string> | undefined
}

const compileError = (ctx: BuildContext, at: string) => (error: Expression.ExpressionError) =>
  ConfigError.single(ctx.file, `${ctx.path}${at}`, error.message)

const checkFields = (
  ctx: BuildContext,
  at: string,
  fields: ReadonlyArray<string>
): Effect.Effect<void, ConfigError.ConfigError> => {
  if (ctx.fields === undefined) return Effect.void
  const known = new Set(ctx.fields)
  const missing = fields.filter((f) => !known.has(f))
  return missing.length === 0
    ? Effect.void
    : Effect.fail(
        ConfigError.single(
          ctx.file,
          `${ctx.path}${at}`,
          `Unknown field${missing.length > 1 ? "s" : ""} ${missing.map((m) => JSON.stringify(m)).join(", ")}; records here have: ${ctx.fields.join(", ")}`
        )
      )
}

const toComparable = (value: number | string): Rule.Comparable => {
  if (typeof value === "number") return value
  const n = Number(value)
  if (value.trim() !== "" && Number.isFinite(n)) return n
  const d = new Date(value)
  return Number.isNaN(d.getTime()) ? Number.NaN : d
}

const buildRule = (
  config: RuleConfig,
  ctx: BuildContext,
  at: string
): Effect.Effect<Rule.Rule<AnyRecord>, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const options = {
      ...(config.on_fail === undefined ? {} : { onFail: config.on_fail }),
      ...(config.name === undefined ? {} : { name: config.name })
    }
    if (config.rule !== "expression") yield* checkFields(ctx, `${at}.field`, [config.field])
    switch (config.rule) {
      case "not_null":
        return Rule.notNull(config.field, options) as Rule.Rule<AnyRecord>
      case "range":
        return Rule.range(
          config.field,
          {
            ...(config.min === undefined ? {} : { min: toComparable(config.min) }),
            ...(config.max === undefined ? {} : { max: toComparable(config.max) }),
            ...(config.exclusive_min === undefined ? {} : { exclusiveMin: config.exclusive_min }),
            ...(config.exclusive_max === undefined ? {} : { exclusiveMax: config.exclusive_max })
          },
          options
        ) as Rule.Rule<AnyRecord>
      case "pattern": {
        const regex = yield* Effect.try({
          try: () => new RegExp(config.regex, "u"),
          catch: (e) =>
            ConfigError.single(
              ctx.file,
              `${ctx.path}${at}.regex`,
              `Invalid regular expression: ${(e as Error).message}`
            )
        })
        return Rule.pattern(config.field, regex, options) as Rule.Rule<AnyRecord>
      }
      case "one_of":
        return Rule.oneOf(config.field, config.values, options) as Rule.Rule<AnyRecord>
      case "expression": {
        const predicate = yield* Expression.compilePredicate(
          config.condition,
          ctx.fields === undefined ? {} : { variables: ctx.fields }
        ).pipe(Effect.mapError(compileError(ctx, `${at}.condition`)))
        const message = config.message ?? `expected ${config.condition}`
        return {
          name: config.name,
          description: config.message ?? config.condition,
          onFail: config.on_fail ?? "reject",
          check: (record: AnyRecord) => {
            const ok = predicate(record)
            return ok === true ? undefined : ok === false ? message : `${message} (${ok.error})`
          }
        }
      }
    }
  })

const pathOf = (...path: ReadonlyArray<string | number>): string => ConfigError.jsonPath(path).slice(1)

const aggFunctions: Readonly<Record<typeof AggFunction.Type, Pick<AggSpec, "kind" | "quantile">>> = {
  count: { kind: "count" },
  count_distinct: { kind: "countDistinct" },
  sum: { kind: "sum" },
  avg: { kind: "avg" },
  min: { kind: "min" },
  max: { kind: "max" },
  first: { kind: "first" },
  last: { kind: "last" },
  percentile: { kind: "percentile" },
  p50: { kind: "percentile", quantile: 0.5 },
  p95: { kind: "percentile", quantile: 0.95 },
  p99: { kind: "percentile", quantile: 0.99 }
}

const buildAggregate = (
  config: typeof AggregateConfig.Type,
  ctx: BuildContext
): Effect.Effect<Built, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const groupBy = config.group_by ?? []
    yield* checkFields(ctx, ".group_by", groupBy)
    const fields: Record<string, AggSpec> = {}
    for (const [name, f] of Object.entries(config.fields)) {
      if (f.field !== undefined) yield* checkFields(ctx, pathOf("fields", name, "field"), [f.field])
      const fn = aggFunctions[f.fn]
      fields[name] = {
        kind: fn.kind,
        field: f.field,
        quantile: f.quantile ?? fn.quantile,
        relativeAccuracy: f.relative_accuracy
      }
    }
    return {
      apply: Aggregate.dynamic(
        { groupBy, fields },
        config.name === undefined ? {} : { name: config.name }
      ) as FlowTransform,
      fields: [...groupBy, ...Object.keys(fields)]
    }
  })

const millisOf = (text: string | undefined): number =>
  text === undefined ? 0 : Duration.toMillis(text as Duration.Input)

const buildWindow = (
  config: typeof WindowConfig.Type,
  ctx: BuildContext
): Effect.Effect<Built, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    if (config.time !== undefined) yield* checkFields(ctx, ".time", [config.time])
    if (config.by !== undefined) yield* checkFields(ctx, ".by", config.by)
    const size = millisOf(config.size)
    const spec = Window.fromConfig({
      kind: config.kind,
      sizeMs: size,
      slideMs: config.kind === "sliding" ? millisOf(config.slide) : size,
      gapMs: millisOf(config.gap),
      latenessMs: millisOf(config.allowed_lateness),
      onLate: config.on_late ?? "reject",
      time: config.time ?? "",
      by: config.by ?? [],
      ...(config.watermark === undefined ? {} : { watermark: config.watermark }),
      ...(config.idle_timeout === undefined ? {} : { idleMs: millisOf(config.idle_timeout) })
    })
    const fields =
      ctx.fields === undefined
        ? undefined
        : [...ctx.fields.filter((f) => f !== "windowStart" && f !== "windowEnd"), "windowStart", "windowEnd"]
    return {
      apply: Window.dynamic(spec, config.name === undefined ? {} : { name: config.name }) as FlowTransform,
      fields
    }
  })

const buildJoin = (config: typeof JoinConfig.Type, ctx: BuildContext): Effect.Effect<Built, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const on: Join.JoinOn = config.on
    const keys = Join.keysOf(on)
    yield* checkFields(ctx, ".on", keys.left)
    const built = yield* Connectors.buildSource(config.source, {
      file: ctx.file,
      path: `${ctx.path}.source`,
      defaultName: "lookup",
      schema:
        ctx.schema ??
        ((name, path) =>
          Effect.fail(
            ConfigError.single(
              ctx.file,
              path,
              `Schema ${JSON.stringify(name)} cannot be looked up for a joined source here`
            )
          )),
      ...(ctx.connections === undefined ? {} : { connections: ctx.connections }),
      ...(ctx.pipeline === undefined ? {} : { pipeline: ctx.pipeline })
    })
    const right = built.fields
    const source = { ...ctx, fields: right }
    yield* checkFields(source, ".on", keys.right)
    if (config.select !== undefined) yield* checkFields(source, ".select", config.select)
    if (config.rename !== undefined) yield* checkFields(source, ".rename", Object.keys(config.rename))
    const keyNames = new Set(keys.right)
    const renamedKey = Object.keys(config.rename ?? {}).find((k) => keyNames.has(k))
    if (renamedKey !== undefined)
      return yield* Effect.fail(
        ConfigError.single(
          ctx.file,
          `${ctx.path}${pathOf("rename", renamedKey)}`,
          `"${renamedKey}" is a join key of the joined side; it is not repeated in the output, so it cannot be renamed`
        )
      )
    const taken = (config.select ?? right)?.filter((f) => !keyNames.has(f))
    const contributed = taken?.map((f) => config.rename?.[f] ?? f)
    let fields: ReadonlyArray<string> | undefined
    if (ctx.fields !== undefined && contributed !== undefined) {
      const clashes = contributed.filter((f) => ctx.fields!.includes(f))
      if (clashes.length > 0)
        return yield* Effect.fail(
          ConfigError.single(
            ctx.file,
            ctx.path,
            `Both sides have field${clashes.length > 1 ? "s" : ""} ${clashes.map((c) => JSON.stringify(c)).join(", ")}: leave ${clashes.length > 1 ? "them" : "it"} out of the joined side ("select") or rename ${clashes.length > 1 ? "them" : "it"} ("rename": {${JSON.stringify(clashes[0])}: "..."})`
          )
        )
      fields = [...ctx.fields, ...contributed]
    }
    const spec: Join.JoinSpec = {
      on,
      type: config.kind ?? "inner",
      ...(config.select === undefined ? {} : { select: config.select }),
      ...(config.rename === undefined ? {} : { rename: config.rename }),
      ...(config.max_rows === undefined ? {} : { maxRows: config.max_rows }),
      ...(config.refresh === undefined ? {} : { refresh: config.refresh as Duration.Input }),
      ...(config.name === undefined ? {} : { name: config.name })
    }
    // Config-built flows always need exactly Connectors.Services, which is what the joined source needs too.
    return { apply: Join.dynamic(built.source, spec) as unknown as FlowTransform, fields }
  })

const buildIntervalJoin = (
  config: typeof IntervalJoinConfig.Type,
  ctx: BuildContext
): Effect.Effect<Built, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const leftKey = config.key ?? config.left_key!
    const rightKey = config.key ?? config.right_key!
    const list = (k: string | ReadonlyArray<string>): ReadonlyArray<string> => (typeof k === "string" ? [k] : k)
    yield* checkFields(ctx, config.key === undefined ? ".left_key" : ".key", list(leftKey))
    yield* checkFields(ctx, ".left_time", [config.left_time])
    const built = yield* Connectors.buildSource(config.source, {
      file: ctx.file,
      path: `${ctx.path}.source`,
      defaultName: "right",
      schema:
        ctx.schema ??
        ((name, path) =>
          Effect.fail(
            ConfigError.single(
              ctx.file,
              path,
              `Schema ${JSON.stringify(name)} cannot be looked up for a second source here`
            )
          )),
      ...(ctx.connections === undefined ? {} : { connections: ctx.connections }),
      ...(ctx.pipeline === undefined ? {} : { pipeline: ctx.pipeline }),
      ...(ctx.streaming === undefined ? {} : { streaming: ctx.streaming })
    })
    if (ctx.streaming !== true && !built.source.bounded)
      return yield* Effect.fail(
        ConfigError.single(
          ctx.file,
          `${ctx.path}.source`,
          `A ${config.source.type} source that never ends cannot be joined in batch mode; use "mode": "streaming" or make it bounded`
        )
      )
    let right: Flow<AnyRecord, unknown, Connectors.Services> = FlowModule.from(built.source)
    let rightFields = built.fields
    const steps = config.transforms ?? []
    for (let i = 0; i < steps.length; i++) {
      const step = yield* build(steps[i]!, { ...ctx, path: `${ctx.path}.transforms[${i}]`, fields: rightFields })
      right = step.apply(right)
      rightFields = step.fields
    }
    const side = { ...ctx, fields: rightFields }
    yield* checkFields(side, config.key === undefined ? ".right_key" : ".key", list(rightKey))
    yield* checkFields(side, ".right_time", [config.right_time])
    let fields: ReadonlyArray<string> | undefined
    if (config.as !== undefined) {
      if (ctx.fields?.includes(config.as) === true)
        return yield* Effect.fail(
          ConfigError.single(
            ctx.file,
            `${ctx.path}.as`,
            `The records already have a field ${JSON.stringify(config.as)}; name the matched records' field otherwise`
          )
        )
      fields = ctx.fields === undefined ? undefined : [...ctx.fields, config.as]
    } else if (ctx.fields !== undefined && rightFields !== undefined) {
      const shared = new Set(list(rightKey).filter((k) => list(leftKey).includes(k)))
      const added = rightFields.filter((f) => !shared.has(f))
      const clashes = added.filter((f) => ctx.fields!.includes(f))
      if (clashes.length > 0)
        return yield* Effect.fail(
          ConfigError.single(
            ctx.file,
            ctx.path,
            `Both sides have field${clashes.length > 1 ? "s" : ""} ${clashes.map((c) => JSON.stringify(c)).join(", ")}: rename ${clashes.length > 1 ? "them" : "it"} on the second input ("transforms": [{"type": "rename", "fields": {${JSON.stringify(clashes[0])}: "..."}}]), leave ${clashes.length > 1 ? "them" : "it"} out ("select"), or nest its records ("as")`
          )
        )
      fields = [...ctx.fields, ...added]
    }
    const spec: IntervalJoin.IntervalJoinSpec = {
      leftKey,
      rightKey,
      leftTime: config.left_time,
      rightTime: config.right_time,
      between: [config.between[0] as Duration.Input, config.between[1] as Duration.Input],
      type: config.kind ?? "inner",
      ...(config.as === undefined ? {} : { as: config.as }),
      ...(config.allowed_lateness === undefined ? {} : { allowedLateness: config.allowed_lateness as Duration.Input }),
      ...(config.on_late === undefined ? {} : { onLate: config.on_late }),
      ...(config.idle_timeout === undefined ? {} : { idleTimeout: config.idle_timeout as Duration.Input }),
      ...(config.name === undefined ? {} : { name: config.name })
    }
    // Config-built flows always need exactly Connectors.Services, which is what the second input needs too.
    return { apply: IntervalJoin.dynamic(right, spec) as unknown as FlowTransform, fields }
  })

/** Builds one config transform into a flow transform, checking field names when they are known. */
export const build = (config: TransformConfig, ctx: BuildContext): Effect.Effect<Built, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    switch (config.type) {
      case "filter": {
        const predicate = yield* Expression.compilePredicate(
          config.condition,
          ctx.fields === undefined ? {} : { variables: ctx.fields }
        ).pipe(Effect.mapError(compileError(ctx, ".condition")))
        return {
          apply: Expressions.filterBy(config.condition, predicate, { name: config.name ?? "filter" }) as FlowTransform,
          fields: ctx.fields
        }
      }
      case "derive": {
        const compiled: Array<readonly [string, Expression.Compiled]> = []
        for (const [field, source] of Object.entries(config.fields)) {
          const expr = yield* Expression.compile(
            source,
            ctx.fields === undefined ? {} : { variables: ctx.fields }
          ).pipe(Effect.mapError(compileError(ctx, `.fields[${JSON.stringify(field)}]`)))
          compiled.push([field, expr])
        }
        const fields =
          ctx.fields === undefined
            ? undefined
            : [...ctx.fields, ...compiled.map(([k]) => k).filter((k) => !ctx.fields!.includes(k))]
        return {
          apply: Expressions.computeBy(compiled, { name: config.name ?? "derive" }) as unknown as FlowTransform,
          fields
        }
      }
      case "select":
        yield* checkFields(ctx, ".fields", config.fields)
        return { apply: Stateless.select(config.fields) as FlowTransform, fields: config.fields }
      case "rename": {
        yield* checkFields(ctx, ".fields", Object.keys(config.fields))
        const fields = ctx.fields === undefined ? undefined : ctx.fields.map((f) => config.fields[f] ?? f)
        return { apply: Stateless.rename(config.fields) as unknown as FlowTransform, fields }
      }
      case "cast":
        yield* checkFields(ctx, ".fields", Object.keys(config.fields))
        return { apply: Stateless.cast(config.fields) as unknown as FlowTransform, fields: ctx.fields }
      case "aggregate":
        return yield* buildAggregate(config, ctx)
      case "window":
        return yield* buildWindow(config, ctx)
      case "join":
        return yield* buildJoin(config, ctx)
      case "interval_join":
        return yield* buildIntervalJoin(config, ctx)
      case "validate": {
        const rules: Array<Rule.Rule<AnyRecord>> = []
        for (let i = 0; i < config.rules.length; i++)
          rules.push(yield* buildRule(config.rules[i]!, ctx, `.rules[${i}]`))
        return {
          apply: validate(rules, config.name === undefined ? {} : { name: config.name }) as FlowTransform,
          fields: ctx.fields
        }
      }
    }
  })
