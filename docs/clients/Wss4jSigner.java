// A JAX-WS handler that WS-Security signs each request with WSS4J (Debian libwss4j-java, WSS4J 1.6): the profile
// the gateway wants, RSA-SHA256 over the exclusive-C14N Body, the certificate in a BinarySecurityToken.
// Used by SendEcho.java with `--sign cert.p12 PASSWORD` (a container from `shep pki issue`).
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.security.KeyStore;
import java.util.Collections;
import java.util.Set;
import javax.xml.namespace.QName;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.soap.SOAPMessage;
import javax.xml.transform.dom.DOMSource;
import javax.xml.ws.handler.MessageContext;
import javax.xml.ws.handler.soap.SOAPHandler;
import javax.xml.ws.handler.soap.SOAPMessageContext;
import org.apache.ws.security.WSConstants;
import org.apache.ws.security.components.crypto.Merlin;
import org.apache.ws.security.message.WSSecHeader;
import org.apache.ws.security.message.WSSecSignature;
import org.w3c.dom.Document;

public class Wss4jSigner implements SOAPHandler<SOAPMessageContext> {
    private final Merlin crypto = new Merlin();
    private final String alias;
    private final String password;

    public Wss4jSigner(String p12, String password) throws Exception {
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(p12)) {
            store.load(in, password.toCharArray());
        }
        crypto.setKeyStore(store);
        this.alias = store.aliases().nextElement();  // `shep pki issue` puts one key in the container
        this.password = password;
    }

    @Override
    public boolean handleMessage(SOAPMessageContext context) {
        if (!(Boolean) context.get(MessageContext.MESSAGE_OUTBOUND_PROPERTY)) {
            return true;
        }
        try {
            // WSS4J works on a plain DOM: signing SAAJ's own nodes fails (WRONG_DOCUMENT_ERR), so copy out and back.
            SOAPMessage message = context.getMessage();
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            message.writeTo(bytes);
            DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
            factory.setNamespaceAware(true);
            Document document = factory.newDocumentBuilder().parse(new ByteArrayInputStream(bytes.toByteArray()));
            WSSecHeader header = new WSSecHeader();
            header.setMustUnderstand(true);
            header.insertSecurityHeader(document);
            WSSecSignature signature = new WSSecSignature();
            signature.setUserInfo(alias, password);
            signature.setKeyIdentifierType(WSConstants.BST_DIRECT_REFERENCE);
            signature.setSignatureAlgorithm("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256");  // not RSA-SHA1
            signature.setDigestAlgo("http://www.w3.org/2001/04/xmlenc#sha256");
            signature.build(document, crypto, header);  // signs the Body
            message.getSOAPPart().setContent(new DOMSource(document));
            message.saveChanges();
            return true;
        } catch (Exception error) {
            throw new RuntimeException("WS-Security signing failed", error);
        }
    }

    @Override
    public boolean handleFault(SOAPMessageContext context) {
        return true;
    }

    @Override
    public void close(MessageContext context) {
    }

    @Override
    public Set<QName> getHeaders() {
        // The gateway signs its answer to a signed request, its wsse:Security mustUnderstand: declared here, or
        // JAX-WS refuses the answer ("MustUnderstand headers … are not understood").
        return Collections.singleton(new QName(WSConstants.WSSE_NS, WSConstants.WSSE_LN));
    }
}
