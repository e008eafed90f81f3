"""Each check of the pipeline as a pure function: a MessageContext in, pass or a catalogue Fault out."""
from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from lxml import etree

from gateway import client
from gateway import contract as c
from gateway.asyncchannel import wire
from gateway.checks.envelope import (
    check_envelope, limit_xml_depth, parse_xml, tolerate_client_variations)
from gateway.checks.limits import limit_body_size, require_content_type, require_post
from gateway.checks.payload import PayloadSchemas, validate_request_payload
from gateway.checks.replay import check_message_date, parse_datetime, reject_replay
from gateway.checks.schema import read_request_info, validate_request_schema
from gateway.checks.sender import authenticate_sender, authorize_sender, enforce_strict_mode, identify_sender
from gateway.checks.service import lookup_service
from gateway.config import GatewaySettings
from gateway.shapes import ASYNC_SHAPES, SYNC_SEND
from gateway.context import Environment, FirstSeen, MessageClaim, MessageContext
from gateway.faults import Fault
from gateway.passwords import PasswordVerifier
from gateway.pipeline import HEAD, REQUEST_CHECKS, RESPONSE_CHECKS, run_checks
from gateway.registry import ServiceRegistry
from gateway.soap import fault_envelope
from tests.conftest import PASSWORD, ECHO_NS, default_settings, echo_request, echo_response, send_message

NOW = datetime(2026, 11, 25, 4, 0, 0, tzinfo=timezone.utc)
SCHEMAS = PayloadSchemas()  # shared: loading the payload schema once keeps the tests fast
ECHO_TYPE = f"{{{ECHO_NS}}}Echo"
GUID = "{f0774397-3d61-4a44-9d0b-1a2c3b4d5e6f}"


class FakeReplayGuard:
    """Messages accepted so far (`accept`, as the accepting transaction does), and the lookups made."""

    def __init__(self):
        self.calls = []
        self._seen: dict[tuple[str, str], FirstSeen] = {}

    def first_seen(self, sender_id, message_id, now, window):
        self.calls.append((sender_id, message_id, now, window))
        return self._seen.get((sender_id, message_id))

    def accept(self, claim: MessageClaim, answered=True, provider_answered=True):
        self._seen[claim.sender_id, claim.message_id] = FirstSeen(claim.session_id, claim.seen_at, answered,
                                                                   provider_answered)


class FakeLockouts:
    """No participant has failed before; the failures reported are kept."""

    def __init__(self):
        self.failed = []

    def login_state(self, sender_id):
        return None

    def login_failed(self, sender_id, now, attempts, minutes):
        self.failed.append(sender_id)
        return None

    def login_succeeded(self, sender_id, now):
        return None


def make_env(**gateway_overrides) -> Environment:
    base = default_settings("http://provider.invalid/")
    anyone = dataclasses.replace(base.registry.service("OPAQUE"), id="OPEN", allowed_senders=frozenset({"*"}))
    registry = ServiceRegistry(base.registry.participants.values(), [*base.registry.services.values(), anyone])
    return Environment(settings=dataclasses.replace(GatewaySettings(), **gateway_overrides), registry=registry,
                       passwords=PasswordVerifier(), replay_guard=FakeReplayGuard(), lockouts=FakeLockouts(),
                       payload_schemas=SCHEMAS,
                       clock=lambda: NOW, sleep=None)


def msg(**overrides) -> bytes:
    """send_message dated at the fixed clock."""
    return send_message(**{"message_date": NOW.isoformat(), **overrides})


def context(raw: bytes, content_type: str | None = "text/xml; charset=utf-8", env: Environment | None = None,
            **fields) -> MessageContext:
    return MessageContext(env=env or make_env(), raw=raw, content_type=content_type, **fields)


def before(check, raw: bytes, env: Environment | None = None) -> MessageContext:
    """A context after every request check preceding `check`."""
    ctx = context(raw, env=env)
    run_checks(REQUEST_CHECKS[:REQUEST_CHECKS.index(check)], ctx)
    return ctx


def fails(check, ctx: MessageContext) -> Fault:
    with pytest.raises(Fault) as exc:
        check(ctx)
    return exc.value


def edit(raw: bytes, old: str, new: str) -> bytes:
    text = raw.decode("utf-8")
    assert old in text, old
    return text.replace(old, new, 1).encode("utf-8")


def set_data_text(raw: bytes, text: str) -> bytes:
    root = etree.fromstring(raw)
    root.find(".//requestData/data").text = text
    return etree.tostring(root)


