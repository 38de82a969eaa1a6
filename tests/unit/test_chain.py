"""Links between pipelines: validation of ``triggers:``/``after:`` and the logical-date alignment of waits."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from headwater.chain import aligned_logical_date, effective_schedule, schedule_problem
from headwater.config import load_config
from headwater.errors import ConfigError

pytestmark = pytest.mark.unit

ENTRY = "    sheets: [{workbook: a.csv, table: raw.%s}]\n"


def config(tmp_path: Path, pipelines: dict[str, str]) -> Path:
    text = "pipelines:\n"
    for name, body in pipelines.items():
        text += f"  {name}:\n{body}" + ENTRY % name
    path = tmp_path / "pipelines.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, pipelines: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(config(tmp_path, pipelines))
    return str(err.value)


def test_a_valid_chain_loads(tmp_path: Path) -> None:
    loaded = load_config(
        config(
            tmp_path,
            {
                "ingest": '    schedule: "0 9 * * *"\n    triggers: [transform]\n',
                "rates": "    schedule: '@daily'\n",
                "transform": "    after: [rates]\n",
                "report": "    schedule: 0 10 * * *\n"
                "    after: [{pipeline: transform, poke_seconds: 5, mode: deferrable}]\n",
            },
        )
    )
    pipelines = loaded.config.pipelines
    assert pipelines["report"].after[0].pipeline == "transform" and pipelines["report"].after[0].poke_seconds == 5
    assert pipelines["transform"].after[0].mode == "reschedule" and pipelines["transform"].after[0].timeout_minutes > 0
    assert effective_schedule(pipelines, "transform") == "0 9 * * *"  # the root of its trigger chain
    assert effective_schedule(pipelines, "rates") == "@daily"


@pytest.mark.parametrize(
    ("pipelines", "expected"),
    [
        (
            {"a": "    triggers: [nope]\n", "b": ""},
            "pipelines.a.triggers[0]: no pipeline named 'nope' (configured: a, b)",
        ),
        ({"a": "    after: [nope]\n"}, "pipelines.a.after[0]: no pipeline named 'nope' (configured: a)"),
        ({"a": "    triggers: [a]\n"}, "pipelines.a.triggers[0]: a pipeline cannot trigger itself"),
        ({"a": "    after: [a]\n"}, "pipelines.a.after[0]: a pipeline cannot wait for itself"),
        (
            {"a": "    triggers: [c]\n", "b": "    triggers: [c]\n", "c": ""},
            "pipelines.b.triggers[0]: 'c' is already triggered by 'a'",
        ),
        (
            {"a": "    triggers: [b]\n", "b": "    schedule: '@daily'\n"},
            "pipelines.a.triggers[0]: 'b' has its own schedule '@daily'",
        ),
        (
            {"a": "    triggers: [b]\n    after: [c]\n", "b": "    triggers: [c]\n", "c": ""},
            "pipelines: the links form a cycle: a -> b -> c -> a",
        ),
        ({"a": "    after: [b]\n", "b": "    after: [a]\n"}, "the links form a cycle: a -> b -> a"),
        (
            {"a": "    schedule: '@once'\n", "b": "    after: [a]\n"},
            "pipelines.b.after[0]: 'a' runs on '@once', which has no logical dates to line up with; "
            "trigger this pipeline from it instead",
        ),
        (
            {"a": "    triggers: [b]\n", "b": "    triggers: [a]\n", "c": "    after: [a]\n"},
            "pipelines: the links form a cycle: a -> b -> a",  # found, not looped over, with nothing scheduled
        ),
        (
            {"a": "    triggers: [b, x]\n", "b": "    triggers: [a]\n", "x": "", "y": "    after: [x]\n"},
            "pipelines: the links form a cycle: a -> b -> a",  # x's trigger chain loops above it
        ),
        (
            {"a": "    schedule: every day\n"},
            "pipelines.a.schedule: 'every day' is not a cron expression or one of @annually, @daily, @hourly, "
            "@midnight, @monthly, @quarterly, @weekly, @yearly, @once, @continuous",
        ),
        ({"a": "    after: [{pipeline: a, poke_seconds: 0}]\n"}, "pipelines.a.after.0.poke_seconds"),
        ({"a": "    after: [{pipeline: b, mode: poke}]\n", "b": ""}, "pipelines.a.after.0.mode"),
    ],
)
def test_bad_links_are_config_errors_naming_the_entry(tmp_path: Path, pipelines: dict[str, str], expected: str) -> None:
    message = problems(tmp_path, pipelines)
    assert expected.replace(".0.", "[0].") in message.replace(".0.", "[0]."), message
    assert str(tmp_path / "pipelines.yaml") in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = problems(tmp_path, {"a": "    triggers: [x, y]\n"})
    assert "triggers[0]: no pipeline named 'x'" in message and "triggers[1]: no pipeline named 'y'" in message


@pytest.mark.parametrize(
    ("schedule", "mine", "theirs"),
    [
        ("0 9 * * *", datetime(2026, 1, 5, 10, tzinfo=UTC), datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("0 9 * * *", datetime(2026, 1, 5, 9, tzinfo=UTC), datetime(2026, 1, 5, 9, tzinfo=UTC)),  # a tick itself
        ("0 9 * * *", datetime(2026, 1, 5, 8, 59, tzinfo=UTC), datetime(2026, 1, 4, 9, tzinfo=UTC)),
        ("@daily", datetime(2026, 1, 5, 9, 30, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC)),
        ("@hourly", datetime(2026, 1, 5, 9, 30, tzinfo=UTC), datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("@weekly", datetime(2026, 1, 7, tzinfo=UTC), datetime(2026, 1, 4, tzinfo=UTC)),  # Sunday
        ("@quarterly", datetime(2026, 5, 5, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
        ("*/15 * * * *", datetime(2026, 1, 5, 9, 44, 59, tzinfo=UTC), datetime(2026, 1, 5, 9, 30, tzinfo=UTC)),
        (None, datetime(2026, 1, 5, 9, 17, tzinfo=UTC), datetime(2026, 1, 5, 9, 17, tzinfo=UTC)),
    ],
)
def test_alignment_is_the_latest_upstream_tick_at_or_before(
    schedule: str | None, mine: datetime, theirs: datetime
) -> None:
    assert aligned_logical_date(schedule, mine) == theirs


def test_alignment_of_other_timezones_and_naive_dates() -> None:
    seoul = timezone(timedelta(hours=9))
    assert aligned_logical_date("0 9 * * *", datetime(2026, 1, 5, 19, tzinfo=seoul)) == datetime(
        2026, 1, 5, 9, tzinfo=UTC
    )
    assert aligned_logical_date("0 9 * * *", datetime(2026, 1, 5, 12)) == datetime(2026, 1, 5, 9, tzinfo=UTC)


def test_alignment_does_not_depend_on_the_machines_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Seoul")
    time.tzset()
    try:
        seoul = timezone(timedelta(hours=9))
        found = aligned_logical_date("0 * * * *", datetime(2026, 1, 5, 19, 30, tzinfo=seoul))
        assert found == datetime(2026, 1, 5, 10, tzinfo=UTC) and found.utcoffset() == timedelta(0)
        naive = aligned_logical_date("0 9 * * *", datetime(2026, 1, 5, 12))  # naive means UTC, not local time
        assert naive == datetime(2026, 1, 5, 9, tzinfo=UTC) and naive.utcoffset() == timedelta(0)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_schedule_problem() -> None:
    assert schedule_problem("0 9 * * 1-5") is None and schedule_problem("@once") is None
    assert schedule_problem("@daily") is None and schedule_problem("@quarterly") is None
    assert "not a cron expression" in (schedule_problem("61 * * * *") or "")


def test_the_chain_for_a_date_is_each_root_at_its_own_tick_and_what_it_triggers(tmp_path: Path) -> None:
    from headwater.ops.chain_run import chain_dates

    loaded = load_config(
        config(
            tmp_path,
            {
                "ingest": '    schedule: "0 9 * * *"\n    triggers: [transform]\n',
                "transform": "    triggers: [publish]\n",
                "publish": "",
                "rates": "    schedule: '@daily'\n",
                "report": "    schedule: 0 10 * * *\n    after: [transform]\n",
                "manual": "",  # neither scheduled nor triggered: not part of a chain
            },
        )
    )
    when = datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
    assert chain_dates(loaded, when) == {
        "ingest": (datetime(2026, 1, 5, 9, tzinfo=UTC), None),
        "rates": (datetime(2026, 1, 5, tzinfo=UTC), None),
        "report": (datetime(2026, 1, 5, 10, tzinfo=UTC), None),
        "transform": (datetime(2026, 1, 5, 9, tzinfo=UTC), "ingest"),
        "publish": (datetime(2026, 1, 5, 9, tzinfo=UTC), "transform"),
    }
