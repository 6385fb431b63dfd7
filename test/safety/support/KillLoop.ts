/**
 * Runs a streaming pipeline config with the CLI, SIGKILLs it at random moments, restarts it, and finally lets it run
 * until a condition holds, then stops it gracefully: what the kill tests of issue 11 share.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as nodePath from "node:path"

const root = nodePath.resolve(import.meta.dirname, "../../..")
const main = nodePath.join(root, "src/main.ts")

export interface Child {
  readonly process: ChildProcess
  readonly exited: Promise<number | null>
  readonly output: () => { readonly stdout: string; readonly stderr: string }
}

/** Starts `effect-etl run CONFIG` (JSON logs on stderr) with extra environment variables. */
export const start = (config: string, env: Readonly<Record<string, string>>): Child => {
  const child = spawn(process.execPath, [main, "run", config, "--log-format", "json"], {
    cwd: root,
    env: { ...process.env, ...env },
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
  return { process: child, exited, output: () => ({ stdout, stderr }) }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Waits until `condition` holds (checked every 100 ms), or fails after `timeoutMs`. */
export const waitUntil = async (condition: () => Promise<boolean>, timeoutMs: number, what: string) => {
  const started = Date.now()
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

export interface KillLoopResult {
  /** Kills that hit a running process. */
  readonly kills: number
  /** The final run's stdout (its RunReport) and stderr. */
  readonly last: { readonly code: number | null; readonly stdout: string; readonly stderr: string }
}

/**
 * `kills` times: start the pipeline, wait until it logs that it started, then a random time in `[minMs, maxMs]`, and
 * SIGKILL it. Then start it once more, wait
 * until `done()` holds, SIGINT it and wait for its exit. `env(i)` gives each run's environment.
 */
export const killLoop = async (options: {
  readonly config: (run: number) => string
  readonly kills: number
  readonly minMs: number
  readonly maxMs: number
  readonly env: (run: number) => Readonly<Record<string, string>>
  readonly done: () => Promise<boolean>
  readonly timeoutMs: number
  /**
   * Before the random wait of run `run`, waits (at most a minute) until this holds: e.g. until the first run saved a
   * checkpoint, so that the final run has one to resume from however slow a loaded machine is.
   */
  readonly before?: ((run: number) => Promise<boolean>) | undefined
}): Promise<KillLoopResult> => {
  let kills = 0
  for (let i = 0; i < options.kills; i++) {
    const child = start(options.config(i), options.env(i))
    // The random moment is counted from the run's start (a loaded machine may take seconds to load the program).
    await waitUntil(
      async () => child.process.exitCode !== null || child.output().stderr.includes("run started"),
      60_000,
      `run ${i + 1} to start`
    )
    const before = options.before
    if (before !== undefined)
      await waitUntil(
        async () => child.process.exitCode !== null || (await before(i)),
        60_000,
        `run ${i + 1}'s condition before its kill`
      )
    await sleep(options.minMs + Math.random() * (options.maxMs - options.minMs))
    if (child.process.exitCode === null) {
      child.process.kill("SIGKILL")
      kills++
    }
    const code = await child.exited
    if (code !== null && code !== 0)
      throw new Error(`run ${i + 1} exited with ${code} before it was killed:\n${child.output().stderr}`)
  }
  const child = start(options.config(options.kills), options.env(options.kills))
  try {
    // Stopped only once it runs (its signal handlers are in place) and the data is all there.
    await waitUntil(
      async () =>
        child.process.exitCode !== null || (child.output().stderr.includes("run started") && (await options.done())),
      options.timeoutMs,
      "the final run"
    )
  } catch (error) {
    child.process.kill("SIGKILL")
    throw new Error(`${String(error)}\n${child.output().stderr.slice(-4000)}`)
  }
  child.process.kill("SIGINT")
  const code = await child.exited
  return { kills, last: { code, ...child.output() } }
}
