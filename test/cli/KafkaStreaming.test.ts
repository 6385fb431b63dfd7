import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { inject } from "vitest"
import * as Kafka from "../../src/connectors/kafka/Kafka.ts"
import { KafkaClient } from "../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../src/connectors/kafka/NodeKafka.ts"
import type { RunReport } from "../../src/core/RunReport.ts"
import * as Source from "../../src/core/Source.ts"
import * as Pipeline from "../../src/pipeline/Pipeline.ts"
import { uniqueTopic } from "../support/KafkaBroker.ts"

const root = nodePath.resolve(import.meta.dirname, "../..")
const main = nodePath.join(root, "src/main.ts")

const waitFor = async (condition: () => boolean, timeoutMs: number) => {
  const started = Date.now()
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error("condition not met in time")
    await new Promise((resolve) => setImmediate(resolve))
  }
}

describe("effect-etl run, streaming from Kafka", () => {
  it("commits part files while running, stops gracefully on SIGINT with exit code 0 and prints the report", async () => {
    const brokers = inject("kafkaBrokers")
    const topic = uniqueTopic("cli-stream")
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-cli-stream-"))
    const out = nodePath.join(dir, "out")
    await Effect.runPromise(
      Effect.gen(function* () {
        yield* KafkaClient.use((c) => c.createTopic(topic, { partitions: 1 }))
        yield* Pipeline.from(
          Source.fromIterable(
            "seed",
            Array.from({ length: 40 }, (_, i) => ({ id: i, amount: i * 1.5 }))
          )
        ).pipe(Pipeline.to(Kafka.sink({ topic, value: { type: "json" } })), Pipeline.run)
      }).pipe(Effect.provide(NodeKafka.layer({ brokers: brokers.split(",") })))
    )
    const config = nodePath.join(dir, "stream.json")
    fs.writeFileSync(
      config,
      JSON.stringify({
        name: "cli-stream",
        mode: "streaming",
        streaming: { commit_interval: "300 millis" },
        connections: { events: { type: "kafka", brokers: [{ $env: "ETL_KAFKA_BROKERS" }] } },
        source: {
          type: "kafka",
          connection: "events",
          topics: [topic],
          group_id: `g-${topic}`,
          start: "earliest",
          value: { type: "json" }
        },
        sink: { type: "file", path: out, format: { type: "jsonl" } }
      })
    )
    const child = spawn(process.execPath, [main, "run", config, "--quiet"], {
      cwd: root,
      env: { ...process.env, ETL_KAFKA_BROKERS: brokers },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    const committedLines = () =>
      fs.existsSync(out)
        ? fs
            .readdirSync(out)
            .filter((name) => name.startsWith("part-"))
            .flatMap((name) => fs.readFileSync(nodePath.join(out, name), "utf8").split("\n"))
            .filter((line) => line !== "")
        : []
    await waitFor(() => committedLines().length >= 40 || child.exitCode !== null, 60_000)
    assert.isNull(child.exitCode, stderr)
    child.kill("SIGINT")
    const code = await exited
    assert.strictEqual(code, 0, stderr)
    const report = JSON.parse(stdout) as RunReport
    assert.strictEqual(report.status, "succeeded")
    assert.strictEqual(report.records.read, 40)
    assert.strictEqual(report.records.written, 40)
    assert.isAtLeast(report.streaming?.segments ?? 0, 1)
    assert.isDefined(report.streaming?.latencyMs)
    assert.include(stderr, "segment 1 committed")
    assert.strictEqual(committedLines().length, 40)
    fs.rmSync(dir, { recursive: true, force: true })
  })
})
