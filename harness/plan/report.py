"""The readiness report: audit.json, audit.md, audit.html and junit.xml beside the audit's journal.

The after-action report's scale and style: its severity titles, its page style (taken from its own
template, so that both read alike), one junit testcase per check.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..report.render import SEVERITY_TITLES, TEMPLATES as REPORT_TEMPLATES
from .findings import SEVERITIES, critical, readiness
from .live import bring_up_seconds

if TYPE_CHECKING:
    from .audit import AuditOutcome

TEMPLATES = Path(__file__).parent / "templates"
VERDICT_TITLES = {"ready": "就绪 READY", "not_ready": "未就绪 NOT READY", "aborted": "中止 ABORTED"}
FILES = {"json": "audit.json", "md": "audit.md", "html": "audit.html", "junit": "junit.xml"}


def house_style() -> str:
    """The after-action report's <style> block, so that the readiness report looks the same."""
    page = (REPORT_TEMPLATES / "report.html.j2").read_text(encoding="utf-8")
    found = re.search(r"<style>.*?</style>", page, re.S)
    return found.group(0) if found else ""


def as_data(o: "AuditOutcome") -> dict[str, Any]:
    score, counts = readiness(o.results)
    return {"plan": o.loaded.plan.name, "title": o.loaded.plan.title, "plan_file": str(o.loaded.path),
            "verdict": o.verdict, "score": round(score, 1), "findings": counts,
            "aborted": o.aborted, "seconds": round(o.seconds, 2),
            "bring_up_seconds": bring_up_seconds(o.results),
            "checks": [r.as_dict() for r in o.results]}


def junit_xml(o: "AuditOutcome") -> ET.ElementTree:
    """One testcase per check: a critical finding is a <failure> (exit 1 too), a skipped check
    <skipped>, an aborted audit an <error> of its own case."""
    data = as_data(o)
    failed = [r for r in o.results if any(f.severity == "critical" for f in r.findings)]
    suite = ET.Element("testsuite", name=f"audit.{data['plan']}",
                       tests=str(len(o.results) + bool(o.aborted)), failures=str(len(failed)),
                       errors=str(int(bool(o.aborted))),
                       skipped=str(sum(r.skipped is not None for r in o.results)),
                       time=f"{o.seconds:.3f}")
    props = ET.SubElement(suite, "properties")
    for name in ("verdict", "score", "plan_file", "bring_up_seconds"):
        ET.SubElement(props, "property", name=name, value="" if data[name] is None else str(data[name]))
    if o.aborted:
        case = ET.SubElement(suite, "testcase", classname="audit.run", name="audit")
        ET.SubElement(case, "error", message=o.aborted, type="aborted").text = o.aborted
    for r in o.results:
        case = ET.SubElement(suite, "testcase", classname=f"audit.{r.kind}", name=r.name,
                             time=f"{r.seconds:.3f}")
        lines = "\n".join(f.line() for f in r.findings) or r.title
        if r.skipped is not None:
            ET.SubElement(case, "skipped", message=r.skipped).text = r.title
        elif r in failed:
            first = next(f for f in r.findings if f.severity == "critical")
            ET.SubElement(case, "failure", message=first.message, type="critical").text = lines
        ET.SubElement(case, "system-out").text = lines
    ET.indent(suite)
    return ET.ElementTree(suite)


def write_reports(o: "AuditOutcome") -> dict[str, Path]:
    out = {kind: o.out.path / name for kind, name in FILES.items()}
    data = as_data(o)
    out["json"].write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n",
                           encoding="utf-8")
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    context = {"a": data, "critical": [f.as_dict() for f in critical(o.results)],
               "severities": SEVERITIES, "sev_titles": SEVERITY_TITLES, "verdicts": VERDICT_TITLES,
               "style": house_style()}
    out["md"].write_text(env.get_template("readiness.md.j2").render(**context), encoding="utf-8")
    out["html"].write_text(env.get_template("readiness.html.j2").render(**context), encoding="utf-8")
    junit_xml(o).write(out["junit"], encoding="utf-8", xml_declaration=True)
    return out
