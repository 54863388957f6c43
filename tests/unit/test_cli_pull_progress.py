"""`llamaql pull`'s progress: a bar redrawn in place on a terminal, plain lines otherwise."""

from __future__ import annotations

import io
import uuid

from llamaql.cli_pull import ProgressView, bar_line, clock_time, human_bytes, plain_line
from llamaql.ports.model_files import PullFailure, PullProgress, PullState

MIB = 1024 * 1024


def progress(done: int, total: int | None = 100 * MIB, **fields: object) -> PullProgress:
    values: dict[str, object] = {
        "state": PullState.DOWNLOADING,
        "bytes_per_second": 10.0 * MIB,
        **fields,
    }
    return PullProgress(uuid.uuid4(), "smol", "http://x/smol.gguf", bytes_done=done,
                        total_bytes=total, **values)  # type: ignore[arg-type]  # fmt: skip


def test_the_bar_shows_bytes_rate_and_eta() -> None:
    assert bar_line(progress(45 * MIB)) == (
        "smol [#############.................]  45%  45.0 MiB / 100.0 MiB  10.0 MiB/s  ETA 0:06"
    )


def test_without_a_total_the_bar_shows_bytes_and_rate() -> None:
    assert bar_line(progress(3 * MIB, None)) == "smol  3.0 MiB  10.0 MiB/s  ETA --:--"


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_ends_with_a_newline() -> None:
    out = io.StringIO()
    view = ProgressView(out, tty=True)
    view.show(progress(10 * MIB))
    view.show(progress(100 * MIB, state=PullState.VERIFYING))
    view.show(progress(100 * MIB, state=PullState.COMPLETE))
    frames = out.getvalue().split("\r")[1:]
    assert len(frames) == 3
    assert all(frame.startswith("smol [") for frame in frames)
    assert frames[1].endswith("verifying\x1b[K")
    assert frames[2] == bar_line(progress(100 * MIB, state=PullState.COMPLETE)) + "\x1b[K\n"


def test_elsewhere_a_line_per_tenth_and_per_state() -> None:
    out = io.StringIO()
    view = ProgressView(out, tty=False, clock=lambda: 0.0)
    for mib in range(0, 101, 2):
        view.show(progress(mib * MIB))
    view.show(progress(100 * MIB, state=PullState.VERIFYING))
    view.show(progress(100 * MIB, state=PullState.COMPLETE))
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == "pull smol: 10.0 MiB of 100.0 MiB (10%), 10.0 MiB/s, ETA 0:09"
    assert len(lines) == 10 + 2
    assert lines[-2:] == [
        "pull smol: 100.0 MiB of 100.0 MiB (100%), 10.0 MiB/s, verifying",
        "pull smol: 100.0 MiB of 100.0 MiB (100%), 10.0 MiB/s, complete",
    ]


def test_elsewhere_without_a_total_a_line_every_few_seconds() -> None:
    now = [0.0]
    out = io.StringIO()
    view = ProgressView(out, tty=False, clock=lambda: now[0])
    for second in range(12):
        now[0] = float(second)
        view.show(progress(second * MIB, None))
    assert len(out.getvalue().splitlines()) == 2  # at 5 and 10 s


def test_a_failure_is_its_own_line() -> None:
    failed = progress(5 * MIB, state=PullState.FAILED, failure=PullFailure("BAD_USER_INPUT", "x"))
    assert plain_line(failed).endswith("failed")


def test_sizes_and_times_read_as_people_write_them() -> None:
    assert [human_bytes(n) for n in (512, 2048, 93.8 * MIB, 3.5 * 1024 * MIB)] == [
        "512 B",
        "2.0 KiB",
        "93.8 MiB",
        "3.5 GiB",
    ]
    assert [clock_time(s) for s in (4, 750, 3723)] == ["0:04", "12:30", "1:02:03"]
