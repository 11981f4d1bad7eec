"""Subscriptions for platforms that cannot speak AMQP: the event feed behind SSE, and signed webhooks."""
