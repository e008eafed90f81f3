"""The e-government portal (ЭҮП — «электрондық үкіметтің» веб-порталы / ПЭП, egov.kz stand-in): the
citizen's side of the PHC attachment e-service, diagram 1 of the regulation (docs/api.md).

`service.Portal` holds the use cases, `web.PortalResource` serves them as JSON under `/portal/api/`,
`pages.portal_pages` as HTML pages under `/portal/` (docs/web.md);
the portal reaches the clinic only through the gateway's AsyncChannel, as participant `portal`.
"""
from endpoints.portal.calendar import WorkingCalendar
from endpoints.portal.config import PortalSettings
from endpoints.portal.pages import portal_pages
from endpoints.portal.model import PortalError
from endpoints.portal.build import build_portal
from endpoints.portal.service import Portal
from endpoints.portal.signer import issuer_from_pki
from endpoints.portal.web import PortalResource

__all__ = ["Portal", "PortalError", "PortalResource", "PortalSettings", "WorkingCalendar", "build_portal",
           "issuer_from_pki", "portal_pages"]
