/*
 * Helpmate chat widget: one script tag on any page opens a chat bubble that talks to `helpmate api`.
 *
 *   <script src="https://support.example.com/widget.js" data-key="hm_..." data-kb="demo" async></script>
 *
 * data-key   a customer key (`helpmate keys create --role customer --kb demo`); it is public by design:
 *            it only lets visitors chat on public knowledge bases, and each conversation is reached
 *            only with the secret the API returned when it started, which stays in this browser.
 * data-kb    the knowledge base that answers; data-title (optional) the panel's title;
 *            data-api (optional) the API's address, by default where this script came from.
 *
 * Why it is written this way: it runs inside other companies' pages, so everything lives in a
 * shadow root (no style leaks either way) and every text from the API (answers, passages, names)
 * is set with textContent, never parsed as HTML. Answers stream: the model's unchecked draft is
 * shown greyed while it is written, then replaced by the checked answer with its citations (and,
 * when passages were quoted instead of the draft, the API's note saying so). The
 * conversation (id and secret) is kept in localStorage, so it survives page loads. Once the
 * conversation has a ticket, the widget asks the API every few seconds for the team's replies
 * (`agent` messages) and shows them, with a dot on the closed bubble, until the ticket is closed.
 */
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector("script[data-key][src*='widget.js']");
  if (!script || window.__helpmateWidget) { return; }
  window.__helpmateWidget = true;
  var KEY = script.getAttribute("data-key");
  var KB = script.getAttribute("data-kb") || "default";
  var TITLE = script.getAttribute("data-title") || "Ask us anything";
  var API = (script.getAttribute("data-api") || new URL(script.src, location.href).origin).replace(/\/$/, "");
  var STORE = "helpmate-widget:" + API + ":" + KB;
  var POLL_MS = 5000;
  // Replies with nothing to rate: a receipt while a person has the conversation, a greeting or thanks in return.
  var UNRATED = ["with_person", "smalltalk"];
  var CSS = [
    ":host{all:initial;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2530}",
    ".bubble{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;",
    "background:#1f6feb;color:#fff;font-size:26px;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483646}",
    ".panel{position:fixed;right:20px;bottom:88px;width:360px;max-width:calc(100vw - 40px);height:520px;",
    "max-height:calc(100vh - 120px);display:none;flex-direction:column;background:#fff;border-radius:12px;",
    "box-shadow:0 8px 30px rgba(0,0,0,.25);overflow:hidden;z-index:2147483647}",
    ".panel.open{display:flex}",
    ".head{display:flex;align-items:center;gap:8px;padding:10px 12px;background:#1f6feb;color:#fff}",
    ".head strong{flex:1}.head button{background:rgba(255,255,255,.18);color:#fff;border:0;border-radius:6px;",
    "padding:4px 8px;cursor:pointer;font:inherit;font-size:13px}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;background:#f6f8fa}",
    ".msg{max-width:88%;padding:8px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}",
    ".customer{align-self:flex-end;background:#1f6feb;color:#fff}",
    ".assistant{align-self:flex-start;background:#fff;border:1px solid #d8dee4}",
    ".agent{align-self:flex-start;background:#fff8e6;border:1px solid #f0d48a}.who{font-size:12px;color:#57606a;margin-bottom:4px}",
    ".bubble.unread::after{content:'';position:absolute;top:4px;right:4px;width:12px;height:12px;border-radius:50%;background:#d1242f}",
    ".draft{color:#6e7781;font-style:italic}.why{font-size:12px;color:#57606a;margin-bottom:4px}.note{align-self:center;font-size:13px;color:#57606a;text-align:center}",
    ".error{align-self:stretch;background:#fff1f0;border:1px solid #ffc9c4;color:#86181d}",
    "ol.cites{margin:8px 0 0;padding-left:18px;font-size:13px;color:#424a53}",
    "ol.cites summary{cursor:pointer}ol.cites p{margin:4px 0;white-space:pre-wrap;color:#57606a}",
    ".rate{margin-top:6px;display:flex;gap:6px;align-items:center;font-size:13px;color:#57606a}",
    ".rate button{border:1px solid #d8dee4;background:#fff;border-radius:6px;cursor:pointer;padding:2px 8px}",
    "form{display:flex;gap:6px;padding:10px;border-top:1px solid #d8dee4;background:#fff}",
    "textarea{flex:1;resize:none;height:40px;border:1px solid #d0d7de;border-radius:8px;padding:8px;font:inherit}",
    "form button{border:0;border-radius:8px;background:#1f6feb;color:#fff;padding:0 14px;cursor:pointer;font:inherit}",
    "button:disabled{opacity:.5;cursor:default}"
  ].join("");

  var host = document.createElement("div");
  host.id = "helpmate-widget";
  var root = host.attachShadow({ mode: "open" });
  var style = document.createElement("style");
  style.textContent = CSS;
  root.appendChild(style);

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  var bubble = el("button", { "class": "bubble", type: "button", "aria-label": "Open chat", title: TITLE }, "\u{1F4AC}");
  var panel = el("div", { "class": "panel", role: "dialog", "aria-label": TITLE });
  var head = el("div", { "class": "head" });
  head.appendChild(el("strong", {}, TITLE));
  var person = el("button", { type: "button" }, "Talk to a person");
  var close = el("button", { type: "button", "aria-label": "Close chat" }, "\u2715");
  head.appendChild(person);
  head.appendChild(close);
  var log = el("div", { "class": "log", "aria-live": "polite" });
  var form = el("form", {});
  var input = el("textarea", { placeholder: "Type your question\u2026", "aria-label": "Your message", maxlength: "8000" });
  var send = el("button", { type: "submit" }, "Send");
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(form);
  root.appendChild(panel);
  root.appendChild(bubble);

  function saved() {
    try { return JSON.parse(localStorage.getItem(STORE) || "null"); } catch (e) { return null; }
  }
  function remember(id, secret) {
    if (id && secret) { localStorage.setItem(STORE, JSON.stringify({ id: id, secret: secret })); }
  }
  function headers(withSecret) {
    var out = { "Authorization": "Bearer " + KEY, "Content-Type": "application/json" };
    var conversation = saved();
    if (withSecret && conversation) { out["X-Conversation-Secret"] = conversation.secret; }
    return out;
  }
  function scroll() { log.scrollTop = log.scrollHeight; }
  function note(text, kind) {
    var node = el("div", { "class": "msg " + (kind || "note") }, text);
    log.appendChild(node);
    scroll();
    return node;
  }
  async function problem(response) {
    try { return (await response.json()).error || {}; } catch (e) { return { message: "HTTP " + response.status }; }
  }

  function citeLabel(c) {
    return "[" + c.number + "] " + (c.heading || c.document) + " \u2014 " + c.document + (c.page ? ", page " + c.page : "");
  }

  var seen = 0, polling = null;  // the newest message id read from the API; the timer that looks for team replies

  function showAgent(message) {
    var node = el("div", { "class": "msg agent" });
    node.appendChild(el("div", { "class": "who" }, "Reply from our team"));
    node.appendChild(document.createTextNode(message.text));
    log.appendChild(node);
    if (!panel.classList.contains("open")) {
      bubble.classList.add("unread");
      bubble.setAttribute("aria-label", "Open chat (a new reply from our team)");
    }
    scroll();
  }

  async function pollReplies() {
    var conversation = saved();
    if (!conversation) { return; }
    try {
      // only messages not read yet: the whole transcript (its citations rebuilt) every 5 s would be waste
      var response = await fetch(API + "/v1/conversations/" + conversation.id + "?after=" + seen, { headers: headers(true) });
      if (!response.ok) { return; }
      var data = await response.json();
      data.messages.forEach(function (m) {
        seen = Math.max(seen, m.id);
        if (m.role === "agent") { showAgent(m); }
      });
      if (!data.ticket || data.ticket.status === "closed") { clearInterval(polling); polling = null; }
    } catch (e) { /* offline for a moment: the next look tries again */ }
  }
  function watchForReplies() { if (!polling) { polling = setInterval(pollReplies, POLL_MS); } }

  // why: the API's note when the greyed draft the visitor watched was replaced by quoted passages.
  function finishAnswer(node, text, citations, messageId, why) {
    node.classList.remove("draft");
    node.textContent = "";
    if (why) { node.appendChild(el("div", { "class": "why" }, why)); }
    node.appendChild(document.createTextNode(text));
    if (citations && citations.length) {
      var list = el("ol", { "class": "cites" });
      citations.forEach(function (c) {
        var item = el("li", {});
        var details = el("details", {});
        details.appendChild(el("summary", {}, citeLabel(c)));
        details.appendChild(el("p", {}, c.text));
        item.appendChild(details);
        list.appendChild(item);
      });
      node.appendChild(list);
    }
    if (messageId) { node.appendChild(ratingRow(messageId)); }
    scroll();
  }

  function ratingRow(messageId) {
    var row = el("div", { "class": "rate" });
    row.appendChild(el("span", {}, "Was this helpful?"));
    [["up", "\u{1F44D}", "Helpful"], ["down", "\u{1F44E}", "Not helpful"]].forEach(function (choice) {
      var button = el("button", { type: "button", "aria-label": choice[2], title: choice[2] }, choice[1]);
      button.addEventListener("click", function () { rate(row, messageId, choice[0]); });
      row.appendChild(button);
    });
    return row;
  }

  async function rate(row, messageId, rating) {
    var conversation = saved();
    if (!conversation) { return; }
    row.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    var response = await fetch(API + "/v1/conversations/" + conversation.id + "/feedback", {
      method: "POST", headers: headers(true), body: JSON.stringify({ message_id: messageId, rating: rating })
    });
    if (response.ok) {
      row.textContent = "Thanks for your feedback.";
    } else {
      row.textContent = (await problem(response)).message || "Your feedback could not be sent.";
    }
  }

  async function ask(text) {
    var conversation = saved();
    var body = { model: "helpmate/" + KB, messages: [{ role: "user", content: text }], stream: true, channel: "widget" };
    if (conversation) { body.conversation_id = conversation.id; body.conversation_secret = conversation.secret; }
    note(text, "customer");
    var answer = note("\u2026", "assistant draft");
    send.disabled = true;
    try {
      var response = await fetch(API + "/v1/chat/completions", { method: "POST", headers: headers(false), body: JSON.stringify(body) });
      if (!response.ok) {
        var error = await problem(response);
        if (error.code === "conversation_secret_required") { localStorage.removeItem(STORE); }
        answer.className = "msg error";
        answer.textContent = error.message || "The assistant could not answer.";
        return;
      }
      await readStream(response, answer);
    } catch (e) {
      answer.className = "msg error";
      answer.textContent = "The connection to our assistant was lost; please try again.";
    } finally {
      send.disabled = false;
      input.focus();
    }
  }

  async function readStream(response, answer) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "", draft = "", content = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) { break; }
      buffer += decoder.decode(chunk.value, { stream: true });
      var events = buffer.split("\n\n");
      buffer = events.pop();
      for (var i = 0; i < events.length; i++) {
        var line = events[i].split("\n").filter(function (l) { return l.indexOf("data:") === 0; }).map(function (l) { return l.slice(5).trim(); }).join("");
        if (!line || line === "[DONE]") { continue; }
        var data = JSON.parse(line);
        var extra = data.helpmate || {};
        if (data.error) {
          var where = data.error.helpmate || {};
          remember(where.conversation_id, where.conversation_secret);
          answer.className = "msg error";
          answer.textContent = data.error.message;
          return;
        }
        remember(extra.conversation_id, extra.conversation_secret);
        if (extra.draft) { draft += extra.draft; answer.textContent = draft; scroll(); }
        var delta = (data.choices && data.choices[0] && data.choices[0].delta) || {};
        if (delta.content) { content += delta.content; }
        if (data.choices && data.choices[0] && data.choices[0].finish_reason) {
          // A person has the conversation and told the visitor so above: the receipt is not repeated.
          if (extra.repeated) { answer.remove(); continue; }
          var rated = UNRATED.indexOf(extra.kind) >= 0 ? null : extra.message_id;
          finishAnswer(answer, content, extra.citations, rated, draft ? extra.note : null);
          if (extra.ticket && extra.ticket.id) { watchForReplies(); }  // the reply itself says a person will answer
        }
      }
    }
  }

  async function restore() {
    var conversation = saved();
    if (!conversation) { note("Hello! Ask a question about our products, orders, shipping or returns."); return; }
    var response = await fetch(API + "/v1/conversations/" + conversation.id, { headers: headers(true) });
    if (!response.ok) {
      localStorage.removeItem(STORE);
      note("Hello! Ask a question about our products, orders, shipping or returns.");
      return;
    }
    var data = await response.json();
    data.messages.forEach(function (m) {
      seen = Math.max(seen, m.id);
      if (m.role === "customer") { note(m.text, "customer"); }
      else if (m.role === "agent") { showAgent(m); }
      else { finishAnswer(note("", "assistant"), m.text, m.citations, UNRATED.indexOf(m.kind) >= 0 ? null : m.id); }
    });
    if (data.ticket && data.ticket.status !== "closed") { watchForReplies(); }
  }

  async function handover() {
    var conversation = saved();
    if (!conversation) { return ask("I would like to talk to a person."); }
    person.disabled = true;
    var response = await fetch(API + "/v1/conversations/" + conversation.id + "/handover", { method: "POST", headers: headers(true), body: "{}" });
    person.disabled = false;
    if (response.ok) {
      var ticket = (await response.json()).ticket;
      note((ticket.created ? "We've asked a member of our team to take over" : "Your request is already with our team") +
           " (ticket #" + ticket.id + ").");
      watchForReplies();
    } else {
      note((await problem(response)).message || "Our team could not be reached; please try again.", "error");
    }
  }

  var restored = false;
  bubble.addEventListener("click", function () {
    var open = panel.classList.toggle("open");
    if (open) { bubble.classList.remove("unread"); }
    bubble.setAttribute("aria-label", open ? "Close chat" : "Open chat");
    if (open && !restored) { restored = true; restore(); }
    if (open) { input.focus(); scroll(); }
  });
  close.addEventListener("click", function () { panel.classList.remove("open"); bubble.setAttribute("aria-label", "Open chat"); });
  person.addEventListener("click", handover);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || send.disabled) { return; }
    input.value = "";
    ask(text);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });

  function mount() { document.body.appendChild(host); }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