def envelope(body: str = '<sync:SendMessage xmlns:sync="http://bip.bee.kz/SyncChannel/v10/Types"/>',
             header: str = "", ns: str = c.SOAP_NS) -> bytes:
    return (f'<soap:Envelope xmlns:soap="{ns}">{header}<soap:Body>{body}</soap:Body></soap:Envelope>').encode()


# -- limits ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_methods_other_than_post_are_refused(method):
    fault = fails(require_post, context(msg(), method=method))
    assert fault.code == "SHEP-103" and method in fault.data


def test_post_passes():
    require_post(context(msg(), method="POST"))


def test_body_over_the_limit_is_refused():
    fault = fails(limit_body_size, context(b"x" * 101, env=make_env(max_body_bytes=100)))
    assert fault.code == "SHEP-101" and "100" in fault.data


def test_body_at_the_limit_passes():
    limit_body_size(context(b"x" * 100, env=make_env(max_body_bytes=100)))


def test_body_flagged_too_large_is_refused_whatever_its_length():
    fault = fails(limit_body_size, context(b"<x/>", body_too_large=True))
    assert fault.code == "SHEP-101" and "bytes" in fault.data


@pytest.mark.parametrize("content_type", ["text/xml", "text/xml; charset=utf-8", "TEXT/XML"])
def test_text_xml_content_types_pass(content_type):
    require_content_type(context(b"", content_type=content_type))


def test_soap12_media_type_is_a_deviation_refused_as_unsupported_in_strict_mode():
    ctx = context(b"", content_type="application/soap+xml; charset=utf-8")
    require_content_type(ctx)
    assert [d.fault for d in ctx.deviations] == ["UNSUPPORTED_CONTENT_TYPE"]
    assert "application/soap+xml" in ctx.deviations[0].what


@pytest.mark.parametrize("content_type", ["application/json", "application/xml", None])
def test_other_content_types_are_refused(content_type):
    fault = fails(require_content_type, context(b"", content_type=content_type))
    assert fault.code == "SHEP-102"
    assert (content_type or "none") in fault.data


# -- parse_xml and depth --------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"not xml at all", b""])
def test_not_xml_is_malformed(raw):
    fault = fails(parse_xml, context(raw))
    assert fault.code == "SHEP-110" and fault.data


