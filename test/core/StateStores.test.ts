import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as NodeFileState from "../../src/connectors/file/NodeFileState.ts"
import * as NodePostgres from "../../src/connectors/postgres/NodePostgres.ts"
import * as State from "../../src/core/State.ts"
import { pgUrl } from "../support/Databases.ts"

const snapshot = (pipeline: string, n: number): State.Snapshot => ({
  version: 1,
  pipeline,
  resume: { "events/0": String(n) },
  stages: { aggregate: { fingerprint: "f", n } },
  savedAt: new Date(n).toISOString()
})

/** The same behaviours against every store. */
const conformance = (name: string, layer: () => Layer.Layer<State.StateStore>) =>
  describe(`state store: ${name}`, () => {
    it.effect("saves and loads snapshots per pipeline; a pipeline never saved has none", () =>
      Effect.gen(function* () {
        const store = yield* State.StateStore
        assert.isUndefined(yield* store.load("p"))
        yield* store.save(snapshot("p", 1))
        yield* store.save(snapshot("q", 7))
        yield* store.save(snapshot("p", 2))
        assert.deepStrictEqual(yield* store.load("p"), snapshot("p", 2))
        assert.deepStrictEqual(yield* store.load("q"), snapshot("q", 7))
        // Names that are not file names or SQL literals are keys like any other.
        yield* store.save(snapshot("a/b 'c'", 3))
        assert.deepStrictEqual(yield* store.load("a/b 'c'"), snapshot("a/b 'c'", 3))
      }).pipe(Effect.provide(layer()))
    )
  })

conformance("memory", () => State.layerMemory)

conformance("directory", () => NodeFileState.layer(fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-state-"))))

const schema = `etl_state_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`
const pg = () =>
  Layer.effectDiscard(
    Effect.acquireRelease(
      Effect.orDie(NodePostgres.execute({ url: Redacted.make(pgUrl) }, `CREATE SCHEMA IF NOT EXISTS "${schema}"`)),
      () => Effect.ignore(NodePostgres.execute({ url: Redacted.make(pgUrl) }, `DROP SCHEMA "${schema}" CASCADE`))
    )
  ).pipe(Layer.provideMerge(NodePostgres.stateStore({ url: Redacted.make(pgUrl), schema })))

conformance("PostgreSQL", pg)

describe("state store failures", () => {
  it.effect("a file that is not a snapshot is a clear error naming the pipeline and the store", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-state-"))
      fs.writeFileSync(nodePath.join(dir, `${encodeURIComponent("pipeline:p")}.json`), "{ half a snap")
      const error = yield* Effect.flip(
        Effect.flatMap(Effect.service(State.StateStore), (s) => s.load("p")).pipe(
          Effect.provide(NodeFileState.layer(dir))
        )
      )
      assert.include(error.message, `The state of pipeline "p" in directory ${dir} is not a snapshot`)
      assert.isFalse(error.retryable)
    })
  )

  it.effect("a server that is down is a retryable error, with no password in its message", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.flatMap(Effect.service(State.StateStore), (s) => s.load("p")).pipe(
          Effect.provide(NodePostgres.stateStore({ url: Redacted.make("postgres://etl:sekrit-pw@127.0.0.1:1/none") }))
        )
      )
      assert.isTrue(error.retryable)
      assert.notInclude(error.message, "sekrit-pw")
      assert.include(error.message, "Cannot read the state")
    })
  )
})
