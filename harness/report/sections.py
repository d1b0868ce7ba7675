"""The report's sections, declared once for both formats (report.html and report.md), in a registry
that plugins add to.

A section is one partial holding two macros, `html(card, value)` and `md(card, value)`, where `value`
is the card field the section shows (`field`, a dotted path into the score card). The harness's
partials are `templates/sections/<name>.j2`; a plugin's section names its own file (`path`). A
section with a `title` gets that heading (an i18n key, or the heading itself when it is not one)
above it; a section without one writes its own, or none. A section whose macro writes nothing for a
card is left out, heading and all.

The chapters number the report (HSEEP's after-action report) and are its table of contents; they
are fixed, and each section goes in one of them, after those registered before it: the harness's
own in the order below, then the plugins' (entry-point group `hospital_drill.report_sections`).

Adding a section: write its partial and register it with `section(...)` (a plugin module does the
same, see docs/plugins.md); its field must be on the card (score/card.py).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..registry import Registry


@dataclass(frozen=True)
class Section:
    name: str  # unique; the harness's partial is templates/sections/<name>.j2
    field: str  # the card field it shows, dotted ("impact.journeys"); "" for the whole card
    title: str | None = None  # i18n key (or text) of its heading; None: the partial writes its own
    chapter: str = ""  # the id of the chapter it goes in
    path: Path | None = None  # a plugin's partial, read from this file

    @property
    def template(self) -> str:
        return f"sections/{self.name}.j2"

    def value(self, card: Any) -> Any:
        """The section's field of the card."""
        for part in filter(None, self.field.split(".")):
            card = getattr(card, part)
        return card


SECTIONS: Registry[Section] = Registry("report section", group="hospital_drill.report_sections",
                                       builtin=(__name__,))


@dataclass(frozen=True)
class Chapter:
    id: str  # the html anchor
    title: str  # i18n key of its heading
    css: str = ""  # a class for print layout (the appendix starts a new page)

    @property
    def sections(self) -> tuple[Section, ...]:
        return tuple(s for s in SECTIONS.values() if s.chapter == self.id)


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("overview", "s_overview"),
    Chapter("summary", "s_summary"),
    Chapter("timeline", "s_timeline"),
    Chapter("analysis", "s_analysis"),
    Chapter("impact", "s_impact"),
    Chapter("findings", "s_findings"),
    Chapter("appendix", "s_appendix", css="appendix"),
)


def section(name: str, field: str, chapter: str, title: str | None = None, *,
            path: str | Path | None = None) -> Section:
    """Register a report section `name` in `chapter` (an id of CHAPTERS), showing the card's `field`
    through its partial (`path`: a plugin's own file). A name taken twice is refused (DuplicateName)."""
    known = [c.id for c in CHAPTERS]
    if chapter not in known:
        raise ValueError(f"report section {name!r}: unknown chapter {chapter!r} (known: {', '.join(known)})")
    if path is not None and not Path(path).is_file():
        raise ValueError(f"report section {name!r}: no partial at {path}")
    origin = sys._getframe(1).f_globals.get("__name__", "?")  # the registering module, for a duplicate
    return SECTIONS.add(name, Section(name, field, title, chapter, None if path is None else Path(path)),
                        origin=f"{origin}.{name}")


def partial_source(template: str) -> str | None:
    """The text of a plugin section's partial, by its template name; None for the harness's own (and
    for anything else), which the templates folder holds."""
    name = template.removeprefix("sections/").removesuffix(".j2")
    entry = SECTIONS.get(name) if template.startswith("sections/") else None
    return None if entry is None or entry.path is None else entry.path.read_text(encoding="utf-8")


for _chapter, *_sections in (
    ("overview",
     ("overview", "overview"),
     ("participants", "overview.teams", "participants"),
     ("objectives", "overview.objectives", "objectives")),
    ("summary",
     ("summary", ""),  # the digest of the whole card
     ("readiness", "readiness", "readiness_before")),  # what the checks before the drill found
    ("timeline",
     ("charts", "series"),
     ("alerts", "alerts", "alerts"),
     ("notifications", "notifications", "notifications"),
     ("people", "people", "people"),  # who did what and when, the golden hour
     ("events", "timeline", "s_events")),
    ("analysis",
     ("targets", "targets"),
     ("level", "level", "level"),
     ("plan", "plan"),  # its heading names the level that applied
     ("strengths", "strengths", "strengths")),
    ("impact",
     ("impact", "impact"),
     ("journeys", "impact.journeys", "journeys"),
     ("phases", "impact", "phases"),
     ("data_loss", "rpo", "data_loss"),
     ("offline", "offline", "offline_reception")),
    ("findings",
     ("findings", "findings")),
    ("appendix",
     ("runbook", "steps", "a_runbook"),
     ("config", "appendix", "a_config"),
     ("files", "appendix", "a_files"),
     ("score", "breakdown", "a_score")),
):
    for _name, _field, *_title in _sections:
        section(_name, _field, _chapter, *_title)
