"""Simulator of the marketing system (营销系统): WSDL-first SOAP 1.1 over a seeded in-memory world."""
