"""The dispatch simulator's fault triggers: which faulty file each one writes and what the hub must do.

Trigger table (trigger: file written -> right outcome at the hub):

- truncated: a LoadCurve CIM/E file cut off inside its block
  -> error/ with a reason file; none of its rows published.
- truncated_csv: a curve CSV cut off in the middle of its last row
  -> the cut row parked as invalid (file, line, reason); the rows before it published.
- wrong_encoding: a LoadCurve CIM/E file written in GBK whose header declares Code=UTF-8
  -> error/ with a reason file; none of its rows published.
- undeclared_encoding: a LoadCurve CIM/E file in GBK with no Code= in its header
  -> the encoding is detected; every row published with its Chinese names intact.
- duplicate: a copy of the last good file under a new name
  -> recognised by its SHA-256, moved to done/; nothing published a second time.
- garbage_rows: a LoadCurve CIM/E file with junk lines among its rows (a wrong field count, a line that
  is not CIM/E, an unbalanced quote, a point that is not a number, an impossible date)
  -> each junk line parked as invalid with file, line and reason; every good row published.
- garbage_rows_csv: a curve CSV with junk rows (a wrong field count, a broken quote, a point that is not
  a number, an impossible date)
  -> each junk row parked as invalid with file, line and reason; every good row published.
- bad_factor_csv: a power-factor curve CSV with bad rows (a factor above 1, a factor of 0, a factor that is
  not a number, a row one factor short)
  -> each bad row parked as invalid with file, line and reason (an out-of-range factor by its point);
  every good row published.
- oversized: a curve CSV grown (sparse) to --oversize-bytes, by default 3 GiB, above the hub's default
  limit of 256 MiB (YEKUO_DISPATCH__MAX_FILE_BYTES)
  -> error/ unread, its reason naming the size and the limit.
- still_writing: a curve CSV written under its final name in two halves with a pause of --hold seconds
  -> not taken while incomplete; then published once, whole.

Good files are written under ``<name>.part`` and renamed when complete, the temporary-name convention the
intake honours; still_writing is the producer that ignores it.
"""

from __future__ import annotations

from enum import StrEnum

from ground.errors import ConfigError


class Fault(StrEnum):
    """A fault trigger of the dispatch simulator."""

    TRUNCATED = "truncated"
    TRUNCATED_CSV = "truncated_csv"
    WRONG_ENCODING = "wrong_encoding"
    UNDECLARED_ENCODING = "undeclared_encoding"
    DUPLICATE = "duplicate"
    GARBAGE_ROWS = "garbage_rows"
    GARBAGE_ROWS_CSV = "garbage_rows_csv"
    BAD_FACTOR_CSV = "bad_factor_csv"
    OVERSIZED = "oversized"
    STILL_WRITING = "still_writing"


def parse_faults(text: str) -> tuple[Fault, ...]:
    """Faults from a comma-separated list ('all' for every one, '' for none)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return tuple(Fault)
    faults = []
    for name in names:
        try:
            faults.append(Fault(name))
        except ValueError:
            known = ", ".join(fault.value for fault in Fault)
            raise ConfigError(f"unknown dispatch fault trigger {name!r}; known: {known}, or all") from None
    return tuple(faults)
