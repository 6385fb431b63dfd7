/** The Kafka connector (`effect-etl/kafka`): topics as sources and sinks, the client contract, memory and live layers. */
export * as Kafka from "./Kafka.ts"
export * as KafkaClient from "./KafkaClient.ts"
export * as KafkaError from "./KafkaError.ts"
export * as NodeKafka from "./NodeKafka.ts"
