// What the Node.js SDK test scripts share: quiet SDK logging and starting
// clients of one endpoint. The SDK itself (npm `rocketmq-client-nodejs`)
// is found through NODE_PATH.
'use strict';

const { Producer, SimpleConsumer } = require('rocketmq-client-nodejs');

// The SDK logs warnings and errors to stderr; the rest is dropped.
const logger = {
  info() {},
  debug() {},
  warn(...args) { console.error('[sdk warn]', ...args); },
  error(...args) { console.error('[sdk error]', ...args); },
};

// Options every client of ENDPOINT takes. With TERN_SDK_TLS=1 the
// clients connect with TLS (the CA to trust in
// GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, which grpc-js reads); with
// TERN_SDK_ACCESS_KEY and TERN_SDK_SECRET_KEY they sign their requests.
function clientOptions(endpoint) {
  const sslEnabled = process.env.TERN_SDK_TLS === '1';
  const options = { endpoints: endpoint, namespace: '', logger, sslEnabled };
  if (process.env.TERN_SDK_ACCESS_KEY) {
    options.sessionCredentials = {
      accessKey: process.env.TERN_SDK_ACCESS_KEY,
      accessSecret: process.env.TERN_SDK_SECRET_KEY || '',
    };
  }
  return options;
}

// A started producer of TOPIC; `extra` adds options (e.g. a checker).
async function startProducer(common, topic, extra = {}) {
  const producer = new Producer({ ...common, topic, ...extra });
  await producer.startup();
  return producer;
}

// A started SimpleConsumer of GROUP subscribed to TOPIC with a tag
// expression, long polling 5 s per receive.
async function startConsumer(common, group, topic, filter = '*') {
  const consumer = new SimpleConsumer({
    ...common,
    consumerGroup: group,
    subscriptions: new Map().set(topic, filter),
    awaitDuration: 5000,
  });
  await consumer.startup();
  return consumer;
}

module.exports = { clientOptions, startProducer, startConsumer };