LOL = b'<!ENTITY lol "lol">' + b"".join(
    b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
FORBIDDEN_DTDS = {
    "internal entity": b'<!DOCTYPE r [<!ENTITY x "boom">]><r>&x;</r>',
    "xxe": b'<!DOCTYPE soap:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + envelope("&x;"),
    "billion laughs": b"<!DOCTYPE r [" + LOL + b"]><r>&lol9;</r>",
    "external dtd": b'<!DOCTYPE r SYSTEM "http://example.invalid/r.dtd"><r/>',
}


@pytest.mark.parametrize("raw", FORBIDDEN_DTDS.values(), ids=FORBIDDEN_DTDS.keys())
def test_doctype_and_entities_are_forbidden(raw):
    ctx = context(raw)
    fault = fails(parse_xml, ctx)
    assert fault.code == "SHEP-111"
    assert "root:" not in f"{fault} {fault.data}"
    assert ctx.tree is None


def nested(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


def test_depth_over_the_configured_limit_is_refused():
    ctx = context(nested(20), env=make_env(max_depth=10))
    parse_xml(ctx)
    fault = fails(limit_xml_depth, ctx)
    assert fault.code == "SHEP-112" and "20" in fault.data and "10" in fault.data


def test_depth_within_the_limit_passes():
    ctx = context(nested(10), env=make_env(max_depth=10))
    parse_xml(ctx)
    limit_xml_depth(ctx)


def test_libxml2_own_nesting_limit_is_too_deep_too():
    fault = fails(parse_xml, context(nested(300)))
    assert fault.code == "SHEP-112" and "depth" in fault.data.lower()


# -- check_envelope -------------------------------------------------------------------------------

def envelope_fault(raw: bytes) -> Fault:
    ctx = context(raw)
    parse_xml(ctx)
    return fails(check_envelope, ctx)


def test_soap12_envelope_is_a_version_mismatch():
    fault = envelope_fault(envelope(ns=c.SOAP12_NS))
    assert fault.code == "SHEP-120"
    assert fault.spec.soap_faultcode == "VersionMismatch"
    assert c.SOAP12_NS in fault.data


SYNC_OP = '<sync:SendMessage xmlns:sync="http://bip.bee.kz/SyncChannel/v10/Types"/>'
BAD_STRUCTURES = {
    "root not Envelope": f"<soap:Body xmlns:soap=\"{c.SOAP_NS}\">{SYNC_OP}</soap:Body>".encode(),
    "no Body": f'<soap:Envelope xmlns:soap="{c.SOAP_NS}"><soap:Header/></soap:Envelope>'.encode(),
    "two Bodies": edit(envelope(), "</soap:Envelope>", f"<soap:Body>{SYNC_OP}</soap:Body></soap:Envelope>"),
    "Body in Header too": envelope(header=f"<soap:Header><soap:Body>{SYNC_OP}</soap:Body></soap:Header>"),
    "Body only in Header": envelope(header=f"<soap:Header><soap:Body>{SYNC_OP}</soap:Body></soap:Header>").replace(
        f"<soap:Body>{SYNC_OP}</soap:Body></soap:Envelope>".encode(), b"</soap:Envelope>"),
    "Header after Body": edit(envelope(), "</soap:Envelope>", "<soap:Header/></soap:Envelope>"),
    "empty Body": envelope(body=""),
    "two elements in Body": envelope(body=SYNC_OP * 2),
}


@pytest.mark.parametrize("raw", BAD_STRUCTURES.values(), ids=BAD_STRUCTURES.keys())
def test_broken_envelope_structure_is_refused(raw):
    fault = envelope_fault(raw)
    assert fault.code == "SHEP-121" and fault.data


def test_unknown_must_understand_header_is_refused():
    header = '<soap:Header><x:Trace xmlns:x="urn:x" soap:mustUnderstand="1"/></soap:Header>'
    fault = envelope_fault(envelope(header=header))
    assert fault.code == "SHEP-122" and "urn:x" in fault.data


@pytest.mark.parametrize("header", [
    f'<soap:Header><wsse:Security xmlns:wsse="{c.WSSE_NS}" soap:mustUnderstand="1"/></soap:Header>',
    '<soap:Header><x:Trace xmlns:x="urn:x" soap:mustUnderstand="0"/></soap:Header>',
])
def test_understood_or_optional_headers_pass(header):
    ctx = context(envelope(header=header))
    parse_xml(ctx)
    check_envelope(ctx)
    assert ctx.operation.tag == c.SEND_MESSAGE


def test_other_operation_is_unknown():
    fault = envelope_fault(envelope(body='<sync:SendMessageResponse xmlns:sync="http://bip.bee.kz/SyncChannel/v10/Types"/>'))
    assert fault.code == "SHEP-123" and "SendMessageResponse" in fault.data


@pytest.mark.parametrize("raw", [
    msg().replace(b"soap:", b"soapenv:").replace(b"xmlns:soap=", b"xmlns:soapenv="),
    msg().replace(b"soap:", b"S:").replace(b"xmlns:soap=", b"xmlns:S="),
    msg().replace(b"soap:", b"SOAP-ENV:").replace(b"xmlns:soap=", b"xmlns:SOAP-ENV="),
    edit(edit(msg(), "<soap:Header/>", f'<h:Header xmlns:h="{c.SOAP_NS}"/>'),
         "<soap:Body>", f'<b:Body xmlns:b="{c.SOAP_NS}">').replace(b"</soap:Body>", b"</b:Body>"),
], ids=["soapenv", "S", "SOAP-ENV", "mixed prefixes"])
def test_envelope_prefixes_do_not_matter(raw):
    ctx = before(validate_request_schema, raw)
    validate_request_schema(ctx)
    assert ctx.operation.tag == c.SEND_MESSAGE


# -- tolerate_client_variations -------------------------------------------------------------------

IFACE = "http://bip.bee.kz/SyncChannel/v10/Interfaces"
VARIATIONS = {
    "correlationId": ("<serviceId>", "<correlationId/><serviceId>", "correlationId"),
    "routeId": ("<sender>", "<routeId></routeId><sender>", "routeId"),
    "properties": ("</requestInfo>", "<properties/></requestInfo>", "properties"),
    "empty sessionId": ("</requestInfo>", "<sessionId/></requestInfo>", "sessionId"),
    "non-GUID sessionId": ("</requestInfo>", "<sessionId>abc-123</sessionId></requestInfo>", "abc-123"),
    "GUID sessionId": ("</requestInfo>", f"<sessionId>{GUID}</sessionId></requestInfo>", GUID),
    "qualified data": ("<data>", f'<i:data xmlns:i="{IFACE}">', IFACE),
    "plain Id on Body": ("<soap:Body>", '<soap:Body Id="body-1">', "Id"),
    "offset without a colon": ("+00:00</messageDate>", "+0000</messageDate>", "+0000"),
}
STRICT_FAULTS = {"GUID sessionId": "STRICT_SESSION_ID", "non-GUID sessionId": "STRICT_SESSION_ID",
                 "offset without a colon": "STRICT_DATE_FORMAT"}


@pytest.mark.parametrize("old,new,mention,fault",
                         [(*v, STRICT_FAULTS.get(k, "STRICT_DEVIATION")) for k, v in VARIATIONS.items()],
                         ids=VARIATIONS.keys())
def test_client_variation_is_recorded_and_normalised(old, new, mention, fault):
    raw = edit(msg(), old, new)
    if "i:data" in new:
        raw = edit(raw, "</data>", "</i:data>")
    ctx = before(tolerate_client_variations, raw)
    tolerate_client_variations(ctx)
    assert len(ctx.deviations) == 1 and mention in ctx.deviations[0].what
    assert ctx.deviations[0].fault == fault
    validate_request_schema(ctx)


def test_variations_left_alone_fail_the_schema():
    """The normalisation above is what makes those messages valid."""
    ctx = before(tolerate_client_variations, edit(msg(), "</requestInfo>", "<properties/></requestInfo>"))
    assert fails(validate_request_schema, ctx).code == "SHEP-130"


def test_client_session_is_removed_for_the_gateways():
    raw = edit(msg(), "</requestInfo>", f"<sessionId>{GUID}</sessionId></requestInfo>")
    ctx = before(tolerate_client_variations, raw)
    tolerate_client_variations(ctx)
    assert ctx.operation.find("request/requestInfo/sessionId") is None


def test_offset_without_a_colon_is_rewritten_and_the_instant_kept():
    ctx = before(tolerate_client_variations, msg(message_date="2026-11-25T09:00:00.000+0500"))
    tolerate_client_variations(ctx)
    assert ctx.operation.findtext("request/requestInfo/messageDate") == "2026-11-25T09:00:00.000+05:00"
    run_checks([validate_request_schema, read_request_info, check_message_date], ctx)


@pytest.mark.parametrize("value", ["2026-11-25", "2026-11-25+05:00", "2026-11-25T09:00+0500", "25.11.2026",
                                   "2026-02-30"])
def test_other_date_shapes_in_messagedate_are_left_to_the_schema(value):
    """A bare date is tolerated only in a request's own date (Shape.bare_date), never in messageDate."""
    ctx = before(tolerate_client_variations, msg(message_date=value))
    tolerate_client_variations(ctx)
    assert ctx.deviations == [] and ctx.message_day is None
    assert fails(validate_request_schema, ctx).code == "SHEP-130"


def test_bare_request_date_of_an_async_poll_is_checked_as_a_day():
    raw = wire.get_messages(service_id="ASYNC_PULL", sender_id="clinic", password=PASSWORD)
    raw = re.sub(rb"<requestDate>[^<]*</requestDate>", b"<requestDate>2026-11-25</requestDate>", raw)
    ctx = context(raw, shapes=ASYNC_SHAPES)
    run_checks(HEAD[:HEAD.index(tolerate_client_variations) + 1], ctx)
    assert ctx.message_day == date(2026, 11, 25)
    assert [d.fault for d in ctx.deviations] == ["STRICT_DATE_FORMAT"]
    run_checks([validate_request_schema, read_request_info, check_message_date], ctx)


def test_every_date_of_a_delivery_notification_is_read_with_a_colon():
    raw = wire.delivery_notification(message_id="m-1", service_id="ASYNC_PULL", sender_id="clinic",
                                     password=PASSWORD, accepted=False, error=("E-1", "busy"))
    raw = re.sub(rb"(Date>\d{4}-\d\d-\d\dT[\d:.]+)[+-]\d\d:?\d\d<", rb"\1+0500<", raw)
    ctx = context(raw, shapes=ASYNC_SHAPES)
    run_checks(HEAD[:HEAD.index(tolerate_client_variations) + 1], ctx)
    named = [d.what.split()[0] for d in ctx.deviations]
    assert named == ["requestDate", "notificationDate", "statusDate", "errorDate"]
    validate_request_schema(ctx)


@pytest.mark.parametrize("day, fresh", [
    (date(2026, 11, 25), True),
    (date(2026, 11, 24), True),   # NOW is 04:00 UTC: still the 24th west of UTC−4
    (date(2026, 11, 26), False),  # 18:00 at UTC+14: the 26th nowhere yet
    (date(2026, 11, 23), False),
])
def test_a_bare_date_is_fresh_when_it_is_today_in_some_time_zone(day, fresh):
    ctx = dated(NOW.isoformat())
    ctx.message_day = day
    if fresh:
        check_message_date(ctx)
    else:
        assert fails(check_message_date, ctx).code == "SHEP-161"


def test_clean_message_has_no_deviations():
    ctx = before(tolerate_client_variations, msg(properties={"k": "v"}, correlation_id="c-1"))
    tolerate_client_variations(ctx)
    assert ctx.deviations == []
    assert ctx.operation.findtext("request/requestInfo/correlationId") == "c-1"


# -- validate_request_schema ----------------------------------------------------------------------

def qualified_children(raw: bytes) -> bytes:
    raw = edit(raw, f'<sync:SendMessage xmlns:sync="{c.SYNC_NS}">', f'<SendMessage xmlns="{c.SYNC_NS}">')
    return edit(raw, "</sync:SendMessage>", "</SendMessage>")


def swap_ids(raw: bytes) -> bytes:
    text = raw.decode()
    mid = re.search(r"<messageId>.*?</messageId>", text).group(0)
    sid = re.search(r"<serviceId>.*?</serviceId>", text).group(0)
    return text.replace(mid, "\0").replace(sid, mid).replace("\0", sid).encode()


INVALID = {
    "missing messageId": re.sub(rb"<messageId>.*?</messageId>", b"", msg()),
    "qualified children": qualified_children(msg()),
    "long property key": msg(properties={"K" * 31: "v"}),
    "out of order": swap_ids(msg()),
}


@pytest.mark.parametrize("raw", INVALID.values(), ids=INVALID.keys())
def test_schema_invalid_requests(raw):
    fault = fails(validate_request_schema, before(validate_request_schema, raw))
    assert fault.code == "SHEP-130"
    assert re.match(r"line \d+: ", fault.data)


def test_nil_request_is_refused_with_a_caller_fault_not_a_crash():
    """`request` is nillable in the contract, so `<request xsi:nil="true"/>` is schema-valid;
    it carries no requestInfo and must still end in a catalogue fault."""
    raw = envelope(body=f'<sync:SendMessage xmlns:sync="{c.SYNC_NS}" xmlns:xsi="{c.XSI_NS}">'
                        '<request xsi:nil="true"/></sync:SendMessage>')
    with pytest.raises(Fault) as exc:
        run_checks(REQUEST_CHECKS, context(raw))
    assert exc.value.spec.party == "caller"


# -- sender ---------------------------------------------------------------------------------------

def test_unknown_sender_is_refused_without_hashing():
    ctx = before(identify_sender, msg(sender_id="nobody"))
    fault = fails(identify_sender, ctx)
    assert fault.code == "SHEP-140" and "nobody" in fault.data
    assert (ctx.sender, ctx.password_to_verify) == (None, None)


@pytest.mark.parametrize("overrides", [dict(password="wrong"), dict(password=None), dict(sender_id="provider")],
                         ids=["wrong password", "no password", "receive-only"])
def test_authentication_failures(overrides):
    ctx = before(authenticate_sender, msg(**overrides))
    fault = fails(authenticate_sender, ctx)
    assert fault.code == "SHEP-141" and ctx.info.sender_id in fault.data
    assert ctx.sender is None
    # Only a wrong or missing password counts towards the lockout.
    assert ctx.env.lockouts.failed == ([] if "sender_id" in overrides else [ctx.info.sender_id])


def test_right_password_authenticates():
    ctx = before(authenticate_sender, msg())
    authenticate_sender(ctx)
    assert ctx.sender.id == "consumer"


def test_a_pair_verified_before_is_not_hashed_again(monkeypatch):
    env = make_env()
    first = before(authenticate_sender, msg(), env=env)
    assert first.password_to_verify == (PASSWORD, first.env.registry.participant("consumer").password_hash)
    authenticate_sender(first)
    monkeypatch.setattr("gateway.passwords.verify_password", lambda *args: pytest.fail("hashed again"))
    again = before(authenticate_sender, msg(), env=env)
    assert again.sender.id == "consumer" and again.password_to_verify is None


# -- lookup_service -------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides,code", [
    (dict(service_id="NOPE"), "SHEP-150"),
    (dict(service_id="ECHO_ROUTED", route_id="route-b"), "SHEP-151"),
    (dict(service_id="ECHO", route_id="route-a"), "SHEP-151"),
    (dict(service_id="ASYNC_ONLY", payload=None), "SHEP-152"),
], ids=["unknown", "unknown route", "route on a routeless service", "async"])
def test_service_lookup_failures(overrides, code):
    ctx = before(lookup_service, msg(**overrides))
    fault = fails(lookup_service, ctx)
    assert fault.code == code and overrides["service_id"] in fault.data
    assert ctx.service is None


