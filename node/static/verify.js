// Receipt verification in the browser, trusting no node: DESIGN "Wire formats" (the receipt contract), checked
// in the same order and under the same check names as ledger/receipt.py, so a tampered receipt names the same
// failing check here as in `carecoin receipt verify`. SHA-256 and Ed25519 come from WebCrypto.

const MAX_TX_BYTES = 64 * 1024, MAX_SIGNATURES = 4, MAX_KIND_LEN = 32, MAX_CHAIN_ID_LEN = 64;
const MAX_EVENTS_BYTES = 256 * 1024, MAX_HEADER_BYTES = 4096, MAX_PATH_LEN = 64, MAX_RECEIPT_BYTES = 1024 * 1024;
const MAX_SET_CHANGES = 256, MAX_VALIDATORS = 1024, MAX_SEALS = 1024, MAX_DEPTH = 32;
const KEYS = ["version", "chain_id", "tx", "tx_hash", "result", "events", "leaf", "leaf_index", "audit_path",
  "header", "block_hash", "commit", "validator_set_changes"];
const SWEEP_KIND = "block-sweep";

export class CheckFailed extends Error {
  constructor(check, message) { super(`${check}: ${message}`); this.check = check; this.detail = message; }
}
const fail = (check, message) => { throw new CheckFailed(check, message); };
const formatError = (message) => fail("format", message);

// ---- bytes -----------------------------------------------------------------------------------------------

