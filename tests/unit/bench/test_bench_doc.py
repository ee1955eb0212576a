"""``make bench`` rewrites only its own section of docs/performance.md."""

from __future__ import annotations

from order_engine.bench.scenario_doc import begin_marker, end_marker, replace_section


def test_a_section_is_appended_when_its_markers_are_absent() -> None:
    text = replace_section("# Performance\n\nprose\n", "latest", "table v1")
    assert text == (
        f"# Performance\n\nprose\n\n{begin_marker('latest')}\ntable v1\n{end_marker('latest')}\n"
    )


def test_a_rerun_replaces_its_section_and_keeps_everything_else() -> None:
    first = replace_section("intro\n", "baseline", "old baseline")
    first = replace_section(first, "latest", "old latest")
    first += "\nclosing prose\n"
    second = replace_section(first, "latest", "new latest")
    assert "new latest" in second
    assert "old latest" not in second
    assert "old baseline" in second
    assert second.startswith("intro\n")
    assert second.endswith("closing prose\n")
    assert second.count(begin_marker("latest")) == 1


def test_section_text_with_backslashes_is_written_verbatim() -> None:
    text = replace_section(replace_section("", "s", "a"), "s", r"C:\path \1 \g<0>")
    assert r"C:\path \1 \g<0>" in text
