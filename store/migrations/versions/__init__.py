"""One module per schema revision, each declaring its PHASE: expand or contract."""
