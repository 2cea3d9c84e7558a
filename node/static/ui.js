// The page: a customer's (or staff member's) account, history, tickets and orders through signed reads, and
// receipt verification in the browser against a genesis file the user chose (verify.js trusts no node).

import { Api, loadKey } from "./api.js";
import { CheckFailed, parseGenesis, verifyReceipt } from "./verify.js";

const STEPS = ["format", "tx_hash", "tx_signature", "envelope_hash", "result", "events", "block_hash", "audit_path",
  "validator_set_changes", "validator_set_hash", "commit", "chain_id"];
const GENESIS_STORE = "carecoin.genesis"; // the chosen genesis (public data) stays pinned across visits
const pageSize = Number(new URLSearchParams(location.search).get("history_page")) || undefined;
const api = new Api("", pageSize && Math.min(Math.max(Math.floor(pageSize), 1), 1000));
let genesis = null;

const $ = (sel) => document.querySelector(sel);
const el = (tag, text = "", cls = "") => { const e = document.createElement(tag); e.textContent = text; if (cls) e.className = cls; return e; };
const row = (cells) => { const tr = el("tr"); for (const c of cells) { const td = el("td"); td.append(c instanceof Node ? c : String(c)); tr.append(td); } return tr; };
const fill = (table, rows) => { const body = $(`${table} tbody`); body.replaceChildren(...rows); };
const readFile = (input) => input.files[0].text();

// ---- formatting ----------------------------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, "0");
export function when(ms) {
  if (!ms) return "—";
  const d = new Date(ms), off = -d.getTimezoneOffset();
  const zone = off === 0 ? "Z" : `${off > 0 ? "+" : "-"}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}${zone}`;
}
export function span(ms) {
  const s = Math.round(Math.abs(ms) / 1000), d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}
const coins = (n) => `${n} coins`;
const money = (minor, currency) => `${(minor / 100).toFixed(2)} ${currency}`;

// What a history item did to this account's coins, from its events.
function coinChange(item, me) {
  let delta = 0;
  for (const [kind, ...f] of item.events) {
    if (kind === "credited" && f[0] === me) delta += f[1];
    else if (["spent", "expired", "clawed_back"].includes(kind) && f[0] === me) delta -= f[1];
    else if (kind === "transferred") delta += (f[1] === me ? f[2] : 0) - (f[0] === me ? f[2] : 0);
  }
  return delta === 0 ? "" : `${delta > 0 ? "+" : ""}${delta}`;
}

// An SLA clock: met/late once done, else time left or overdue (paused while waiting on the customer).
function clock(doneAt, due, ticket) {
  if (doneAt) return doneAt <= due ? `met ${when(doneAt)}` : `late by ${span(doneAt - due)}`;
  if (["closed", "resolved"].includes(ticket.state)) return "—";
  if (ticket.paused_at) return `paused (waiting on customer), due ${when(due)}`;
  const left = due - Date.now();
  return left >= 0 ? `due in ${span(left)}` : `overdue by ${span(left)}${ticket.breached ? " (breach compensated)" : ""}`;
}

// ---- the account ---------------------------------------------------------------------------------------

function showError(where, err) { $(where).textContent = err.message; $(where).className = "error"; }

