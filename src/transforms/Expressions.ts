/**
 * Transforms written as CEL expressions (see `expr/Expression.ts` for the language and its value mapping): `where`
 * keeps the records a condition holds for, `compute` adds fields computed by expressions. Configs build their
 * `filter` and `derive` transforms with the same functions (`filterBy`, `computeBy`), after compiling the expressions
 * against the fields they know so that a mistake is reported at its JSON path.
 *
 * A record on which an expression cannot be evaluated (a missing field, a division by zero, no such overload) goes to
 * the dead letters with reason `expression-error`; an expression that does not compile fails the run before it reads.
 *
 * @example
 * Pipeline.from(transactions).pipe(
 *   Pipeline.where("amount > 100.0 && currency == 'EUR'"),
 *   Pipeline.compute({ band: "amount > 1000.0 ? 'large' : 'small'" })
 * )
 */
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type * as DeadLetter from "../core/DeadLetter.ts"
import { BuildError } from "../core/Errors.ts"
import { addStage, type Flow, mapBatches } from "../core/Flow.ts"
import * as Expression from "../expr/Expression.ts"

type Simplify<T> = { [K in keyof T]: T[K] } & {}

type AnyRecord = Readonly<Record<string, unknown>>

/** Options of the expression transforms. */
export interface Options {
  /** The stage name (default `where` / `compute`). */
  readonly name?: string
}

/** The record type after adding fields computed by expressions: their values are CEL values. */
export type Computed<A, F> = Simplify<Omit<A, keyof F> & { [K in keyof F]: Expression.Value }>

/** A stage that fails the run before it reads: an expression given to the typed API did not compile. */
const notCompiled =
  <B>(name: string, description: string, error: Expression.ExpressionError) =>
  <A, E, R>(self: Flow<A, E, R>): Flow<B, E, R> =>
    addStage<A, B>(
      { name, description, cardinality: "one-to-one" },
      (counter) => () =>
        Stream.fail(
          new BuildError({
            stage: counter.info.name,
            message: `${counter.info.name}: ${error.message}`,
            retryable: false
          })
        )
    )(self)

/**
 * Keeps the records for which a compiled condition holds; records on which it cannot be evaluated are dead-lettered.
 * `condition` is the expression's source, for the stage description and dead-letter messages.
 */
export const filterBy =
  (condition: string, predicate: Expression.Predicate, options?: Options) =>
  <A extends object, E, R>(self: Flow<A, E, R>): Flow<A, E, R> =>
    mapBatches<A, A>(
      { name: options?.name ?? "where", description: `filter ${condition}`, cardinality: "one-to-one" },
      () => (records, stage) => {
        const out: Array<A> = []
        const deadLetters: Array<DeadLetter.DeadLetter> = []
        for (let i = 0; i < records.length; i++) {
          const r = records[i]!
          const ok = predicate(r as AnyRecord)
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
    )(self)

/**
 * Keeps the records for which a CEL condition holds (the others are filtered, as by `Pipeline.filter`).
 *
 * @example
 * Pipeline.where("amount > 100.0 && status == 'settled'")
 */
export const where =
  (condition: string, options?: Options) =>
  <A extends object, E, R>(self: Flow<A, E, R>): Flow<A, E, R> => {
    const compiled = Expression.compilePredicateResult(condition)
    return Result.isSuccess(compiled)
      ? filterBy(condition, compiled.success, options)(self)
      : notCompiled<A>(options?.name ?? "where", `filter ${condition}`, compiled.failure)(self)
  }

/**
 * Adds (or replaces) fields computed by compiled expressions, in order (a later expression does not see an earlier
 * one's result); a record on which one cannot be evaluated is dead-lettered.
 */
export const computeBy =
  <const F extends Readonly<Record<string, unknown>>>(
    compiled: ReadonlyArray<readonly [keyof F & string, Expression.Compiled]>,
    options?: Options
  ) =>
  <A extends object, E, R>(self: Flow<A, E, R>): Flow<Computed<A, F>, E, R> =>
    mapBatches<A, Computed<A, F>>(
      {
        name: options?.name ?? "compute",
        description: `derive ${compiled.map(([k, c]) => `${k} = ${c.source}`).join(", ")}`,
        cardinality: "one-to-one"
      },
      () => (records, stage) => {
        const out: Array<Computed<A, F>> = []
        const deadLetters: Array<DeadLetter.DeadLetter> = []
        for (let i = 0; i < records.length; i++) {
          const r = records[i]!
          const o: Record<string, unknown> = { ...(r as AnyRecord) }
          let failure: string | undefined
          for (let j = 0; j < compiled.length; j++) {
            const [field, expr] = compiled[j]!
            const value = expr.evaluate(r as AnyRecord)
            if (Expression.isFailure(value)) {
              failure = `${field} = ${expr.source}: ${value.error}`
              break
            }
            o[field] = value
          }
          if (failure === undefined) out.push(o as Computed<A, F>)
          else deadLetters.push({ stage, reason: "expression-error", message: failure, record: r })
        }
        return { records: out, deadLetters }
      }
    )(self)

/**
 * Adds (or replaces) fields computed by CEL expressions over each record.
 *
 * @example
 * Pipeline.compute({ band: "amount > 1000.0 ? 'large' : 'small'", cents: "int(amount * 100.0)" })
 */
export const compute =
  <const F extends Readonly<Record<string, string>>>(fields: F, options?: Options) =>
  <A extends object, E, R>(self: Flow<A, E, R>): Flow<Computed<A, F>, E, R> => {
    const compiled: Array<readonly [keyof F & string, Expression.Compiled]> = []
    for (const [field, source] of Object.entries(fields)) {
      const result = Expression.compileResult(source)
      if (Result.isFailure(result))
        return notCompiled<Computed<A, F>>(
          options?.name ?? "compute",
          `derive ${field} = ${source}`,
          result.failure
        )(self)
      compiled.push([field, result.success])
    }
    return computeBy<F>(compiled, options)(self)
  }
