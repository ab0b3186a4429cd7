"""The teacher's kit in docs/course/: what it quotes agrees with the notebooks, every prompt
has an answer, and every lecture deck renders with its figures."""

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from elpo_min.course import estimates, grading

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "docs" / "course"
DECKS = sorted((KIT / "slides").glob("session*.py"))


def test_the_kit_has_its_pages_and_the_old_guide_points_to_it():
    for page in ("README.md", "sessions.md", "answers.md", "rubric.md", "misconceptions.md"):
        assert (KIT / page).is_file(), page
    assert "course/README.md" in (ROOT / "docs" / "course.md").read_text()


def test_the_rubric_table_is_the_notebooks_points():
    rows = re.findall(r"^\| (E\d) \| (\w+) \| (\d+) \| (check|hand) \|$", rubric(), flags=re.M)
    listed = [(exercise, grade_id, int(points), kind) for exercise, grade_id, points, kind in rows]
    parts = grading.exercise_sources(ROOT / "exercises")
    expected = [
        (name, p.grade_id, p.points, "check" if p.automatic else "hand")
        for name, (_, found) in parts.items()
        for p in found
    ]
    assert listed == expected


def rubric() -> str:
    return (KIT / "rubric.md").read_text()


def test_every_written_answer_has_grading_criteria_for_its_points():
    headers = re.findall(r"^\*\*(E\d[^*]*)\*\*", rubric(), flags=re.M)
    for _, parts in grading.exercise_sources(ROOT / "exercises").values():
        for part in parts:
            if not part.automatic:
                header = next((h for h in headers if part.grade_id in h), None)
                assert header, f"no criteria for {part.grade_id}"
                assert f"({part.points:g} point" in header, header


def test_the_sessions_quote_the_estimates():
    sessions = (KIT / "sessions.md").read_text()
    for estimate in estimates.all_estimates():
        number = estimate.name.split("_")[0]
        # a notebook's cells: "| 01 name | 30 min |"; an exercise's: "| E1 name | ★☆☆ | 40 min |"
        cells = r"[^|]*\| " if number.startswith("E") else ""
        quoted = rf"\| {number} [^|]*\| {cells}{estimate.minutes} min \|"
        assert re.search(quoted, sessions), f"{estimate.name}: {estimate.minutes} min"


def test_every_prompt_has_an_answer():
    answers = (KIT / "answers.md").read_text()
    for number in range(1, 9):
        assert f"**{number}. " in answers, f"discussion question {number}"
    for source in sorted((ROOT / "exercises").glob("E*.py")):
        prompts = bullets_after(source.read_text(), "# ## To think about")
        name = source.stem.split("_")[0]
        section = answers.split(f"### {name}\n", 1)
        assert len(section) == 2, f"no answers for {name}"
        given = re.split(r"\n### |\n## ", section[1], maxsplit=1)[0]
        assert given.count("\n* **") == len(prompts), f"{name}: {len(prompts)} prompts"
    for source in sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        prompts = bullets_after(source.read_text(), "# ## What to try next")
        section = answers.split(f"### Notebook {source.stem[:2]}\n", 1)
        assert len(section) == 2, f"no answers for notebook {source.stem[:2]}"
        given = re.split(r"\n### |\n## ", section[1], maxsplit=1)[0]
        assert given.count("\n* **") == len(prompts), f"notebook {source.stem[:2]}"


def bullets_after(source: str, heading: str) -> list[str]:
    if heading not in source:
        return []
    tail = source.split(heading, 1)[1].split("\n# %%", 1)[0]
    return re.findall(r"^# \* ", tail, flags=re.M)


def test_there_are_eight_misconceptions_or_more_each_with_its_settling_cell():
    text = (KIT / "misconceptions.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert len(sections) >= 8
    assert sections[0].startswith('1. "λ_tree = 0 is GRPO"')
    for section in sections:
        for part in ("**How it shows.**", "**What is true.**", "**The cell that settles it.**"):
            assert part in section, section[:40]


@pytest.mark.parametrize("deck", DECKS, ids=lambda p: p.stem)
def test_each_lecture_deck_renders_as_slides_with_its_figures(deck):
    from nbconvert import SlidesExporter

    built = nbformat.read(deck.with_suffix(".ipynb"), as_version=4)
    assert [c.source for c in built.cells] == [c.source for c in jupytext.read(deck).cells]
    assert all(c.metadata.get("slideshow", {}).get("slide_type") for c in built.cells)
    html, _ = SlidesExporter().from_notebook_node(built)
    assert html.count("<section") >= len(built.cells)
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", "\n".join(c.source for c in built.cells))
    assert figures, f"{deck.stem} shows no figure of the notebooks"
    for figure in figures:
        assert (deck.parent / figure).resolve().is_file(), figure
