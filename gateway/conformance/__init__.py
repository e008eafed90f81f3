"""`shep conformance`: an integrator's system driven the way the gateway would drive it (or, a client, served as
the gateway would serve it), and scored.

- `cases`: the catalogue, one TOML file per case under `cases/<mode>/` (a new case is one file);
- `samples`: the request payload of each shipped service, with its placeholders;
- `bench`: an in-process gateway routing to the system under test, whose own answer checks score it;
- `probes`: what a case does (send through the gateway, or straight to the provider) and how it judges;
- `report`: the terminal progress and table, JUnit XML, a self-contained HTML page;
- `client_bench`, `client_probes`: the client mode, a gateway the integrator's client calls, scored from its
  journal.

docs/conformance.md lists the cases and how to run them.
"""
