/**
 * CEL ([Common Expression Language](https://cel.dev)) expressions for pipeline configs: filter conditions
 * (`"amount > 100.0 && status == \"settled\""`) and derived fields (`"amount * 1.2"`). An expression is parsed and
 * type-checked once per pipeline with {@link compile} / {@link compilePredicate}; the result is a plain synchronous
 * function that a transform calls per record inside its hot loop, with no Effect per record. Evaluation errors never
 * throw: they come back as an {@link EvaluationFailure} value, which the caller turns into a per-record dead letter.
 *
 * The engine is `@marcbachmann/cel-js` (see `bench/README.md` for why). Record fields are the top-level variables of
 * the expression: `amount`, `status`, `payload.customer.id`.
 *
 * **What CEL offers here**
 *
 * | feature | examples |
 * |---|---|
 * | comparison, logic | `amount >= 100 && status != "failed"`, `!(a \|\| b)` |
 * | arithmetic | `amount * 1.2`, `qty - 1`, `-amount`, `price / 100` |
 * | ternary | `amount > 1000 ? "large" : "small"` |
 * | membership | `currency in ["EUR", "USD"]`, `"vip" in tags`, `"k" in labels` (map key) |
 * | strings | `userId.startsWith("u1")`, `endsWith`, `contains`, `matches("^u[0-9]+$")`, `size(s)`, `lowerAscii()`, `upperAscii()`, `trim()`, `indexOf`, `lastIndexOf`, `substring(1, 3)`, `split(",")`, `["a", "b"].join("-")`, `"id-" + userId` |
 * | presence | `has(payload.customer)` (a key of a nested map; not a top-level field) |
 * | lists, macros | `size(items) > 0`, `items.exists(i, i.qty > 2)`, `all`, `exists_one`, `items.map(i, i.qty)`, `items.filter(i, i.ok)`, `cel.bind(t, amount * 1.2, t > 10.0 ? t : 0.0)` |
 * | time | `eventTime > timestamp("2026-01-01T00:00:00Z")`, `eventTime + duration("1h")`, `eventTime.getHours("Europe/Berlin")`, `getFullYear()`, `getDayOfWeek()` |
 * | conversions | `int(amount)`, `double("1.5")`, `string(qty)`, `bytes("x")`, `dyn(x)`, `type(x) == string` |
 *
 * **Record values → CEL** (converted per evaluation, and only for the fields the expression references):
 * - `number` → `double`, always, also for whole numbers, so a field's CEL type never depends on the data. CEL compares
 *   numbers across types, so `amount > 100`, `amount > 100.0`, `qty == 5` and `qty in [1, 5]` all work. CEL has no
 *   implicit conversion in arithmetic; this module adds `double ⊕ int` and `int ⊕ double` overloads for `+ - * /`
 *   (result `double`), so `amount + 1` works too. `int / int` stays integer division, `x % y` needs two ints.
 * - `bigint` → `int`; `string`, `boolean`, `Uint8Array`/`Buffer` (`bytes`) and `null` map to themselves.
 * - `Date` → `timestamp`.
 * - `BigDecimal` (from `effect/BigDecimal`) → `double`. This is lossy and only affects the expression; the record
 *   keeps its exact decimal. Compare with doubles (`price > 9.99`); an exact equality on a non-representable decimal
 *   may surprise.
 * - arrays → lists, plain objects and `Map`s → maps (nested values converted the same way).
 * - a field that is absent (or `undefined`) is an evaluation error ("missing field"); a `null` field is `null`.
 * Field names that are CEL type names (`int`, `string`, `bytes`, `double`, `bool`, `list`, `map`, `type`, …) resolve to
 * the type, not the field; rename such fields before the transform.
 *
 * **CEL results → JS**: `int`/`uint` → `number` when it is a safe integer, else `bigint`; `double` → `number`;
 * `timestamp` → `Date`; `duration` → `Duration` from `effect/Duration`; lists → arrays; maps → plain objects (or
 * `Map` when CEL built one with non-string keys); everything else unchanged.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Expression from "./Expression.ts"
 *
 * const program = Effect.gen(function*() {
 *   const keep = yield* Expression.compilePredicate(`amount > 100 && status == "settled"`, {
 *     variables: ["transactionId", "amount", "status"]
 *   })
 *   const gross = yield* Expression.compile("amount * 1.2")
 *   for (const record of batch) {
 *     const ok = keep(record)
 *     if (ok === true) out.push({ ...record, gross: gross.evaluate(record) })
 *     else if (ok !== false) deadLetters.push({ record, error: ok.error })
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
import type * as Cel from "@marcbachmann/cel-js"
import type { ASTNode, Environment, ParseResult } from "@marcbachmann/cel-js"
import type * as CelEvaluator from "@marcbachmann/cel-js/evaluator"
import * as BigDecimal from "effect/BigDecimal"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"

// The CEL engine is loaded by the first expression, not with this module: a command or a config without CEL does not
// pay for it. It is an ES module without top-level await, which `require` loads synchronously.
const requireLibrary = createRequire(import.meta.url)
let cel: { readonly Environment: typeof Cel.Environment; readonly evaluator: typeof CelEvaluator } | undefined
const celLibrary = () =>
  (cel ??= {
    Environment: (requireLibrary("@marcbachmann/cel-js") as typeof Cel).Environment,
    evaluator: requireLibrary("@marcbachmann/cel-js/evaluator") as typeof CelEvaluator
  })

// -----------------------------------------------------------------------------
// Public types
// -----------------------------------------------------------------------------

/**
 * Options for {@link compile} and {@link compilePredicate}.
 *
 * @since 0.1.0
 */
