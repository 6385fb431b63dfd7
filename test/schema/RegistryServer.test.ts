/**
 * The schema registry test server (test/support/SchemaRegistryServer.ts) is a real registry with the Confluent REST
 * API: a schema registered under a subject gets an id, and the schema is fetched back by that id.
 */
import { assert, describe, it } from "vitest"
import * as SchemaRegistryServer from "../support/SchemaRegistryServer.ts"

const contentType = "application/vnd.schemaregistry.v1+json"

const url = SchemaRegistryServer.useShared()

const call = async (method: "GET" | "POST", path: string, body?: unknown) => {
  const response = await fetch(`${url()}${path}`, {
    method,
    headers: { "content-type": contentType, accept: contentType },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const json: unknown = await response.json()
  const field = (name: string): unknown =>
    typeof json === "object" && json !== null && !Array.isArray(json)
      ? (json as Record<string, unknown>)[name]
      : undefined
  return { status: response.status, json, field }
}

describe("schema registry test server", () => {
  it("registers a schema under a subject and serves it by its id", async () => {
    const subject = SchemaRegistryServer.uniqueSubject("registry-server")
    const schema = {
      type: "record",
      name: "Reading",
      namespace: "etl.test",
      fields: [
        { name: "id", type: "long" },
        { name: "value", type: ["null", "double"], default: null }
      ]
    }
    const registered = await call("POST", `/subjects/${subject}/versions`, { schema: JSON.stringify(schema) })
    assert.strictEqual(registered.status, 200, JSON.stringify(registered.json))
    const id = registered.field("id")
    assert.isTrue(typeof id === "number" && Number.isInteger(id) && id > 0, `id ${String(id)}`)

    const fetched = await call("GET", `/schemas/ids/${String(id)}`)
    assert.strictEqual(fetched.status, 200, JSON.stringify(fetched.json))
    assert.deepStrictEqual(JSON.parse(String(fetched.field("schema"))), schema)

    // The same schema again keeps its id; a different one gets another.
    const again = await call("POST", `/subjects/${subject}/versions`, { schema: JSON.stringify(schema) })
    assert.strictEqual(again.field("id"), id)
    const other = { ...schema, fields: [...schema.fields, { name: "unit", type: "string", default: "" }] }
    const second = await call("POST", `/subjects/${subject}/versions`, { schema: JSON.stringify(other) })
    assert.strictEqual(second.status, 200, JSON.stringify(second.json))
    assert.notStrictEqual(second.field("id"), id)

    const versions = await call("GET", `/subjects/${subject}/versions`)
    assert.deepStrictEqual(versions.json, [1, 2])
  })

  it("answers an unknown schema id with the Confluent error 40403", async () => {
    const missing = await call("GET", "/schemas/ids/987654321")
    assert.strictEqual(missing.status, 404)
    assert.strictEqual(missing.field("error_code"), 40403)
  })
})
