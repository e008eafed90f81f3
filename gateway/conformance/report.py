"""What a run leaves: a line per case as it runs, a summary table, JUnit XML for any CI, and one
self-contained HTML page (no script, no external asset) with every case's evidence."""
from __future__ import annotations

from pathlib import Path

import jinja2
from lxml import etree

from gateway import contract as c
from gateway.conformance.probes import FAIL, NA, PASS
from gateway.conformance.runner import Report, Result

MARKS = {PASS: "pass", FAIL: "FAIL", NA: "n/a "}
_TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("gateway.conformance", "templates"),
                                autoescape=True, undefined=jinja2.StrictUndefined)


def progress_line(number: int, total: int, result: Result) -> str:
    optional = "" if result.case.required else " (optional)"
    return (f"[{number:>2}/{total}] {MARKS[result.outcome.verdict]}  {result.case.id}{optional}: "
            f"{result.outcome.reason}")


def summary(report: Report) -> str:
    width = max(len(r.case.id) for r in report.results)
    lines = [f"{'case':<{width}}  verdict  required  seconds", "-" * (width + 28)]
    for r in report.results:
        lines.append(f"{r.case.id:<{width}}  {r.outcome.verdict:<7}  {'yes' if r.case.required else 'no':<8}  "
                     f"{r.seconds:7.3f}")
    lines.append("-" * (width + 28))
    lines.append(f"{report.count(PASS)} passed, {report.count(FAIL, True)} required failed, "
                 f"{report.count(FAIL, False)} optional failed, {report.count(NA)} not applicable: "
                 + ("CONFORMS" if report.passed else "DOES NOT CONFORM"))
    return "\n".join(lines)


def evidence_text(data: bytes | str) -> str:
    """Evidence to show: XML pretty-printed, other bytes as UTF-8 (undecodable ones replaced)."""
    if isinstance(data, bytes):
        try:
            tree = c.PARSER.parse(data)
            return etree.tostring(tree, pretty_print=True, encoding="unicode")
        except (ValueError, etree.XMLSyntaxError):
            return data.decode("utf-8", "replace")
    return data


def junit_xml(report: Report) -> bytes:
    suite_name = f"shep conformance {report.mode} {report.service}"
    suites = etree.Element("testsuites", name=suite_name)
    suite = etree.SubElement(suites, "testsuite", name=suite_name, tests=str(len(report.results)),
                             failures=str(report.count(FAIL)), errors="0", skipped=str(report.count(NA)),
                             time=f"{report.seconds:.3f}", timestamp=report.started.isoformat(timespec="seconds"))
    properties = etree.SubElement(suite, "properties")
    for name, value in (("target", report.target), ("service", report.service),
                        ("verdict", "conforms" if report.passed else "does not conform")):
        etree.SubElement(properties, "property", name=name, value=value)
    for r in report.results:
        case = etree.SubElement(suite, "testcase", classname=f"{report.mode}.{report.service}", name=r.case.id,
                                time=f"{r.seconds:.3f}")
        if r.outcome.verdict == FAIL:
            failure = etree.SubElement(case, "failure", message=r.outcome.reason,
                                       type="required" if r.case.required else "optional")
            failure.text = _evidence_block(r)
        elif r.outcome.verdict == NA:
            etree.SubElement(case, "skipped", message=f"not applicable: {r.outcome.reason}")
        etree.SubElement(case, "system-out").text = f"{r.case.title}\nclause: {r.case.clause}\n{r.outcome.reason}"
    return etree.tostring(suites, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _evidence_block(result: Result) -> str:
    return "\n\n".join(f"== {e.label} ==\n{evidence_text(e.data)}" for e in result.outcome.evidence)


def html(report: Report) -> str:
    return _TEMPLATES.get_template("report.html").render(report=report, marks=MARKS, evidence_text=evidence_text,
                                                         PASS=PASS, FAIL=FAIL, NA=NA)


def write(report: Report, junit: Path | None, page: Path | None) -> list[Path]:
    written = []
    if junit:
        Path(junit).write_bytes(junit_xml(report))
        written.append(Path(junit))
    if page:
        Path(page).write_text(html(report), "utf-8")
        written.append(Path(page))
    return written