export interface CompileOptions {
  /**
   * The record field names the expression may refer to. When given, any other identifier is an
   * {@link ExpressionError} at compile time (`Unknown field "stat" … Known fields: amount, status`); when omitted,
   * every identifier is accepted and a field missing from a record is an {@link EvaluationFailure} for that record.
   * Names that are not CEL identifiers (`event-time`) or that CEL reserves (`int`, `cel`, `as`) cannot be referenced
   * and are ignored.
   */
  readonly variables?: ReadonlyArray<string> | undefined
}

/**
 * A value an expression can produce, after conversion back to JS (see the module docs for the mapping).
 *
 * @since 0.1.0
 */
export type Value =
  | string
  | number
  | bigint
  | boolean
  | null
  | Date
  | Uint8Array
  | Duration.Duration
  | ReadonlyArray<Value>
  | ReadonlyMap<Value, Value>
  | { readonly [key: string]: Value }

/**
 * A compiled expression: parsed and checked once, then evaluated per record with {@link Compiled.evaluate}.
 *
 * @since 0.1.0
 */
export interface Compiled {
  /** The expression source, as given. */
  readonly source: string
  /** The top-level record fields the expression refers to (iteration variables of macros may also appear). */
  readonly fields: ReadonlyArray<string>
  /** The CEL type the checker inferred: `bool`, `double`, `string`, …, or `dyn` when it depends on the record. */
  readonly outputType: string
  /**
   * Evaluates the expression against one record. Synchronous and allocation-light, for hot loops. Never throws: an
   * evaluation error (division by zero, missing field, no such overload, …) is returned as an
   * {@link EvaluationFailure}; test with {@link isFailure}.
   *
   * @example
   * ```ts
   * const v = compiled.evaluate({ amount: 10 })   // 12
   * if (Expression.isFailure(v)) deadLetter(v.error)
   * ```
   */
  readonly evaluate: (record: Readonly<Record<string, unknown>>) => Value | EvaluationFailure
}

