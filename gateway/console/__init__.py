"""The gateway console (`/console/`): the gateway's own pages for its operators and auditors, on the web
foundation `gateway.web.pages`, English only (docs/web.md, "The gateway console").

- `signin`: the sign-in with the operator API's `OperatorAuth`, and the console's session cookie;
- `pages`: the routes and handlers over the journal, the AsyncChannel queue, the fault catalogue, the
  PKI and the metrics;
- `xmlview`: a hop's bytes pretty-printed, what a signature covers marked;
- `figures`: the metric families and messages per second;
- `resend`: «resend this message».
"""
from gateway.console.pages import ConsoleParts, console_pages
from gateway.console.signin import ConsoleAuth

__all__ = ["ConsoleAuth", "ConsoleParts", "console_pages"]
