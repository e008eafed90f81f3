"""The state person registry (ГБД ФЛ — ЖТ МДБ / ЖТ ММБ) answering by IIN: a sync provider behind the gateway.

`population` makes or loads the people, `wire` reads the Request and writes the Response (contract §10),
`provider` is the twisted.web resource the gateway forwards `GBDFL_UniversalServiceSync` to.
See docs/gbdfl.md.
"""
from simulators.gbdfl.population import Person, Population, Query, build_population, generate, load_people
from simulators.gbdfl.provider import GbdflProvider
from simulators.gbdfl.wire import SCHEMA_PATH, SERVICE_ID

__all__ = ["GbdflProvider", "Person", "Population", "Query", "SCHEMA_PATH", "SERVICE_ID", "build_population",
           "generate", "load_people"]