/**
 * A compiled filter condition: `true` keeps the record, `false` drops it, and an {@link EvaluationFailure} (an
 * evaluation error, or a result that is not a bool) is meant for the dead-letter output.
 *
 * @example
 * ```ts
 * const r = predicate(record)
 * if (r === true) keep(record)
 * else if (r !== false) deadLetter(record, r.error)
 * ```
 *
 * @since 0.1.0
 */
export type Predicate = (record: Readonly<Record<string, unknown>>) => boolean | EvaluationFailure

/**
 * Why an expression was rejected at compile time.
 *
 * @since 0.1.0
 */
export type ExpressionErrorReason = "SyntaxError" | "TypeError" | "UnknownField" | "NotBoolean"

/**
 * An expression that cannot be compiled: a syntax error, a type error, a reference to an unknown field, or a
 * predicate whose type is not `bool`. The message names the expression and the position (1-based `line:column`).
 *
 * @example
 * ```ts
 * // Invalid expression "amount >> 3": Syntax error at 1:9: Unexpected token: GT
 * // Invalid expression "stat == 'x'": Unknown field "stat" at 1:1 (did you mean "status"?). Known fields: amount, status
 * ```
 *
 * @since 0.1.0
 */
export class ExpressionError extends Data.TaggedError("ExpressionError")<{
  /** The expression source, as given. */
  readonly expression: string
  /** What kind of problem it is. */
  readonly reason: ExpressionErrorReason
  /** The problem without the expression, e.g. `Syntax error at 1:9: Unexpected token: GT`. */
  readonly detail: string
  /** 1-based line of the problem, when known. */
  readonly line: number | undefined
  /** 1-based column of the problem, when known. */
  readonly column: number | undefined
  /** The full text: `Invalid expression "<source>": <detail>`. */
  readonly message: string
  /** The CEL library's error, when there is one. */
  readonly cause?: unknown
}> {}

/**
 * The result of a per-record evaluation that went wrong. It is a value, not an exception, so a transform can route
 * the record to a dead-letter output and go on; no stack trace is captured, which keeps it cheap.
 *
 * @since 0.1.0
 */
export class EvaluationFailure {
  /** Discriminator, for code that switches on `_tag`. */
  readonly _tag = "EvaluationFailure"
  /** The expression source. */
  readonly expression: string
  /**
   * A short machine-readable code: `missing_field`, `not_boolean`, `division_by_zero`, `no_such_overload`,
   * `no_such_key`, `unsupported_type`, … (the CEL library's codes, plus the first two).
   */
  readonly code: string
  /** A sentence for the dead letter, e.g. `Expression "amount / qty" failed at 1:1: division by zero`. */
  readonly error: string
  /** The CEL library's error, or the offending result for `not_boolean`. */
  readonly cause: unknown

  constructor(expression: string, code: string, error: string, cause: unknown) {
    this.expression = expression
    this.code = code
    this.error = error
    this.cause = cause
  }
}

/**
 * Whether an evaluation result is an {@link EvaluationFailure}.
 *
 * @since 0.1.0
 */
export const isFailure = (u: unknown): u is EvaluationFailure => u instanceof EvaluationFailure

// -----------------------------------------------------------------------------
// Compilation
// -----------------------------------------------------------------------------

/**
 * Compiles a CEL expression once, returning a {@link Result}: the synchronous form of {@link compile}, for config
 * validation and code outside Effect.
 *
 * @example
 * ```ts
 * const r = Expression.compileResult("amount * 1.2")
 * if (Result.isSuccess(r)) r.success.evaluate({ amount: 10 }) // 12
 * ```
 *
 * @since 0.1.0
 */
export const compileResult = (source: string, options?: CompileOptions): Result.Result<Compiled, ExpressionError> =>
  Result.map(compileCore(source, options), ({ fields, outputType, run }) => ({
    source,
    fields,
    outputType,
    evaluate: (record) => {
      const raw = run(record)
      if (typeof raw !== "object" && typeof raw !== "bigint") return raw as Value
      return raw instanceof EvaluationFailure ? raw : fromCel(raw)
    }
  }))

