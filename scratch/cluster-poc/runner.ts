/** Runner process: `RUNNER_PORT=34431 node runner.ts` (LOG_LEVEL=Debug for cluster internals) */
import * as NodeRuntime from "@effect/platform-node-shared/NodeRuntime"
import { Layer, References } from "effect"
import { makeWorkflowEngineLayer, PORT, say, WorkflowsLayer } from "./cluster.ts"

if (!PORT) throw new Error("set RUNNER_PORT")

const Main = WorkflowsLayer.pipe(
  Layer.provide(makeWorkflowEngineLayer({ clientOnly: false, port: PORT })),
  Layer.tap(() => say(`runner up on 127.0.0.1:${PORT}`)),
  Layer.provide(Layer.succeed(References.MinimumLogLevel, (process.env.LOG_LEVEL ?? "Info") as any))
)

Layer.launch(Main).pipe(NodeRuntime.runMain)
