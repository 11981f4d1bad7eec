"""Supply feasibility: voltage, connection points, headroom, N-1 and dual-source rules, ranked schemes."""
