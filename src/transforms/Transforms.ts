/**
 * The transforms a JSON config can use, listed explicitly: each entry is a config Schema and a builder that turns a
 * decoded config into the same transform the typed API gives. Filter conditions, derived fields and expression rules
 * are CEL, compiled once when the pipeline is built.
 *
 * Config names are snake_case (`on_fail`, `exclusive_min`); the typed API's are camelCase.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as ConfigError from "../config/ConfigError.ts"
import { NonEmpty, StageName } from "../config/Fields.ts"
import type * as DeadLetter from "../core/DeadLetter.ts"
import { type Flow, mapBatches } from "../core/Flow.ts"
import * as Expression from "../expr/Expression.ts"
import * as Rule from "./Rule.ts"
import * as Stateless from "./Stateless.ts"
import { validate } from "./Validate.ts"

/** The records of a config-built pipeline: plain objects. */
export type AnyRecord = Readonly<Record<string, unknown>>

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

/** A transform in a config. */
export const TransformConfig = Schema.Union([
  Schema.Struct({
    type: Schema.Literal("filter"),
    name: Schema.optionalKey(StageName),
    condition: NonEmpty.annotate({
      description: 'A CEL condition; records for which it is false are filtered out, e.g. status == "settled"'
    })
  }),
  Schema.Struct({
    type: Schema.Literal("derive"),
    name: Schema.optionalKey(StageName),
    fields: Schema.Record(Schema.String, NonEmpty).annotate({
      description: "New (or replaced) fields, each computed by a CEL expression over the record"
    })
  }),
  Schema.Struct({
    type: Schema.Literal("select"),
    fields: Schema.Array(NonEmpty).annotate({ description: "The fields to keep, in order" })
  }),
  Schema.Struct({
    type: Schema.Literal("rename"),
    fields: Schema.Record(Schema.String, NonEmpty).annotate({ description: "Old name → new name" })
  }),
  Schema.Struct({
    type: Schema.Literal("cast"),
    fields: Schema.Record(
      Schema.String,
      Schema.Literals(["string", "number", "integer", "boolean", "timestamp", "decimal"])
    ).annotate({ description: "Field → target type; values that cannot be converted reject their record" })
  }),
  Schema.Struct({
    type: Schema.Literal("validate"),
    name: Schema.optionalKey(StageName),
    rules: Schema.Array(RuleConfig)
  })
]).annotate({ description: "A transform: filter, derive, select, rename, cast or validate" })

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

const filterByExpression = (
  condition: string,
  predicate: Expression.Predicate,
  name: string | undefined
): FlowTransform =>
  mapBatches<AnyRecord, AnyRecord>(
    { name: name ?? "filter", description: `filter ${condition}`, cardinality: "one-to-one" },
    () => (records, stage) => {
      const out: Array<AnyRecord> = []
      const deadLetters: Array<DeadLetter.DeadLetter> = []
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!
        const ok = predicate(r)
        if (ok === true) out.push(r)
        else if (ok !== false)
          deadLetters.push({
            stage,
            reason: "expression-error",
            message: `filter ${condition}: ${ok.error}`,
            record: r
          })
      }
      return { records: out, deadLetters, filtered: records.length - out.length - deadLetters.length }
    }
  )

const deriveByExpressions = (
  compiled: ReadonlyArray<readonly [string, Expression.Compiled]>,
  name: string | undefined
): FlowTransform =>
  mapBatches<AnyRecord, AnyRecord>(
    {
      name: name ?? "derive",
      description: `derive ${compiled.map(([k, c]) => `${k} = ${c.source}`).join(", ")}`,
      cardinality: "one-to-one"
    },
    () => (records, stage) => {
      const out: Array<AnyRecord> = []
      const deadLetters: Array<DeadLetter.DeadLetter> = []
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!
        const o: Record<string, unknown> = { ...r }
        let failure: string | undefined
        for (let j = 0; j < compiled.length; j++) {
          const [field, expr] = compiled[j]!
          const value = expr.evaluate(r)
          if (Expression.isFailure(value)) {
            failure = `${field} = ${expr.source}: ${value.error}`
            break
          }
          o[field] = value
        }
        if (failure === undefined) out.push(o)
        else deadLetters.push({ stage, reason: "expression-error", message: failure, record: r })
      }
      return { records: out, deadLetters }
    }
  )

/** Builds one config transform into a flow transform, checking field names when they are known. */
export const build = (config: TransformConfig, ctx: BuildContext): Effect.Effect<Built, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    switch (config.type) {
      case "filter": {
        const predicate = yield* Expression.compilePredicate(
          config.condition,
          ctx.fields === undefined ? {} : { variables: ctx.fields }
        ).pipe(Effect.mapError(compileError(ctx, ".condition")))
        return { apply: filterByExpression(config.condition, predicate, config.name), fields: ctx.fields }
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
        return { apply: deriveByExpressions(compiled, config.name), fields }
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
