/**
 * `validate`: checks business rules on every record (see `Rule`).
 *
 * A record that breaks a `reject` rule goes to the dead letters (reason `rule:<name>`); a `warn` rule counts and logs
 * the breach and keeps the record; a `fail` rule stops the run with a `QualityError` that names the rule and the record.
 */

import type { UnionToIntersection } from "effect/Types"
import type * as DeadLetter from "../core/DeadLetter.ts"
import { QualityError } from "../core/Errors.ts"
import { type Flow, mapBatches } from "../core/Flow.ts"
import type { Rule } from "./Rule.ts"

/** The fields and types a list of rules needs from a record. */
export type RulesNeed<Rs extends ReadonlyArray<Rule<never>>> = UnionToIntersection<
  Rs[number] extends infer X ? (X extends Rule<infer A> ? A : never) : never
>

const preview = (record: unknown): string => {
  let text: string
  try {
    text = JSON.stringify(record) ?? String(record)
  } catch {
    text = String(record)
  }
  return text.length > 200 ? `${text.slice(0, 197)}...` : text
}

/**
 * Checks every record against the rules, in order; the first `reject` or `fail` rule a record breaks decides its fate.
 *
 * @example
 * Pipeline.validate([Rule.notNull("userId"), Rule.range("amount", { min: 0 }), Rule.oneOf("currency", ["EUR", "USD"])])
 */
export const validate =
  <const Rs extends ReadonlyArray<Rule<never>>>(rules: Rs, options?: { readonly name?: string }) =>
  <A extends RulesNeed<Rs>, E, R>(self: Flow<A, E, R>): Flow<A, E, R> =>
    mapBatches<A, A>(
      {
        name: options?.name ?? "validate",
        description: `validate ${rules.map((r) => `${r.description} (${r.onFail})`).join("; ")}`,
        cardinality: "one-to-one"
      },
      (counter) => (records, stage) => {
        const out: Array<A> = []
        const deadLetters: Array<DeadLetter.DeadLetter> = []
        for (let i = 0; i < records.length; i++) {
          const record = records[i]!
          let rejected = false
          for (let j = 0; j < rules.length; j++) {
            const rule = rules[j] as unknown as Rule<A>
            const problem = rule.check(record)
            if (problem === undefined) continue
            if (rule.onFail === "warn") {
              counter.warn(() => `rule ${rule.name}: ${problem} in record ${preview(record)}`)
              continue
            }
            if (rule.onFail === "fail") {
              return {
                records: [],
                failure: new QualityError({
                  stage,
                  message: `Rule ${rule.name} failed: ${problem} in record ${preview(record)}`,
                  retryable: false
                })
              }
            }
            deadLetters.push({ stage, reason: `rule:${rule.name}`, message: problem, record })
            rejected = true
            break
          }
          if (!rejected) out.push(record)
        }
        return { records: out, deadLetters }
      }
    )(self)
