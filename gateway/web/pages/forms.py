"""A submitted HTML form: `application/x-www-form-urlencoded` or `multipart/form-data` (file uploads),
read from the body the site buffered (the gateway's site does not parse forms itself)."""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import multipart

MAX_FIELDS = 64


class FormError(ValueError):
    """A body that is not a readable form."""


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    def text(self, name: str) -> str | None:
        """The field stripped, None when it is absent or blank (an optional field left empty)."""
        value = self.fields.get(name, "").strip()
        return value or None


def parse(body: bytes, content_type: str | None, limit: int) -> Form:
    """The form in `body`; the first value of a repeated field counts. FormError when unreadable."""
    mime, options = multipart.parse_options_header(content_type or "")
    if not body:
        return Form()
    if mime == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                             max_num_fields=MAX_FIELDS)
        except (UnicodeDecodeError, ValueError) as exc:
            raise FormError(f"not a readable form: {exc}") from None
        return Form({name: values[0] for name, values in pairs.items()})
    if mime == "multipart/form-data" and options.get("boundary"):
        fields: dict[str, str] = {}
        files: dict[str, Upload] = {}
        try:
            parser = multipart.MultipartParser(io.BytesIO(body), options["boundary"], content_length=len(body),
                                               part_limit=MAX_FIELDS, memory_limit=limit, spool_limit=limit,
                                               partsize_limit=limit)
            for part in parser:
                if part.filename is not None:
                    if part.filename and part.name not in files:
                        files[part.name] = Upload(part.filename, part.content_type or "", part.raw)
                elif part.name not in fields:
                    fields[part.name] = part.value
                part.close()
        except (multipart.MultipartError, UnicodeDecodeError) as exc:
            raise FormError(f"not a readable form: {exc}") from None
        return Form(fields, files)
    raise FormError(f"a form is urlencoded or multipart/form-data, not {mime or 'without a type'}")
