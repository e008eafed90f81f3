"""`shep conformance`: an integrator's system driven the way the gateway would drive it, and scored.

- `cases`: the catalogue, one TOML file per case under `cases/<mode>/` (a new case is one file);
- `samples`: the request payload of each shipped service, with its placeholders;
- `bench`: an in-process gateway routing to the system under test, whose own answer checks score it;
- `probes`: what a case does (send through the gateway, or straight to the provider) and how it judges;
- `report`: the terminal progress and table, JUnit XML, a self-contained HTML page.

docs/conformance.md lists the cases and how to run them.
"""
