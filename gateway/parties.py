"""The configuration tables of the e-service's parties served by `shep serve` ([portal], [clinic], [gbdfl]):
read and checked here, so that `shep config check` finds what would stop the start."""
from __future__ import annotations

from gateway.config import ConfigError, Settings, endpoint_error


def portal_settings(settings: Settings):
    from endpoints.portal import PortalSettings

    try:
        return PortalSettings.from_mapping(settings.endpoints["portal"], base_dir=settings.source.parent)
    except ValueError as error:
        raise endpoint_error(settings, error) from None


def portal_registry(portal, *, sign, verify):
    """The ЖТ ММБ as the portal asks it before opening an account: `GBDFL_UniversalServiceSync` through the
    gateway's SyncChannel as participant `portal` (its password and transport signature), the same client the
    АЖО uses, its failures turned into the portal's own RegistryUnavailable."""
    from endpoints.portal.people import RegistryUnavailable
    from endpoints.provider.registry import GatewayPersonRegistry, RegistryError

    client = GatewayPersonRegistry(portal.gateway_url, portal.participant_id, portal.password,
                                   service_id=portal.registry_service, sender_code="EGOV", verify=verify, sign=sign,
                                   timeout=portal.gateway_timeout_seconds)

    class PortalRegistry:
        def find(self, iin: str):
            try:
                return client.find(iin)
            except RegistryError as error:
                raise RegistryUnavailable(str(error)) from None

    return PortalRegistry()


def clinic_config(settings: Settings):
    from endpoints.provider import load as load_clinics
    from endpoints.provider.config import ConfigError as ClinicConfigError

    table = settings.endpoints["clinic"]
    unknown = set(table) - {"clinics_file"}
    if unknown:
        raise endpoint_error(settings, ValueError(f"clinic.{sorted(unknown)[0]}: unknown key; expected clinics_file"))
    try:
        return (load_clinics(settings.source.parent / table["clinics_file"]) if "clinics_file" in table
                else load_clinics())
    except ClinicConfigError as error:
        raise endpoint_error(settings, ValueError(f"clinic.clinics_file: {error}")) from None


def population_options(settings: Settings) -> dict:
    """The ЖТ ММБ's people: `[gbdfl]` seed, size, people_files (docs/gbdfl.md) and transport_signature."""
    table = dict(settings.endpoints.get("gbdfl", {}))
    files = [settings.source.parent / name for name in table.pop("people_files", [])]
    signs = table.pop("transport_signature", False)
    if not isinstance(signs, bool):
        raise endpoint_error(settings, ValueError("gbdfl.transport_signature: must be true or false"))
    unknown = set(table) - {"seed", "size"}
    if unknown:
        raise endpoint_error(settings, ValueError(f"gbdfl.{sorted(unknown)[0]}: unknown key; "
                                                  "expected seed, size, people_files, transport_signature"))
    for key in ("seed", "size"):
        if key in table and (isinstance(table[key], bool) or not isinstance(table[key], int) or table[key] < 0):
            raise endpoint_error(settings, ValueError(f"gbdfl.{key}: must be a non-negative integer"))
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise endpoint_error(settings, ValueError(f"gbdfl.people_files: not found: {', '.join(missing)}"))
    return {**table, "files": files, "transport_signature": signs}


def problems(settings: Settings) -> list[ConfigError]:
    """What each configured party's table would stop the start with."""
    found = []
    for name, read in (("portal", portal_settings), ("clinic", clinic_config), ("gbdfl", population_options)):
        if name in settings.endpoints or name == "gbdfl":
            try:
                read(settings)
            except ConfigError as error:
                found.append(error)
    return found
