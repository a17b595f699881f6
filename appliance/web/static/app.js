// The appliance's web page: sign in with an API key, ask with a streamed answer, read a citation
// in its document, rate the answer; admins see sources and jobs, auditors search the audit log.
// Everything the server sends is shown with textContent, never parsed as HTML.
"use strict";

const KEY = "appliance.key";
const $ = (selector) => document.querySelector(selector);
const state = { question: "", answer: "", citations: [] };

class ApiError extends Error {}

function headers(extra = {}) {
  return { Authorization: `Bearer ${sessionStorage.getItem(KEY)}`, ...extra };
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    message = body.message || (typeof body.detail === "string" ? body.detail : message);
  } catch (_) {
    // Not JSON: the status line is the best there is.
  }
  return new ApiError(message);
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  if (!response.ok) throw await failure(response);
  return response.json();
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}

function fillTable(table, rows) {
  const body = table.querySelector("tbody");
  body.replaceChildren(
    ...rows.map((cells) => {
      const row = element("tr");
      cells.forEach((cell) => row.append(element("td", cell)));
      return row;
    }),
  );
  if (!rows.length) {
    const row = element("tr");
    const cell = element("td", "nothing yet", "meta");
    cell.colSpan = table.querySelectorAll("th").length;
    row.append(cell);
    body.append(row);
  }
}

// --- signing in ---------------------------------------------------------------------------------

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    const me = await api("/v1/me");
    show(me);
  } catch (error) {
    sessionStorage.removeItem(KEY);
    $("#sign-in-error").textContent = `Sign-in failed: ${error.message}`;
  }
}

function show(me) {
  $("#sign-in-panel").hidden = true;
  $("#whoami").hidden = false;
  $("#who").textContent = `${me.user} (${me.role})`;
  document.body.dataset.role = me.role;
  document.querySelectorAll("[data-roles]").forEach((panel) => {
    panel.hidden = !panel.dataset.roles.split(" ").includes(me.role);
  });
  if (me.role === "admin") loadAdmin();
  if (me.role === "auditor") searchAudit();
}

function signOut() {
  sessionStorage.removeItem(KEY);
  location.reload();
}

// --- asking -------------------------------------------------------------------------------------

function citationLabel(citation) {
  const name = citation.path.split("/").pop();
  const where = citation.page ? `page ${citation.page}` : citation.section || "";
  return where ? `${name}, ${where}` : name;
}

function showCitations(citations) {
  $("#citations").replaceChildren(
    ...citations.map((citation) => {
      const item = element("li", null, citation.cited ? "cited" : "uncited");
      item.value = citation.number;
      const link = element("button", citationLabel(citation));
      link.type = "button";
      link.dataset.number = citation.number;
      link.addEventListener("click", () => showContext(citation));
      item.append(link, " ", element("span", `score ${citation.score.toFixed(3)}`, "score"));
      if (!citation.cited) item.append(" ", element("span", "(not cited)", "meta"));
      if (citation.supported === false) {
        const share = Math.round((citation.overlap || 0) * 100);
        item.append(" ", element("span", `(unsupported: ${share}% of the sentence's words)`, "warn"));
      }
      return item;
    }),
  );
}

// How the answer was made, and what in it no source contains (the server checked each number,
// name and quote of a generated answer against the passages).
function showAnswerNote(final) {
  const note = $("#answer-note");
  const parts = [];
  if (final.mode === "extract") parts.push("Quoted from the documents (no language model wrote this answer).");
  const claims = (final.unsupported_claims || []).map((claim) => `“${claim.text}”`);
  if (claims.length && final.claim_check === "flag") {
    parts.push(`⚠ Not in any source: ${claims.join(", ")}. Check them before you rely on them.`);
  } else if (claims.length && final.claim_check === "off") {
    parts.push(`Not in any source (unchecked answer): ${claims.join(", ")}.`);
  }
  note.textContent = parts.join(" ");
  note.className = claims.length ? "warn" : "meta";
  note.hidden = !parts.length;
}

// Reads OpenAI-style server-sent events: content deltas, then a last chunk carrying `sources`
// and the appliance's own fields (mode, unsupported_claims, ...).
async function streamAnswer(question, onDelta) {
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify({ messages: [{ role: "user", content: question }], stream: true }),
  });
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let final = { sources: [] };
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return final;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(chunk.error.message);
        const delta = chunk.choices[0].delta.content;
        if (delta) onDelta(delta);
        if (chunk.sources) final = chunk;
      }
    }
  }
  return final;
}

