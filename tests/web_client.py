"""A form-submitting HTTP client for the HTML pages: keeps cookies, reads every page with html5lib in
strict mode (a parse error fails the test) and hands it to the HTML validator (tests/html_oracle.py,
at the test module's end), refuses any inline script or style, and submits a page's forms as a browser
without JavaScript would."""
from __future__ import annotations

import io
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urljoin, urlsplit

import html5lib
import treq
from html5lib import treebuilders

from tests import html_oracle

XHTML = "{http://www.w3.org/1999/xhtml}"
PARSER = html5lib.HTMLParser(strict=True, tree=treebuilders.getTreeBuilder("etree"), namespaceHTMLElements=True)


def parse_strict(body: bytes):
    """The page's tree; html5lib.html5parser.ParseError on the first deviation from the HTML standard."""
    return PARSER.parse(body)


def inline_code(document) -> list[str]:
    """What a strict CSP (no 'unsafe-inline') would block: <style>, script bodies, style= and on*= attributes,
    javascript: URLs."""
    found = []
    for element in document.iter():
        tag = element.tag.replace(XHTML, "") if isinstance(element.tag, str) else ""
        if tag == "style" or (tag == "script" and ((element.text or "").strip() or "src" not in element.attrib)):
            found.append(f"<{tag}>")
        for name, value in element.attrib.items():
            if name == "style" or name.startswith("on"):
                found.append(f"<{tag} {name}=…>")
            if name in ("href", "src", "action") and value.strip().lower().startswith("javascript:"):
                found.append(f"<{tag} {name}=javascript:…>")
    return found


@dataclass
class Answer:
    status: int
    headers: object
    body: bytes
    url: str

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    @property
    def html(self):
        return parse_strict(self.body)

    @property
    def text(self) -> str:
        return "".join(self.html.itertext())

    def find(self, selector_id: str):
        return self.html.find(f".//*[@id='{selector_id}']")


class WebClient:
    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.cookies: dict[str, str] = {}
        self.set_cookie_lines: list[str] = []

    def _headers(self, extra: dict | None = None) -> dict:
        headers = dict(extra or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    def _keep(self, response) -> None:
        for line in response.headers.getRawHeaders("set-cookie") or []:
            self.set_cookie_lines.append(line)
            jar = SimpleCookie()
            jar.load(line)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def url(self, path: str) -> str:
        """An absolute URL as is; a path the pages wrote (under the base's own path) on the base's origin;
        any other path under the base."""
        if path.startswith("http"):
            return path
        base = urlsplit(self.base)
        if path.startswith(base.path + "/"):
            return f"{base.scheme}://{base.netloc}{path}"
        return self.base + path

    async def request(self, method: str, path: str, *, follow: bool = True, **kwargs) -> Answer:
        url = self.url(path)
        response = await treq.request(method, url, headers=self._headers(kwargs.pop("headers", None)),
                                      allow_redirects=False, persistent=False, **kwargs)
        body = await response.content()
        self._keep(response)
        if follow and response.code in (302, 303):
            location = urljoin(url, response.headers.getRawHeaders("location")[0])
            return await self.request("GET", location)
        answer = Answer(response.code, response.headers, body, url)
        content_type = answer.header("content-type") or ""
        if content_type.startswith("text/html"):
            assert inline_code(answer.html) == [], f"{url}: inline code a strict CSP blocks"
            html_oracle.record(url, body)
        return answer

    async def get(self, path: str, **kwargs) -> Answer:
        return await self.request("GET", path, **kwargs)

    async def submit(self, page: Answer, form_id: str | None = None, *, action: str | None = None,
                     files: dict | None = None, follow: bool = True, **fields) -> Answer:
        """Post the form `form_id` of `page` (or the one whose action ends with `action`) with its hidden and
        prefilled fields, `fields` overriding them; files as {name: (filename, bytes)}."""
        form = _form(page.html, form_id, action)
        values = {}
        for element in form.iter():
            tag = element.tag.replace(XHTML, "")
            name = element.get("name")
            if not name:
                continue
            if tag == "input" and element.get("type") in ("radio", "checkbox"):
                if element.get("checked") is not None:
                    values[name] = element.get("value", "on")
            elif tag == "input" and element.get("type") != "file":
                values[name] = element.get("value", "")
            elif tag == "select":
                chosen = [o for o in element.iter(f"{XHTML}option") if o.get("selected") is not None]
                values[name] = (chosen or list(element.iter(f"{XHTML}option")))[0].get("value")
            elif tag == "textarea":
                values[name] = element.text or ""
        values.update({name.replace("__", "."): value for name, value in fields.items()})
        target = urljoin(page.url, form.get("action"))
        assert urlsplit(target).netloc == urlsplit(self.base).netloc, "a form posts to our own origin only"
        if form.get("enctype") == "multipart/form-data":
            upload = {name: (filename, "application/octet-stream", io.BytesIO(data))
                      for name, (filename, data) in (files or {}).items()}
            return await self.request("POST", target, data=values, files=upload, follow=follow)
        return await self.request("POST", target, data=values, follow=follow)


def _form(document, form_id: str | None, action: str | None):
    for form in document.iter(f"{XHTML}form"):
        if (form_id is not None and form.get("id") == form_id) or \
                (action is not None and form.get("action", "").endswith(action)):
            return form
    raise AssertionError(f"no form {form_id or action} on the page")
