"""The provider АЖО (автоматтандырылған жұмыс орны қызмет берушінің / АРМ услугодателя): the workstation
system of the PHC organisations of Mangystau region in the attachment e-service (regulation diagrams 1–2).

It is a gateway participant like any other and uses only the gateway's public pieces: the AsyncChannel
client and push receiver, the SyncChannel client for ЖТ ММБ, the contract and the signature modules.
Its grounds are in docs/attachment-rules.md.
"""
from endpoints.provider.config import DEFAULT_CONFIG, ConfigError, ProviderConfig, load
from endpoints.provider.registry import GatewayPersonRegistry, Person, PersonRegistry, RegistryError
from endpoints.provider.system import ProviderSystem

__all__ = ["DEFAULT_CONFIG", "ConfigError", "GatewayPersonRegistry", "Person", "PersonRegistry", "ProviderConfig",
           "ProviderSystem", "RegistryError", "load"]