async function ask(event) {
  event.preventDefault();
  const question = $("#question").value.trim();
  if (!question) return;
  Object.assign(state, { question, answer: "", citations: [] });
  $("#ask-error").textContent = "";
  $("#answer-box").hidden = false;
  $("#context").hidden = true;
  $("#feedback").hidden = true;
  $("#feedback-status").textContent = "";
  document.querySelectorAll("#feedback button").forEach((button) => {
    button.disabled = false;
    button.classList.remove("chosen");
  });
  $("#citations").replaceChildren();
  $("#answer-note").hidden = true;
  const answer = $("#answer");
  answer.textContent = "";
  answer.classList.add("streaming");
  $("#ask").disabled = true;
  try {
    const final = await streamAnswer(question, (delta) => {
      state.answer += delta;
      answer.textContent = state.answer;
    });
    state.citations = final.sources;
    showCitations(state.citations);
    showAnswerNote(final);
    $("#feedback").hidden = false;
    $("#answer-box").dataset.done = "true";
  } catch (error) {
    $("#ask-error").textContent = error.message;
  } finally {
    answer.classList.remove("streaming");
    $("#ask").disabled = false;
  }
}

// A citation among its neighbours, so the reader sees what surrounds it (and on which page).
async function showContext(citation) {
  const box = $("#context");
  box.hidden = false;
  $("#context-title").textContent = `[${citation.number}] ${citation.path}`;
  const list = $("#context-chunks");
  list.replaceChildren(element("p", "loading…", "meta"));
  try {
    const chunks = await api(`/v1/documents/${encodeURIComponent(citation.doc_id)}/chunks`);
    const at = chunks.findIndex((chunk) => chunk.chunk_id === citation.chunk_id);
    const around = at < 0 ? chunks : chunks.slice(Math.max(0, at - 2), at + 3);
    list.replaceChildren(
      ...around.map((chunk) => {
        const cited = chunk.chunk_id === citation.chunk_id;
        const block = element("div", null, cited ? "chunk cited" : "chunk");
        const where = [chunk.page ? `page ${chunk.page}` : "", chunk.section || ""]
          .filter(Boolean)
          .join(" · ");
        block.append(element("div", where || `passage ${chunk.n + 1}`, "meta"));
        block.append(element("div", chunk.text));
        return block;
      }),
    );
    if (at < 0) list.prepend(element("p", "This passage has changed since the answer.", "error"));
    box.scrollIntoView({ behavior: "instant", block: "start" });
  } catch (error) {
    list.replaceChildren(element("p", error.message, "error"));
  }
}

async function rate(rating) {
  const status = $("#feedback-status");
  document.querySelectorAll("#feedback button").forEach((button) => (button.disabled = true));
  try {
    await api("/v1/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        question: state.question,
        answer: state.answer,
        chunk_ids: state.citations.map((citation) => citation.chunk_id),
        rating,
      }),
    });
    $(`#feedback-${rating}`).classList.add("chosen");
    status.textContent = "Thank you: recorded.";
  } catch (error) {
    status.textContent = error.message;
    document.querySelectorAll("#feedback button").forEach((button) => (button.disabled = false));
  }
}

// --- admins -------------------------------------------------------------------------------------

async function loadAdmin() {
  $("#admin-error").textContent = "";
  let sources, jobs;
  try {
    [sources, jobs] = await Promise.all([api("/v1/sources"), api("/v1/jobs")]);
  } catch (error) {
    $("#admin-error").textContent = error.message;
    return;
  }
  fillTable(
    $("#sources"),
    sources.map((source) => [source.source_id, source.path, when(source.created_at)]),
  );
  fillTable(
    $("#jobs"),
    jobs.map((job) => [
      job.job_id,
      job.kind,
      job.status,
      `${job.files_done}/${job.files_total}${job.failed ? ` (${job.failed} failed)` : ""}`,
      job.submitted_by,
      when(job.created_at),
    ]),
  );
}

// --- auditors -----------------------------------------------------------------------------------

function summary(record) {
  const p = record.payload;
  if (record.kind === "feedback") return `thumbs ${p.rating}: ${p.question}`;
  if (p.question) return p.question;
  if (p.path) return p.path;
  return JSON.stringify(p).slice(0, 160);
}

async function searchAudit(event) {
  if (event) event.preventDefault();
  const query = new URLSearchParams();
  for (const [name, value] of new FormData($("#audit-form"))) {
    if (value) query.set(name, value);
  }
  $("#audit-error").textContent = "";
  try {
    const records = await api(`/v1/audit/records?${query}`);
    fillTable(
      $("#audit-results"),
      records
        .reverse()
        .map((record) => [record.seq, record.at, record.kind, record.actor, summary(record)]),
    );
  } catch (error) {
    $("#audit-error").textContent = error.message;
  }
}

// --- wiring -------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("#sign-in-error").textContent = "";
    signIn($("#key").value.trim());
  });
  $("#sign-out").addEventListener("click", signOut);
  $("#ask-form").addEventListener("submit", ask);
  $("#question").addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey) return;
    event.preventDefault();
    $("#ask-form").requestSubmit();
  });
  $("#feedback-up").addEventListener("click", () => rate("up"));
  $("#feedback-down").addEventListener("click", () => rate("down"));
  $("#refresh-admin").addEventListener("click", loadAdmin);
  $("#audit-form").addEventListener("submit", searchAudit);
  if (sessionStorage.getItem(KEY)) signIn(sessionStorage.getItem(KEY));
});
