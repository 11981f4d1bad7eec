"""Message bus port and its two transports, chosen by URL: memory:// (in-process) and amqp:// (RabbitMQ)."""