@pytest.mark.parametrize("overrides", [dict(service_id="ECHO_ROUTED", route_id="route-a"), dict(service_id="ECHO")])
def test_service_lookup_passes(overrides):
    ctx = before(lookup_service, msg(**overrides))
    lookup_service(ctx)
    assert ctx.service.id == overrides["service_id"]


# -- authorize_sender and strict mode -------------------------------------------------------------

def test_sender_not_allowed_is_denied():
    fault = fails(authorize_sender, before(authorize_sender, msg(sender_id="outsider")))
    assert fault.code == "SHEP-153" and "outsider" in fault.data and "ECHO" in fault.data


@pytest.mark.parametrize("overrides", [dict(), dict(sender_id="outsider", service_id="OPEN", payload=None)],
                         ids=["allowed", "wildcard"])
def test_allowed_sender_passes(overrides):
    ctx = before(authorize_sender, msg(**overrides))
    authorize_sender(ctx)


def test_wildcard_still_requires_authentication():
    ctx = before(authenticate_sender, msg(sender_id="outsider", service_id="OPEN", payload=None, password="x"))
    assert fails(authenticate_sender, ctx).code == "SHEP-141"


def with_empty_correlation(**overrides) -> bytes:
    return edit(msg(**overrides), "<serviceId>", "<correlationId/><serviceId>")


