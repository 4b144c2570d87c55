/**
 * Vendor credentials made at run time: an APNs signing key (.p8) and a Google service account, each
 * with the public half a fake verifies signatures with.
 */
import { generateKeyPairSync, randomBytes, randomInt, type KeyObject } from 'node:crypto';

export interface ApnsSigningKey {
  keyId: string;
  teamId: string;
  /** PKCS#8 PEM of a P-256 key, as in the .p8 file Apple hands out. */
  p8: string;
  publicKey: KeyObject;
}

/** The JSON Google's console downloads for a service account. */
export interface GoogleServiceAccount {
  type: 'service_account';
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  auth_uri: string;
  token_uri: string;
  auth_provider_x509_cert_url: string;
  client_x509_cert_url: string;
  universe_domain: string;
}

export interface FcmServiceAccount {
  /** What a sender is configured with (pass it to firebase-admin's `cert()`). */
  json: GoogleServiceAccount;
  /** What Google knows: the fake verifies token requests with it. */
  publicKey: KeyObject;
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const appleId = () => Array.from({ length: 10 }, () => ID_ALPHABET[randomInt(ID_ALPHABET.length)]).join('');

export function apnsSigningKey(): ApnsSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    keyId: appleId(),
    teamId: appleId(),
    p8: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey,
  };
}

export function fcmServiceAccount(projectId: string): FcmServiceAccount {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientEmail = `firebase-adminsdk-${randomBytes(3).toString('hex').slice(0, 5)}@${projectId}.iam.gserviceaccount.com`;
  return {
    json: {
      type: 'service_account',
      project_id: projectId,
      private_key_id: randomBytes(20).toString('hex'),
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: clientEmail,
      client_id: String(randomInt(1, 2 ** 47)) + String(randomInt(1e6, 1e7)),
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: 'https://oauth2.googleapis.com/token',
      auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
      client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(clientEmail)}`,
      universe_domain: 'googleapis.com',
    },
    publicKey,
  };
}
