// Transactional messages with the official Node.js SDK (npm
// `rocketmq-client-nodejs`).
// Arguments: ENDPOINT TOPIC GROUP.
//
// A producer with a TransactionChecker commits one transaction, rolls one
// back, and leaves one orphaned (neither); the broker must ask the checker
// about the orphan, which commits it. A SimpleConsumer of GROUP must then
// receive the committed one, the orphan and a later committed marker once
// each, and (after waiting a few more seconds) never the rolled-back one.
// Prints "txn ok <bool> committed <bool> rolled_back_absent <bool>
// orphan_checked <bool>" and exits 0 only if all hold.
'use strict';

const { clientOptions, startProducer, startConsumer } = require('./common');
// The SDK's index does not re-export the protocol enum its checker returns.
const { TransactionResolution } = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb');

// Commits the half messages it is asked about whose body starts with
// `orphan-`, rolls back anything else; remembers what it was asked.
class Checker {
  constructor() {
    this.asked = [];
  }

  async check(messageView) {
    const body = messageView.body.toString();
    this.asked.push(body);
    console.log(`checker asked about ${body} (${messageView.messageId})`);
    return body.startsWith('orphan-') ? TransactionResolution.COMMIT : TransactionResolution.ROLLBACK;
  }
}

async function half(producer, topic, body) {
  const transaction = producer.beginTransaction();
  const receipt = await producer.send({
    topic,
    tag: 'txn',
    properties: new Map([[ 'case', body ]]),
    body: Buffer.from(body),
  }, transaction);
  if (!receipt.transactionId) {
    throw new Error(`${body}: no transaction id in the send receipt`);
  }
  return { transaction, receipt };
}

// Receives and acks into `seen` (body -> count) until `until(seen)` or the
// deadline.
async function receive(consumer, seen, until, deadline) {
  while (!until(seen) && Date.now() < deadline) {
    for (const message of await consumer.receive(16, 15_000)) {
      const body = message.body.toString();
      seen.set(body, (seen.get(body) ?? 0) + 1);
      console.log(`received ${body}`);
      await consumer.ack(message);
    }
  }
}

async function main() {
  const [endpoint, topic, group] = process.argv.slice(2);
  if (!endpoint || !topic || !group) {
    throw new Error('usage: txn.js ENDPOINT TOPIC GROUP');
  }
  const common = clientOptions(endpoint);
  const checker = new Checker();
  const producer = await startProducer(common, topic, { checker });
  const consumer = await startConsumer(common, group, topic);

  let h = await half(producer, topic, 'commit-n');
  await h.transaction.commit();
  h = await half(producer, topic, 'rollback-n');
  await h.transaction.rollback();
  h = await half(producer, topic, 'orphan-n');
  console.log(`orphan transaction ${h.receipt.transactionId}`);
  h = await half(producer, topic, 'marker-n');
  await h.transaction.commit();

  const seen = new Map();
  const want = [ 'commit-n', 'orphan-n', 'marker-n' ];
  await receive(consumer, seen, (s) => want.every((b) => s.has(b)), Date.now() + 60_000);
  // The rolled-back one must not come, not even a few seconds later.
  await receive(consumer, seen, () => false, Date.now() + 6000);
  await consumer.shutdown();
  await producer.shutdown();

  const committed = seen.get('commit-n') === 1 && seen.get('marker-n') === 1;
  const absent = !seen.has('rollback-n');
  const checked = checker.asked.includes('orphan-n') && seen.get('orphan-n') === 1;
  const askedOthers = checker.asked.filter((b) => !b.startsWith('orphan-'));
  console.log(`seen ${JSON.stringify([...seen])} checker asked ${JSON.stringify(checker.asked)}`);
  const ok = committed && absent && checked && askedOthers.length === 0;
  console.log(`txn ok ${ok} committed ${committed} rolled_back_absent ${absent} orphan_checked ${checked}`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