def test_strict_service_refuses_a_deviation():
    fault = fails(enforce_strict_mode, before(enforce_strict_mode, with_empty_correlation(service_id="ECHO_STRICT")))
    assert fault.code == "SHEP-131" and "correlationId" in fault.data


def test_strict_mode_refuses_with_the_first_deviations_fault_and_lists_them_all():
    raw = edit(with_empty_correlation(service_id="ECHO_STRICT", message_date="2026-11-25T09:00:00+0500"),
               "</requestInfo>", f"<sessionId>{GUID}</sessionId></requestInfo>")
    fault = fails(enforce_strict_mode, before(enforce_strict_mode, raw))
    assert fault.code == "SHEP-131"
    assert all(word in fault.data for word in ("correlationId", GUID, "+0500"))
    fault = fails(enforce_strict_mode, before(enforce_strict_mode, edit(
        msg(service_id="ECHO_STRICT"), "</requestInfo>", f"<sessionId>{GUID}</sessionId></requestInfo>")))
    assert fault.code == "SHEP-133"


def test_strict_service_passes_a_clean_message():
    enforce_strict_mode(before(enforce_strict_mode, msg(service_id="ECHO_STRICT")))


def test_lenient_service_passes_a_deviation():
    ctx = before(enforce_strict_mode, with_empty_correlation())
    enforce_strict_mode(ctx)
    assert ctx.deviations


