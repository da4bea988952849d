// Credentials for AWS IoT over WebSocket: a Cognito guest identity and a SigV4 query-signed URL.
//
// Hand-written rather than the AWS SDK (hundreds of KB for two unsigned calls and one HMAC chain).
// The signing matches botocore's SigV4QueryAuth as alleycat/target.py uses it (tests compare the
// two): service "iotdevicegateway", only the host header signed, and the session token appended
// after signing, because IoT verifies the signature without it.

const encoder = new TextEncoder();

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(text) {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

async function hmac(key, text) {
  const raw = typeof key === "string" ? encoder.encode(key) : key;
  const imported = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return crypto.subtle.sign("HMAC", imported, encoder.encode(text));
}

// RFC 3986 encoding, as SigV4 requires (encodeURIComponent leaves !'()* alone).
export function uriEncode(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** "20240102T030405Z" for a Date. */
export function amzDate(date) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/**
 * A presigned wss:// URL for `url` (wss://<endpoint>/mqtt).
 * credentials: {accessKeyId, secretAccessKey, sessionToken?}; now: a Date (tests pin it).
 */
export async function signMqttUrl(url, region, credentials, { now = new Date(), expires = 3600 } = {}) {
  const parsed = new URL(url);
  const date = amzDate(now);
  const day = date.slice(0, 8);
  const service = "iotdevicegateway";
  const scope = `${day}/${region}/${service}/aws4_request`;
  const query = {
    "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
    "X-Amz-Credential": `${credentials.accessKeyId}/${scope}`,
    "X-Amz-Date": date,
    "X-Amz-Expires": String(expires),
    "X-Amz-SignedHeaders": "host",
  };
  const canonicalQuery = Object.keys(query)
    .sort()
    .map((k) => `${uriEncode(k)}=${uriEncode(query[k])}`)
    .join("&");
  const path = parsed.pathname || "/";
  const canonicalRequest = ["GET", path, canonicalQuery, `host:${parsed.host}`, "", "host", await sha256Hex("")].join(
    "\n",
  );
  const stringToSign = ["AWS4-HMAC-SHA256", date, scope, await sha256Hex(canonicalRequest)].join("\n");
  let key = await hmac(`AWS4${credentials.secretAccessKey}`, day);
  for (const part of [region, service, "aws4_request"]) key = await hmac(key, part);
  const signature = hex(await hmac(key, stringToSign));
  let signed = `wss://${parsed.host}${path}?${canonicalQuery}&X-Amz-Signature=${signature}`;
  if (credentials.sessionToken) signed += `&X-Amz-Security-Token=${uriEncode(credentials.sessionToken)}`;
  return signed;
}

async function cognito(region, target, body) {
  const response = await fetch(`https://cognito-identity.${region}.amazonaws.com/`, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": `AWSCognitoIdentityService.${target}`,
    },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`Cognito ${target}: ${answer.message || answer.__type || response.status}`);
  return answer;
}

/**
 * Temporary credentials of a Cognito unauthenticated ("guest") identity. Both calls are unsigned:
 * that is what unauthenticated access means. The identity id is kept so a reload reuses it.
 */
export async function guestCredentials(region, identityPoolId, storage = globalThis.localStorage) {
  const remembered = `alleycat.identity.${identityPoolId}`;
  let identityId = storage?.getItem(remembered);
  if (!identityId) {
    ({ IdentityId: identityId } = await cognito(region, "GetId", { IdentityPoolId: identityPoolId }));
    storage?.setItem(remembered, identityId);
  }
  const { Credentials: c } = await cognito(region, "GetCredentialsForIdentity", { IdentityId: identityId });
  return {
    identityId, // the viewer's MQTT client id must start with it (the IoT policy binds the two)
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretKey,
    sessionToken: c.SessionToken,
    expiresAt: c.Expiration * 1000,
  };
}
