"""The thin shared kernel: settings, topic catalogue, Kafka client configuration, the CLI."""
