"""Message bus port and its two transports, chosen by URL: memory:// (in-process) and amqp:// (RabbitMQ)."""

from bus.factory import open_bus
from bus.port import Binding, Bus, Delivery, ExchangeSpec, Message, QueueSpec, Topology

__all__ = ["Binding", "Bus", "Delivery", "ExchangeSpec", "Message", "QueueSpec", "Topology", "open_bus"]
