"""`shep send`: one SendMessage to a running gateway, its answer printed; exit 1 on a fault."""
from __future__ import annotations

import sys
from pathlib import Path


def cmd_send(args) -> int:
    from lxml import etree

    from gateway import client, contract

    payload = None
    if args.data:
        try:
            payload = contract.PARSER.parse(Path(args.data).read_bytes()).getroot()
        except OSError as exc:
            print(f"shep send: cannot read {args.data}: {exc.strerror}", file=sys.stderr)
            return 2
        except (ValueError, etree.XMLSyntaxError) as exc:
            print(f"shep send: {args.data} is not an XML document: {exc}", file=sys.stderr)
            return 2
    properties = dict(p.split("=", 1) for p in args.property or [])
    credentials = None
    if args.cert or args.key or args.p12:
        try:
            credentials = client.load_credentials(cert=args.cert, key=args.key, p12=args.p12,
                                                  password=args.key_password)
        except (OSError, ValueError) as exc:
            print(f"shep send: cannot load the signing key: {exc}", file=sys.stderr)
            return 2
    if args.sign_payload:
        if credentials is None or payload is None:
            print("shep send: --sign-payload needs --data and a key (--cert/--key or --p12)", file=sys.stderr)
            return 2
        payload = client.sign_payload(payload, *credentials)
    body = client.build_send_message(
        service_id=args.service, sender_id=args.sender, password=args.password, payload=payload,
        style=args.style, xsi_type=args.xsi_type, message_id=args.message_id,
        correlation_id=args.correlation_id, route_id=args.route_id, properties=properties)
    if credentials is not None:
        body = client.sign_request(body, *credentials)
    base = args.url.rstrip("/")
    url = base + "/" if "/bip-sync" in base else base + "/bip-sync/"
    try:
        status, raw = client.post(url, body, timeout=args.timeout)
    except OSError as exc:
        print(f"shep send: cannot reach {url}: {exc}", file=sys.stderr)
        return 2
    try:
        reply = client.read_reply(status, raw)
    except ValueError as exc:
        print(f"shep send: {exc}", file=sys.stderr)
        sys.stderr.write(raw.decode("utf-8", "replace")[:2000] + "\n")
        return 2
    if args.raw:
        sys.stdout.write(raw.decode("utf-8") + "\n")
    if credentials is not None and reply.ok:
        try:
            signer = _verify_answer(args, url, raw)
        except Exception as exc:  # any failure to verify is reported, never a traceback
            print(f"shep send: the answer's signature does not verify: {exc}", file=sys.stderr)
            return 3
        if not args.raw:
            print(f"signed   {signer}")
    if reply.ok:
        if not args.raw:
            print(f"status   {reply.status_code} {reply.status_message}")
            print(f"session  {reply.session_id}")
            if reply.data is not None:
                print(etree.tostring(reply.data, pretty_print=True, encoding="unicode").rstrip())
        return 0 if reply.status_code == contract.SUCCESS_STATUS else 1
    if not args.raw:
        print(f"fault    {reply.fault.get('errorCode')} ({reply.fault.get('faultcode')}, HTTP {status})")
        print(f"message  {reply.fault.get('errorMessage')}")
        if reply.fault.get("errorData"):
            print(f"data     {reply.fault['errorData']}")
        if reply.fault.get("subError"):
            print(f"cause    {reply.fault['subError'].get('errorCode')}: {reply.fault['subError'].get('errorData')}")
        print(f"session  {reply.session_id}")
    return 1


def _verify_answer(args, url: str, raw: bytes) -> str:
    """A signed request gets a signed answer: check it with the gateway's certificate."""
    from gateway import client
    from gateway.security.certs import load_certificates

    if args.gateway_cert:
        data = Path(args.gateway_cert).read_bytes()
    else:
        data = client.fetch(url.split("/bip-sync", 1)[0] + "/api/certificate")
    return client.verify_reply_signature(raw, load_certificates(data)[0])


def register(sub) -> None:
    send = sub.add_parser("send", help="send one SendMessage and print the answer; exit 1 on a fault")
    send.add_argument("--url", default="http://127.0.0.1:8080", help="gateway base URL or its /bip-sync/ URL")
    send.add_argument("--service", required=True, help="serviceId")
    send.add_argument("--sender", required=True, help="senderId")
    send.add_argument("--password", help="sender password")
    send.add_argument("--data", help="file with the payload XML document")
    send.add_argument("--style", choices=["inline", "typed", "escaped"], default="inline",
                      help="how data carries the payload (contract §6)")
    send.add_argument("--xsi-type", help="{namespace}Type for --style typed (default: the root element's name)")
    send.add_argument("--message-id")
    send.add_argument("--correlation-id")
    send.add_argument("--route-id")
    send.add_argument("--property", action="append", metavar="KEY=VALUE")
    send.add_argument("--timeout", type=float, default=60)
    send.add_argument("--raw", action="store_true", help="print the answer's XML as received")
    send.add_argument("--cert", help="signing certificate (PEM); with --key, signs the request (WS-Security)")
    send.add_argument("--key", help="signing private key (PEM)")
    send.add_argument("--p12", help="PKCS#12 container with the key and certificate, instead of --cert/--key")
    send.add_argument("--key-password", help="password of the .p12 (or of an encrypted --key)")
    send.add_argument("--sign-payload", action="store_true",
                      help="also put an enveloped EDS on the --data document (contract §9)")
    send.add_argument("--gateway-cert", help="the gateway's certificate, to verify its signed answer "
                                             "(default: fetched from <url>/api/certificate)")
    send.set_defaults(func=cmd_send)
