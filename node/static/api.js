// The node's API from the browser: the reader's key (loaded from a local file, kept as a non-extractable
// WebCrypto key: it never leaves the page) and signed reads exactly like node.vault.compute_request_headers:
// Ed25519 over H("carecoin/v1/vault-request", P([chain_id, METHOD, path?query, time_ms, sha256(body)])).

import { H, encode, fromHex, sha256, toHex } from "./verify.js";

const MAX_HISTORY_PAGES = 1000;
const HISTORY_PAGE = 200; // rows per history request (the page's ?history_page=N changes it)

export class ApiError extends Error {
  constructor(status, code, message) { super(`${status} ${code}: ${message}`); this.status = status; this.code = code; }
}

const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

// A key file is JSON {"type": "ed25519", "public_key": hex, "secret_key": hex seed} (ledger/keys.py).
export async function loadKey(text) {
  let doc;
  try { doc = JSON.parse(text); } catch (e) { throw new Error(`the key file is not JSON: ${e.message}`); }
  if (!doc || doc.type !== "ed25519") throw new Error('the key file must be {"type": "ed25519", "public_key", "secret_key"}');
  let publicKey, seed;
  try {
    publicKey = fromHex(doc.public_key, "public_key", 32);
    seed = fromHex(doc.secret_key, "secret_key", 32);
  } catch (e) { throw new Error(`the key file's ${e.detail}`); }
  const jwk = { kty: "OKP", crv: "Ed25519", x: b64url(publicKey), d: b64url(seed) };
  let key;
  try {
    key = await crypto.subtle.importKey("jwk", jwk, { name: "Ed25519" }, false, ["sign"]);
  } catch (e) { throw new Error("the key file's secret key does not belong to its public key"); }
  seed.fill(0);
  const probe = new Uint8Array(await crypto.subtle.sign("Ed25519", key, new Uint8Array(32)));
  const verifier = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  if (!(await crypto.subtle.verify("Ed25519", verifier, probe, new Uint8Array(32)))) {
    throw new Error("the key file's secret key does not belong to its public key");
  }
  return { account: toHex(publicKey), signingKey: key };
}

let lastStamp = 0;
const nextStamp = () => (lastStamp = Math.max(Date.now(), lastStamp + 1)); // no two requests alike (replay guard)

export async function requestHeaders(key, chainId, method, pathQs, body = new Uint8Array()) {
  const stamp = nextStamp();
  const digest = await H("carecoin/v1/vault-request", encode([chainId, method.toUpperCase(), pathQs, stamp, await sha256(body)]));
  const signature = new Uint8Array(await crypto.subtle.sign("Ed25519", key.signingKey, digest));
  return { "X-Carecoin-Staff": key.account, "X-Carecoin-Time": String(stamp), "X-Carecoin-Signature": toHex(signature) };
}

export class Api {
  constructor(base = "", historyPage = HISTORY_PAGE) {
    this.base = base; this.key = null; this.chainId = null; this.historyPage = historyPage;
  }

  async get(pathQs, { signed = true } = {}) {
    const headers = signed && this.key ? await requestHeaders(this.key, await this.chain(), "GET", pathQs) : {};
    const resp = await fetch(this.base + pathQs, { headers, cache: "no-store" });
    const doc = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const err = doc.error || {};
      throw new ApiError(resp.status, err.code || "http_error", err.message || resp.statusText);
    }
    return doc;
  }

  async chain() {
    if (!this.chainId) this.chainId = (await this.get("/v1/status", { signed: false })).chain_id;
    return this.chainId;
  }

  status() { return this.get("/v1/status", { signed: false }); }
  account(id) { return this.get(`/v1/accounts/${id}`); }
  ticket(id) { return this.get(`/v1/tickets/${encodeURIComponent(id)}`); }
  order(id) { return this.get(`/v1/orders/${encodeURIComponent(id)}`); }
  receipt(txHash) { return this.get(`/v1/tx/${txHash}/receipt`); }

  // Every page of an account's history, newest first, following next_before to the beginning (onPage(n, items)).
  async history(id, onPage = () => {}) {
    const items = [];
    let before = null;
    for (let page = 1; page <= MAX_HISTORY_PAGES; page++) {
      const q = `/v1/accounts/${id}/history?limit=${this.historyPage}` + (before === null ? "" : `&before=${before}`);
      const doc = await this.get(q);
      items.push(...doc.items);
      onPage(page, items.length);
      if (doc.next_before === null || doc.next_before === undefined) return { items, complete: true };
      before = doc.next_before;
    }
    return { items, complete: false };
  }

  // A list route (GET /v1/tickets?branch=...), or null when this node has no such route.
  async list(path) {
    try { return await this.get(path); } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 405) && e.code !== "not_entitled") return null;
      throw e;
    }
  }
}