export const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const short = (b) => toHex(b).slice(0, 16) + "…";
export function fromHex(text, name, size, limit = MAX_RECEIPT_BYTES) {
  if (typeof text !== "string") formatError(`${name} must be a lowercase hex string, got ${typeName(text)}`);
  if (text.length > 2 * limit) formatError(`${name} is ${text.length / 2} bytes; the limit is ${limit}`);
  if (!/^(?:[0-9a-f]{2})*$/.test(text)) formatError(`${name} is not lowercase hex with an even number of digits`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
  if (size !== undefined && out.length !== size) formatError(`${name} is ${out.length} bytes; expected ${size}`);
  return out;
}
const typeName = (v) => (v === null ? "null" : Array.isArray(v) ? "list" : typeof v);
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
export const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const isBytes = (v) => v instanceof Uint8Array;
const isInt = (v) => Number.isInteger(v) || typeof v === "bigint";

// ---- canonical msgpack (ledger/codec.py): arrays, ints, str, bin only; decode re-encodes and compares ---------

export function encode(value) {
  const out = [];
  const put = (...b) => out.push(...b);
  const big = (n, bytes) => { for (let i = bytes - 1; i >= 0; i--) put(Number((BigInt(n) >> BigInt(8 * i)) & 0xffn)); };
  const walk = (v, depth) => {
    if (depth > MAX_DEPTH) throw new Error(`nesting deeper than ${MAX_DEPTH} levels`);
    if (Array.isArray(v)) {
      if (v.length < 16) put(0x90 | v.length);
      else if (v.length < 0x10000) { put(0xdc); big(v.length, 2); } else { put(0xdd); big(v.length, 4); }
      v.forEach((x) => walk(x, depth + 1));
    } else if (isBytes(v)) {
      if (v.length < 0x100) put(0xc4, v.length); else if (v.length < 0x10000) { put(0xc5); big(v.length, 2); }
      else { put(0xc6); big(v.length, 4); }
      for (const x of v) out.push(x);
    } else if (typeof v === "string") {
      const s = new TextEncoder().encode(v);
      if (s.length < 32) put(0xa0 | s.length); else if (s.length < 0x100) put(0xd9, s.length);
      else if (s.length < 0x10000) { put(0xda); big(s.length, 2); } else { put(0xdb); big(s.length, 4); }
      for (const x of s) out.push(x);
    } else if (isInt(v)) {
      const n = BigInt(v);
      if (n >= 0n) {
        if (n < 128n) put(Number(n)); else if (n < 0x100n) put(0xcc, Number(n));
        else if (n < 0x10000n) { put(0xcd); big(n, 2); } else if (n < 0x100000000n) { put(0xce); big(n, 4); }
        else if (n < 1n << 64n) { put(0xcf); big(n, 8); } else throw new Error(`integer ${n} outside the 64-bit range`);
      } else {
        const u = (bytes) => (n + (1n << BigInt(8 * bytes))) ;
        if (n >= -32n) put(Number(u(1))); else if (n >= -128n) put(0xd0, Number(u(1)));
        else if (n >= -32768n) { put(0xd1); big(u(2), 2); } else if (n >= -(1n << 31n)) { put(0xd2); big(u(4), 4); }
        else if (n >= -(1n << 63n)) { put(0xd3); big(u(8), 8); } else throw new Error(`integer ${n} outside the 64-bit range`);
      }
    } else throw new Error(`cannot encode ${typeName(v)}; expected int, bytes, str or array`);
  };
  walk(value, 0);
  return Uint8Array.from(out);
}

export function decode(data) {
  let at = 0;
  const need = (n) => { if (at + n > data.length) throw new Error("truncated msgpack"); };
  const uint = (n) => { need(n); let v = 0n; for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(data[at++]); return v; };
  const num = (v) => (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  const bytes = (n) => { need(n); const b = data.slice(at, at + n); at += n; return b; };
  const text = (n) => new TextDecoder("utf-8", { fatal: true }).decode(bytes(n));
  const array = (n, depth) => { const out = []; for (let i = 0; i < n; i++) out.push(item(depth + 1)); return out; };
  const signed = (n) => { const u = uint(n); const top = 1n << BigInt(8 * n - 1); return num(u >= top ? u - 2n * top : u); };
  const item = (depth) => {
    if (depth > MAX_DEPTH) throw new Error(`nesting deeper than ${MAX_DEPTH} levels`);
    need(1);
    const b = data[at++];
    if (b < 0x80) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xf0) === 0x90) return array(b & 0x0f, depth);
    if ((b & 0xe0) === 0xa0) return text(b & 0x1f);
    switch (b) {
      case 0xc4: return bytes(Number(uint(1)));
      case 0xc5: return bytes(Number(uint(2)));
      case 0xc6: return bytes(Number(uint(4)));
      case 0xcc: return num(uint(1)); case 0xcd: return num(uint(2));
      case 0xce: return num(uint(4)); case 0xcf: return num(uint(8));
      case 0xd0: return signed(1); case 0xd1: return signed(2); case 0xd2: return signed(4); case 0xd3: return signed(8);
      case 0xd9: return text(Number(uint(1))); case 0xda: return text(Number(uint(2))); case 0xdb: return text(Number(uint(4)));
      case 0xdc: return array(Number(uint(2)), depth); case 0xdd: return array(Number(uint(4)), depth);
      default: throw new Error(`type byte 0x${b.toString(16)} is not canonical (maps, nil, booleans, floats, ext are refused)`);
    }
  };
  if (!data.length) throw new Error("empty input; expected one msgpack value");
  const value = item(0);
  if (at !== data.length) throw new Error("trailing bytes after the value");
  if (!equal(encode(value), data)) throw new Error("non-canonical encoding (re-encoding gives different bytes)");
  return value;
}

// ---- hashing, Merkle, signatures -------------------------------------------------------------------------

export async function sha256(data) { return new Uint8Array(await crypto.subtle.digest("SHA-256", data)); }
export async function H(tag, data) { return sha256(concat(new TextEncoder().encode(tag), [0], data)); }

// Sizes and indexes as BigInt: a header's tx_count may be any 64-bit value.
const largestPowerOfTwoBelow = (n) => 1n << BigInt((n - 1n).toString(2).length - 1);
function inclusionProofLength(index, size) {
  let length = 0;
  while (size > 1n) {
    const k = largestPowerOfTwoBelow(size);
    if (index < k) size = k; else { index -= k; size -= k; }
    length += 1;
  }
  return length;
}

