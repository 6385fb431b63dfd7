/**
 * The schema registry client: against the memory layer, and against a real registry with the Confluent REST API (the
 * test server of test/support/SchemaRegistryServer.ts, or ETL_TEST_SCHEMA_REGISTRY_URL): schemas registered under
 * subjects and fetched by id, answers cached (one request per id, shared by concurrent lookups), the registry's
 * refusals as errors with its message, credentials never in errors.
 */
import * as http from "node:http"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as AvroSchema from "../../src/schema/AvroSchema.ts"
import * as RegistryClient from "../../src/schema/RegistryClient.ts"
import * as SchemaRegistryServer from "../support/SchemaRegistryServer.ts"

const order = (fields: ReadonlyArray<Record<string, unknown>> = []): AvroSchema.Schema =>
  ({
    type: "record",
    name: "Order",
    namespace: "shop",
    fields: [{ name: "id", type: "long" }, { name: "customer", type: "string" }, ...fields]
  }) as unknown as AvroSchema.Schema

describe("RegistryClient naming", () => {
  it("names subjects by the topic, the record or both", () => {
    assert.strictEqual(RegistryClient.subjectName("topic", { topic: "orders" }), "orders-value")
    assert.strictEqual(RegistryClient.subjectName("topic", { topic: "orders", key: true }), "orders-key")
    const recordName = RegistryClient.fullNameOf(order())
    assert.strictEqual(recordName, "shop.Order")
    assert.strictEqual(RegistryClient.subjectName("record", { topic: "orders", recordName }), "shop.Order")
    assert.strictEqual(RegistryClient.subjectName("topic-record", { topic: "orders", recordName }), "orders-shop.Order")
    assert.isUndefined(RegistryClient.subjectName("record", { topic: "orders" }))
    assert.isUndefined(RegistryClient.fullNameOf("string" as AvroSchema.Schema))
  })
})

describe("RegistryClient memory layer", () => {
  it.effect("gives ids like a registry: one per schema, found under the subjects it was registered under", () =>
    Effect.gen(function* () {
      const registry = yield* RegistryClient.makeMemory()
      const a = yield* registry.register("orders-value", order())
      const again = yield* registry.register("orders-value", order())
      const b = yield* registry.register(
        "orders-value",
        order([{ name: "note", type: ["null", "string"], default: null }])
      )
      assert.strictEqual(again, a)
      assert.notStrictEqual(b, a)
      assert.deepStrictEqual(yield* registry.schemaById(a), order())
      assert.strictEqual(yield* registry.lookup("orders-value", order()), a)
      const missing = yield* Effect.flip(registry.lookup("other-value", order()))
      assert.strictEqual(missing.errorCode, 40401)
      const unknown = yield* Effect.flip(registry.schemaById(99))
      assert.strictEqual(unknown.errorCode, 40403)
      assert.isFalse(unknown.retryable)
    })
  )
})

const registryUrl = SchemaRegistryServer.useShared()

/** A proxy in front of the registry that counts the requests it passes on and checks their basic auth header. */
const countingProxy = (target: string) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ readonly url: string; readonly requests: Array<string>; readonly close: () => void }>(
          (resolve) => {
            const requests: Array<string> = []
            const base = new URL(target)
            const proxy = http.createServer((req, res) => {
              requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? ""}`)
              const forward = http.request(
                new URL(`${base.pathname}${req.url!.slice("/api".length)}`, base),
                { method: req.method, headers: { ...req.headers, host: base.host } },
                (answer) => {
                  res.writeHead(answer.statusCode ?? 502, answer.headers)
                  answer.pipe(res)
                }
              )
              req.pipe(forward)
            })
            proxy.listen(0, "127.0.0.1", () => {
              const address = proxy.address() as { readonly port: number }
              resolve({ url: `http://127.0.0.1:${address.port}/api`, requests, close: () => proxy.close() })
            })
          }
        )
    ),
    (proxy) => Effect.sync(proxy.close)
  )