# -- check_message_date and reject_replay ---------------------------------------------------------

def dated(message_date: str, **env) -> MessageContext:
    return before(check_message_date, msg(message_date=message_date), make_env(**env))


@pytest.mark.parametrize("offset", [-300, 300])
def test_date_exactly_at_the_skew_boundary_passes(offset):
    check_message_date(dated((NOW + timedelta(seconds=offset)).isoformat(), clock_skew_seconds=300))


@pytest.mark.parametrize("offset,word", [(-301, "past"), (301, "future")])
def test_date_beyond_the_skew_is_refused(offset, word):
    fault = fails(check_message_date, dated((NOW + timedelta(seconds=offset)).isoformat(), clock_skew_seconds=300))
    assert fault.code == "SHEP-161" and word in fault.data


def test_date_without_offset_is_utc():
    assert parse_datetime("2026-11-25T04:00:00") == NOW
    check_message_date(dated("2026-11-25T04:04:59", clock_skew_seconds=300))
    assert fails(check_message_date, dated("2026-11-25T04:05:01", clock_skew_seconds=300)).code == "SHEP-161"


def test_date_with_offset_is_compared_as_an_instant():
    check_message_date(dated("2026-11-25T10:00:00+06:00"))
    assert fails(check_message_date, dated("2026-11-25T04:00:00+06:00")).code == "SHEP-161"


def test_garbage_date_is_refused():
    ctx = dated(NOW.isoformat())
    ctx.info.message_date = "yesterday"
    fault = fails(check_message_date, ctx)
    assert fault.code == "SHEP-161" and "yesterday" in fault.data


