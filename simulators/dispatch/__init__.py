"""Dispatch automation and metering simulator: seeded CIM/E and curve CSV load files, with fault triggers."""
