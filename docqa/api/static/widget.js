/*!
 * docqa chat widget: answers from your documents, with their sources.
 *
 * Embed with one tag:
 *   <script src="https://docs.example.com/widget.js" data-key="WIDGET_KEY"
 *           data-collection="support" async></script>
 * Optional attributes: data-title (panel heading), data-color (accent colour), data-api (API base URL,
 * default: where this script came from), data-open="true" (start opened), data-placeholder.
 *
 * Plain JavaScript, no build step. Everything lives in a shadow root, so the page's styles do not
 * leak in and ours do not leak out. Text from documents and from the model is only ever inserted as
 * text (textContent / text nodes), never parsed as HTML: a poisoned document cannot inject markup.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script) {
    var candidates = document.querySelectorAll("script[data-key][data-collection][src*='widget.js']");
    script = candidates[candidates.length - 1];
  }
  if (!script) return;

  var data = script.dataset;
  var cfg = {
    key: (data.key || "").trim(),
    collection: (data.collection || "").trim(),
    title: data.title || "Ask a question",
    placeholder: data.placeholder || "Type your question…",
    api: (data.api || new URL(script.src, location.href).origin).replace(/\/+$/, ""),
    color: data.color || "#1f5fd1",
    open: data.open === "true",
  };
  if (!cfg.key || !cfg.collection) {
    console.error("docqa widget: the script tag needs data-key and data-collection attributes");
    return;
  }
  if (!(window.CSS && CSS.supports && CSS.supports("color", cfg.color))) cfg.color = "#1f5fd1";

  var instanceId = "docqa-" + cfg.collection + "-" + cfg.key.slice(3, 15);
  if (document.querySelector("[data-docqa-widget='" + CSS.escape(instanceId) + "']")) return; // embedded twice

  var MAX_QUESTION = 2000;
  var MAX_QUOTE = 1200;
  var STORAGE_KEY = "docqa-widget:" + instanceId;

  // ---- state kept for the page session (sessionStorage: per tab, gone when the tab closes) ----------
  var state = load() || { conversationId: null, messages: [] };

  function load() {
    try {
      var raw = sessionStorage.getItem(STORAGE_KEY);
      return raw ? JSON.parse(raw) : null;
    } catch (e) {
      return null; // storage disabled (private mode, sandboxed frame): the chat still works, just not across reloads
    }
  }

  function save() {
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(state));
    } catch (e) {
      /* storage full or disabled: keep the conversation in memory only */
    }
  }

  // ---- DOM helpers: every piece of text goes through textContent ----------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        if (name === "text") node.textContent = attrs[name];
        else if (name === "className") node.className = attrs[name];
        else node.setAttribute(name, attrs[name]);
      });
    }
    (children || []).forEach(function (child) {
      if (child) node.appendChild(child);
    });
    return node;
  }

  function icon(paths, size) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", size || "24");
    svg.setAttribute("height", size || "24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    paths.forEach(function (d) {
      var p = document.createElementNS(ns, "path");
      p.setAttribute("d", d);
      svg.appendChild(p);
    });
    return svg;
  }

  var ICON_CHAT = ["M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"];
  var ICON_CLOSE = ["M6 6l12 12M18 6L6 18"];
  var ICON_NEW = ["M12 5v14M5 12h14"];
  var ICON_SEND = ["M4 12l16-8-6 16-2-6z"];
  var ICON_STOP = ["M7 7h10v10H7z"];

  var CSS_TEXT = [
    ":host{all:initial}",
    "*{box-sizing:border-box}",
    ".root{--accent:" + "var(--docqa-accent);font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330}",
    ".launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border-radius:50%;border:0;",
    "background:var(--accent);color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center}",
    ".launcher svg,.iconbtn svg,.send svg{fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}",
    ".launcher:hover{filter:brightness(1.08)}",
    "button:focus-visible,textarea:focus-visible,summary:focus-visible,.log:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}",
    ".panel{position:fixed;right:20px;bottom:88px;z-index:2147483000;width:380px;max-width:calc(100vw - 40px);height:560px;",
    "max-height:calc(100vh - 110px);display:flex;flex-direction:column;background:#fff;border-radius:14px;overflow:hidden;",
    "box-shadow:0 12px 40px rgba(0,0,0,.28);border:1px solid #d9dde5}",
    ".panel[hidden]{display:none}",
    ".head{display:flex;align-items:center;gap:6px;padding:12px 10px 12px 16px;background:var(--accent);color:#fff}",
    ".head h2{flex:1;margin:0;font-size:16px;font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    ".iconbtn{border:0;background:transparent;color:#fff;width:36px;height:36px;border-radius:8px;cursor:pointer;display:flex;align-items:center;justify-content:center}",
    ".iconbtn:hover{background:rgba(255,255,255,.18)}",
    ".log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px;background:#f6f7f9}",
    ".hint{color:#5b6475;font-size:14px;text-align:center;margin:auto 8px}",
    ".msg{max-width:88%;padding:9px 12px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere}",
    ".user{align-self:flex-end;background:var(--accent);color:#fff;border-bottom-right-radius:4px}",
    ".bot{align-self:flex-start;background:#fff;border:1px solid #e1e4ea;border-bottom-left-radius:4px}",
    ".error{align-self:stretch;background:#fff4f2;border:1px solid #f2c4bb;color:#8a2a17;font-size:14px}",
    ".note{color:#5b6475;font-size:13px;margin:0 0 6px}",
    ".cite{font:inherit;font-size:12px;font-weight:600;border:0;background:#e8eefb;color:#1a3f8f;border-radius:4px;",
    "padding:0 4px;margin:0 1px;cursor:pointer;vertical-align:super;line-height:1.2}",
    ".sources{margin:8px 0 0;padding:8px 0 0;border-top:1px solid #e6e9ef;white-space:normal}",
    ".sources h3{margin:0 0 4px;font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.04em;color:#5b6475}",
    ".sources ol{list-style:none;margin:0;padding:0;display:flex;flex-direction:column;gap:4px}",
    "details{border:1px solid #e1e4ea;border-radius:8px;background:#fafbfc}",
    "summary{cursor:pointer;padding:5px 8px;font-size:13px;color:#1a3f8f;overflow-wrap:anywhere}",
    "mark{background:#fff1a8;color:inherit;padding:0 1px;border-radius:2px}",
    "blockquote{margin:0;padding:6px 10px 8px;font-size:13px;color:#39404d;white-space:pre-wrap;border-top:1px solid #e1e4ea;max-height:220px;overflow-y:auto}",
    ".typing::after{content:'…';animation:blink 1s steps(2,start) infinite}",
    "@keyframes blink{to{visibility:hidden}}",
    "form{display:flex;gap:8px;align-items:flex-end;padding:10px;border-top:1px solid #e1e4ea;background:#fff}",
    "textarea{flex:1;resize:none;font:inherit;color:inherit;border:1px solid #c4cad6;border-radius:10px;padding:8px 10px;",
    "min-height:40px;max-height:120px;background:#fff}",
    ".send{width:40px;height:40px;border:0;border-radius:10px;background:var(--accent);color:#fff;cursor:pointer;",
    "display:flex;align-items:center;justify-content:center;flex:none}",
    ".send:disabled{opacity:.5;cursor:default}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    "@media (max-width:480px){.panel{right:0;bottom:0;left:0;top:0;width:100%;max-width:none;height:100%;",
    "max-height:none;border-radius:0;border:0}.root.open .launcher{display:none}textarea{font-size:16px}}",
    "@media (prefers-reduced-motion:reduce){.typing::after{animation:none}}",
  ].join("");

  // ---- build the widget --------------------------------------------------------------------------
  // A custom element as host: page rules aimed at div, button, etc. do not match it, and `all: initial`
  // (important, inline) undoes broader ones (`*`, transforms that would break position: fixed).
  var host = el("docqa-widget", { "data-docqa-widget": instanceId });
  host.style.setProperty("all", "initial", "important");
  host.style.setProperty("--docqa-accent", cfg.color);
  var shadow = host.attachShadow({ mode: "open" });
  shadow.appendChild(el("style", { text: CSS_TEXT }));

  var panelId = "docqa-panel";
  var titleId = "docqa-title";
  var launcher = el("button", {
    className: "launcher",
    type: "button",
    "aria-label": "Open chat: " + cfg.title,
    "aria-expanded": "false",
    "aria-controls": panelId,
  }, [icon(ICON_CHAT, "26")]);

  var newBtn = el("button", { className: "iconbtn", type: "button", "aria-label": "New conversation", title: "New conversation" }, [icon(ICON_NEW, "20")]);
  var closeBtn = el("button", { className: "iconbtn", type: "button", "aria-label": "Close chat", title: "Close" }, [icon(ICON_CLOSE, "20")]);
  var log = el("div", { className: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation", tabindex: "0" });
  var input = el("textarea", {
    rows: "1",
    maxlength: String(MAX_QUESTION),
    placeholder: cfg.placeholder,
    "aria-label": "Your question",
  });
  var sendBtn = el("button", { className: "send", type: "submit", "aria-label": "Send question", title: "Send" }, [icon(ICON_SEND, "20")]);
  var form = el("form", {}, [input, sendBtn]);
  var panel = el("div", {
    className: "panel",
    id: panelId,
    role: "dialog",
    "aria-modal": "false",
    "aria-labelledby": titleId,
    hidden: "",
  }, [
    el("div", { className: "head" }, [el("h2", { id: titleId, text: cfg.title }), newBtn, closeBtn]),
    log,
    form,
  ]);
  var rootEl = el("div", { className: "root" }, [panel, launcher]);
  shadow.appendChild(rootEl);

  function mount() {
    document.body.appendChild(host);
    renderAll();
    if (cfg.open) openPanel(false);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  // ---- open / close, keyboard --------------------------------------------------------------------
  function openPanel(focus) {
    panel.hidden = false;
    rootEl.classList.add("open");
    launcher.replaceChildren(icon(ICON_CLOSE, "24"));
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close chat: " + cfg.title);
    scrollToEnd();
    if (focus !== false) input.focus();
  }

  function closePanel() {
    panel.hidden = true;
    rootEl.classList.remove("open");
    launcher.replaceChildren(icon(ICON_CHAT, "26"));
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open chat: " + cfg.title);
    launcher.focus();
  }

  launcher.addEventListener("click", function () {
    if (panel.hidden) openPanel();
    else closePanel();
  });
  closeBtn.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      e.preventDefault();
      closePanel();
    }
  });
  newBtn.addEventListener("click", function () {
    if (current) {
      current.discard = true; // a new conversation: drop the unfinished answer instead of keeping it
      current.abort();
    }
    state = { conversationId: null, messages: [] };
    save();
    renderAll();
    input.focus();
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  input.addEventListener("input", autosize);
  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  }

  // ---- rendering ---------------------------------------------------------------------------------
  function scrollToEnd() {
    log.scrollTop = log.scrollHeight;
  }

  function fileName(source) {
    var parts = String(source || "").split(/[\\/]/);
    return parts[parts.length - 1] || "document";
  }

  function sourceLabel(c) {
    var label = "[" + c.n + "] " + fileName(c.source);
    if (c.page_label) label += ", page " + c.page_label;
    else if (c.page !== null && c.page !== undefined) label += ", page " + c.page;
    if (c.heading) label += " — " + c.heading;
    return label;
  }

  /** Answer text with [n] markers turned into buttons that open the matching source. */
  function answerNodes(text, sourcesList) {
    var frag = document.createDocumentFragment();
    var re = /\[(\d{1,3})\]/g;
    var last = 0;
    var m;
    while ((m = re.exec(text))) {
      frag.appendChild(document.createTextNode(text.slice(last, m.index)));
      frag.appendChild(citeButton(Number(m[1]), sourcesList));
      last = re.lastIndex;
    }
    frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  function citeButton(n, sourcesList) {
    var btn = el("button", { className: "cite", type: "button", "aria-label": "Show source " + n, text: String(n) });
    btn.addEventListener("click", function () {
      var target = sourcesList && sourcesList.querySelector("details[data-n='" + n + "']");
      if (target) {
        target.open = true;
        target.querySelector("summary").focus();
        target.scrollIntoView({ block: "nearest" });
      }
    });
    return btn;
  }

  /** Where the evidence spans of passage ``n`` lie in its text (found by their words: the server's
   * offsets count from the start of the span's chunk, and a passage may join several chunks). */
  function spansIn(text, n, evidence) {
    var spans = [];
    (evidence || []).forEach(function (e) {
      if (e.n !== n || !e.text) return;
      var at = text.indexOf(e.text);
      if (at >= 0) spans.push([at, at + e.text.length]);
    });
    spans.sort(function (a, b) { return a[0] - b[0]; });
    return spans;
  }

  /** The passage with its evidence marked; a long passage is cut around the first span. */
  function quoteNodes(text, spans) {
    var from = 0;
    var to = text.length;
    if (to > MAX_QUOTE) {
      from = spans.length ? Math.max(0, Math.min(spans[0][0] - 200, to - MAX_QUOTE)) : 0;
      to = Math.min(text.length, from + MAX_QUOTE);
    }
    var frag = document.createDocumentFragment();
    if (from > 0) frag.appendChild(document.createTextNode("…"));
    var pos = from;
    spans.forEach(function (sp) {
      var a = Math.max(sp[0], pos);
      var b = Math.min(sp[1], to);
      if (b <= a) return;
      frag.appendChild(document.createTextNode(text.slice(pos, a)));
      frag.appendChild(el("mark", { text: text.slice(a, b) }));
      pos = b;
    });
    frag.appendChild(document.createTextNode(text.slice(pos, to)));
    if (to < text.length) frag.appendChild(document.createTextNode("…"));
    return frag;
  }

  function sourcesBlock(citations, title, evidence) {
    var list = el("ol");
    var opened = false;
    citations.forEach(function (c) {
      var text = String(c.text || "");
      var spans = spansIn(text, c.n, evidence);
      var details = el("details", { "data-n": String(c.n) }, [
        el("summary", { text: sourceLabel(c) }),
        el("blockquote", {}, [quoteNodes(text, spans)]),
      ]);
      if (spans.length && !opened) details.open = opened = true; // the best support, shown without a click
      list.appendChild(el("li", {}, [details]));
    });
    return el("div", { className: "sources" }, [el("h3", { text: title || "Sources" }), list]);
  }

  function renderMessage(m) {
    if (m.role === "user") return el("div", { className: "msg user", text: m.text });
    if (m.role === "error") return el("div", { className: "msg error", role: "alert", text: m.text });
    var bubble = el("div", { className: "msg bot" });
    var citations = m.citations || [];
    var related = m.related || [];
    // Cited sources when the answer cites; otherwise the passages it was given, so the reader can check.
    var sources = citations.length
      ? sourcesBlock(citations, null, m.evidence)
      : related.length
        ? sourcesBlock(related, "Related passages")
        : null;
    if (m.passagesOnly) {
      bubble.appendChild(el("p", { className: "note", text: "The assistant is unavailable right now. These passages may help:" }));
    } else {
      bubble.appendChild(el("div", {}, [answerNodes(m.text || "", sources)]));
      if (m.quoted) bubble.appendChild(el("p", { className: "note", text: "Quoted from the source." }));
    }
    if (sources) bubble.appendChild(sources);
    return bubble;
  }

  function renderAll() {
    while (log.firstChild) log.removeChild(log.firstChild);
    if (!state.messages.length) {
      log.appendChild(el("p", { className: "hint", text: "Ask anything about our products and policies. Answers come from our documents, with sources." }));
    }
    state.messages.forEach(function (m) {
      log.appendChild(renderMessage(m));
    });
    scrollToEnd();
  }

  function push(m) {
    state.messages.push(m);
    save();
    var hint = log.querySelector(".hint");
    if (hint) log.removeChild(hint);
    var node = renderMessage(m);
    log.appendChild(node);
    scrollToEnd();
    return node;
  }

  // ---- asking: POST /v1/chat, read the server-sent events as they arrive ---------------------------
  var current = null; // AbortController of the answer in progress

  function setBusy(busy) {
    sendBtn.replaceChildren(icon(busy ? ICON_STOP : ICON_SEND, "20"));
    sendBtn.setAttribute("aria-label", busy ? "Stop answer" : "Send question");
    sendBtn.title = busy ? "Stop" : "Send";
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (current) {
      current.abort();
      return;
    }
    var question = input.value.trim();
    if (!question) return;
    input.value = "";
    autosize();
    ask(question, true);
  });

  function errorText(status, body, headers) {
    var message = body && body.error && body.error.message;
    if (status === 429) {
      var wait = headers.get("Retry-After");
      return "Too many questions right now. Please try again" + (wait ? " in " + wait + " s." : " shortly.");
    }
    if (status === 503) return "The assistant is unavailable right now. Please try again in a minute.";
    if (status === 401 || status === 403) return "This chat is not set up for this page (" + (message || "access refused") + ").";
    return message || "Something went wrong (HTTP " + status + ").";
  }

  function ask(question, firstTry) {
    if (firstTry) push({ role: "user", text: question });
    var controller = new AbortController();
    current = controller;
    setBusy(true);
    var bubble = el("div", { className: "msg bot", "aria-busy": "true" });
    var textNode = document.createTextNode("");
    var typing = el("span", { className: "typing", "aria-hidden": "true" });
    bubble.appendChild(el("div", {}, [textNode, typing]));
    var hint = log.querySelector(".hint");
    if (hint) log.removeChild(hint);
    log.appendChild(bubble);
    scrollToEnd();

    function done() {
      if (current === controller) current = null;
      setBusy(false);
      if (bubble.parentNode) bubble.parentNode.removeChild(bubble);
    }

    fetch(cfg.api + "/v1/chat", {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      headers: {
        Authorization: "Bearer " + cfg.key,
        "Content-Type": "application/json",
        Accept: "text/event-stream",
      },
      body: JSON.stringify({
        question: question,
        collection: cfg.collection,
        conversation_id: state.conversationId || undefined,
        allow_passages_only: true,
      }),
      signal: controller.signal,
    })
      .then(function (res) {
        if (!res.ok) {
          return res
            .json()
            .catch(function () {
              return null;
            })
            .then(function (body) {
              var type = body && body.error && body.error.type;
              if (res.status === 404 && type === "conversation_not_found" && firstTry) {
                state.conversationId = null; // expired on the server: continue as a new conversation
                save();
                done();
                ask(question, false);
                return;
              }
              done();
              push({ role: "error", text: errorText(res.status, body, res.headers) });
            });
        }
        var passages = [];
        var checking = null; // the "Checking the answer…" note and the passages, until the answer comes
        return readEvents(res, {
          sources: function (d) {
            passages = d.citations || [];
            if (d.checking && passages.length && !textNode.data) {
              // Verify mode: the answer arrives whole once checked; meanwhile show what it is drawn from.
              typing.parentNode.removeChild(typing);
              checking = [
                el("p", { className: "note checking", role: "status", text: "Checking the answer…" }),
                sourcesBlock(passages, "Sources found"),
              ];
              checking.forEach(function (node) { bubble.appendChild(node); });
              scrollToEnd();
            }
          },
          meta: function (d) {
            if (d.conversation_id) {
              state.conversationId = d.conversation_id;
              save();
            }
          },
          token: function (d) {
            if (checking) {
              checking.forEach(function (node) { node.parentNode.removeChild(node); });
              checking = null;
            }
            textNode.appendData(d.text || "");
            scrollToEnd();
          },
          final: function (d) {
            done();
            push({
              role: "assistant",
              text: d.answer || "",
              citations: d.citations || [],
              evidence: d.evidence || [],
              quoted: d.mode === "quote",
              related: d.declined ? [] : passages,
              passagesOnly: d.answer === null,
            });
          },
          error: function (d) {
            done();
            push({ role: "error", text: (d.error && d.error.message) || "The answer was interrupted." });
          },
        }).then(function (finished) {
          if (!finished && bubble.parentNode) {
            var partial = textNode.data;
            done();
            if (partial) push({ role: "assistant", text: partial + " …", citations: [] });
          }
        });
      })
      .catch(function (err) {
        var partial = textNode.data;
        done();
        if (err && err.name === "AbortError") {
          if (partial && !controller.discard) push({ role: "assistant", text: partial + " …", citations: [] });
          return;
        }
        push({ role: "error", text: "Could not reach the assistant. Check your connection and try again." });
      });
  }

  /** Parse a text/event-stream body; resolves true once a final or error event was handled. */
  function readEvents(res, handlers) {
    var finished = false;
    function dispatch(block) {
      var event = "message";
      var dataLines = [];
      block.split(/\r?\n/).forEach(function (line) {
        if (!line || line.charAt(0) === ":") return;
        var idx = line.indexOf(":");
        var field = idx < 0 ? line : line.slice(0, idx);
        var value = idx < 0 ? "" : line.slice(idx + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") dataLines.push(value);
      });
      if (!dataLines.length || !handlers[event]) return;
      var payload;
      try {
        payload = JSON.parse(dataLines.join("\n"));
      } catch (e) {
        return; // not ours: ignore a malformed event rather than break the chat
      }
      handlers[event](payload);
      if (event === "final" || event === "error") finished = true;
    }
    function consume(buffer, flush) {
      var parts = buffer.split(/\r?\n\r?\n/);
      var rest = flush ? "" : parts.pop();
      parts.forEach(dispatch);
      if (flush && parts.length === 0 && buffer) dispatch(buffer);
      return rest;
    }
    if (!res.body || !res.body.getReader) {
      return res.text().then(function (text) {
        consume(text + "\n\n", true);
        return finished;
      });
    }
    var reader = res.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          buffer += decoder.decode();
          consume(buffer + "\n\n", true);
          return finished;
        }
        buffer = consume(buffer + decoder.decode(chunk.value, { stream: true }), false);
        return pump();
      });
    }
    return pump();
  }
})();
