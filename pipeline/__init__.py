"""The pipeline engine: legacy records routed or parked at ingest, the outbox and its relay, the inbox
consumer that hands each event on once, and the operator's work on parked messages."""
