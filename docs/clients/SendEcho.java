// SyncChannel SendMessage with JAX-WS, on the classes `wsimport` generates from the gateway's WSDL:
//   wsimport -Xnocompile -s gen -d gen -p kz.shep.sync 'http://127.0.0.1:8080/bip-sync/?wsdl'
//   javac -cp /usr/share/java/jaxws-rt.jar -d out gen/kz/shep/sync/*.java SendEcho.java
//   java -cp /usr/share/java/jaxws-rt.jar:out SendEcho http://127.0.0.1:8080
// Signed with WSS4J (Wss4jSigner.java; `apt-get install libwss4j-java`): add Wss4jSigner.java to javac, then
//   java -cp "$(cat classpath)":out SendEcho http://127.0.0.1:8080 --sign cert.p12 PASSWORD
// (classpath: jaxws-rt.jar wss4j.jar xmlsec.jar commons-logging.jar slf4j-api.jar of /usr/share/java, `:`-separated).
// Prints the status code, the sessionId and the echoed text.
import java.io.StringReader;
import java.net.URL;
import java.util.GregorianCalendar;
import java.util.List;
import java.util.UUID;
import javax.xml.datatype.DatatypeFactory;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.ws.BindingProvider;
import javax.xml.ws.handler.Handler;
import kz.shep.sync.ISyncChannel;
import kz.shep.sync.ISyncChannelHttpService;
import kz.shep.sync.RequestData;
import kz.shep.sync.SenderInfo;
import kz.shep.sync.SyncMessageInfo;
import kz.shep.sync.SyncSendMessageRequest;
import kz.shep.sync.SyncSendMessageResponse;
import org.w3c.dom.Element;
import org.xml.sax.InputSource;

public class SendEcho {
    public static void main(String[] args) throws Exception {
        String base = args.length > 0 ? args[0].replaceAll("/$", "") : "http://127.0.0.1:8080";
        ISyncChannel port = new ISyncChannelHttpService(new URL(base + "/bip-sync/?wsdl")).getSyncChannelHttpPort();
        ((BindingProvider) port).getRequestContext().put("com.sun.xml.ws.request.timeout", 15000);
        ((BindingProvider) port).getRequestContext().put("com.sun.xml.ws.connect.timeout", 15000);
        if (args.length == 4 && args[1].equals("--sign")) {
            // By name, so that the unsigned recipe compiles and runs without WSS4J.
            Handler<?> signer = (Handler<?>) Class.forName("Wss4jSigner").getConstructor(String.class, String.class)
                    .newInstance(args[2], args[3]);
            ((BindingProvider) port).getBinding().setHandlerChain(List.of(signer));
        }

        SenderInfo sender = new SenderInfo();
        sender.setSenderId("demo-consumer");
        sender.setPassword("demo-consumer-pass");
        SyncMessageInfo info = new SyncMessageInfo();
        info.setMessageId(UUID.randomUUID().toString());
        info.setServiceId("DEMO_Echo");
        info.setMessageDate(DatatypeFactory.newInstance().newXMLGregorianCalendar(new GregorianCalendar()));
        info.setSender(sender);
        // data is xs:anyType (Object). JAXB writes a DOM element given there as `data` itself (its name lost,
        // SHEP-171), so the element given is a `data` holding the document: the inline style.
        RequestData data = new RequestData();
        data.setData(element("<data><e:EchoRequest xmlns:e=\"urn:shep-emulator:demo:echo\">"
                + "<text>сәлем from JAX-WS</text></e:EchoRequest></data>"));
        SyncSendMessageRequest request = new SyncSendMessageRequest();
        request.setRequestInfo(info);
        request.setRequestData(data);

        SyncSendMessageResponse answer = port.sendMessage(request);
        Element echoed = (Element) answer.getResponseData().getData();  // `data` itself, as DOM
        System.out.println(answer.getResponseInfo().getStatus().getCode() + " "
                + answer.getResponseInfo().getSessionId() + " "
                + echoed.getElementsByTagName("text").item(0).getTextContent());
    }

    static Element element(String xml) throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        factory.setNamespaceAware(true);
        factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        return factory.newDocumentBuilder().parse(new InputSource(new StringReader(xml))).getDocumentElement();
    }
}
