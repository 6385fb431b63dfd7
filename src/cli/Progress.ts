/**
 * The progress line a terminal user sees on stderr while a pipeline runs: records read, records/s, elapsed time.
 */
import type { RunContext } from "../core/Stage.ts"
import type { ProgressReporter } from "../runtime/Progress.ts"

const formatCount = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}K` : String(n)

/** Renders one progress line from a run's counters. */
export const line = (ctx: RunContext, elapsedMs: number): string => {
  let read = 0
  let written = 0
  let rejected = 0
  for (const s of ctx.stages()) {
    if (s.info.kind === "source") read += s.recordsIn
    if (s.info.kind === "sink") written += s.recordsIn
    if (s.info.kind !== "sink" && s.info.kind !== "dead-letters") rejected += s.rejected
  }
  const seconds = elapsedMs / 1000
  const rate = seconds > 0 ? Math.round(read / seconds) : 0
  return `${ctx.pipeline}: ${formatCount(read)} read, ${formatCount(written)} written, ${formatCount(rejected)} rejected, ${formatCount(rate)} records/s, ${seconds.toFixed(1)}s`
}

/** A reporter that redraws the line on a terminal at most every `intervalMs`. */
export const terminal = (stream: NodeJS.WriteStream, intervalMs = 200): ProgressReporter => {
  const started = performance.now()
  let last = Number.NEGATIVE_INFINITY
  return {
    update: (ctx) => {
      const now = performance.now()
      if (now - last < intervalMs) return
      last = now
      stream.write(`\r\x1b[2K${line(ctx, now - started)}`)
    },
    done: (ctx) => {
      stream.write(`\r\x1b[2K${line(ctx, performance.now() - started)}\n`)
    }
  }
}
