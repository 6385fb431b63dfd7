/**
 * The Kafka broker the Kafka connector tests use.
 *
 * `start` (called once per test run by `globalSetup.ts`) resolves Apache Kafka with Maven into a cache directory,
 * formats a fresh KRaft log directory and starts a single combined broker+controller on free ports of 127.0.0.1.
 * With `ETL_TEST_KAFKA_BROKERS` set it starts nothing and the tests use that cluster. Tests read the brokers with
 * `KafkaBroker` and isolate their data in topics with a random suffix.
 */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { Admin } from "@platformatic/kafka"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { inject } from "vitest"
import { ensureJars, freePort, runJava, startJava, tempDir } from "./servers/JavaServer.ts"

declare module "vitest" {
  export interface ProvidedContext {
    kafkaBrokers: string
    s3Endpoint: string
    s3AccessKey: string
    s3SecretKey: string
  }
}

const serversDir = nodePath.join(import.meta.dirname, "servers")

/** A running broker: its bootstrap address and how to stop it. */
export interface Started {
  readonly brokers: string
  readonly stop: () => Promise<void>
}

/** A random KRaft cluster id; one starting with "-" would be read by StorageTool as an option, so none does. */
const clusterId = (): string => {
  for (;;) {
    const id = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url")
    if (!id.startsWith("-")) return id
  }
}

/**
 * Waits until the group coordinator serves requests (the offsets topic is created and loaded on first use), so the
 * first test's consumer does not meet a loading coordinator.
 */
const warmUp = async (brokers: string): Promise<void> => {
  const admin = new Admin({ clientId: "etl-warm-up", bootstrapBrokers: [brokers], retries: 30, retryDelay: 1000 })
  try {
    await admin.listConsumerGroupOffsets({ groups: ["etl-warm-up"] }).catch(() => undefined)
    await admin.describeGroups({ groups: ["etl-warm-up"] })
  } finally {
    await admin.close()
  }
}

/** Starts a single-node KRaft broker (or returns `ETL_TEST_KAFKA_BROKERS`). */
export const start = async (): Promise<Started> => {
  const external = process.env.ETL_TEST_KAFKA_BROKERS
  if (external !== undefined && external !== "") return { brokers: external, stop: async () => {} }
  const lib = await ensureJars("kafka-4.1.1", nodePath.join(serversDir, "kafka"))
  const dir = tempDir("kafka")
  const [port, controller] = [await freePort(), await freePort()]
  const properties = [
    "process.roles=broker,controller",
    "node.id=1",
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    `controller.quorum.bootstrap.servers=127.0.0.1:${controller}`,
    "controller.listener.names=CONTROLLER",
    "inter.broker.listener.name=PLAINTEXT",
    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    `log.dirs=${nodePath.join(dir, "data")}`,
    "num.partitions=1",
    "offsets.topic.replication.factor=1",
    "offsets.topic.num.partitions=4",
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "min.insync.replicas=1",
    "group.initial.rebalance.delay.ms=0",
    "auto.create.topics.enable=false",
    "log.flush.interval.messages=1000000",
    "share.coordinator.state.topic.replication.factor=1",
    "share.coordinator.state.topic.min.isr=1"
  ].join("\n")
  const config = nodePath.join(dir, "server.properties")
  fs.writeFileSync(config, `${properties}\n`)
  const log4j = `-Dlog4j2.configurationFile=${nodePath.join(serversDir, "kafka", "log4j2.properties")}`
  await runJava(
    lib,
    [log4j, "kafka.tools.StorageTool", "format", "-t", clusterId(), "-c", config, "--standalone", "--ignore-formatted"],
    dir
  )
  const java = await startJava({ name: "kafka", lib, args: [log4j, "kafka.Kafka", config], cwd: dir, port })
  await warmUp(`127.0.0.1:${port}`).catch(async (cause) => {
    await java.stop()
    throw cause
  })
  return {
    brokers: `127.0.0.1:${port}`,
    stop: async () => {
      await java.stop()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** The broker the tests use. */
export class KafkaBroker extends Context.Service<KafkaBroker, { readonly brokers: ReadonlyArray<string> }>()(
  "test/support/KafkaBroker"
) {
  /** The brokers started by the global setup (or given by `ETL_TEST_KAFKA_BROKERS`). */
  static readonly layer = Layer.effect(
    KafkaBroker,
    Effect.sync(() => {
      const brokers = inject("kafkaBrokers")
      if (brokers === undefined || brokers === "")
        throw new Error("No Kafka broker: the vitest globalSetup (test/support/globalSetup.ts) did not start one")
      return { brokers: brokers.split(",") }
    })
  )
}

/** A topic name unique to one test. */
export const uniqueTopic = (prefix: string): string => `${prefix}-${crypto.randomUUID().slice(0, 8)}`
