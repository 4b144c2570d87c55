/** The vendor sender: the work-queue consumer and the vendor clients it drives. */
export { VendorClients } from './clients.js';
export { parseRateLimits, VendorRates } from './rate.js';
export { loadSenderConfig, senderSpec, type SenderConfig } from './config.js';
export { backoffMs, startSender, type Sender, type SenderDeps } from './worker.js';
export type { Endpoints, OutgoingMessage, SendResult, VendorClient } from './vendors/types.js';
export { apnsClient } from './vendors/apns.js';
export { fcmClient } from './vendors/fcm.js';
export { huaweiClient } from './vendors/huawei.js';
export { xiaomiClient } from './vendors/xiaomi.js';
