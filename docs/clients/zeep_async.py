"""AsyncChannel with zeep: demo-consumer sends a REQUEST to DEMO_EchoAsync, demo-clinic pulls it and acknowledges.

    python zeep_async.py http://127.0.0.1:8080

Prints the messageId the gateway assigned, then what the clinic pulled (type, sender, text).
"""
import sys
from datetime import datetime, timezone

import zeep
from lxml import etree

from zeep_send import NoAnyTypeAttribute, inline  # `data` as on the SyncChannel

base = sys.argv[1].rstrip("/")
client = zeep.Client(f"{base}/bip-async/?wsdl", plugins=[NoAnyTypeAttribute()],
                     transport=zeep.Transport(timeout=15, operation_timeout=15),
                     settings=zeep.Settings(forbid_dtd=True))
now = datetime.now(timezone.utc)
document = etree.fromstring(
    '<e:EchoRequest xmlns:e="urn:shep-emulator:demo:echo"><text>кезек from zeep</text></e:EchoRequest>')

sent = client.service.sendMessage(request={
    "messageInfo": {  # no messageId, no correlationId: the gateway assigns both to a REQUEST
        "serviceId": "DEMO_EchoAsync", "messageType": "REQUEST", "messageDate": now,
        "sender": {"senderId": "demo-consumer", "password": "demo-consumer-pass"},
    },
    "messageData": {"data": inline(document)},
})
print("sent", sent.messageId, sent.correlationId, flush=True)

clinic = {"senderId": "demo-clinic", "password": "demo-clinic-pass"}
pulled = client.service.getMessages(request={
    "messageId": sent.messageId, "requestDate": now, "serviceId": "DEMO_EchoAsync", "sender": clinic})
for message in pulled.messages:
    info = message.messageInfo
    text = message.messageData.data[0].findtext("text")  # inline: a list of lxml elements
    print("pulled", info.messageId, info.messageType, info.sender.senderId, text)
    client.service.sendDeliveryNotification(request={  # acknowledged, or it comes back after the visibility timeout
        "notification": {"messageId": info.messageId, "serviceId": info.serviceId, "notificationDate": now,
                         "deliveryStatus": {"receiveStatus": "MESSAGE_ACCEPTED", "statusDate": now,
                                            "resendMessage": "NOT_RESEND"}},
        "requestDate": now, "sender": clinic})
    print("acknowledged", info.messageId)
