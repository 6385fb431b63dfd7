/**
 * Latency and segment counts of a streaming run, kept across its attempts: end-to-end latency is a batch's commit (or
 * write) time minus its oldest source timestamp, recorded in the run's `etl_end_to_end_latency_seconds` histogram; the
 * report's p50 and p95 are read from that histogram.
 */
import type { StreamingReport } from "../../core/RunReport.ts"
import { quantile, type RunMetrics } from "../Metrics.ts"

/** The streaming figures of a run. */
export class StreamingStats {
  segments = 0
  private readonly metrics: RunMetrics

  constructor(metrics: RunMetrics) {
    this.metrics = metrics
  }

  /** Records the end-to-end latency of a batch made visible at `now`. */
  observe(sourceTimestamp: number | undefined, now: number): number | undefined {
    if (sourceTimestamp === undefined) return undefined
    const latency = Math.max(0, now - sourceTimestamp)
    this.metrics.latency(latency)
    return latency
  }

  report(): StreamingReport {
    const state = this.metrics.latencyState()
    const ms = (seconds: number) => Math.round(seconds * 1000)
    return {
      segments: this.segments,
      ...(state.count === 0
        ? {}
        : {
            latencyMs: {
              batches: state.count,
              p50: ms(quantile(state, 0.5)),
              p95: ms(quantile(state, 0.95)),
              max: ms(state.max)
            }
          })
    }
  }
}
