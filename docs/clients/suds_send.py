"""suds (PyPI `suds`, the community fork) against both channels: SyncChannel SendMessage, AsyncChannel sendMessage
and getMessages, the demo echo document in `data` in the escaped style (its text).

    python suds_send.py http://127.0.0.1:8080

Prints the sync status, sessionId and echoed text, then the async messageId and what demo-clinic pulled.
"""
import sys
import uuid
from datetime import datetime, timezone

from suds.client import Client
from suds.plugin import MessagePlugin

ECHO = '<e:EchoRequest xmlns:e="urn:shep-emulator:demo:echo"><text>{}</text></e:EchoRequest>'


def document(text: str) -> str:
    """The business document as a string: suds escapes it into `data` (the contract's escaped style). A suds
    element given as `data` replaces `data` itself instead of going inside it (SHEP-130)."""
    return ECHO.format(text)


class UnqualifiedRequest(MessagePlugin):
    """The AsyncChannel's operation wrappers are anonymous types, their `request` child unqualified (in no
    namespace); suds writes the wrapper with a default namespace, `<sendMessage xmlns="…Types">`, which puts
    `request` in it too (SHEP-130). A prefix on the wrapper leaves `request` in none."""

    def marshalled(self, context):
        for operation in context.envelope.getChild("Body").children:
            operation.setPrefix("async", operation.namespace()[1])


base = sys.argv[1].rstrip("/")
now = datetime.now(timezone.utc)

sync = Client(f"{base}/bip-sync/?wsdl", timeout=15)
answer = sync.service.SendMessage({
    "requestInfo": {"messageId": str(uuid.uuid4()), "serviceId": "DEMO_Echo", "messageDate": now,
                    "sender": {"senderId": "demo-consumer", "password": "demo-consumer-pass"}},
    "requestData": {"data": document("сәлем from suds")},
})
print(answer.responseInfo.status.code, answer.responseInfo.sessionId, answer.responseData.data.EchoResponse.text)

channel = Client(f"{base}/bip-async/?wsdl", timeout=15, plugins=[UnqualifiedRequest()])
sent = channel.service.sendMessage({
    "messageInfo": {"serviceId": "DEMO_EchoAsync", "messageType": "REQUEST", "messageDate": now,
                    "sender": {"senderId": "demo-consumer", "password": "demo-consumer-pass"}},
    "messageData": {"data": document("кезек from suds")},
})
print("sent", sent.messageId, sent.correlationId)
pulled = channel.service.getMessages({"messageId": sent.messageId, "requestDate": now, "serviceId": "DEMO_EchoAsync",
                                      "sender": {"senderId": "demo-clinic", "password": "demo-clinic-pass"}})
for message in pulled.messages:
    info = message.messageInfo
    print("pulled", info.messageId, info.messageType, message.messageData.data)  # the document as sent, escaped
