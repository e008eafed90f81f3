"""The web pages a person uses (server-rendered HTML), shared by the parties that have screens: the
portal (ЭҮП), the clinic's workstation (АЖО) and the gateway's own console (docs/web.md).

It imports no party and nothing of the bus but the bounded body reader (`gateway.web.body`): it sits
under `gateway/` so that the console can use it without the bus importing from `endpoints/`.

- `i18n`: the message catalogues, Kazakh first, Russian; the language a request asks for;
- `forms`: the body of a submitted form (urlencoded or multipart, with files), bounded;
- `security`: the response headers (a strict Content-Security-Policy), cookies, the CSRF token;
- `resource`: `PagesResource`, a twisted.web resource that routes to a party's handlers in a thread and
  renders their Jinja2 templates (autoescaping on), serves the static files, and answers every error
  with a page in the chosen language.
"""
