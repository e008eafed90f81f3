"""The fault catalogue: the single source of truth for every error the gateway returns.

The real gateway's codes are not public, so these are the project's own, stable once published.
`docs/faults.md` and `GET /api/faults` are generated from `CATALOGUE`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class FaultSpec:
    code: str
    name: str
    check: str  # the pipeline check(s) that emit it
    party: str  # "caller" (SOAP faultcode Client) or "gateway"/"provider" (faultcode Server)
    http_status: int
    ru: str
    kk: str
    en: str
    faultcode: str = ""  # SOAP 1.1 faultcode local name; derived from party when empty

    @property
    def soap_faultcode(self) -> str:
        if self.faultcode:
            return self.faultcode
        return "Client" if self.party == "caller" else "Server"

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "check": self.check,
            "party": self.party,
            "faultcode": self.soap_faultcode,
            "http_status": self.http_status,
            "message": {"ru": self.ru, "kk": self.kk, "en": self.en},
        }


_SPECS = [
    FaultSpec("SHEP-101", "BODY_TOO_LARGE", "limit_body_size", "caller", 413,
              "Размер сообщения превышает допустимый",
              "Хабарлама өлшемі рұқсат етілгеннен асады",
              "The message body exceeds the size limit"),
    # Also strict mode's answer to application/soap+xml, which the gateway otherwise tolerates.
    FaultSpec("SHEP-102", "UNSUPPORTED_CONTENT_TYPE", "require_content_type, enforce_strict_mode", "caller", 415,
              "Неподдерживаемый тип содержимого: ожидается text/xml (SOAP 1.1)",
              "Қолдау көрсетілмейтін мазмұн түрі: text/xml (SOAP 1.1) күтіледі",
              "Unsupported content type: text/xml (SOAP 1.1) is expected"),
    FaultSpec("SHEP-103", "METHOD_NOT_ALLOWED", "require_post", "caller", 405,
              "Метод HTTP не поддерживается: используйте POST, или GET с ?wsdl",
              "HTTP әдісіне қолдау көрсетілмейді: POST немесе ?wsdl бар GET пайдаланыңыз",
              "HTTP method not allowed: use POST, or GET with ?wsdl"),
    FaultSpec("SHEP-110", "XML_MALFORMED", "parse_xml", "caller", 500,
              "Сообщение не является корректным XML",
              "Хабарлама дұрыс XML емес",
              "The message is not well-formed XML"),
    FaultSpec("SHEP-111", "XML_DTD_FORBIDDEN", "parse_xml", "caller", 500,
              "DOCTYPE и сущности XML запрещены",
              "DOCTYPE және XML нысандарына тыйым салынған",
              "DOCTYPE declarations and XML entities are forbidden"),
    FaultSpec("SHEP-112", "XML_TOO_DEEP", "limit_xml_depth", "caller", 500,
              "Превышена допустимая глубина вложенности XML",
              "XML кірістіру тереңдігі шегінен асты",
              "The XML nesting depth exceeds the limit"),
    FaultSpec("SHEP-120", "SOAP_VERSION_MISMATCH", "check_envelope", "caller", 500,
              "Ожидается конверт SOAP 1.1 (http://schemas.xmlsoap.org/soap/envelope/)",
              "SOAP 1.1 конверті күтіледі (http://schemas.xmlsoap.org/soap/envelope/)",
              "A SOAP 1.1 envelope (http://schemas.xmlsoap.org/soap/envelope/) is expected",
              faultcode="VersionMismatch"),
    FaultSpec("SHEP-121", "SOAP_ENVELOPE_INVALID", "check_envelope", "caller", 500,
              "Нарушена структура конверта SOAP",
              "SOAP конвертінің құрылымы бұзылған",
              "The SOAP envelope structure is invalid"),
    FaultSpec("SHEP-122", "SOAP_MUST_UNDERSTAND", "check_envelope", "caller", 500,
              "Заголовок с mustUnderstand=\"1\" не поддерживается этим адресом",
              "mustUnderstand=\"1\" тақырыбына бұл мекенжайда қолдау көрсетілмейді",
              "A header marked mustUnderstand=\"1\" is not understood at this address",
              faultcode="MustUnderstand"),
    FaultSpec("SHEP-123", "UNKNOWN_OPERATION", "check_envelope", "caller", 500,
              "Неизвестная операция: ожидается SendMessage",
              "Белгісіз операция: SendMessage күтіледі",
              "Unknown operation: SendMessage is expected"),
    FaultSpec("SHEP-130", "SCHEMA_INVALID", "validate_request_schema", "caller", 500,
              "Сообщение не соответствует схеме ШЭП",
              "Хабарлама ЭҮШ сызбасына сәйкес келмейді",
              "The message does not conform to the ShEP schema"),
    FaultSpec("SHEP-131", "STRICT_DEVIATION", "enforce_strict_mode", "caller", 500,
              "Отклонение от контракта запрещено строгим режимом сервиса",
              "Сервистің қатаң режимі келісімшарттан ауытқуға тыйым салады",
              "A deviation from the contract is refused by the service's strict mode"),
    FaultSpec("SHEP-132", "STRICT_DATE_FORMAT", "enforce_strict_mode", "caller", 500,
              "Дата не в формате xs:dateTime (смещение без двоеточия или дата без времени) "
              "запрещена строгим режимом сервиса",
              "xs:dateTime пішімінде емес күн (қос нүктесіз ығысу немесе уақытсыз күн) "
              "сервистің қатаң режимінде қабылданбайды",
              "A date that is not an xs:dateTime (an offset without a colon, or a date without a time) "
              "is refused by the service's strict mode"),
    FaultSpec("SHEP-133", "STRICT_SESSION_ID", "enforce_strict_mode", "caller", 500,
              "sessionId устанавливает ШЭП: sessionId, заполненный отправителем, запрещён строгим режимом сервиса",
              "sessionId-ді ЭҮШ орнатады: жіберуші толтырған sessionId сервистің қатаң режимінде қабылданбайды",
              "sessionId is set by the gateway: a sessionId filled in by the sender is refused by the service's "
              "strict mode"),
    FaultSpec("SHEP-140", "SENDER_UNKNOWN", "identify_sender", "caller", 500,
              "Отправитель не зарегистрирован в ШЭП",
              "Жіберуші ЭҮШ-те тіркелмеген",
              "The sender is not registered with the gateway"),
    FaultSpec("SHEP-141", "SENDER_PASSWORD_INVALID", "authenticate_sender", "caller", 500,
              "Неверный пароль отправителя",
              "Жіберушінің құпиясөзі қате",
              "The sender's password is wrong or missing"),
    FaultSpec("SHEP-142", "SENDER_LOCKED_OUT", "identify_sender, authenticate_sender", "caller", 500,
              "Вход отправителя заблокирован после неудачных попыток: повторите позже",
              "Жіберушінің кіруі сәтсіз әрекеттерден кейін бұғатталды: кейінірек қайталаңыз",
              "The sender is locked out after failed password attempts: try again later"),
    FaultSpec("SHEP-143", "ADDRESS_LOCKED_OUT", "identify_sender, authenticate_sender", "caller", 500,
              "Слишком много неверных паролей с этого адреса: повторите позже",
              "Бұл мекенжайдан қате құпиясөздер тым көп: кейінірек қайталаңыз",
              "Too many wrong passwords from this client address: try again later"),
    FaultSpec("SHEP-150", "SERVICE_UNKNOWN", "lookup_service", "caller", 500,
              "Сервис не найден по ServiceId",
              "ServiceId бойынша сервис табылмады",
              "No service is registered under this serviceId"),
    FaultSpec("SHEP-151", "ROUTE_UNKNOWN", "lookup_service", "caller", 500,
              "Маршрут routeId не найден для сервиса",
              "Сервис үшін routeId бағыты табылмады",
              "The routeId is not a route of this service"),
    FaultSpec("SHEP-152", "CHANNEL_MISMATCH", "lookup_service", "caller", 500,
              "Сервис не доступен через синхронный канал",
              "Сервис синхронды арна арқылы қолжетімсіз",
              "The service is not offered on the synchronous channel"),
    FaultSpec("SHEP-153", "ACCESS_DENIED", "authorize_sender", "caller", 500,
              "Отправителю запрещён доступ к сервису",
              "Жіберушіге сервиске қол жеткізуге тыйым салынған",
              "The sender is not allowed to call this service"),
    FaultSpec("SHEP-160", "MESSAGE_REPLAYED", "reject_replay", "caller", 500,
              "Сообщение с таким messageId уже получено от этого отправителя",
              "Осы жіберушіден мұндай messageId бар хабарлама алынған",
              "A message with this messageId was already received from this sender"),
    FaultSpec("SHEP-161", "MESSAGE_DATE_SKEW", "check_message_date", "caller", 500,
              "Дата сообщения messageDate вне допустимого интервала",
              "messageDate хабарлама күні рұқсат етілген аралықтан тыс",
              "messageDate is too far in the past or in the future"),
    FaultSpec("SHEP-170", "PAYLOAD_MISSING", "validate_request_payload", "caller", 500,
              "Отсутствуют данные запроса (data)",
              "Сұрау деректері (data) жоқ",
              "The request carries no data, but the service requires it"),
    FaultSpec("SHEP-171", "PAYLOAD_INVALID", "validate_request_payload", "caller", 500,
              "Данные запроса не соответствуют схеме сервиса",
              "Сұрау деректері сервис сызбасына сәйкес келмейді",
              "The request data does not conform to the service's schema"),
    FaultSpec("SHEP-180", "SIGNATURE_MISSING", "require_transport_signature", "caller", 500,
              "Отсутствует подпись WS-Security, обязательная для сервиса",
              "Сервис үшін міндетті WS-Security қолтаңбасы жоқ",
              "The WS-Security signature the service requires is missing"),
    FaultSpec("SHEP-181", "SIGNATURE_MALFORMED", "verify_transport_signature", "caller", 500,
              "Подпись имеет неверную структуру или сертификат не найден",
              "Қолтаңба құрылымы қате немесе сертификат табылмады",
              "The signature is malformed or its certificate cannot be found"),
    FaultSpec("SHEP-182", "SIGNATURE_DUPLICATE_ID", "verify_transport_signature", "caller", 500,
              "Подписанный идентификатор встречается в сообщении несколько раз",
              "Қол қойылған идентификатор хабарламада бірнеше рет кездеседі",
              "A signed Id occurs more than once in the message"),
    FaultSpec("SHEP-183", "SIGNATURE_WRAPPING", "verify_transport_signature", "caller", 500,
              "Обнаружена подмена подписанного тела сообщения (signature wrapping)",
              "Хабарламаның қол қойылған денесін ауыстыру анықталды (signature wrapping)",
              "Signature wrapping: the signed Body is not the Body that would be processed"),
    FaultSpec("SHEP-184", "SIGNATURE_BODY_NOT_COVERED", "verify_transport_signature", "caller", 500,
              "Подпись не покрывает тело сообщения (soap:Body)",
              "Қолтаңба хабарлама денесін (soap:Body) қамтымайды",
              "The signature does not cover the soap:Body"),
    FaultSpec("SHEP-185", "SIGNATURE_DIGEST_INVALID", "verify_transport_signature", "caller", 500,
              "Хеш подписанных данных не совпадает: сообщение изменено после подписания",
              "Қол қойылған деректердің хэші сәйкес келмейді: хабарлама қол қойылғаннан кейін өзгертілген",
              "A digest does not match: the message was changed after signing"),
    FaultSpec("SHEP-186", "SIGNATURE_VALUE_INVALID", "verify_transport_signature", "caller", 500,
              "Значение подписи неверно",
              "Қолтаңба мәні қате",
              "The signature value does not verify"),
    FaultSpec("SHEP-187", "SIGNATURE_ALGORITHM_REFUSED", "verify_transport_signature", "caller", 500,
              "Алгоритм подписи запрещён политикой шлюза (SHA-1)",
              "Қолтаңба алгоритміне шлюз саясаты тыйым салады (SHA-1)",
              "The signature algorithm is refused by the gateway's policy (SHA-1)"),
    FaultSpec("SHEP-188", "SIGNATURE_ALGORITHM_UNSUPPORTED", "verify_transport_signature", "caller", 500,
              "Алгоритм подписи или хэширования не поддерживается",
              "Қолтаңба немесе хэштеу алгоритміне қолдау көрсетілмейді",
              "The signature or digest algorithm is not supported"),
    FaultSpec("SHEP-189", "TIMESTAMP_INVALID", "verify_transport_signature", "caller", 500,
              "Метка времени wsu:Timestamp не подписана или просрочена",
              "wsu:Timestamp уақыт белгісіне қол қойылмаған немесе мерзімі өткен",
              "The wsu:Timestamp is unsigned, expired or in the future"),
    FaultSpec("SHEP-190", "CERT_UNTRUSTED", "validate_certificate", "caller", 500,
              "Сертификат не выдан доверенным удостоверяющим центром",
              "Сертификатты сенімді куәландырушы орталық бермеген",
              "The certificate does not chain to a trusted certification authority"),
    FaultSpec("SHEP-191", "CERT_EXPIRED", "validate_certificate", "caller", 500,
              "Срок действия сертификата истёк",
              "Сертификаттың қолданылу мерзімі өтті",
              "The certificate has expired"),
    FaultSpec("SHEP-192", "CERT_NOT_YET_VALID", "validate_certificate", "caller", 500,
              "Срок действия сертификата ещё не наступил",
              "Сертификаттың қолданылу мерзімі әлі басталған жоқ",
              "The certificate is not valid yet"),
    FaultSpec("SHEP-193", "CERT_REVOKED", "validate_certificate", "caller", 500,
              "Сертификат отозван",
              "Сертификат кері қайтарылды",
              "The certificate has been revoked"),
    FaultSpec("SHEP-194", "CERT_REVOCATION_UNKNOWN", "validate_certificate", "gateway", 500,
              "Не удалось проверить статус отзыва сертификата (OCSP/CRL недоступны)",
              "Сертификаттың кері қайтарылу мәртебесін тексеру мүмкін болмады (OCSP/CRL қолжетімсіз)",
              "The certificate's revocation status could not be established (OCSP/CRL unavailable)"),
    FaultSpec("SHEP-195", "CERT_KEY_USAGE", "validate_certificate", "caller", 500,
              "Сертификат не предназначен для подписи (ключ аутентификации AUTH)",
              "Сертификат қол қоюға арналмаған (AUTH аутентификация кілті)",
              "The certificate is not meant for signing (an AUTH key)"),
    FaultSpec("SHEP-196", "CERT_NOT_SENDERS", "bind_certificate_to_sender", "caller", 500,
              "Сертификат не принадлежит отправителю (БИН не совпадает)",
              "Сертификат жіберушіге тиесілі емес (БСН сәйкес келмейді)",
              "The certificate does not belong to the sender (BIN mismatch)"),
    FaultSpec("SHEP-197", "PAYLOAD_SIGNATURE_MISSING", "verify_payload_signature", "caller", 500,
              "ЭЦП не найдена в данных запроса",
              "Сұрау деректерінде ЭЦҚ табылмады",
              "The payload carries no signature (EDS), but the service requires it"),
    FaultSpec("SHEP-198", "PAYLOAD_SIGNATURE_INVALID", "verify_payload_signature", "caller", 500,
              "ЭЦП данных запроса невалидна",
              "Сұрау деректерінің ЭЦҚ жарамсыз",
              "The payload signature (EDS) does not verify"),
    # Answered by the parties the gateway calls (push receivers, the ЖТ ММБ simulator), not by the gateway.
    FaultSpec("SHEP-199", "NOT_FROM_GATEWAY", "verify_gateway_origin", "caller", 500,
              "Не доказано, что сообщение отправлено шлюзом (подпись сертификатом шлюза или общий секрет)",
              "Хабарламаны шлюз жібергені дәлелденбеген (шлюз сертификатының қолтаңбасы немесе ортақ құпия)",
              "The message is not proven to come from the gateway (by its certificate's signature or the shared "
              "secret)"),
    FaultSpec("SHEP-201", "PROVIDER_TIMEOUT", "forward_to_provider", "provider", 500,
              "Поставщик не ответил за отведённое время",
              "Жеткізуші белгіленген уақытта жауап бермеді",
              "The provider did not answer in time"),
    FaultSpec("SHEP-202", "PROVIDER_UNREACHABLE", "forward_to_provider", "provider", 500,
              "Поставщик недоступен (соединение не установлено)",
              "Жеткізуші қолжетімсіз (байланыс орнатылмады)",
              "The provider could not be reached (connection failed)"),
    FaultSpec("SHEP-203", "PROVIDER_HTTP_ERROR", "forward_to_provider", "provider", 500,
              "Поставщик вернул ошибку HTTP",
              "Жеткізуші HTTP қатесін қайтарды",
              "The provider answered with an HTTP error"),
    FaultSpec("SHEP-204", "PROVIDER_NOT_SOAP", "check_provider_envelope", "provider", 500,
              "Ответ поставщика не является сообщением SOAP",
              "Жеткізушінің жауабы SOAP хабарламасы емес",
              "The provider's answer is not a SOAP message"),
    FaultSpec("SHEP-205", "PROVIDER_RESPONSE_INVALID", "validate_response_schema", "provider", 500,
              "Ответ поставщика не соответствует схеме ШЭП",
              "Жеткізушінің жауабы ЭҮШ сызбасына сәйкес келмейді",
              "The provider's answer does not conform to the ShEP schema"),
    FaultSpec("SHEP-206", "PROVIDER_PAYLOAD_INVALID", "validate_response_payload", "provider", 500,
              "Данные ответа поставщика не соответствуют схеме сервиса",
              "Жеткізуші жауабының деректері сервис сызбасына сәйкес келмейді",
              "The provider's response data does not conform to the service's schema"),
    FaultSpec("SHEP-207", "PROVIDER_RESPONSE_TOO_LARGE", "forward_to_provider", "provider", 500,
              "Ответ поставщика превышает допустимый размер",
              "Жеткізуші жауабы рұқсат етілген өлшемнен асады",
              "The provider's answer exceeds the size limit"),
    FaultSpec("SHEP-208", "PROVIDER_SIGNATURE_INVALID", "verify_provider_signature", "provider", 500,
              "Подпись ответа поставщика отсутствует или невалидна",
              "Жеткізуші жауабының қолтаңбасы жоқ немесе жарамсыз",
              "The provider's answer is unsigned or its signature is invalid (see subError)"),
    FaultSpec("SHEP-210", "ASYNC_CORRELATION_REQUIRED", "resolve_exchange", "caller", 500,
              "Для UPDATE, NOTIFICATION и RESPONSE обязателен correlationId существующего обмена",
              "UPDATE, NOTIFICATION және RESPONSE үшін бар алмасудың correlationId міндетті",
              "UPDATE, NOTIFICATION and RESPONSE must carry the correlationId of an existing exchange"),
    FaultSpec("SHEP-211", "ASYNC_CORRELATION_UNKNOWN", "resolve_exchange", "caller", 500,
              "Обмен с таким correlationId для этого сервиса не найден",
              "Бұл сервис үшін мұндай correlationId бар алмасу табылмады",
              "No exchange of this service has this correlationId"),
    FaultSpec("SHEP-212", "ASYNC_NOT_A_PARTY", "resolve_exchange", "caller", 500,
              "Отправитель не является участником этого обмена",
              "Жіберуші бұл алмасудың қатысушысы емес",
              "The sender is not a party to this exchange"),
    FaultSpec("SHEP-213", "ASYNC_MESSAGE_UNKNOWN", "find_message", "caller", 500,
              "Сообщение не найдено для этого участника",
              "Бұл қатысушы үшін хабарлама табылмады",
              "No such message for this participant"),
    FaultSpec("SHEP-214", "ASYNC_NOT_PENDING", "acknowledge_delivery", "caller", 500,
              "Сообщение уже не ожидает доставки",
              "Хабарлама енді жеткізуді күтпейді",
              "The message is no longer awaiting delivery"),
    FaultSpec("SHEP-215", "ASYNC_EXPIRY_INVALID", "read_expiry", "caller", 500,
              "Свойство expiresAt должно быть датой и временем в будущем",
              "expiresAt қасиеті болашақтағы күн мен уақыт болуы керек",
              "The expiresAt property must be a date and time in the future"),
    FaultSpec("SHEP-299", "INTERNAL_ERROR", "any", "gateway", 500,
              "Внутренняя ошибка шлюза",
              "Шлюздің ішкі қатесі",
              "Internal gateway error"),
]

CATALOGUE: dict[str, FaultSpec] = {spec.code: spec for spec in _SPECS}
_BY_NAME: dict[str, FaultSpec] = {spec.name: spec for spec in _SPECS}


class Fault(Exception):
    """A refusal from the catalogue, raised by a check and rendered as a SOAP fault."""

    def __init__(self, name: str, data: str | None = None, *, sub: "Fault | None" = None,
                 lang: str = "ru"):
        self.spec = _BY_NAME[name]
        self.data = data
        self.sub = sub
        self.lang = lang
        self.at = datetime.now(timezone.utc)
        super().__init__(f"{self.spec.code} {self.spec.name}: {data or self.spec.en}")

    @property
    def code(self) -> str:
        return self.spec.code

    @property
    def message(self) -> str:
        return getattr(self.spec, self.lang)


def catalogue_json() -> list[dict]:
    return [spec.as_dict() for spec in _SPECS]


def render_markdown() -> str:
    """The text of docs/faults.md; a test keeps the file equal to this."""
    lines = [
        "# Fault catalogue",
        "",
        "Generated from `gateway/faults.py` by `shep faults`; do not edit by hand.",
        "Also served as JSON at `GET /api/faults`.",
        "",
        "**Every `SHEP-*` code below is this emulator's own.** The real gateway's fault catalogue is not",
        "public, so the real ШЭП answers the same situations with codes and texts of its own: a client should",
        "not rely on these codes when it talks to the real gateway. Here they are stable: a published code",
        "keeps its meaning, and a new situation gets a new code.",
        "",
        "Every refusal is a SOAP 1.1 `soap:Fault` whose `detail` holds",
        "`SendMessageFault1_SendMessageFault` (`common:ErrorInfo`): `errorCode` is the code below,",
        "`errorMessage` the Russian text, `errorData` the specifics of this occurrence, `errorDate`,",
        "optionally `subError` (the nested cause) and `sessionId` (the gateway session, once assigned).",
        "`faultcode` is `Client` when the caller is at fault and `Server` when the gateway or the",
        "provider is; SOAP's own `VersionMismatch` and `MustUnderstand` are used where SOAP 1.1 asks for them.",
        "",
        "| code | name | check | at fault | faultcode | HTTP | message (en) | сообщение (ru) | хабарлама (kk) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in _SPECS:
        lines.append(f"| `{s.code}` | {s.name} | `{s.check}` | {s.party} | {s.soap_faultcode} | "
                     f"{s.http_status} | {s.en} | {s.ru} | {s.kk} |")
    lines += [
        "",
        "A service with `strict = true` refuses the client shapes the gateway otherwise tolerates and notes",
        "([architecture.md](architecture.md#tolerated-client-shapes)): `SHEP-102` for `application/soap+xml`,",
        "`SHEP-132` for dates, `SHEP-133` for a sender's `sessionId`, `SHEP-131` for the others. When a request",
        "has several, the first one found names the code and `errorData` lists them all.",
        "",
        "A fault answered by the provider itself (its own `SendMessageFault1_SendMessageFault`) is passed",
        "through to the caller unchanged except for `sessionId`, which the gateway sets.",
        "",
    ]
    return "\n".join(lines)
