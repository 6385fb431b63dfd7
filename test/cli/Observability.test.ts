import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as OtlpReceiver from "../support/OtlpReceiver.ts"

const root = nodePath.resolve(import.meta.dirname, "../..")

/** Runs the CLI without blocking the event loop: the receiver of this process answers its exports. */
const cli = (args: ReadonlyArray<string>, env: Record<string, string | undefined> = {}) =>
  Effect.promise(
    () =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const clean: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1" }
        for (const key of Object.keys(clean))
          if (key.startsWith("OTEL_") || key.startsWith("OPENLINEAGE_")) delete clean[key]
        const child = spawn(process.execPath, [nodePath.join(root, "src/main.ts"), ...args], {
          cwd: root,
          env: { ...clean, ...env },
          stdio: ["ignore", "pipe", "pipe"]
        })
        let stdout = ""
        let stderr = ""
        child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")))
        child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")))
        child.on("error", reject)
        child.on("close", (code) => resolve({ code, stdout, stderr }))
      })
  )

const quickstart = JSON.parse(fs.readFileSync(nodePath.join(root, "examples/quickstart.json"), "utf8")) as Record<
  string,
  Record<string, unknown>
>

/** The quickstart config writing into a temporary directory, with `extra` keys added. */
const config = (extra: Record<string, unknown> = {}) => {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-obs-"))
  const file = nodePath.join(dir, "pipeline.json")
  fs.writeFileSync(
    file,
    JSON.stringify({
      ...quickstart,
      $schema: undefined,
      sink: { ...quickstart.sink, path: nodePath.join(dir, "settled") },
      dead_letters: { ...quickstart.dead_letters, path: nodePath.join(dir, "dead") },
      ...extra
    })
  )
  return file
}

describe("CLI observability", () => {
  it.live("run --otlp-endpoint exports the run span and logs before the CLI exits", () =>
    Effect.gen(function* () {
      const receiver = yield* OtlpReceiver.make
      const { code, stdout, stderr } = yield* cli(["run", config(), "--quiet", "--otlp-endpoint", receiver.url])
      assert.strictEqual(code, 0, stderr)
      const report = JSON.parse(stdout) as { runId: string }
      const [run] = receiver.spansNamed("Pipeline.run")
      assert.isDefined(run)
      assert.strictEqual(run!.attributes.pipeline, "quickstart")
      assert.strictEqual(run!.attributes.runId, report.runId)
      assert.isTrue(receiver.logs.some((l) => l.body === "run started: quickstart" && l.traceId === run!.traceId))
      assert.isTrue(receiver.requests.every((r) => r.contentType === "application/x-protobuf"))
      // The exported metrics of the run are the RunReport's counts, stage by stage.
      const full = JSON.parse(stdout) as {
        runId: string
        records: { written: number; deadLettered: number }
        stages: ReadonlyArray<{
          name: string
          recordsIn: number
          recordsOut: number
          filtered: number
          rejected: number
          consumed: number
          batches: number
        }>
      }
      assert.isAbove(full.stages.length, 3)
      for (const stage of full.stages) {
        const at = { run_id: full.runId, stage: stage.name }
        assert.strictEqual(receiver.metric("etl_records_in_total", at), stage.recordsIn, `${stage.name} in`)
        assert.strictEqual(receiver.metric("etl_records_out_total", at), stage.recordsOut, `${stage.name} out`)
        assert.strictEqual(receiver.metric("etl_records_filtered_total", at), stage.filtered, `${stage.name} filtered`)
        assert.strictEqual(receiver.metric("etl_records_rejected_total", at), stage.rejected, `${stage.name} rejected`)
        assert.strictEqual(receiver.metric("etl_records_consumed_total", at), stage.consumed, `${stage.name} consumed`)
        assert.strictEqual(receiver.metric("etl_batches_total", at), stage.batches, `${stage.name} batches`)
      }
      assert.strictEqual(
        receiver.metric("etl_records_committed_total", { run_id: full.runId, stage_kind: "sink" }),
        full.records.written
      )
      assert.strictEqual(
        receiver.metric("etl_records_committed_total", { run_id: full.runId, stage_kind: "dead-letters" }),
        full.records.deadLettered
      )
    }).pipe(Effect.scoped)
  )

  it.live("the config block and $env header values are used, and the values never printed", () =>
    Effect.gen(function* () {
      const receiver = yield* OtlpReceiver.make
      const file = config({
        observability: {
          otlp: {
            endpoint: receiver.url,
            protocol: "http/json",
            service_name: "cli-test",
            headers: { authorization: { $env: "ETL_TEST_OTLP_TOKEN" } }
          }
        }
      })
      const { code, stderr } = yield* cli(["run", file, "--quiet"], { ETL_TEST_OTLP_TOKEN: "Bearer s3cret-value" })
      assert.strictEqual(code, 0, stderr)
      const [run] = receiver.spansNamed("Pipeline.run")
      assert.strictEqual(run!.resource["service.name"], "cli-test")
      assert.isTrue(receiver.requests.every((r) => r.contentType === "application/json"))
      assert.isTrue(receiver.requests.every((r) => r.headers.authorization === "Bearer s3cret-value"))
      assert.notInclude(stderr, "s3cret")
    }).pipe(Effect.scoped)
  )

  it.live("takes the endpoint from OTEL_EXPORTER_OTLP_ENDPOINT", () =>
    Effect.gen(function* () {
      const receiver = yield* OtlpReceiver.make
      const { code, stderr } = yield* cli(["run", config(), "--quiet"], {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_LOGS_EXPORTER: "none",
        OTEL_METRICS_EXPORTER: "none"
      })
      assert.strictEqual(code, 0, stderr)
      assert.lengthOf(receiver.spansNamed("Pipeline.run"), 1)
      assert.deepStrictEqual([...new Set(receiver.requests.map((r) => r.path))], ["/v1/traces"])
    }).pipe(Effect.scoped)
  )

  it.live("run --lineage-file writes the run's OpenLineage START and COMPLETE events", () =>
    Effect.gen(function* () {
      const file = config()
      const lineage = nodePath.join(nodePath.dirname(file), "lineage.jsonl")
      const { code, stderr } = yield* cli(["run", file, "--quiet", "--lineage-file", lineage], {
        OPENLINEAGE_NAMESPACE: "cli-test"
      })
      assert.strictEqual(code, 0, stderr)
      const events = fs
        .readFileSync(lineage, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { eventType: string; job: { namespace: string; name: string } })
      assert.deepStrictEqual(
        events.map((e) => e.eventType),
        ["START", "COMPLETE"]
      )
      assert.strictEqual(events[0]!.job.namespace, "cli-test")
      assert.strictEqual(events[0]!.job.name, "quickstart")
    })
  )

  it.live("sends nothing without settings", () =>
    Effect.gen(function* () {
      const receiver = yield* OtlpReceiver.make
      const { code, stderr } = yield* cli(["run", config(), "--quiet"])
      assert.strictEqual(code, 0, stderr)
      assert.lengthOf(receiver.requests, 0)
    }).pipe(Effect.scoped)
  )

  it.live("a bad setting is a usage error naming it", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* cli(["run", config(), "--quiet", "--otlp-protocol", "grpc"])
      assert.strictEqual(code, 2)
      assert.include(stderr, '--otlp-protocol: "grpc" is not supported')
    })
  )
})