/**
 * Compiles a CEL expression once (parse + type check), failing with an {@link ExpressionError} that names the
 * expression and the position of the problem. With `variables`, referring to any other field is an error here rather
 * than at run time.
 *
 * @example
 * ```ts
 * const gross = yield* Expression.compile("amount * 1.2", { variables: ["amount", "currency"] })
 * gross.evaluate({ amount: 100, currency: "EUR" }) // 120
 * ```
 *
 * @since 0.1.0
 */
export const compile: (source: string, options?: CompileOptions) => Effect.Effect<Compiled, ExpressionError> =
  Effect.fn("Expression.compile")(function* (source: string, options?: CompileOptions) {
    return yield* Effect.fromResult(compileResult(source, options))
  })

/**
 * Compiles a filter condition, returning a {@link Result}: the synchronous form of {@link compilePredicate}. An
 * expression whose checked type is neither `bool` nor `dyn` (e.g. `amount * 1.2`) is rejected here.
 *
 * @since 0.1.0
 */
export const compilePredicateResult = (
  source: string,
  options?: CompileOptions
): Result.Result<Predicate, ExpressionError> => {
  const core = compileCore(source, options)
  if (Result.isFailure(core)) return Result.fail(core.failure)
  const { outputType, run } = core.success
  if (outputType !== "bool" && outputType !== "dyn") {
    const detail = `Type error: a condition must return bool, but this returns ${outputType}`
    return Result.fail(
      new ExpressionError({
        expression: source,
        reason: "NotBoolean",
        detail,
        line: undefined,
        column: undefined,
        message: `Invalid expression ${JSON.stringify(source)}: ${detail}`
      })
    )
  }
  return Result.succeed((record) => {
    const raw = run(record)
    if (raw === true || raw === false || raw instanceof EvaluationFailure) return raw
    return notBoolean(source, raw)
  })
}

/**
 * Compiles a filter condition once. The returned {@link Predicate} gives `true`/`false`, or an
 * {@link EvaluationFailure} when evaluation fails or the result is not a bool (e.g. `status` on a record whose
 * `status` is a string).
 *
 * @example
 * ```ts
 * const keep = yield* Expression.compilePredicate(`amount > 100 && status == "settled"`)
 * keep({ amount: 123.45, status: "settled" }) // true
 * keep({ amount: 123.45 })                    // EvaluationFailure: missing field "status"
 * ```
 *
 * @since 0.1.0
 */
export const compilePredicate: (source: string, options?: CompileOptions) => Effect.Effect<Predicate, ExpressionError> =
  Effect.fn("Expression.compilePredicate")(function* (source: string, options?: CompileOptions) {
    return yield* Effect.fromResult(compilePredicateResult(source, options))
  })

interface Core {
  readonly fields: ReadonlyArray<string>
  readonly outputType: string
  readonly run: Runner
}

const compileCore = (source: string, options: CompileOptions | undefined): Result.Result<Core, ExpressionError> => {
  const variables = options?.variables
  const env = environmentFor(variables)
  // Library boundary: cel-js reports syntax errors by throwing.
  let parsed: ParseResult
  try {
    parsed = env.parse(source)
  } catch (cause) {
    return Result.fail(toCompileError(source, cause, variables))
  }
  // Checking also caches the inferred types on the AST, so evaluations skip the per-call check.
  const checked = parsed.check()
  if (!checked.valid) return Result.fail(toCompileError(source, checked.error, variables))
  const fields = referencedFields(parsed.ast, variables)
  return Result.succeed({ fields, outputType: checked.type ?? "dyn", run: makeRunner(source, parsed, fields) })
}

// -----------------------------------------------------------------------------
// Environments
// -----------------------------------------------------------------------------

