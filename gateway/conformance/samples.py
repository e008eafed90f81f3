"""The request payload a run sends: a shipped sample for the shipped services (`samples/<serviceId>.toml`), or
the integrator's own document (`--data FILE`, the same placeholders)."""
from __future__ import annotations

import tomllib
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from lxml import etree

from gateway import contract as c

HERE = Path(__file__).resolve().parent / "samples"
TEXT = "{text}"
DEFAULT_TEXT = "conformance"


class SampleError(ValueError):
    pass


@dataclass(frozen=True)
class Sample:
    template: str
    source: str
    echoes_text: bool = False
    xsi_type: str | None = None
    text_limit: int | None = None  # characters the service's schema allows in {text}
    signed_by: dict | None = None  # the payload's EDS: {kind = "person", iin = …}, issued by the PKI

    @property
    def has_text(self) -> bool:
        return TEXT in self.template

    def payload(self, text: str = DEFAULT_TEXT) -> etree._Element:
        document = (self.template.replace(TEXT, _escape(text)).replace("{uuid}", str(uuid.uuid4()))
                    .replace("{now}", datetime.now(timezone.utc).isoformat(timespec="seconds")))
        try:
            return c.PARSER.parse(document.encode("utf-8")).getroot()
        except (ValueError, etree.XMLSyntaxError) as exc:
            raise SampleError(f"{self.source}: the payload is not an XML document: {exc}") from None


def shipped(service_id: str) -> Sample | None:
    path = HERE / f"{service_id}.toml"
    if not path.is_file():
        return None
    data = tomllib.loads(path.read_text("utf-8"))
    return Sample(data["payload"], str(path), bool(data.get("echoes_text")), data.get("xsi_type"),
                  data.get("text_limit"), data.get("signed_by"))


def from_file(path: Path, xsi_type: str | None = None) -> Sample:
    try:
        sample = Sample(Path(path).read_text("utf-8"), str(path), xsi_type=xsi_type)
    except (OSError, UnicodeDecodeError) as exc:
        raise SampleError(f"cannot read {path}: {exc}") from None
    sample.payload()  # refused now, not in the middle of a run
    return sample


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
