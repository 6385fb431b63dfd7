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

/** A running `effect-etl run CONFIG --quiet`: its output so far and its exit. */
const startRun = (config: string, env: Readonly<Record<string, string>>) => {
  const child = spawn(process.execPath, [main, "run", config, "--quiet"], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const out = { stdout: "", stderr: "" }
  child.stdout.on("data", (chunk: Buffer) => {
    out.stdout += chunk.toString("utf8")
  })
  child.stderr.on("data", (chunk: Buffer) => {
    out.stderr += chunk.toString("utf8")
  })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  return { child, out, exited }
}

/** Produces `{id}` messages `from` … `from + n - 1` into `topic` (creating it with `partitions` first, when given). */
const produce = (brokers: string, topic: string, from: number, n: number, partitions?: number) =>
  Effect.runPromise(
    Effect.gen(function* () {
      if (partitions !== undefined) yield* KafkaClient.use((c) => c.createTopic(topic, { partitions }))
      yield* Pipeline.from(
        Source.fromIterable(
          "seed",
          Array.from({ length: n }, (_, i) => ({ id: from + i }))
        )
      ).pipe(Pipeline.to(Kafka.sink({ topic, value: { type: "json" } })), Pipeline.run)
    }).pipe(Effect.provide(NodeKafka.layer({ brokers: brokers.split(",") })))
  )

/** The ids in the committed part files of `out`. */
const committedIds = (out: string): ReadonlyArray<number> =>
  fs.existsSync(out)
    ? fs
        .readdirSync(out)
        .filter((name) => name.startsWith("part-"))
        .flatMap((name) => fs.readFileSync(nodePath.join(out, name), "utf8").split("\n"))
        .filter((line) => line !== "")
        .map((line) => (JSON.parse(line) as { readonly id: number }).id)
    : []

/** A streaming config reading `topic` into JSON Lines part files under `out`. */
const streamingConfig = (dir: string, topic: string, out: string, source: Record<string, unknown> = {}) => {
  const config = nodePath.join(dir, `stream-${crypto.randomUUID().slice(0, 8)}.json`)
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
        value: { type: "json" },
        ...source
      },
      sink: { type: "file", path: out, format: { type: "jsonl" } }
    })
  )
  return config
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

  it("a process restarted after SIGKILL gets its partitions back at once (static membership), not after the session timeout", async () => {
    const brokers = inject("kafkaBrokers")
    const topic = uniqueTopic("cli-kill")
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-cli-kill-"))
    const out = nodePath.join(dir, "out")
    await produce(brokers, topic, 0, 40, 2)
    // 45 s: a restart that had to wait for the killed member's session to expire could not pass the 15 s bound below.
    const config = streamingConfig(dir, topic, out, { session_timeout: "45 seconds" })
    const env = { ETL_KAFKA_BROKERS: brokers, ETL_INSTANCE_ID: "" }
    const first = startRun(config, env)
    await waitFor(() => committedIds(out).length >= 40 || first.child.exitCode !== null, 60_000)
    assert.isNull(first.child.exitCode, first.out.stderr)
    first.child.kill("SIGKILL")
    await first.exited
    await produce(brokers, topic, 40, 20)

    const restarted = Date.now()
    const second = startRun(config, env)
    await waitFor(() => second.out.stderr.includes("segment 1 committed") || second.child.exitCode !== null, 60_000)
    const elapsed = Date.now() - restarted
    assert.isNull(second.child.exitCode, second.out.stderr)
    assert.isBelow(elapsed, 15_000, second.out.stderr)
    await waitFor(() => new Set(committedIds(out)).size >= 60 || second.child.exitCode !== null, 60_000)
    second.child.kill("SIGINT")
    assert.strictEqual(await second.exited, 0, second.out.stderr)
    assert.deepStrictEqual(
      [...new Set(committedIds(out))].sort((a, b) => a - b),
      Array.from({ length: 60 }, (_, i) => i)
    )
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("of two processes given the same instance id, the first one fails with a message naming the fix", async () => {
    const brokers = inject("kafkaBrokers")
    const topic = uniqueTopic("cli-twins")
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-etl-cli-twins-"))
    const out = nodePath.join(dir, "out")
    await produce(brokers, topic, 0, 20, 2)
    const config = streamingConfig(dir, topic, out, { instance_id: "worker-1" })
    const env = { ETL_KAFKA_BROKERS: brokers }
    const first = startRun(config, env)
    await waitFor(() => committedIds(out).length >= 20 || first.child.exitCode !== null, 60_000)
    assert.isNull(first.child.exitCode, first.out.stderr)
    const second = startRun(config, env)
    const code = await first.exited
    assert.notStrictEqual(code, 0)
    const failure = first.out.stderr
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { readonly level: string; readonly message: string })
      .find((line) => line.level === "error")
    assert.isDefined(failure, first.out.stderr)
    assert.include(
      failure!.message,
      `Another consumer joined the Kafka group "g-${topic}" with the instance id "worker-1"`
    )
    assert.include(
      failure!.message,
      'set "instance_id" on the Kafka source (or the ETL_INSTANCE_ID environment variable) to a value unique to each process'
    )
    assert.notMatch(first.out.stderr, /\s+at .*\.(ts|js):\d+/, "no stack trace")
    // The second one took over the membership and goes on.
    await produce(brokers, topic, 20, 10)
    await waitFor(() => second.out.stderr.includes("segment 1 committed") || second.child.exitCode !== null, 60_000)
    assert.isNull(second.child.exitCode, second.out.stderr)
    second.child.kill("SIGINT")
    assert.strictEqual(await second.exited, 0, second.out.stderr)
    assert.includeMembers(
      [...new Set(committedIds(out))],
      Array.from({ length: 30 }, (_, i) => i)
    )
    fs.rmSync(dir, { recursive: true, force: true })
  })
})