const mixedArithmetic = (env: Environment): Environment =>
  env
    .registerOperator("double + int: double", (a: number, b: bigint) => a + Number(b))
    .registerOperator("int + double: double", (a: bigint, b: number) => Number(a) + b)
    .registerOperator("double - int: double", (a: number, b: bigint) => a - Number(b))
    .registerOperator("int - double: double", (a: bigint, b: number) => Number(a) - b)
    .registerOperator("double * int: double", (a: number, b: bigint) => a * Number(b))
    .registerOperator("int * double: double", (a: bigint, b: number) => Number(a) * b)
    .registerOperator("double / int: double", (a: number, b: bigint) => a / Number(b))
    .registerOperator("int / double: double", (a: bigint, b: number) => Number(a) / b)

let dynamicEnv: Environment | undefined
let strictEnv: Environment | undefined

// Building an environment is the expensive part of cel-js; the two bases are built once, and an expression with a
// field list gets a cheap clone of the strict one (cloning freezes the base, which is fully set up by then).
const environmentFor = (variables: ReadonlyArray<string> | undefined): Environment => {
  if (variables === undefined) {
    dynamicEnv ??= mixedArithmetic(
      new (celLibrary().Environment)({ unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false })
    )
    return dynamicEnv
  }
  strictEnv ??= mixedArithmetic(
    new (celLibrary().Environment)({ unlistedVariablesAreDyn: false, homogeneousAggregateLiterals: false })
  )
  const env = strictEnv.clone()
  for (const name of new Set(variables)) {
    // A name that is not a CEL identifier (`event-time`), or that CEL already owns (`int`, `cel`, `as`), cannot be
    // referenced as a variable anyway; skip it rather than fail. Library boundary: registerVariable throws.
    if (!IDENTIFIER.test(name)) continue
    try {
      env.registerVariable(name, "dyn")
    } catch {
      // reserved or built-in name
    }
  }
  return env
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/

// -----------------------------------------------------------------------------
// Evaluation
// -----------------------------------------------------------------------------

type Runner = (record: Readonly<Record<string, unknown>>) => unknown

const makeRunner = (source: string, parsed: ParseResult, fields: ReadonlyArray<string>): Runner => {
  const n = fields.length
  const run = (input: Readonly<Record<string, unknown>>): unknown => {
    // Library boundary: cel-js reports evaluation errors by throwing.
    try {
      return parsed(input)
    } catch (cause) {
      return toFailure(source, cause)
    }
  }
  // cel-js reads `context[name]`, which would find `constructor`, `toString`, … on Object.prototype; such names get a
  // context of own properties only, so they read as missing fields like any other.
  if (fields.some((f) => f in Object.prototype)) return (record) => run(ownFields(record, fields))
  return (record) => {
    for (let i = 0; i < n; i++) {
      const v = record[fields[i]!]
      if (typeof v === "object" && v !== null && !(v instanceof Date) && !(v instanceof Uint8Array)) {
        return run(prepare(record, fields))
      }
    }
    return run(record)
  }
}

const ownFields = (
  record: Readonly<Record<string, unknown>>,
  fields: ReadonlyArray<string>
): Readonly<Record<string, unknown>> => {
  const out: Record<string, unknown> = Object.create(null)
  for (const f of fields) if (Object.hasOwn(record, f) && record[f] !== undefined) out[f] = toCel(record[f])
  return out
}

// Builds the context the engine sees: only the referenced fields, converted; the record itself when nothing changes.
const prepare = (
  record: Readonly<Record<string, unknown>>,
  fields: ReadonlyArray<string>
): Readonly<Record<string, unknown>> => {
  let out: Record<string, unknown> | undefined
  for (const f of fields) {
    const v = record[f]
    const c = toCel(v)
    if (c === v) continue
    if (out === undefined) {
      out = {}
      for (const g of fields) if (record[g] !== undefined) out[g] = record[g]
    }
    out[f] = c
  }
  return out ?? record
}

const isPlainObject = (v: object): v is Record<string, unknown> => {
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

// Copy-on-write: returns `v` itself when nothing inside needs converting.
const toCel = (v: unknown): unknown => {
  if (typeof v !== "object" || v === null || v instanceof Date || v instanceof Uint8Array) return v
  if (BigDecimal.isBigDecimal(v)) return BigDecimal.toNumberUnsafe(v)
  if (Array.isArray(v)) return mapArray(v, toCel)
  if (v instanceof Map) return mapMap(v, toCel)
  if (isPlainObject(v)) return mapRecord(v, toCel)
  return v
}

const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER)
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER)

