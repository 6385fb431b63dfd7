import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import {
  ObservabilityConfig,
  type ObservabilityFlags,
  resolve,
  secretsOf
} from "../../src/config/ObservabilityConfig.ts"
import type { ObservabilityOptions } from "../../src/observability/Export.ts"

const ok = (
  flags: ObservabilityFlags,
  config: ObservabilityConfig | undefined,
  env: Record<string, string>
): ObservabilityOptions => {
  const result = resolve(flags, config, env)
  if (Result.isFailure(result)) assert.fail(result.failure.message)
  return result.success
}

const failure = (flags: ObservabilityFlags, config: ObservabilityConfig | undefined, env: Record<string, string>) => {
  const result = resolve(flags, config, env)
  if (Result.isSuccess(result)) return assert.fail("expected a failure")
  return result.failure.message
}

const decode = Schema.decodeUnknownExit(ObservabilityConfig)

describe("ObservabilityConfig", () => {
  it("exports nothing when nothing is set", () => {
    const options = ok({}, undefined, {})
    assert.isUndefined(options.otlp)
    assert.isUndefined(options.prometheus)
    assert.isUndefined(options.lineage)
    assert.isUndefined(options.batchSampleRate)
    assert.strictEqual(ok({}, { traces: { batch_sample_rate: 0.25 } }, {}).batchSampleRate, 0.25)
  })

  it("takes a signal's own endpoint variable as a full URL, and compression", () => {
    const { otlp } = ok({}, undefined, {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://traces:4318/custom/traces",
      OTEL_EXPORTER_OTLP_COMPRESSION: "gzip"
    })
    // Only traces have somewhere to go.
    assert.deepStrictEqual([otlp!.traces, otlp!.metrics, otlp!.logs], [true, false, false])
    assert.deepStrictEqual(otlp!.signalEndpoints, { traces: "http://traces:4318/custom/traces" })
    assert.strictEqual(otlp!.compression, "gzip")
    // Beside the generic endpoint, the signal's own wins for that signal only.
    const both = ok({}, undefined, {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://all:4318",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://metrics:9000/m"
    }).otlp!
    assert.deepStrictEqual([both.traces, both.metrics, both.logs], [true, true, true])
    assert.deepStrictEqual(both.signalEndpoints, { metrics: "http://metrics:9000/m" })
    assert.strictEqual(both.compression, "none")
    // A flag (or the config) names one endpoint for all signals: the signals' variables do not apply.
    const flagged = ok({ otlpEndpoint: "http://flag:4318" }, undefined, {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://traces:4318/t"
    }).otlp!
    assert.deepStrictEqual(flagged.signalEndpoints, {})
    assert.strictEqual(
      ok({}, { otlp: { endpoint: "http://c:4318", compression: "gzip" } }, {}).otlp!.compression,
      "gzip"
    )
    assert.match(
      failure({}, undefined, { OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: "logs" }),
      /^OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: expected an http/
    )
    assert.match(
      failure({}, undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_COMPRESSION: "zstd" }),
      /^OTEL_EXPORTER_OTLP_COMPRESSION: expected "gzip" or "none", got "zstd"/
    )
  })

  it("takes the OTLP settings from the standard environment variables", () => {
    const { otlp } = ok({}, undefined, {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20abc,x-team=t1",
      OTEL_SERVICE_NAME: "etl-nightly",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,team=data",
      OTEL_METRIC_EXPORT_INTERVAL: "2000"
    })
    assert.isDefined(otlp)
    assert.strictEqual(otlp!.endpoint, "http://collector:4318")
    assert.strictEqual(otlp!.protocol, "http/json")
    assert.strictEqual(Redacted.value(otlp!.headers.authorization!), "Bearer abc")
    assert.strictEqual(Redacted.value(otlp!.headers["x-team"]!), "t1")
    assert.strictEqual(otlp!.serviceName, "etl-nightly")
    assert.deepStrictEqual(otlp!.resourceAttributes, { "deployment.environment": "prod", team: "data" })
    assert.strictEqual(otlp!.exportInterval, "2000 millis")
    assert.deepStrictEqual([otlp!.traces, otlp!.metrics, otlp!.logs], [true, true, true])
  })

  it("defaults to http/protobuf and the effect-etl service", () => {
    const { otlp } = ok({ otlpEndpoint: "http://127.0.0.1:4318" }, undefined, {})
    assert.strictEqual(otlp!.protocol, "http/protobuf")
    assert.strictEqual(otlp!.serviceName, "effect-etl")
  })

  it("a flag overrides the config, which overrides the environment", () => {
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://env:4318",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_SERVICE_NAME: "from-env",
      OTEL_EXPORTER_OTLP_HEADERS: "x-a=env,x-b=env",
      OPENLINEAGE_URL: "http://lineage-env:5000",
      OPENLINEAGE_NAMESPACE: "env-ns"
    }
    const config: ObservabilityConfig = {
      otlp: {
        endpoint: "http://config:4318",
        protocol: "http/protobuf",
        service_name: "from-config",
        headers: { "x-b": "config" }
      },
      prometheus: { port: 9100, host: "0.0.0.0" },
      lineage: { url: "http://lineage-config:5000", namespace: "config-ns" }
    }
    const fromConfig = ok({}, config, env)
    assert.strictEqual(fromConfig.otlp!.endpoint, "http://config:4318")
    assert.strictEqual(fromConfig.otlp!.protocol, "http/protobuf")
    assert.strictEqual(fromConfig.otlp!.serviceName, "from-config")
    assert.strictEqual(Redacted.value(fromConfig.otlp!.headers["x-a"]!), "env")
    assert.strictEqual(Redacted.value(fromConfig.otlp!.headers["x-b"]!), "config")
    assert.deepStrictEqual(fromConfig.prometheus, { port: 9100, host: "0.0.0.0", path: "/metrics" })
    assert.strictEqual(fromConfig.lineage!.url, "http://lineage-config:5000")
    assert.strictEqual(fromConfig.lineage!.namespace, "config-ns")

    const fromFlags = ok(
      {
        otlpEndpoint: "http://flag:4318",
        otlpProtocol: "http/json",
        prometheusPort: 9200,
        prometheusHost: "127.0.0.2",
        lineageFile: "/tmp/lineage.jsonl"
      },
      config,
      env
    )
    assert.strictEqual(fromFlags.otlp!.endpoint, "http://flag:4318")
    assert.strictEqual(fromFlags.otlp!.protocol, "http/json")
    assert.deepStrictEqual(fromFlags.prometheus, { port: 9200, host: "127.0.0.2", path: "/metrics" })
    assert.strictEqual(fromFlags.lineage!.file, "/tmp/lineage.jsonl")
    assert.isUndefined(fromFlags.lineage!.url)

    const fromEnv = ok({}, undefined, env)
    assert.strictEqual(fromEnv.otlp!.endpoint, "http://env:4318")
    assert.strictEqual(fromEnv.lineage!.url, "http://lineage-env:5000")
    assert.strictEqual(fromEnv.lineage!.namespace, "env-ns")
  })

  it("none switches a signal off, and all of them switch OTLP off", () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" }
    const { otlp } = ok({}, undefined, { ...base, OTEL_TRACES_EXPORTER: "none", OTEL_LOGS_EXPORTER: "none" })
    assert.deepStrictEqual([otlp!.traces, otlp!.metrics, otlp!.logs], [false, true, false])
    const off = ok({}, undefined, {
      ...base,
      OTEL_TRACES_EXPORTER: "none",
      OTEL_METRICS_EXPORTER: "none",
      OTEL_LOGS_EXPORTER: "none"
    })
    assert.isUndefined(off.otlp)
  })

  it("OTEL_METRICS_EXPORTER=prometheus serves the metrics on the standard port", () => {
    const options = ok({}, undefined, { OTEL_METRICS_EXPORTER: "prometheus" })
    assert.deepStrictEqual(options.prometheus, { port: 9464, host: "127.0.0.1", path: "/metrics" })
    const custom = ok({}, undefined, {
      OTEL_METRICS_EXPORTER: "prometheus",
      OTEL_EXPORTER_PROMETHEUS_PORT: "9999",
      OTEL_EXPORTER_PROMETHEUS_HOST: "127.0.0.3"
    })
    assert.deepStrictEqual(custom.prometheus, { port: 9999, host: "127.0.0.3", path: "/metrics" })
  })

  it("takes the lineage API key from the config or OPENLINEAGE_API_KEY, and lists it as a secret", () => {
    const options = ok({}, undefined, { OPENLINEAGE_URL: "http://marquez:5000", OPENLINEAGE_API_KEY: "k3y-value" })
    assert.strictEqual(options.lineage!.namespace, "default")
    assert.strictEqual(Redacted.value(options.lineage!.apiKey!), "k3y-value")
    assert.include(secretsOf(options), "k3y-value")
    const viaConfig = ok({}, { lineage: { file: "lineage.jsonl", api_key: "c0nfig-key" } }, {})
    assert.strictEqual(Redacted.value(viaConfig.lineage!.apiKey!), "c0nfig-key")
  })

  it("bad values name the flag or variable they came from", () => {
    assert.match(failure({ otlpEndpoint: "collector:4318" }, undefined, {}), /^--otlp-endpoint: expected an http/)
    assert.match(failure({ otlpProtocol: "grpc" }, undefined, {}), /--otlp-protocol: "grpc" is not supported.*4318/)
    assert.match(
      failure({}, undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: "ftp://x" }),
      /^OTEL_EXPORTER_OTLP_ENDPOINT: expected an http/
    )
    assert.match(
      failure({}, undefined, { OTEL_EXPORTER_OTLP_PROTOCOL: "thrift" }),
      /^OTEL_EXPORTER_OTLP_PROTOCOL: "thrift" is not supported/
    )
    assert.match(failure({}, undefined, { OTEL_TRACES_EXPORTER: "jaeger" }), /^OTEL_TRACES_EXPORTER: "jaeger"/)
    assert.match(failure({ prometheusPort: 70000 }, undefined, {}), /^--prometheus-port: expected a port/)
    assert.match(failure({ prometheusHost: "0.0.0.0" }, undefined, {}), /^--prometheus-host: needs --prometheus-port/)
    assert.match(failure({ lineageUrl: "marquez" }, undefined, {}), /^--lineage-url: expected an http/)
    assert.match(failure({}, undefined, { OPENLINEAGE_URL: "marquez" }), /^OPENLINEAGE_URL: expected an http/)
    assert.match(
      failure({}, undefined, { OTEL_METRICS_EXPORTER: "prometheus", OTEL_EXPORTER_PROMETHEUS_PORT: "http" }),
      /^OTEL_EXPORTER_PROMETHEUS_PORT: expected a port/
    )
  })

  it("a malformed OTEL_EXPORTER_OTLP_HEADERS never shows its values", () => {
    const message = failure({}, undefined, {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
      OTEL_EXPORTER_OTLP_HEADERS: "Bearer-s3cret-token"
    })
    assert.match(message, /^OTEL_EXPORTER_OTLP_HEADERS: expected key=value pairs/)
    assert.notInclude(message, "s3cret")
  })

  it("the config block is checked by its Schema", () => {
    assert.strictEqual(decode({ otlp: { endpoint: "http://127.0.0.1:4318", protocol: "http/json" } })._tag, "Success")
    assert.strictEqual(decode({ otlp: { endpoint: "localhost:4318" } })._tag, "Failure")
    assert.strictEqual(decode({ otlp: { endpoint: "http://x", protocol: "grpc" } })._tag, "Failure")
    assert.strictEqual(decode({ otlp: { endpoint: "http://x", export_interval: "soon" } })._tag, "Failure")
    assert.strictEqual(decode({ prometheus: { port: 65536 } })._tag, "Failure")
    assert.strictEqual(decode({ prometheus: { port: 9464, path: "metrics" } })._tag, "Failure")
    assert.strictEqual(decode({ traces: { batch_sample_rate: 1.5 } })._tag, "Failure")
    assert.strictEqual(decode({ traces: { batch_sample_rate: 0.5 } })._tag, "Success")
  })
})