// RFC 9162 §2.1.3.2 with the exact proof length; throws Error with what failed.
export async function verifyInclusion(leaf, index, size, path, root) {
  index = BigInt(index); size = BigInt(size);
  if (index >= size) throw new Error(`leaf index ${index} is out of range for a tree of ${size} leaves`);
  const expected = inclusionProofLength(index, size);
  if (path.length !== expected) throw new Error(`inclusion proof has ${path.length} hashes; expected exactly ${expected}`);
  let fn = index, sn = size - 1n;
  let r = await sha256(concat([0], leaf));
  for (const p of path) {
    if (fn & 1n || fn === sn) {
      r = await sha256(concat([1], p, r));
      if (!(fn & 1n)) while (!(fn & 1n) && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else r = await sha256(concat([1], r, p));
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) throw new Error("inclusion proof is too short");
  if (!equal(r, root)) throw new Error(`leads to root ${toHex(r)}; expected ${toHex(root)}`);
}

// Encodings libsodium refuses as a public key or as a signature's R (small order, ed25519_ref10.c), compared
// without the sign bit; WebCrypto (BoringSSL) would accept them, so they are refused here first.
const SMALL_ORDER = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map((h) => fromHex(h, "constant"));
const smallOrder = (p) => SMALL_ORDER.some((s) => s.every((x, i) => x === (i === 31 ? p[31] & 0x7f : p[i])));
const canonicalPoint = (p) => !((p[31] & 0x7f) === 0x7f && p.slice(1, 31).every((x) => x === 0xff) && p[0] >= 0xed);
const L = [0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const canonicalS = (s) => { for (let i = 31; i >= 0; i--) { if (s[i] !== L[i]) return s[i] < L[i]; } return false; };

export async function ed25519Verify(publicKey, message, signature) {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  if (smallOrder(publicKey) || !canonicalPoint(publicKey) || smallOrder(signature.slice(0, 32))) return false;
  if (!canonicalS(signature.slice(32))) return false;
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch (e) {
    return false;
  }
}

const quorum = (n) => Math.floor((2 * n - 1) / 3) + 1;
const validatorSetHash = (keys) => H("carecoin/v1/validators", encode(keys));
const sealMessage = (chainId, height, blockHash) => H("carecoin/v1/commit", encode([chainId, height, blockHash]));

// ---- parsing (shape only; every failure is "format") ---------------------------------------------------------

const b32 = (v) => isBytes(v) && v.length === 32;
function decodeOrFormat(raw, what) {
  try { return decode(raw); } catch (e) { return formatError(`${what} is not canonical msgpack: ${e.message}`); }
}

function parseHeader(raw, what) {
  const h = decodeOrFormat(raw, what);
  if (!Array.isArray(h) || h.length !== 10) formatError(`${what}: expected an array of 10 fields`);
  const [chainId, height, prevHash, timestampMs, proposer, txCount, resultsRoot, stateRoot, vsh, nextVsh] = h;
  if (typeof chainId !== "string" || !chainId) formatError(`${what}: chain_id must be a non-empty str`);
  for (const [n, v] of [["height", height], ["timestamp_ms", timestampMs], ["tx_count", txCount]]) {
    if (!isInt(v) || v < 0) formatError(`${what}: ${n} must be a non-negative int`);
  }
  for (const v of [prevHash, proposer, resultsRoot, stateRoot, vsh, nextVsh]) if (!b32(v)) formatError(`${what}: hashes must be 32 bytes`);
  return { raw, chainId, height, timestampMs, proposer, txCount, resultsRoot, vsh, nextVsh };
}

function parseTx(raw) {
  const obj = decodeOrFormat(raw, "tx");
  const bad = (m) => formatError(`tx is not a canonical transaction envelope: ${m}`);
  if (!Array.isArray(obj) || obj.length !== 2) bad("expected [body, signatures]");
  const [body, sigs] = obj;
  if (!Array.isArray(body) || body.length !== 5) bad("tx body: expected an array of 5 fields");
  const [chainId, kind, sender, nonce, payload] = body;
  if (typeof chainId !== "string" || !chainId || chainId.length > MAX_CHAIN_ID_LEN) bad("tx body: bad chain_id");
  if (typeof kind !== "string" || !kind || kind.length > MAX_KIND_LEN) bad("tx body: bad kind");
  if (!b32(sender)) bad("tx body: sender must be 32 bytes");
  if (!isInt(nonce) || nonce < 1) bad("tx body: nonce must be an int >= 1");
  if (!Array.isArray(payload)) bad("tx body: payload must be an array");
  const system = kind === SWEEP_KIND && sender.every((x) => x === 0);
  if (!Array.isArray(sigs) || sigs.length > MAX_SIGNATURES || (sigs.length < 1 && !system)) bad("bad signature count");
  for (const p of sigs) {
    if (!Array.isArray(p) || p.length !== 2 || !b32(p[0]) || !isBytes(p[1]) || p[1].length !== 64) bad("bad signature pair");
  }
  return { raw, body, chainId, kind, sender, nonce, payload, sigs, system };
}

function parseSeals(value, name) {
  if (!Array.isArray(value) || value.length > MAX_SEALS) formatError(`${name} must be a list of at most ${MAX_SEALS} seals`);
  return value.map((item, i) => {
    if (typeName(item) !== "object" || Object.keys(item).sort().join() !== "signature,validator") {
      formatError(`${name}[${i}] must be an object with exactly validator and signature`);
    }
    return { validator: fromHex(item.validator, `${name}[${i}].validator`, 32, MAX_HEADER_BYTES),
             signature: fromHex(item.signature, `${name}[${i}].signature`, 64, MAX_HEADER_BYTES) };
  });
}

function parseChanges(value) {
  if (!Array.isArray(value) || value.length > MAX_SET_CHANGES) formatError(`validator_set_changes must be a list of at most ${MAX_SET_CHANGES} entries`);
  return value.map((item, i) => {
    const where = `validator_set_changes[${i}]`;
    if (typeName(item) !== "object" || Object.keys(item).sort().join() !== "commit,header,validators") {
      formatError(`${where} must be an object with exactly header, commit, validators`);
    }
    const header = parseHeader(fromHex(item.header, `${where}.header`, undefined, MAX_HEADER_BYTES), `${where}.header`);
    if (!Array.isArray(item.validators) || item.validators.length > MAX_VALIDATORS) formatError(`${where}.validators must be a list`);
    const validators = item.validators.map((v, j) => fromHex(v, `${where}.validators[${j}]`, 32, MAX_HEADER_BYTES));
    return { header, commit: parseSeals(item.commit, `${where}.commit`), validators };
  });
}

function nonNegInt(v, name) { if (!Number.isInteger(v) || v < 0) formatError(`${name} must be a non-negative integer`); return v; }

export function parseReceipt(r) {
  if (typeName(r) !== "object") formatError(`receipt must be a JSON object, got ${typeName(r)}`);
  if ("version" in r) {
    if (!Number.isInteger(r.version)) formatError("version must be an integer");
    if (r.version === 1) fail("version", "version 1 receipts are no longer accepted; expected version 2");
    if (r.version !== 2) fail("version", `receipt version ${r.version}; this verifier reads version 2`);
  }
  const missing = KEYS.filter((k) => !(k in r));
  if (missing.length) formatError(`missing key(s) ${missing.join(", ")}`);
  if (typeof r.chain_id !== "string" || !r.chain_id) formatError("chain_id must be a non-empty string");
  const tx = parseTx(fromHex(r.tx, "tx", undefined, MAX_TX_BYTES));
  const txHash = fromHex(r.tx_hash, "tx_hash", 32);
  const res = r.result;
  if (typeName(res) !== "object" || Object.keys(res).sort().join() !== "reason,status") formatError("result must be an object with exactly status and reason");
  const status = nonNegInt(res.status, "result.status");
  if (typeof res.reason !== "string") formatError("result.reason must be a string");
  const events = fromHex(r.events, "events", undefined, MAX_EVENTS_BYTES);
  const leafRaw = fromHex(r.leaf, "leaf", undefined, MAX_EVENTS_BYTES);
  const l = decodeOrFormat(leafRaw, "leaf");
  if (!(Array.isArray(l) && l.length === 5 && b32(l[0]) && isInt(l[1]) && l[1] >= 0 && typeof l[2] === "string" && b32(l[3]) && b32(l[4]))) {
    formatError("leaf is not a canonical result leaf");
  }
  const leafIndex = nonNegInt(r.leaf_index, "leaf_index");
  if (!Array.isArray(r.audit_path) || r.audit_path.length > MAX_PATH_LEN) formatError(`audit_path must be a list of at most ${MAX_PATH_LEN} hashes`);
  const auditPath = r.audit_path.map((p, i) => fromHex(p, `audit_path[${i}]`, 32));
  const header = parseHeader(fromHex(r.header, "header", undefined, MAX_HEADER_BYTES), "header");
  const blockHash = fromHex(r.block_hash, "block_hash", 32);
  const commit = parseSeals(r.commit, "commit");
  const changes = parseChanges(r.validator_set_changes);
  return { chainId: r.chain_id, tx, txHash, status, reason: res.reason, events, leafRaw,
    leaf: { txHash: l[0], status: l[1], reason: l[2], eventsHash: l[3], envelopeHash: l[4] },
    leafIndex, auditPath, header, blockHash, commit, changes };
}

// ---- genesis ---------------------------------------------------------------------------------------------

// The verifier trusts only the genesis' chain_id and validator keys (in genesis order), as ledger/genesis.py.
export async function parseGenesis(text) {
  let doc;
  try { doc = JSON.parse(text); } catch (e) { throw new CheckFailed("genesis", `genesis is not JSON: ${e.message}`); }
  if (typeName(doc) !== "object" || typeof doc.chain_id !== "string" || !doc.chain_id) throw new CheckFailed("genesis", "genesis has no chain_id");
  if (!Array.isArray(doc.validators) || !doc.validators.length) throw new CheckFailed("genesis", "genesis has no validators");
  const keys = doc.validators.map((v, i) => {
    try { return fromHex(v && v.public_key, `validators[${i}].public_key`, 32); } catch (e) { throw new CheckFailed("genesis", e.detail); }
  });
  const names = new Map(doc.validators.map((v, i) => [toHex(keys[i]), v.name || `validator ${i}`]));
  return { chainId: doc.chain_id, keys, names, fileHash: toHex(await sha256(new TextEncoder().encode(text))),
    setHash: toHex(await validatorSetHash(keys)) };
}

// ---- the checks --------------------------------------------------------------------------------------------

async function verifySeals(chainId, height, blockHash, seals, validators, prefix, what) {
  const members = new Set(validators.map(toHex));
  const message = await sealMessage(chainId, height, blockHash);
  const seen = [];
  for (const [i, seal] of seals.entries()) {
    const v = toHex(seal.validator);
    if (!members.has(v)) fail(`${prefix}_unknown_validator`, `${what}[${i}] is by ${v}, not a validator of the set in force at height ${height}`);
    if (seen.includes(v)) fail(`${prefix}_duplicate_validator`, `${what}[${i}]: validator ${v} sealed twice`);
    if (!(await ed25519Verify(seal.validator, message, seal.signature))) {
      fail(`${prefix}_signature`, `${what}[${i}] by ${v} does not verify for block ${toHex(blockHash)} at height ${height}`);
    }
    seen.push(v);
  }
  const need = quorum(validators.length);
  if (seen.length < need) fail(`${prefix}_quorum`, `${seen.length} distinct validator seals at height ${height}; ${validators.length} validators need ${need}`);
  return seen;
}

async function walkChanges(chainId, genesisKeys, changes, height) {
  const change = (check, i, m) => fail(`validator_set_change_${check}`, `validator_set_changes[${i}]: ${m}`);
  for (let i = 1; i < changes.length; i++) {
    if (changes[i].header.height <= changes[i - 1].header.height) change("order", i, "heights do not increase");
  }
  let current = genesisKeys;
  for (const [i, c] of changes.entries()) {
    const h = c.header;
    if (h.chainId !== chainId) change("chain_id", i, `header is for chain ${JSON.stringify(h.chainId)}; the genesis is ${JSON.stringify(chainId)}`);
    if (h.height >= height) change("height", i, `header height ${h.height} is not below the proven height ${height}`);
    const currentHash = await validatorSetHash(current);
    if (!equal(h.vsh, currentHash)) change("set_hash", i, `header names validator set ${toHex(h.vsh)}; the set in force hashes to ${toHex(currentHash)}`);
    if (!c.validators.length || new Set(c.validators.map(toHex)).size !== c.validators.length) change("validators", i, "the new set is empty or repeats a key");
    const newHash = await validatorSetHash(c.validators);
    if (!equal(h.nextVsh, newHash)) change("next_hash", i, `header names next set ${toHex(h.nextVsh)}; the listed validators hash to ${toHex(newHash)}`);
    if (equal(h.nextVsh, h.vsh)) change("no_change", i, `header at height ${h.height} names the same set for the next height`);
    await verifySeals(h.chainId, h.height, await H("carecoin/v1/header", h.raw), c.commit, current,
      "validator_set_change", `validator_set_changes[${i}].commit`);
    current = c.validators;
  }
  return current;
}

// Verify a receipt (parsed JSON) against a genesis from parseGenesis. onCheck(name, detail) is called after each
// check passes, in the order of ledger/receipt.py; a failure throws CheckFailed naming the check.
export async function verifyReceipt(receipt, genesis, onCheck = () => {}) {
  const p = parseReceipt(receipt);
  onCheck("format", "version 2, every field canonical");
  if (p.chainId !== genesis.chainId) fail("chain_id", `receipt is for chain ${JSON.stringify(p.chainId)}; the genesis is ${JSON.stringify(genesis.chainId)}`);
  const txHash = await H("carecoin/v1/tx", encode(p.tx.body));
  if (!equal(p.txHash, txHash)) fail("tx_hash", `tx_hash field is ${toHex(p.txHash)}; the tx body hashes to ${toHex(txHash)}`);
  if (!equal(p.leaf.txHash, txHash)) fail("tx_hash", `leaf names tx ${toHex(p.leaf.txHash)}; the tx body hashes to ${toHex(txHash)}`);
  onCheck("tx_hash", `the tx body hashes to ${toHex(txHash)}, the leaf's tx_hash`);
  if (!p.tx.sigs.length && !p.tx.system) fail("tx_signature", "transaction has no signature");
  if (p.tx.sigs.length && !equal(p.tx.sigs[0][0], p.tx.sender)) fail("tx_signature", `first signature is by ${short(p.tx.sigs[0][0])}; expected the sender ${short(p.tx.sender)}`);
  const signers = new Set();
  for (const [pk, sig] of p.tx.sigs) {
    if (signers.has(toHex(pk))) fail("tx_signature", `key ${short(pk)} signed twice`);
    signers.add(toHex(pk));
    if (!(await ed25519Verify(pk, txHash, sig))) fail("tx_signature", `signature by ${short(pk)} does not verify over the tx hash`);
  }
  onCheck("tx_signature", `${p.tx.sigs.length} tx signature(s) valid, the sender's first`);
  const envelopeHash = await H("carecoin/v1/envelope", p.tx.raw);
  if (!equal(envelopeHash, p.leaf.envelopeHash)) fail("envelope_hash", `tx envelope bytes hash to ${toHex(envelopeHash)}; the leaf's envelope_hash is ${toHex(p.leaf.envelopeHash)}`);
  onCheck("envelope_hash", "the leaf binds these exact envelope bytes");
  if (p.leaf.status !== p.status || p.leaf.reason !== p.reason) {
    fail("result", `result says status ${p.status} reason ${JSON.stringify(p.reason)}; the leaf says status ${p.leaf.status} reason ${JSON.stringify(p.leaf.reason)}`);
  }
  onCheck("result", `the leaf says status ${p.status} reason ${JSON.stringify(p.reason)}`);
  const eventsHash = await H("carecoin/v1/events", p.events);
  if (!equal(eventsHash, p.leaf.eventsHash)) fail("events", `events hash to ${toHex(eventsHash)}; the leaf's events_hash is ${toHex(p.leaf.eventsHash)}`);
  let events;
  try { events = decode(p.events); } catch (e) { fail("events", `events are not canonical msgpack: ${e.message}`); }
  if (!Array.isArray(events) || !events.every((e) => Array.isArray(e) && e.length && typeof e[0] === "string")) {
    fail("events", "events must be an array of [kind: str, ...fields]");
  }
  onCheck("events", `${events.length} event(s) hash to the leaf's events_hash`);
  const blockHash = await H("carecoin/v1/header", p.header.raw);
  if (!equal(blockHash, p.blockHash)) fail("block_hash", `block_hash field is ${toHex(p.blockHash)}; the header hashes to ${toHex(blockHash)}`);
  onCheck("block_hash", `the header hashes to ${toHex(blockHash)}`);
  const size = p.header.txCount;
  if (p.leafIndex >= size) fail("leaf_index", `leaf_index ${p.leafIndex} is outside the block's ${size} transactions`);
  try {
    await verifyInclusion(p.leafRaw, p.leafIndex, size, p.auditPath, p.header.resultsRoot);
  } catch (e) {
    fail("audit_path", `leaf at index ${p.leafIndex} of ${size} does not reach results_root ${short(p.header.resultsRoot)} with a ${p.auditPath.length}-hash path: ${e.message}`);
  }
  onCheck("audit_path", `leaf ${p.leafIndex} of ${size} reaches results_root with ${p.auditPath.length} hashes`);
  const set = await walkChanges(genesis.chainId, genesis.keys, p.changes, p.header.height);
  onCheck("validator_set_changes", `${p.changes.length} validator-set change(s) walked from the genesis set`);
  const expected = await validatorSetHash(set);
  if (!equal(p.header.vsh, expected)) fail("validator_set_hash", `header names validator set ${toHex(p.header.vsh)}; after ${p.changes.length} change(s) the set in force at height ${p.header.height} hashes to ${toHex(expected)}`);
  onCheck("validator_set_hash", "the header names the set in force at its height");
  const sealedBy = await verifySeals(p.header.chainId, p.header.height, p.blockHash, p.commit, set, "commit", "commit");
  onCheck("commit", `${sealedBy.length} distinct validators of that set sealed the block`);
  for (const [what, value] of [["tx", p.tx.chainId], ["header", p.header.chainId]]) {
    if (value !== genesis.chainId) fail("chain_id", `${what} is for chain ${JSON.stringify(value)}; the genesis is ${JSON.stringify(genesis.chainId)}`);
  }
  onCheck("chain_id", `receipt, tx and header are for chain ${JSON.stringify(genesis.chainId)}`);
  return { txHash: toHex(txHash), height: p.header.height, timestampMs: p.header.timestampMs, status: p.status,
    reason: p.reason, kind: p.tx.kind, sender: toHex(p.tx.sender), nonce: p.tx.nonce, events,
    leafIndex: p.leafIndex, txCount: size, signers: sealedBy, setChanges: p.changes.length };
}