const fromInt = (i: bigint): number | bigint => (i <= SAFE_MAX && i >= SAFE_MIN ? Number(i) : i)

const fromCel = (v: unknown): Value => {
  if (typeof v === "bigint") return fromInt(v)
  if (typeof v !== "object" || v === null || v instanceof Date || v instanceof Uint8Array) return v as Value
  if (Array.isArray(v)) return mapArray(v, fromCel) as ReadonlyArray<Value>
  if (v instanceof celLibrary().evaluator.Duration) return Duration.nanos(v.seconds * 1_000_000_000n + BigInt(v.nanos))
  if (v instanceof celLibrary().evaluator.UnsignedInt) return fromInt(v.value)
  if (v instanceof Map) return mapMap(v, fromCel) as ReadonlyMap<Value, Value>
  if (isPlainObject(v)) return mapRecord(v, fromCel) as { readonly [key: string]: Value }
  return v as Value
}

const mapArray = (xs: ReadonlyArray<unknown>, f: (x: unknown) => unknown): ReadonlyArray<unknown> => {
  let out: Array<unknown> | undefined
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]
    const y = f(x)
    if (y !== x && out === undefined) out = xs.slice(0, i)
    if (out !== undefined) out.push(y)
  }
  return out ?? xs
}

const mapMap = (m: ReadonlyMap<unknown, unknown>, f: (x: unknown) => unknown): ReadonlyMap<unknown, unknown> => {
  let changed = false
  const out = new Map<unknown, unknown>()
  for (const [k, x] of m) {
    const y = f(x)
    if (y !== x) changed = true
    out.set(k, y)
  }
  return changed ? out : m
}

const mapRecord = (o: Record<string, unknown>, f: (x: unknown) => unknown): Record<string, unknown> => {
  let out: Record<string, unknown> | undefined
  for (const k in o) {
    const x = o[k]
    const y = f(x)
    if (y !== x) out ??= { ...o }
    if (out !== undefined) out[k] = y
  }
  return out ?? o
}

// -----------------------------------------------------------------------------
// AST
// -----------------------------------------------------------------------------

const isNode = (u: unknown): u is ASTNode =>
  typeof u === "object" && u !== null && typeof (u as { readonly op?: unknown }).op === "string" && "args" in u

