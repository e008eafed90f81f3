"""A test national certification authority (НУЦ РК / ҰКО): certificates, CRLs and OCSP for the emulator."""
