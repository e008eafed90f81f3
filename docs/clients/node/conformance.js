// The scenarios of `shep conformance client` sent with the npm `soap` package (docs/conformance.md, client mode).
//   npm install soap@1.6.0 && node conformance.js SYNC_URL ASYNC_URL SENDER PASSWORD SERVICE ASYNC_SERVICE
// (the values `shep conformance client` prints). Each SendMessage names its case in requestInfo/properties.
const crypto = require("node:crypto");
const soap = require("soap");

const [syncUrl, asyncUrl, senderId, password, serviceId, asyncServiceId] = process.argv.slice(2);
const sender = { senderId, password };
const echo = '<e:EchoRequest xmlns:e="urn:shep-emulator:demo:echo"><text>from node</text></e:EchoRequest>';
const options = { wsdl_options: { timeout: 15000 } };
const now = () => new Date().toISOString();

function send(client, conformanceCase, data) {
  return client.SendMessageAsync({
    request: {
      requestInfo: {
        messageId: crypto.randomUUID(), serviceId, messageDate: now(), sender,
        properties: [{ key: "conformanceCase", value: conformanceCase }],
      },
      requestData: { data },
    },
  }, { timeout: 15000 });
}

async function main() {
  const sync = await soap.createClientAsync(`${syncUrl}?wsdl`, options);
  await send(sync, "request-inline", { $xml: echo });  // `$xml`: the document inline in data
  await send(sync, "request-escaped", echo);  // a plain string: escaped text
  // The provider fails once (SHEP-203): send again a second later, under a new messageId, once.
  try {
    await send(sync, "retry-after-provider-fault", { $xml: echo });
  } catch (fault) {
    console.log("retry after", fault.root ? fault.root.Envelope.Body.Fault.faultstring : fault.message);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    await send(sync, "retry-after-provider-fault", { $xml: echo });
  }

  const channel = await soap.createClientAsync(`${asyncUrl}?wsdl`, options);
  const [pulled] = await channel.getMessagesAsync({
    request: { requestDate: now(), serviceId: asyncServiceId, sender },
  }, { timeout: 15000 });
  // Acknowledge each message pulled, once (a repeat of a handled messageId would be acknowledged again).
  for (const message of [].concat(pulled.response.messages || [])) {
    await channel.sendDeliveryNotificationAsync({
      request: {
        notification: {
          messageId: message.messageInfo.messageId, serviceId: asyncServiceId, notificationDate: now(),
          deliveryStatus: { receiveStatus: "MESSAGE_ACCEPTED", statusDate: now(), resendMessage: "NOT_RESEND" },
        },
        requestDate: now(), sender,
      },
    }, { timeout: 15000 });
    console.log("acknowledged", message.messageInfo.messageId);
  }
}

main().catch((error) => { console.error(error.root ? JSON.stringify(error.root) : error); process.exit(1); });