const referencedFields = (ast: ASTNode, variables: ReadonlyArray<string> | undefined): ReadonlyArray<string> => {
  const ids = new Set<string>()
  const seen = new Set<unknown>()
  const visit = (u: unknown): void => {
    if (typeof u !== "object" || u === null || seen.has(u)) return
    seen.add(u)
    if (Array.isArray(u)) {
      for (const x of u) visit(x)
    } else if (isNode(u)) {
      if (u.op === "id") ids.add(u.args)
      else if (u.op !== "value") visit(u.args)
    }
  }
  visit(ast)
  const known = variables === undefined ? undefined : new Set(variables)
  return Array.from(ids).filter((id) => known === undefined || known.has(id))
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

interface CelErrorLike {
  readonly name?: unknown
  readonly code?: unknown
  readonly summary?: unknown
  readonly message?: unknown
  readonly range?: { readonly start: number; readonly end: number } | undefined
}

const asCelError = (u: unknown): CelErrorLike => (typeof u === "object" && u !== null ? (u as CelErrorLike) : {})

const summaryOf = (e: CelErrorLike, cause: unknown): string =>
  typeof e.summary === "string" ? e.summary : typeof e.message === "string" ? e.message : String(cause)

const positionOf = (source: string, offset: number): { readonly line: number; readonly column: number } => {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < offset && i < source.length; i++) {
    if (source[i] === "\n") {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: offset - lineStart + 1 }
}

const toCompileError = (
  source: string,
  cause: unknown,
  variables: ReadonlyArray<string> | undefined
): ExpressionError => {
  const e = asCelError(cause)
  const pos = e.range === undefined ? undefined : positionOf(source, e.range.start)
  const at = pos === undefined ? "" : ` at ${pos.line}:${pos.column}`
  let reason: ExpressionErrorReason
  let detail: string
  if (e.code === "unknown_variable" && variables !== undefined) {
    const name =
      e.range === undefined
        ? summaryOf(e, cause).replace(/^Unknown variable: /, "")
        : source.slice(e.range.start, e.range.end)
    const suggestion = closest(name, variables)
    reason = "UnknownField"
    detail =
      `Unknown field ${JSON.stringify(name)}${at}` +
      (suggestion === undefined ? "" : ` (did you mean ${JSON.stringify(suggestion)}?)`) +
      `. Known fields: ${variables.length === 0 ? "(none)" : variables.join(", ")}`
  } else {
    reason = e.name === "ParseError" ? "SyntaxError" : "TypeError"
    detail = `${reason === "SyntaxError" ? "Syntax error" : "Type error"}${at}: ${summaryOf(e, cause)}`
  }
  return new ExpressionError({
    expression: source,
    reason,
    detail,
    line: pos?.line,
    column: pos?.column,
    message: `Invalid expression ${JSON.stringify(source)}: ${detail}`,
    cause
  })
}

const toFailure = (source: string, cause: unknown): EvaluationFailure => {
  const e = asCelError(cause)
  const pos = e.range === undefined ? undefined : positionOf(source, e.range.start)
  const at = pos === undefined ? "" : ` at ${pos.line}:${pos.column}`
  if (e.code === "unknown_variable") {
    const name =
      e.range === undefined
        ? summaryOf(e, cause).replace(/^Unknown variable: /, "")
        : source.slice(e.range.start, e.range.end)
    return new EvaluationFailure(
      source,
      "missing_field",
      `Expression ${JSON.stringify(source)} failed${at}: missing field ${JSON.stringify(name)}`,
      cause
    )
  }
  const code = typeof e.code === "string" ? e.code : "evaluation_error"
  return new EvaluationFailure(
    source,
    code,
    `Expression ${JSON.stringify(source)} failed${at}: ${summaryOf(e, cause)}`,
    cause
  )
}

const describe = (v: unknown): string => {
  switch (typeof v) {
    case "number":
      return `double ${v}`
    case "bigint":
      return `int ${v}`
    case "string":
      return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`
    case "object":
      return v === null
        ? "null"
        : v instanceof Date
          ? "timestamp"
          : Array.isArray(v)
            ? "list"
            : v instanceof Uint8Array
              ? "bytes"
              : "map"
    default:
      return typeof v
  }
}

const notBoolean = (source: string, value: unknown): EvaluationFailure =>
  new EvaluationFailure(
    source,
    "not_boolean",
    `Expression ${JSON.stringify(source)} must return bool, got ${describe(value)}`,
    value
  )

const levenshtein = (a: string, b: string): number => {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)))
    }
    prev = cur
  }
  return prev[b.length]!
}

const closest = (name: string, candidates: ReadonlyArray<string>): string | undefined => {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1
  for (const c of candidates) {
    const d = levenshtein(name.toLowerCase(), c.toLowerCase())
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return best
}
