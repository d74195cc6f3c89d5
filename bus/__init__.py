"""The Kafka-protocol bus: topic names and producer/consumer factories with the floor's settings."""
