/**
 * A cluster for tests: a PostgreSQL database of its own for the cluster's storage, runner processes started with the
 * CLI (`effect-etl worker`), and submissions (`effect-etl run --cluster`), each with its output kept.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import * as nodePath from "node:path"
import pg from "pg"

const root = nodePath.resolve(import.meta.dirname, "../../..")
const main = nodePath.join(root, "src/main.ts")

/** Fast failure detection, so that a killed runner's shards move within seconds. */
export const fastFailover: Readonly<Record<string, string>> = {
  SHARD_LOCK_EXPIRATION: "6 seconds",
  SHARD_LOCK_REFRESH_INTERVAL: "2 seconds",
  RUNNER_HEALTH_CHECK_INTERVAL: "2 seconds",
  ENTITY_MESSAGE_POLL_INTERVAL: "1 second",
  REFRESH_ASSIGNMENTS_INTERVAL: "1 second",
  SHARDS_PER_GROUP: "60"
}

export interface Proc {
  readonly process: ChildProcess
  readonly exited: Promise<number | null>
  readonly stdout: () => string
  readonly stderr: () => string
}

/** Runs the CLI with these arguments (JSON logs on stderr). */
export const cli = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): Proc => {
  const child = spawn(process.execPath, [main, ...args, "--log-format", "json"], {
    cwd: root,
    env: { ...process.env, ...fastFailover, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8")
  })
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8")
  })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  return { process: child, exited, stdout: () => stdout, stderr: () => stderr }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Waits until `condition` holds (checked every 100 ms), or fails after `timeoutMs`. */
export const waitUntil = async (condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string) => {
  const started = Date.now()
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

/** A free TCP port on 127.0.0.1. */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/** The JSON log lines of a process's stderr. */
export const logLines = (text: string): ReadonlyArray<Readonly<Record<string, unknown>>> =>
  text
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>]
      } catch {
        return []
      }
    })

/** The parts a runner started and the parts it finished, from its log. */
export const partsOf = (stderr: string) => {
  const started = new Set<string>()
  const finished = new Set<string>()
  for (const line of logLines(stderr)) {
    const message = String(line.message ?? "")
    const started_ = /^reading part (.+)$/.exec(message)
    if (started_ !== null) started.add(started_[1]!)
    const finished_ = /^part (.+) read: /.exec(message)
    if (finished_ !== null) finished.add(finished_[1]!)
  }
  return { started, finished }
}

/** A cluster: its storage database and its runners. */
export interface TestCluster {
  readonly url: string
  readonly runners: Array<{ readonly port: number; proc: Proc }>
  /** Starts a runner on a free port. */
  readonly startRunner: () => Promise<void>
  /** Stops every runner and drops the storage database. */
  readonly close: () => Promise<void>
}

/** Creates a storage database (`etl_cluster_<random>`) next to the PostgreSQL test database, and `n` runners. */
export const startCluster = async (pgUrl: string, n: number): Promise<TestCluster> => {
  const database = `etl_cluster_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`
  const admin = new pg.Client({ connectionString: pgUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${database}`)
  await admin.end()
  const url = new URL(pgUrl)
  url.pathname = `/${database}`
  const cluster: TestCluster = {
    url: url.toString(),
    runners: [],
    startRunner: async () => {
      const port = await freePort()
      const proc = cli(["worker", "--cluster", cluster.url, "--port", String(port)])
      cluster.runners.push({ port, proc })
      await waitUntil(() => proc.stderr().includes("runner ready"), 30_000, `runner on ${port}`)
    },
    close: async () => {
      for (const runner of cluster.runners)
        if (runner.proc.process.exitCode === null) runner.proc.process.kill("SIGKILL")
      await Promise.all(cluster.runners.map((r) => r.proc.exited))
      const client = new pg.Client({ connectionString: pgUrl })
      await client.connect()
      await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
      await client.end()
    }
  }
  for (let i = 0; i < n; i++) await cluster.startRunner()
  return cluster
}