describe("RegistryClient on a real registry", () => {
  const url = registryUrl

  it.effect("registers schemas under a subject and fetches them by id", () =>
    Effect.gen(function* () {
      const registry = yield* RegistryClient.make({ url: url() })
      const subject = SchemaRegistryServer.uniqueSubject("orders")
      const id = yield* registry.register(subject, order())
      assert.strictEqual(yield* registry.register(subject, order()), id)
      assert.deepStrictEqual(yield* registry.schemaById(id), order())
      assert.strictEqual(yield* registry.lookup(subject, order()), id)
      const evolved = order([{ name: "note", type: ["null", "string"], default: null }])
      const second = yield* registry.register(subject, evolved)
      assert.notStrictEqual(second, id)
      assert.deepStrictEqual(yield* registry.schemaById(second), evolved)
      // Looking up a schema never registered under the subject fails with the registry's code.
      const missing = yield* Effect.flip(registry.lookup(subject, order([{ name: "x", type: "int" }])))
      assert.strictEqual(missing.status, 404)
      assert.isFalse(missing.retryable)
      const unknown = yield* Effect.flip(registry.schemaById(987_654))
      assert.strictEqual(unknown.errorCode, 40403)
      assert.include(unknown.message, "fetch schema 987654")
    })
  )

  it.effect("fetches each id once, even for concurrent lookups, and sends basic auth without showing it", () =>
    Effect.gen(function* () {
      const proxy = yield* countingProxy(url())
      const registry = yield* RegistryClient.make({
        url: proxy.url,
        username: "etl",
        password: Redacted.make("s3cret-pass")
      })
      const subject = SchemaRegistryServer.uniqueSubject("cached")
      const id = yield* registry.register(subject, order())
      const fetched = yield* Effect.all(
        Array.from({ length: 10 }, () => registry.schemaById(id)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(fetched.length, 10)
      yield* registry.schemaById(id)
      yield* registry.register(subject, order())
      const gets = proxy.requests.filter((r) => r.startsWith(`GET /api/schemas/ids/${id} `))
      assert.strictEqual(gets.length, 1)
      assert.strictEqual(proxy.requests.filter((r) => r.startsWith("POST")).length, 1)
      const expected = `Basic ${Buffer.from("etl:s3cret-pass").toString("base64")}`
      assert.isTrue(proxy.requests.every((r) => r.endsWith(expected)))
      // A failed request is not cached, and the error shows neither the password nor the user in the URL.
      const withUrlCredentials = yield* RegistryClient.make({
        url: proxy.url.replace("http://", "http://etl:s3cret-pass@")
      })
      const failed = yield* Effect.flip(withUrlCredentials.schemaById(987_655))
      yield* Effect.flip(withUrlCredentials.schemaById(987_655))
      assert.strictEqual(proxy.requests.filter((r) => r.includes("/schemas/ids/987655")).length, 2)
      assert.notInclude(JSON.stringify(failed), "s3cret")
      assert.notInclude(failed.message, "etl:")
      assert.isTrue(proxy.requests.at(-1)!.endsWith(expected))
    }).pipe(Effect.scoped)
  )

  it.effect("an incompatible schema is refused with the registry's message; an unreachable registry is retryable", () =>
    Effect.gen(function* () {
      const subject = SchemaRegistryServer.uniqueSubject("compat")
      const registry = yield* RegistryClient.make({ url: url() })
      yield* registry.register(subject, order())
      const set = yield* Effect.promise(() =>
        fetch(`${url()}/config/${encodeURIComponent(subject)}`, {
          method: "PUT",
          headers: { "content-type": "application/vnd.schemaregistry.v1+json" },
          body: JSON.stringify({ compatibility: "BACKWARD" })
        })
      )
      assert.isTrue(set.ok)
      // A new required field without a default cannot read the old data: not backward compatible.
      const refused = yield* Effect.flip(registry.register(subject, order([{ name: "total", type: "double" }])))
      assert.strictEqual(refused.status, 409)
      assert.include(refused.message, `register under ${subject}`)
      assert.isFalse(refused.retryable)
      const gone = yield* RegistryClient.make({ url: "http://127.0.0.1:9/api", timeoutMs: 2_000 })
      const unreachable = yield* Effect.flip(gone.schemaById(1))
      assert.isTrue(unreachable.retryable)
      assert.include(unreachable.message, "cannot be reached")
      const bad = yield* Effect.flip(RegistryClient.make({ url: "ftp://127.0.0.1/x" }))
      assert.include(bad.message, "must be http or https")
    })
  )
})
