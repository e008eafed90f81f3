#!/bin/sh
# SyncChannel SendMessage with curl: the demo echo, once inline and once escaped in `data`.
#   sh curl.sh http://127.0.0.1:8080
# Prints each answer's envelope. Only curl and a shell; uuidgen or /proc give the messageId.
set -eu
base=${1:-http://127.0.0.1:8080}

send() {  # $1: the content of <data>
  id=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen)
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  curl --silent --show-error --max-time 15 "$base/bip-sync/" \
    -H 'Content-Type: text/xml; charset=utf-8' -H 'SOAPAction: ""' \
    --data-binary @- <<XML
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
 <soap:Body>
  <sync:SendMessage xmlns:sync="http://bip.bee.kz/SyncChannel/v10/Types">
   <request>
    <requestInfo>
     <messageId>$id</messageId>
     <serviceId>DEMO_Echo</serviceId>
     <messageDate>$now</messageDate>
     <sender><senderId>demo-consumer</senderId><password>demo-consumer-pass</password></sender>
    </requestInfo>
    <requestData><data>$1</data></requestData>
   </request>
  </sync:SendMessage>
 </soap:Body>
</soap:Envelope>
XML
  echo
}

# Inline: the document is the element inside data.
send '<e:EchoRequest xmlns:e="urn:shep-emulator:demo:echo"><text>inline from curl</text></e:EchoRequest>'
# Escaped: the same document as the text of data (< and & escaped).
send '&lt;e:EchoRequest xmlns:e="urn:shep-emulator:demo:echo"&gt;&lt;text&gt;escaped from curl&lt;/text&gt;&lt;/e:EchoRequest&gt;'
