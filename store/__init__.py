"""The hub's own database: checkpoints, outbox, inbox, parked messages, cases and projections."""