def test_midnight_written_as_24_00_is_a_valid_date():
    """xs:dateTime (XSD 1.0 §3.2.7) allows 24:00:00 for the end of a day; it is the next midnight."""
    ctx = dated("2026-11-25T00:00:00Z", clock_skew_seconds=5 * 3600)
    ctx.info.message_date = "2026-11-24T24:00:00Z"
    check_message_date(ctx)


def test_replay_is_refused_and_the_guard_sees_clock_and_window():
    env = make_env(replay_window_seconds=600)
    raw = msg(message_id="m-1")
    first = before(reject_replay, raw, env)
    reject_replay(first)
    assert first.replay_claim == MessageClaim("consumer", "m-1", first.session_id, NOW, NOW - timedelta(seconds=600))
    env.replay_guard.accept(first.replay_claim)
    fault = fails(reject_replay, before(reject_replay, raw, env))
    assert fault.code == "SHEP-160" and "m-1" in fault.data and "consumer" in fault.data
    assert first.session_id in fault.data
    assert env.replay_guard.calls == [("consumer", "m-1", NOW, timedelta(seconds=600))] * 2


def test_same_message_id_from_another_sender_is_not_a_replay():
    env = make_env()
    first = before(reject_replay, msg(message_id="m-1"), env)
    reject_replay(first)
    env.replay_guard.accept(first.replay_claim)
    other = before(reject_replay, msg(message_id="m-1", sender_id="outsider", service_id="OPEN"), env)
    reject_replay(other)
    assert other.replay_claim.sender_id == "outsider"


def test_resend_after_an_internal_error_with_a_recorded_answer_is_the_original_outcome():
    env = make_env()
    first = before(reject_replay, msg(message_id="m-1"), env)
    reject_replay(first)
    env.replay_guard.accept(first.replay_claim, answered=False, provider_answered=True)
    resend = before(reject_replay, msg(message_id="m-1"), env)
    reject_replay(resend)
    assert resend.resend_of.session_id == first.session_id
    assert (resend.replay_claim.session_id, resend.replay_claim.replaces) == (resend.session_id, first.session_id)
    assert first.session_id in resend._detail


def test_resend_after_an_internal_error_without_the_answer_is_refused_with_what_to_do():
    env = make_env()
    first = before(reject_replay, msg(message_id="m-1"), env)
    reject_replay(first)
    env.replay_guard.accept(first.replay_claim, answered=False, provider_answered=False)
    fault = fails(reject_replay, before(reject_replay, msg(message_id="m-1"), env))
    assert fault.code == "SHEP-160" and "ask the provider" in fault.data and "new messageId" in fault.data


# -- validate_request_payload ---------------------------------------------------------------------

STYLES = {"inline": {}, "escaped": {"style": "escaped"}, "typed": {"style": "typed", "xsi_type": ECHO_TYPE}}


def payload_ctx(raw: bytes) -> MessageContext:
    return before(validate_request_payload, raw)


def with_wrong_child() -> etree._Element:
    payload = echo_request()
    etree.SubElement(payload, "wrong")
    return payload


@pytest.mark.parametrize("style", STYLES.values(), ids=STYLES.keys())
def test_valid_payload_passes(style):
    validate_request_payload(payload_ctx(msg(**style)))


@pytest.mark.parametrize("style", STYLES.values(), ids=STYLES.keys())
@pytest.mark.parametrize("payload", [with_wrong_child, lambda: echo_request("x" * 1001)], ids=["wrong", "long"])
def test_invalid_payload_is_refused(style, payload):
    fault = fails(validate_request_payload, payload_ctx(msg(payload=payload(), **style)))
    assert fault.code == "SHEP-171"
    assert ("wrong" in fault.data) if payload is with_wrong_child else ("1000" in fault.data)


@pytest.mark.parametrize("text,mention", [
    ("this is <not xml", "not an XML document"),
    (f'<!DOCTYPE e [<!ENTITY x "y">]><echo:EchoRequest xmlns:echo="{ECHO_NS}"><text>&x;</text></echo:EchoRequest>',
     "DOCTYPE"),
], ids=["not xml", "doctype"])
def test_escaped_payload_that_is_not_a_safe_document_is_refused(text, mention):
    fault = fails(validate_request_payload, payload_ctx(set_data_text(msg(style="escaped"), text)))
    assert fault.code == "SHEP-171" and mention in fault.data


def test_typed_payload_with_unknown_type_is_refused():
    fault = fails(validate_request_payload, payload_ctx(msg(style="typed", xsi_type=f"{{{ECHO_NS}}}Nope")))
    assert fault.code == "SHEP-171" and "Nope" in fault.data


def test_missing_data_is_refused_when_the_service_has_a_schema():
    fault = fails(validate_request_payload, payload_ctx(msg(payload=None)))
    assert fault.code == "SHEP-170" and "ECHO" in fault.data


