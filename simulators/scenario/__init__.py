"""Scenario files and their runner: rehearse the hub against the three simulators with faults and checks."""
