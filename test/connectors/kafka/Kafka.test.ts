import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as KafkaClient from "../../../src/connectors/kafka/KafkaClient.ts"
import * as NodeKafka from "../../../src/connectors/kafka/NodeKafka.ts"
import { KafkaBroker } from "../../support/KafkaBroker.ts"
import { conformance } from "./KafkaConformance.ts"

conformance(
  "Kafka connector (memory client)",
  Layer.suspend(() => KafkaClient.layerMemory(KafkaClient.memory({}, { fetchSize: 7 })))
)

conformance(
  "Kafka connector (real broker)",
  Layer.unwrap(Effect.map(KafkaBroker, (broker) => NodeKafka.layer({ brokers: broker.brokers }))).pipe(
    Layer.provide(KafkaBroker.layer)
  )
)