def test_service_without_payload_schema_passes_without_data():
    ctx = payload_ctx(msg(service_id="OPAQUE", payload=None))
    validate_request_payload(ctx)
    assert ctx.service.payload_schema is None


# -- response checks ------------------------------------------------------------------------------

def answer_ctx(status: int, raw: bytes) -> MessageContext:
    env = make_env()
    return MessageContext(env=env, raw=raw, http_status=status, service=env.registry.service("ECHO"), shape=SYNC_SEND)


def response(**overrides) -> bytes:
    return client.build_send_message_response(**{"message_id": "p-1", "payload": echo_response(), **overrides})


def answer_fails(status: int, raw: bytes) -> Fault:
    with pytest.raises(Fault) as exc:
        run_checks(RESPONSE_CHECKS, answer_ctx(status, raw))
    return exc.value


def test_valid_response_passes():
    ctx = answer_ctx(200, response())
    run_checks(RESPONSE_CHECKS, ctx)
    assert not ctx.is_fault and ctx.operation.tag == c.SEND_MESSAGE_RESPONSE


def test_provider_fault_with_500_passes_as_a_fault():
    ctx = answer_ctx(500, fault_envelope(Fault("SERVICE_UNKNOWN", "x"), None))
    run_checks(RESPONSE_CHECKS, ctx)
    assert ctx.is_fault


def test_http_error_status_is_refused():
    fault = answer_fails(503, response())
    assert fault.code == "SHEP-203" and "503" in fault.data


def test_500_without_soap_is_an_http_error_with_the_cause():
    fault = answer_fails(500, b"Internal Server Error")
    assert fault.code == "SHEP-203" and fault.sub is not None and fault.sub.code == "SHEP-110"


def test_500_with_a_response_instead_of_a_fault_is_an_http_error():
    assert answer_fails(500, response()).code == "SHEP-203"


@pytest.mark.parametrize("raw,sub", [
    (b"hello", "SHEP-110"),
    (FORBIDDEN_DTDS["internal entity"], "SHEP-111"),
], ids=["text", "doctype"])
def test_non_xml_answer_is_not_soap(raw, sub):
    fault = answer_fails(200, raw)
    assert fault.code == "SHEP-204" and fault.sub.code == sub


def test_wrong_operation_in_answer_is_not_soap():
    fault = answer_fails(200, msg())
    assert fault.code == "SHEP-204" and "SendMessage" in fault.data


def test_response_without_status_is_invalid():
    raw = re.sub(rb"<status>.*?</status>", b"", response())
    fault = answer_fails(200, raw)
    assert fault.code == "SHEP-205" and "line" in fault.data


def test_nil_response_is_refused_as_a_provider_fault():
    """`response` is nillable, so a nil response is schema-valid; without responseInfo the gateway cannot
    set its sessionId (soap.stamp_answer), so the answer hop must refuse it rather than pass it."""
    raw = envelope(body=f'<sync:SendMessageResponse xmlns:sync="{c.SYNC_NS}" xmlns:xsi="{c.XSI_NS}">'
                        '<response xsi:nil="true"/></sync:SendMessageResponse>')
    assert answer_fails(200, raw).spec.party == "provider"


def test_invalid_response_payload_is_refused():
    fault = answer_fails(200, response(payload=echo_response("x" * 1001)))
    assert fault.code == "SHEP-206" and "1000" in fault.data


# -- run_checks -----------------------------------------------------------------------------------

def test_run_checks_records_a_verdict_per_check():
    ctx = context(with_empty_correlation())
    run_checks(REQUEST_CHECKS, ctx)
    verdicts = {v.check: v.verdict for v in ctx.verdicts}
    assert list(verdicts) == [check.__name__ for check in REQUEST_CHECKS]
    assert verdicts.pop("tolerate_client_variations") == "note"
    assert set(verdicts.values()) == {"pass"}


def test_run_checks_stops_at_the_first_failure():
    observed = []
    ctx = context(msg(sender_id="nobody"))
    with pytest.raises(Fault):
        run_checks(REQUEST_CHECKS, ctx, lambda name, seconds: observed.append(name))
    names = [check.__name__ for check in REQUEST_CHECKS]
    assert [v.check for v in ctx.verdicts] == names[:names.index("identify_sender") + 1] == observed
    assert ctx.verdicts[-1].verdict == "fail" and "nobody" in ctx.verdicts[-1].detail
    assert {v.verdict for v in ctx.verdicts[:-1]} == {"pass"}
