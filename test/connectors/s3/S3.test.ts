import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as NodeS3 from "../../../src/connectors/s3/NodeS3.ts"
import * as S3Client from "../../../src/connectors/s3/S3Client.ts"
import { reasonOf } from "../../../src/connectors/s3/S3Error.ts"
import { S3Server } from "../../support/S3Server.ts"
import { conformance } from "./S3Conformance.ts"

conformance(
  "S3 connector (memory client)",
  Layer.suspend(() => S3Client.layerMemory(S3Client.memory({}, { pageSize: 1000, chunkSize: 1000 })))
)

conformance(
  "S3 connector (S3Proxy server)",
  Layer.unwrap(Effect.map(S3Server, (server) => NodeS3.layer(server.options))).pipe(Layer.provide(S3Server.layer))
)

describe("S3 error classification", () => {
  const sdkError = (name: string, status: number | undefined, extra?: Record<string, unknown>) =>
    Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status }, ...extra })
  it("maps throttling, 5xx, timeouts and resets to retryable reasons", () => {
    for (const [error, tag] of [
      [sdkError("SlowDown", 503), "Throttled"],
      [sdkError("ThrottlingException", 400), "Throttled"],
      [sdkError("InternalError", 500), "ServerError"],
      [sdkError("Unknown", 502), "ServerError"],
      [sdkError("RequestTimeout", 400), "Timeout"],
      [sdkError("TimeoutError", undefined), "Timeout"],
      [Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), "ConnectionError"],
      [Object.assign(new Error("connect"), { code: "ECONNREFUSED" }), "ConnectionError"]
    ] as const) {
      const reason = NodeS3.classifyReason(error)
      assert.strictEqual(reason._tag, tag)
      assert.isTrue(reason.retryable)
    }
  })
  it("maps missing buckets, denied access and invalid arguments to non-retryable reasons", () => {
    for (const [error, tag] of [
      [sdkError("NoSuchBucket", 404), "NoSuchBucket"],
      [sdkError("NoSuchKey", 404), "NoSuchKey"],
      [sdkError("AccessDenied", 403), "AccessDenied"],
      [sdkError("InvalidAccessKeyId", 403), "AccessDenied"],
      [sdkError("InvalidArgument", 400), "InvalidArgument"],
      [sdkError("Weird", 418), "Unknown"]
    ] as const) {
      const reason = NodeS3.classifyReason(error)
      assert.strictEqual(reason._tag, tag)
      assert.isFalse(reason.retryable)
    }
    assert.strictEqual(reasonOf({ status: 404 })._tag, "NoSuchKey")
  })
  it("names the operation, bucket and key and never the credentials", () => {
    const error = NodeS3.classifyError("get", "lake", "a/b.csv")(sdkError("AccessDenied", 403))
    assert.strictEqual(error.message, "S3 get s3://lake/a/b.csv failed (AccessDenied): AccessDenied happened")
    assert.isFalse(error.retryable)
  })
})