async function showAccount(me) {
  const a = await api.account(me);
  const facts = [["Account", me], ["Balance", coins(a.balance)], ["Debt", coins(a.debt)],
    ["Tier", `${a.tier} (${a.tier_earned} coins earned in the window)`],
    ["Privileges", Object.entries(a.privileges || {}).map(([p, until]) => `${p} until ${when(until)}`).join(", ") || "none"],
    ["Roles", (a.roles || []).map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join(", ") || "customer"],
    ["Branch", (a.customer && a.customer.branch) || a.branch || "—"], ["As of block", `${a.height} (${when(a.timestamp_ms)})`]];
  $("#account-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  const lots = a.expiring || []; // [[expires_at_ms, coins], ...]
  fill("#lots", lots.map(([expires, amount]) => row([when(expires), coins(amount)])));
  $("#lots").hidden = !lots.length;
  $("#lots-none").hidden = !!lots.length;
  $("#account").hidden = false;
  return a;
}

async function showHistory(me) {
  $("#history").hidden = false;
  const status = $("#history-status");
  status.textContent = "reading history…";
  const { items, complete } = await api.history(me, (page, n) => { status.textContent = `reading history: page ${page}, ${n} items…`; });
  status.textContent = complete ? `${items.length} transactions, back to the beginning of the chain`
    : `${items.length} transactions (stopped after the page limit; older ones not shown)`;
  fill("#history-table", items.map((it) => {
    const button = el("button", "verify");
    button.addEventListener("click", () => fetchAndVerify(it.tx_hash));
    const result = it.result === "applied" ? "applied" : `refused: ${it.reason} (${it.status_code})`;
    return row([when(it.timestamp_ms), it.height, it.kind, coinChange(it, me), result, button]);
  }));
  return items;
}

function ticketRow(t, last) {
  return row([t.ticket_id, `${t.category} (priority ${t.priority})`, t.state,
    clock(t.first_response_at, t.first_response_due, t), clock(t.resolved_at, t.resolution_due, t), last]);
}

async function showTicketsAndOrders(me, items) {
  const ids = (kind) => [...new Set(items.flatMap((it) => it.events.filter((e) => e[0] === kind && e[2] === me).map((e) => e[1])))];
  const listed = await api.list(`/v1/tickets?customer=${me}`);
  const tickets = listed ? listed.items : await Promise.all(ids("ticket_opened").map((id) => api.ticket(id)));
  fill("#tickets-table", tickets.map((t) => ticketRow(t, coins(t.compensated || 0))));
  $("#tickets").hidden = false;
  const listedOrders = await api.list(`/v1/orders?customer=${me}`);
  const orders = listedOrders ? listedOrders.items : await Promise.all(ids("order_created").map((id) => api.order(id)));
  fill("#orders-table", orders.map((o) => row([o.order_id, money(o.fiat_amount, o.currency), coins(o.coins_paid),
    coins(o.earned), o.status, o.refunded_at ? `${when(o.refunded_at)}: ${coins(o.coins_returned)} returned, `
      + `${money(o.fiat_refunded, o.currency)} back, ${coins(o.clawed_back)} taken back` : "—"])));
  $("#orders").hidden = false;
}

async function showQueue(account) {
  const branch = account.branch;
  const staff = (account.roles || []).some((r) => ["staff", "branch-admin"].includes(typeof r === "string" ? r : r.role));
  if (!staff || !branch) return;
  const listed = await api.list(`/v1/tickets?branch=${encodeURIComponent(branch)}`);
  if (!listed) return; // this node has no list route: the panel stays hidden
  fill("#queue-table", listed.items.map((t) => ticketRow(t, t.assignee ? t.assignee.slice(0, 16) + "…" : "unassigned")));
  $("#queue").hidden = false;
}

async function onKeyFile(input) {
  const status = $("#key-status");
  try {
    api.key = await loadKey(await readFile(input));
    input.value = ""; // nothing of the file stays in the form
    status.className = "muted";
    status.textContent = `signed in as ${api.key.account}`;
    const me = api.key.account;
    const account = await showAccount(me);
    const items = await showHistory(me);
    await showTicketsAndOrders(me, items);
    await showQueue(account);
  } catch (err) {
    showError("#key-status", err);
  }
}

// ---- receipts ------------------------------------------------------------------------------------------

function setGenesis(g, text) {
  genesis = g;
  localStorage.setItem(GENESIS_STORE, text);
  const names = [...g.names.values()].join(", ");
  $("#genesis-status").className = "muted";
  $("#genesis-status").textContent = `genesis of chain ${g.chainId}, ${g.keys.length} validators (${names}); `
    + `file fingerprint sha256 ${g.fileHash} — compare it with the one your operator publishes`;
}

async function onGenesisFile(input) {
  const text = await readFile(input);
  try { setGenesis(await parseGenesis(text), text); } catch (err) { genesis = null; showError("#genesis-status", err); }
}

// The step of STEPS a failing check belongs to (ledger/receipt.py's check names).
const stepOf = (check) => (check === "version" ? "format" : check === "leaf_index" ? "audit_path"
  : check.startsWith("validator_set_change_") ? "validator_set_changes" : check.startsWith("commit_") ? "commit" : check);

function showChecks(passed, failure) {
  const list = $("#checks");
  const items = passed.map(([name, detail]) => { const li = el("li", `${name}: ${detail}`, "passed"); li.dataset.check = name; return li; });
  if (failure) {
    const li = el("li", `${failure.check}: ${failure.detail}`, "failed");
    li.dataset.check = failure.check;
    items.push(li);
    const done = new Set([...passed.map(([n]) => n), stepOf(failure.check)]);
    for (const step of STEPS.filter((s) => !done.has(s))) {
      const skip = el("li", `${step}: not reached`, "skipped");
      skip.dataset.check = step;
      items.push(skip);
    }
  }
  list.replaceChildren(...items);
}

async function verifyText(text) {
  const verdict = $("#verdict");
  if (!genesis) { verdict.className = "verdict bad"; verdict.textContent = "choose the network's genesis file first"; return; }
  const passed = [];
  try {
    let receipt;
    if (!text.trimStart().startsWith("{")) {
      // a compact receipt is msgpack, not text: say what the page reads instead of a JSON parser's complaint
      throw new CheckFailed("format", "the file is not a JSON receipt (a compact msgpack receipt?): this page reads "
        + "the JSON form; check a compact file with `carecoin receipt verify FILE`, or fetch the receipt by its tx hash");
    }
    try { receipt = JSON.parse(text); } catch (e) { throw new CheckFailed("format", `the receipt is not JSON: ${e.message}`); }
    const v = await verifyReceipt(receipt, genesis, (name, detail) => passed.push([name, detail]));
    showChecks(passed, null);
    const outcome = v.status === 0 ? "applied" : `refused by a rule: ${v.reason} (status ${v.status})`;
    const signers = v.signers.map((s) => genesis.names.get(s) || s.slice(0, 16) + "…").join(", ");
    verdict.className = "verdict ok";
    verdict.textContent = `valid receipt: ${v.kind} tx ${v.txHash.slice(0, 16)}… committed in block ${v.height} `
      + `at ${when(v.timestampMs)} and ${outcome}; sealed by ${signers}`;
  } catch (err) {
    if (!(err instanceof CheckFailed)) throw err;
    showChecks(passed, err);
    verdict.className = "verdict bad";
    verdict.textContent = `invalid receipt: the ${err.check} check failed`;
  }
}

async function fetchAndVerify(txHash) {
  $("#tx-hash").value = txHash;
  try {
    await verifyText(JSON.stringify(await api.receipt(txHash.toLowerCase())));
  } catch (err) {
    $("#verdict").className = "verdict bad";
    $("#verdict").textContent = `could not fetch the receipt: ${err.message}`;
    $("#checks").replaceChildren();
  }
  $("#verify").scrollIntoView();
}

// ---- start ---------------------------------------------------------------------------------------------

async function start() {
  if (!window.isSecureContext || !crypto.subtle) { $("#insecure").hidden = false; return; }
  $("#key-file").addEventListener("change", (e) => onKeyFile(e.target));
  $("#genesis-file").addEventListener("change", (e) => onGenesisFile(e.target));
  $("#receipt-file").addEventListener("change", async (e) => verifyText(await readFile(e.target)));
  const zone = $("#verify"); // a receipt file dropped anywhere on the section is verified like a chosen one
  zone.addEventListener("dragover", (e) => e.preventDefault());
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    if (e.dataTransfer.files.length) verifyText(await e.dataTransfer.files[0].text());
  });
  $("#receipt-fetch").addEventListener("submit", (e) => { e.preventDefault(); fetchAndVerify($("#tx-hash").value.trim()); });
  const pinned = localStorage.getItem(GENESIS_STORE);
  if (pinned) parseGenesis(pinned).then((g) => setGenesis(g, pinned)).catch(() => localStorage.removeItem(GENESIS_STORE));
  try {
    const s = await api.status();
    $("#node-status").textContent = `chain ${s.chain_id} · block ${s.height} · node ${s.node}`;
  } catch (err) { showError("#node-status", err); }
  document.body.dataset.ready = "1";
}

start();
