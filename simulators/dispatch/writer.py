"""Writes the dispatch simulator's files into a folder: each day's good files, and faulty ones on demand."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from ground.errors import ConfigError
from simulators.dispatch.equipment import Equipment, split
from simulators.dispatch.faults import Fault
from simulators.dispatch.files import (
    Reading,
    WrittenFile,
    analog_bytes,
    csv_row_boundaries,
    factor_curve_bytes,
    load_curve_bytes,
    load_curve_lines,
    power_curve_bytes,
    readings,
    records_power_factor,
    write_atomically,
    write_slowly,
)

DEFAULT_OVERSIZE_BYTES = 3 * 1024**3


class DispatchWriter:
    """Writes files for a set of equipment into out_dir; the same seed writes the same files."""

    def __init__(
        self,
        out_dir: Path,
        equipment: Sequence[Equipment],
        *,
        seed: int,
        oversize_bytes: int = DEFAULT_OVERSIZE_BYTES,
        fault_rows: int = 50,
        pause: Callable[[], None] = lambda: None,
    ) -> None:
        if not equipment:
            raise ConfigError("the dispatch simulator needs at least one feeder or transformer to measure")
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.feeders, self.transformers = split(equipment)
        self._seed = seed
        self._rng = random.Random(seed)
        # Its own stream, so adding factor curves left every other file of a seed as it was.
        self._factor_rng = random.Random(f"{seed}/power-factor")
        self._oversize_bytes = oversize_bytes
        self._fault_rows = fault_rows
        self._pause = pause
        self._serial = 0
        self._last: tuple[str, bytes, WrittenFile] | None = None

    def write_day(self, day: date) -> list[WrittenFile]:
        """The day's good files: feeder curves and telemetry (CIM/E), transformer power and factor curves
        (CSV; factor curves of the transformers whose meters record them).

        A kind of file whose equipment the writer does not have is left out.
        """
        stamp = day.strftime("%Y%m%d")
        written = []
        if self.feeders:
            feeder_day = readings(self.feeders, day, self._rng)
            curves = load_curve_bytes(feeder_day)
            count = len(feeder_day)
            written.append(self._good(f"dispatch_loadcurve_{stamp}.cime", "load_curve", curves, count))
            snapshot = analog_bytes(feeder_day)
            written.append(self._good(f"dispatch_analog_{stamp}T2015.cime", "analog", snapshot, count))
        if self.transformers:
            transformer_day = readings(self.transformers, day, self._rng)
            written.append(
                self._good(
                    f"metering_power_curve_{stamp}.csv",
                    "power_curve",
                    power_curve_bytes(transformer_day),
                    len(transformer_day),
                )
            )
            factored = [item for item in transformer_day if records_power_factor(item.equipment, self._seed)]
            if factored:
                factors = factor_curve_bytes(factored, self._factor_rng)
                name = f"metering_factor_curve_{stamp}.csv"
                written.append(self._good(name, "factor_curve", factors, len(factored)))
        return written

    def write_fault(self, fault: Fault, day: date) -> WrittenFile:
        """One faulty file of the given trigger (see faults.py for what each one writes)."""
        self._serial += 1
        stamp = f"{day.strftime('%Y%m%d')}_{fault.value}_{self._serial}"
        if fault is Fault.DUPLICATE:
            return self._duplicate()
        if fault in (Fault.TRUNCATED, Fault.WRONG_ENCODING, Fault.UNDECLARED_ENCODING, Fault.GARBAGE_ROWS):
            sample = self._sample(self.feeders or self.transformers, day)
            return self._cime_fault(fault, f"dispatch_loadcurve_{stamp}.cime", sample)
        sample = self._sample(self.transformers or self.feeders, day)
        if fault is Fault.BAD_FACTOR_CSV:
            return self._factor_fault(fault, f"metering_factor_curve_{stamp}.csv", sample)
        return self._csv_fault(fault, f"metering_power_curve_{stamp}.csv", sample)

    def _sample(self, equipment: Sequence[Equipment], day: date) -> list[Reading]:
        chosen = equipment[: self._fault_rows]
        return readings(chosen, day, self._rng)

    def _good(self, name: str, kind: str, data: bytes, rows: int) -> WrittenFile:
        write_atomically(self.out_dir / name, data)
        written = WrittenFile(name, kind, rows, rows, 0, "published")
        self._last = (name, data, written)
        return written

    def _duplicate(self) -> WrittenFile:
        if self._last is None:
            raise ConfigError("the duplicate trigger copies the last good file; write a day first")
        name, data, original = self._last
        stem, dot, suffix = name.rpartition(".")
        copy = f"{stem}_copy{self._serial}{dot}{suffix}"
        write_atomically(self.out_dir / copy, data)
        return WrittenFile(copy, original.kind, original.rows, 0, 0, "duplicate", Fault.DUPLICATE.value)

    def _cime_fault(self, fault: Fault, name: str, sample: list[Reading]) -> WrittenFile:
        rows = len(sample)
        path = self.out_dir / name
        if fault is Fault.TRUNCATED:
            data = load_curve_bytes(sample)
            end = data.rindex(b"</LoadCurve")
            start = data.index(b"\n#")
            write_atomically(path, data[: self._rng.randrange(start + 1, end)])
            return WrittenFile(name, "load_curve", rows, 0, 0, "error", fault.value)
        if fault is Fault.WRONG_ENCODING:
            write_atomically(path, load_curve_bytes(sample, declared="UTF-8", encoding="gbk"))
            return WrittenFile(name, "load_curve", rows, 0, 0, "error", fault.value)
        if fault is Fault.UNDECLARED_ENCODING:
            write_atomically(path, load_curve_bytes(sample, declared=None, encoding="gbk"))
            return WrittenFile(name, "load_curve", rows, rows, 0, "published", fault.value)
        lines = list(load_curve_lines(sample))
        junk = self._cime_junk(lines)
        write_atomically(path, "".join(lines).encode("gbk"))
        return WrittenFile(name, "load_curve", rows + junk, rows, junk, "published", fault.value)

    def _cime_junk(self, lines: list[str]) -> int:
        """Insert junk lines among the data rows; return how many."""
        rows = [index for index, line in enumerate(lines) if line.startswith("#")]
        template = lines[rows[0]].rstrip("\n").split("\t")
        not_a_number = list(template)
        not_a_number[5] = "abc"
        bad_date = list(template)
        bad_date[4] = "2026-13-45"
        broken_quote = list(template)
        broken_quote[3] = "'未闭合引号"
        junk = [
            "#\t1\t2\t3\n",
            "这不是一行 CIM/E 数据 ~~~\n",
            "\t".join(broken_quote) + "\n",
            "\t".join(not_a_number) + "\n",
            "\t".join(bad_date) + "\n",
        ]
        for line in junk:
            lines.insert(self._rng.randint(rows[0], rows[-1] + 1), line)
        return len(junk)

    def _csv_fault(self, fault: Fault, name: str, sample: list[Reading]) -> WrittenFile:
        rows = len(sample)
        path = self.out_dir / name
        data = power_curve_bytes(sample)
        if fault is Fault.TRUNCATED_CSV:
            offsets = csv_row_boundaries(data)
            last_start, last_end = offsets[-2], offsets[-1]
            write_atomically(path, data[: (last_start + last_end) // 2])
            return WrittenFile(name, "power_curve", rows, rows - 1, 1, "published", fault.value)
        if fault is Fault.OVERSIZED:
            write_atomically(path, data)
            with path.open("r+b") as file:
                # Sparse: the file claims its size without taking the disk space.
                file.truncate(max(self._oversize_bytes, len(data) + 1))
            return WrittenFile(name, "power_curve", rows, 0, 0, "error", fault.value)
        if fault is Fault.STILL_WRITING:
            write_slowly(path, data, pause=self._pause)
            return WrittenFile(name, "power_curve", rows, rows, 0, "published", fault.value)
        lines = data.decode("utf-8").splitlines(keepends=True)
        template = lines[1].rstrip("\n").split(",")
        not_a_number = list(template)
        not_a_number[7] = "abc"
        bad_date = list(template)
        bad_date[1] = "2026-02-30"
        junk = ["X,Y\n", '"broken,quote\n', ",".join(not_a_number) + "\n", ",".join(bad_date) + "\n"]
        for line in junk:
            lines.insert(self._rng.randint(1, len(lines)), line)
        write_atomically(path, "".join(lines).encode("utf-8"))
        return WrittenFile(name, "power_curve", rows + len(junk), rows, len(junk), "published", fault.value)

    def _factor_fault(self, fault: Fault, name: str, sample: list[Reading]) -> WrittenFile:
        rows = len(sample)
        lines = factor_curve_bytes(sample, self._factor_rng).decode("utf-8").splitlines(keepends=True)
        # Cells: ID, DATA_DATE, DATA_TYPE, then F1 ... F96.
        template = lines[1].rstrip("\n").split(",")
        above_one = list(template)
        above_one[3 + 80] = "1.2"
        zero = list(template)
        zero[3] = "0"
        not_a_number = list(template)
        not_a_number[3 + 4] = "abc"
        one_short = template[:-1]
        junk = [",".join(cells) + "\n" for cells in (above_one, zero, not_a_number, one_short)]
        for line in junk:
            lines.insert(self._rng.randint(1, len(lines)), line)
        write_atomically(self.out_dir / name, "".join(lines).encode("utf-8"))
        return WrittenFile(name, "factor_curve", rows + len(junk), rows, len(junk), "published", fault.value)
