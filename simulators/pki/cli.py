"""`shep pki init | issue | revoke | list | trust`: the test national CA, and the CA certificates an integrator
trusts besides it, from the command line."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from gateway.cli.common import CommandError
from gateway.security.certfolders import Trusted, TrustFolder, fingerprint, read_certificates
from gateway.security.gost.keys import GostPrivateKey
from gateway.security.keyfiles import save_credentials, write_atomically
from simulators.pki import profile
from simulators.pki.ca import NotInitialised, TestPKI
from simulators.pki.hierarchy import ALGORITHMS, DEFAULT_BASE_URL, REVOCATION_REASONS

DEFAULT_P12_PASSWORD = "shep-test"


def _pki(args, *, must_exist: bool = True) -> TestPKI:
    """The test PKI of the state dir every `shep` command finds (gateway/statedir.py); only `init` makes one."""
    from gateway.cli.common import state

    return TestPKI(state(args, must_exist=must_exist).path)


def _fail(command: str, message: str) -> int:
    print(f"shep pki {command}: {message}", file=sys.stderr)
    return 2


def cmd_init(args) -> int:
    pki = _pki(args, must_exist=False)
    if pki.init(args.base_url):
        print(f"test PKI created in {pki.dir} (URLs in certificates: {pki.base_url}/pki/...)")
    else:
        print(f"test PKI already initialised in {pki.dir} (base URL {pki.base_url}); nothing changed")
    return 0


def cmd_issue(args) -> int:
    pki = _pki(args)
    if not pki.initialised():  # a new CA here would sign what no server trusts
        return _fail("issue", f"no test PKI in {pki.dir}: `shep serve` creates it at its first start, "
                              "`shep pki init` without a server")
    try:
        issued = pki.issue(args.kind, args.alg, args.usage, iin=args.iin, bin=args.bin, surname=args.surname,
                           name=args.name, patronymic=args.patronymic, org=args.org, birth_date=args.birth_date,
                           sex=args.sex, valid_days=args.valid_days, expired=args.expired,
                           not_yet_valid=args.not_yet_valid)
    except ValueError as exc:
        return _fail("issue", str(exc))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    password = args.p12_password if args.p12_password is not None else DEFAULT_P12_PASSWORD
    save_credentials(out / "key.pem", out / "cert.pem", issued.key, issued.cert)
    files = [out / "key.pem", out / "cert.pem"]
    # cryptography writes PKCS#12 for its own key types only: GOST keys come as PEM files.
    if not isinstance(issued.key, GostPrivateKey):
        p12 = pkcs12.serialize_key_and_certificates(
            str(issued.serial).encode(), issued.key, issued.cert, [pki.issuing_ca(args.alg), pki.root(args.alg)],
            serialization.BestAvailableEncryption(password.encode("utf-8")))
        write_atomically(out / "cert.p12", p12, 0o600)
        files.append(out / "cert.p12")
    record = next(r for r in pki.certificates() if r["serial"] == str(issued.serial))
    subject = record["subject"]
    print(f"serial   {issued.serial}")
    print(f"subject  {subject['cn']}  IIN {subject['iin']}" + (f"  BIN {subject['bin']}  {subject['org']}"
                                                                 if subject["bin"] else ""))
    print(f"valid    {record['not_before']} .. {record['not_after']}  ({args.kind}, {args.alg}, {args.usage})")
    print(f"files    {', '.join(map(str, files))}")
    if len(files) == 2:
        print("no cert.p12 for a GOST key (not written yet): use --key key.pem --cert cert.pem")
    elif args.p12_password is None:
        print(f"p12 password: {DEFAULT_P12_PASSWORD} (default)")
    return 0


def cmd_revoke(args) -> int:
    try:
        record = _pki(args).revoke(args.serial, args.reason)
    except KeyError as exc:
        return _fail("revoke", exc.args[0])
    except ValueError as exc:
        return _fail("revoke", str(exc))
    print(f"revoked  {record['serial']} ({record['subject']['cn']}) at {record['revoked_at']}, "
          f"reason {record['reason']}")
    return 0


def cmd_list(args) -> int:
    records = _pki(args).certificates()
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=1))
        return 0
    for r in records:
        subject = r["subject"]
        ids = " ".join(f"{k.upper()} {subject[k]}" for k in ("iin", "bin") if subject.get(k))
        revoked = f" ({r['reason']}, {r['revoked_at']})" if r["status"] == "revoked" else ""
        print(f"{r['serial']}  {r['kind']:<12} {r['alg']:<3} {r['usage'] or '-':<4} {r['status']}{revoked}  "
              f"until {r['not_after']}  {subject['cn']}  {ids}  issuer {r['issuer']}")
    print(f"{len(records)} certificate(s)")
    return 0


def _trust_folder(args, *, must_exist: bool = True) -> TrustFolder:
    return TrustFolder.of_pki(_pki(args, must_exist=must_exist).dir)


def _show(entry: Trusted) -> str:
    cert = entry.certificate
    return (f"{entry.fingerprint}  {entry.role:<12} until {cert.not_valid_after_utc:%Y-%m-%d}  "
            f"{cert.subject.rfc4514_string()}")


def cmd_trust_add(args) -> int:
    folder = _trust_folder(args, must_exist=False)  # trusted before the first start, too
    try:
        added = folder.add(Path(args.file).read_bytes())
    except ValueError as exc:
        return _fail("trust add", f"{args.file}: {exc}")
    for entry, new in added:
        print(("trusted  " if new else "already  ") + _show(entry))
    print(f"in {folder.dir}; restart `shep serve` to use it")
    return 0


def cmd_trust_list(args) -> int:
    try:
        entries = _trust_folder(args).entries()
    except ValueError as exc:  # a file put there by hand
        return _fail("trust list", str(exc))
    for entry in entries:
        print(_show(entry))
    print(f"{len(entries)} trusted certificate(s) besides the configured anchors")
    return 0


def cmd_trust_remove(args) -> int:
    folder = _trust_folder(args)
    path = Path(args.certificate)
    try:
        # A file names its certificates by their fingerprints; anything else is a fingerprint (prefix).
        which = [fingerprint(cert) for cert in read_certificates(path)] if path.is_file() else [args.certificate]
        removed = [folder.remove(prefix) for prefix in which]
    except (KeyError, ValueError) as exc:
        return _fail("trust remove", exc.args[0])
    for entry in removed:
        print(f"removed  {_show(entry)}")
    print("restart `shep serve` to stop trusting it")
    return 0


def _guarded(func: Callable, command: str) -> Callable:
    """One line on stderr and exit status 2 for the errors a user can cause, never a traceback."""

    def run(args) -> int:
        try:
            return func(args)
        except (NotInitialised, CommandError) as exc:
            return _fail(command, str(exc))
        except OSError as exc:  # an unwritable state or output directory
            return _fail(command, f"{exc.strerror}: {exc.filename}")
    return run


def register(subparsers, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `pki` and its sub-commands to the `shep` parser; `common` adds --config/--state-dir/--store-url."""
    pki = subparsers.add_parser("pki", help="the test national CA (НУЦ РК / ҰКО): certificates, CRL, OCSP")
    sub = pki.add_subparsers(dest="pki_command", required=True)

    init = sub.add_parser("init", help="create the root, issuing CAs, OCSP responders and gateway certificate once")
    common(init)
    init.add_argument("--base-url", default=DEFAULT_BASE_URL,
                      help=f"where the gateway serves /pki, written into CRL DP and AIA (default {DEFAULT_BASE_URL})")
    init.set_defaults(func=_guarded(cmd_init, "init"))

    issue = sub.add_parser("issue", help="issue a certificate from the state dir's test PKI (`shep pki init` or "
                                                "`shep serve` creates it)")
    common(issue)
    issue.add_argument("--kind", required=True, choices=list(profile.KINDS))
    issue.add_argument("--alg", required=True, choices=list(ALGORITHMS))
    issue.add_argument("--usage", required=True, choices=list(profile.USAGES))
    issue.add_argument("--iin", help="12 digits with a valid check digit (default: generated)")
    issue.add_argument("--bin", help="12 digits with a valid check digit (default: generated)")
    issue.add_argument("--surname")
    issue.add_argument("--name", help="given name")
    issue.add_argument("--patronymic")
    issue.add_argument("--org", help="organisation name (employee, organization, gateway)")
    issue.add_argument("--birth-date", type=date.fromisoformat, metavar="YYYY-MM-DD")
    issue.add_argument("--sex", choices=["M", "F"])
    validity = issue.add_mutually_exclusive_group()
    validity.add_argument("--valid-days", type=int, default=365)
    validity.add_argument("--expired", action="store_true", help="validity entirely in the past")
    validity.add_argument("--not-yet-valid", action="store_true", help="validity starting tomorrow")
    issue.add_argument("--out", required=True, help="directory for key.pem, cert.pem and (RSA, EC) cert.p12")
    issue.add_argument("--p12-password", help=f"password of cert.p12 (default {DEFAULT_P12_PASSWORD})")
    issue.set_defaults(func=_guarded(cmd_issue, "issue"))

    revoke = sub.add_parser("revoke", help="revoke a certificate by its serial number")
    common(revoke)
    revoke.add_argument("--serial", required=True, help="decimal serial number (see `shep pki list`)")
    revoke.add_argument("--reason", default="unspecified", choices=REVOCATION_REASONS)
    revoke.set_defaults(func=_guarded(cmd_revoke, "revoke"))

    listing = sub.add_parser("list", help="the issued certificates and their status")
    common(listing)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_guarded(cmd_list, "list"))

    trust = sub.add_parser("trust", help="CA certificates trusted besides the configured anchors (the national "
                                         "CA's test roots, say), read by `shep serve` when it starts")
    trust_sub = trust.add_subparsers(dest="trust_command", required=True)
    add = trust_sub.add_parser("add", help="trust the CA certificate(s) of a PEM or DER file")
    common(add)
    add.add_argument("file", metavar="FILE")
    add.set_defaults(func=_guarded(cmd_trust_add, "trust add"))
    trusted = trust_sub.add_parser("list", help="the trusted CA certificates, by SHA-256 fingerprint")
    common(trusted)
    trusted.set_defaults(func=_guarded(cmd_trust_list, "trust list"))
    remove = trust_sub.add_parser("remove", help="stop trusting a CA certificate")
    common(remove)
    remove.add_argument("certificate", metavar="FINGERPRINT|FILE",
                        help="its fingerprint as `trust list` shows it (8 hex digits or more), or its file")
    remove.set_defaults(func=_guarded(cmd_trust_remove, "trust remove"))
