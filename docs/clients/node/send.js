// SyncChannel SendMessage and AsyncChannel sendMessage/getMessages with the npm `soap` package.
//   npm install soap@1.6.0 && node send.js http://127.0.0.1:8080
// Prints the sync status, sessionId and echoed text, then the async messageId and what demo-clinic pulled.
const crypto = require("node:crypto");
const soap = require("soap");

const base = (process.argv[2] || "http://127.0.0.1:8080").replace(/\/$/, "");
const echo = (text) => `<e:EchoRequest xmlns:e="urn:shep-emulator:demo:echo"><text>${text}</text></e:EchoRequest>`;
const options = { wsdl_options: { timeout: 15000 } };

async function main() {
  const sync = await soap.createClientAsync(`${base}/bip-sync/?wsdl`, options);
  // `$xml` puts the document into `data` as it is (inline); a plain string would be escaped.
  const [answer] = await sync.SendMessageAsync({
    request: {
      requestInfo: {
        messageId: crypto.randomUUID(), serviceId: "DEMO_Echo", messageDate: new Date().toISOString(),
        sender: { senderId: "demo-consumer", password: "demo-consumer-pass" },
      },
      requestData: { data: { $xml: echo("сәлем from node") } },
    },
  }, { timeout: 15000 });
  const info = answer.response.responseInfo;
  console.log(info.status.code, info.sessionId, answer.response.responseData.data.EchoResponse.text);

  const channel = await soap.createClientAsync(`${base}/bip-async/?wsdl`, options);
  const [sent] = await channel.sendMessageAsync({
    request: {
      messageInfo: {
        serviceId: "DEMO_EchoAsync", messageType: "REQUEST", messageDate: new Date().toISOString(),
        sender: { senderId: "demo-consumer", password: "demo-consumer-pass" },
      },
      messageData: { data: { $xml: echo("кезек from node") } },
    },
  }, { timeout: 15000 });
  console.log("sent", sent.response.messageId, sent.response.correlationId);
  const [pulled] = await channel.getMessagesAsync({
    request: {
      messageId: sent.response.messageId, requestDate: new Date().toISOString(), serviceId: "DEMO_EchoAsync",
      sender: { senderId: "demo-clinic", password: "demo-clinic-pass" },
    },
  }, { timeout: 15000 });
  for (const message of [].concat(pulled.response.messages || [])) {
    console.log("pulled", message.messageInfo.messageId, message.messageInfo.messageType,
                message.messageData.data.EchoRequest.text);
  }
}

main().catch((error) => { console.error(error.root ? JSON.stringify(error.root) : error); process.exit(1); });
