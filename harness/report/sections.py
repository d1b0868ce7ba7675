"""The report's sections, declared once for both formats (report.html and report.md).

A section is one partial, `templates/sections/<name>.j2`, holding two macros, `html(card, value)` and
`md(card, value)`, where `value` is the card field the section shows (`field`, a dotted path into
the score card). A section with a `title` gets that heading (an i18n key) above it; a section
without one writes its own, or none. A section whose macro writes nothing for a card is left out,
heading and all. The chapters number the report (HSEEP's after-action report) and are its table of
contents.

Adding a section: write its partial, add its field to the card (score/card.py), its words to
i18n.py, and its `Section` to a chapter below.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Section:
    name: str  # the partial: templates/sections/<name>.j2
    field: str  # the card field it shows, dotted ("impact.journeys"); "" for the whole card
    title: str | None = None  # i18n key of its heading; None: the partial writes its own

    @property
    def template(self) -> str:
        return f"sections/{self.name}.j2"

    def value(self, card: Any) -> Any:
        """The section's field of the card."""
        for part in filter(None, self.field.split(".")):
            card = getattr(card, part)
        return card


@dataclass(frozen=True)
class Chapter:
    id: str  # the html anchor
    title: str  # i18n key of its heading
    sections: tuple[Section, ...]
    css: str = ""  # a class for print layout (the appendix starts a new page)


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("overview", "s_overview", (
        Section("overview", "overview"),
        Section("participants", "overview.teams", "participants"),
        Section("objectives", "overview.objectives", "objectives"),
    )),
    Chapter("summary", "s_summary", (
        Section("summary", ""),  # the digest of the whole card
    )),
    Chapter("timeline", "s_timeline", (
        Section("charts", "series"),
        Section("alerts", "alerts", "alerts"),
        Section("notifications", "notifications", "notifications"),
        Section("events", "timeline", "s_events"),
    )),
    Chapter("analysis", "s_analysis", (
        Section("targets", "targets"),
        Section("level", "level", "level"),
        Section("plan", "plan"),  # its heading names the level that applied
        Section("strengths", "strengths", "strengths"),
    )),
    Chapter("impact", "s_impact", (
        Section("impact", "impact"),
        Section("journeys", "impact.journeys", "journeys"),
        Section("phases", "impact", "phases"),
        Section("data_loss", "rpo", "data_loss"),
        Section("offline", "offline", "offline_reception"),
    )),
    Chapter("findings", "s_findings", (
        Section("findings", "findings"),
    )),
    Chapter("appendix", "s_appendix", (
        Section("runbook", "steps", "a_runbook"),
        Section("config", "appendix", "a_config"),
        Section("files", "appendix", "a_files"),
        Section("score", "breakdown", "a_score"),
    ), css="appendix"),
)
