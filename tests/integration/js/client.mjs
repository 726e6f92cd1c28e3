// A police system's client, written from docs/integration.md alone: TLS with its certificate
// (its account), its own inbox prefix, bind to its consumer, fetch, acknowledge. It prints one
// JSON line per event, then tries what it must not do and prints what the server refused.
// Settings from the environment: NATS_URL, SUBSCRIBER, CA, CERT, KEY, COUNT, FORBIDDEN_SUBJECT.
import { connect, StringCodec } from "nats";

const env = process.env;
const refused = [];
const nc = await connect({
  servers: env.NATS_URL,
  tls: { caFile: env.CA, certFile: env.CERT, keyFile: env.KEY },
  inboxPrefix: `_INBOX_${env.SUBSCRIBER}`,
  maxReconnectAttempts: 0,
});
(async () => {
  for await (const s of nc.status()) {
    if (s.type !== "error") continue;
    const ctx = s.permissionContext;  // what was refused: the operation and the subject
    refused.push(ctx ? `permissions violation: ${ctx.operation} ${ctx.subject}` : String(s.data));
  }
})();

const consumer = await nc.jetstream().consumers.get("EVENTS", `subscriber_${env.SUBSCRIBER}`);
let seen = 0;
const wanted = Number(env.COUNT || 5);
while (seen < wanted) {
  const batch = await consumer.fetch({ max_messages: 10, expires: 5000 });
  let got = 0;
  for await (const m of batch) {
    const event = m.json();
    console.log(JSON.stringify({ subject: m.subject, event_id: event.event_id, seq: m.seq }));
    m.ack();
    got += 1;
    seen += 1;
  }
  if (got === 0) break;
}

// What it must not do: another commune's events, and the JetStream API of another stream.
const sc = StringCodec();
nc.subscribe(env.FORBIDDEN_SUBJECT, { callback: () => {} });
try {
  await nc.request("$JS.API.STREAM.INFO.VIDEO", sc.encode(""), { timeout: 2000 });
  console.log(JSON.stringify({ forbidden: "stream info VIDEO answered" }));
} catch (err) {
  refused.push(`request: ${err.code || err.message}`);
}
await nc.flush();
await new Promise((r) => setTimeout(r, 500));
console.log(JSON.stringify({ refused }));
await nc.close();
