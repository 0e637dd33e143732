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
  // How segmentsOf (below) reads ingest's table rows and code lines; defined first, because a conversation
  // restored from the page session is rendered while the script is still running, before later lines.
  var ROW_RE = /^[^|]*\S: [^|]* \| /;
  var PROMPT_RE = /^(?:\$|#|%|>|>>>) \S/;
  var LAYOUT_RE = /^[ \t]+\S|\S[ \t]{2,}\S/;
  var CODE_TOKEN_RE = /(?:^|\s)--?[A-Za-z]|(?:^|\s)(?:\.{1,2}|~)?\/[\w.-]|\w=\S|\b[A-Za-z_]\w*\([^()]*\)$|[{};\\]$/;
  var SENTENCE_END_RE = /[.!?:]$/;
  var MAX_COMMAND_WORDS = 16;
  var CELL_SEP = " | ";

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
    ".tablewrap{overflow-x:auto;margin:4px 0;white-space:normal}",
    "table{border-collapse:collapse;font-size:12px;line-height:1.35}",
    "th,td{border:1px solid #d9dde5;padding:2px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}",
    "th{background:#eef1f6;font-weight:600}",
    "tr.hit td{background:#fff1a8}",
    "pre{margin:4px 0;padding:6px 8px;background:#f0f2f5;border-radius:6px;overflow-x:auto;white-space:pre;",
    "font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#1d2330}",
    ".quoted{margin:4px 0;padding:2px 0 2px 10px;border-left:3px solid #d9dde5}",
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

  // ---- tables and code in a passage -------------------------------------------------------------
  // Ingest writes a table row as "Name: value | Name: value" under a header line of " | "-joined names,
  // and a list or code block as lines under the sentence that introduces it (ending in ":"). The rule,
  // the same as ui/structure.py's (docs/api.md): a run of rows is a table (the " | " line above it its
  // header); a line looks like code when it keeps layout (indented, or a run of inner spaces: ingest keeps
  // them only in code), starts with a prompt, or is command-shaped (at most 16 words, no sentence end, no
  // "term: definition", an option, path, name=value, call or a last "{ } ; \"); in a run of non-blank
  // lines outside tables, the lines under a lead-in (a line ending in ":", the first this holds for) are
  // code when at least half look like code, and so is a run right after code on the same test; elsewhere
  // lines that keep layout or start with a prompt are code.
  // (The patterns are defined at the top of this script: a conversation restored at load renders before here.)

  function keepsLayout(line) {
    return LAYOUT_RE.test(line) || PROMPT_RE.test(line);
  }

  function looksLikeCode(line) {
    if (keepsLayout(line)) return true;
    var t = line.trim();
    return !!t && !SENTENCE_END_RE.test(t) && t.indexOf(": ") < 0 &&
      t.split(/\s+/).length <= MAX_COMMAND_WORDS && CODE_TOKEN_RE.test(t);
  }

  function lineKinds(text, lines) {
    var line = function (i) { return text.slice(lines[i][0], lines[i][1]); };
    var kinds = lines.map(function (_, i) { return ROW_RE.test(line(i)) ? "row" : "text"; });
    for (var h = 1; h < lines.length; h++) {
      if (kinds[h] === "row" && kinds[h - 1] === "text" && line(h - 1).indexOf(CELL_SEP) >= 0) kinds[h - 1] = "header";
    }
    var blocks = []; // runs of non-blank lines outside tables
    lines.forEach(function (_, i) {
      if (kinds[i] !== "text" || !line(i).trim()) return;
      var last = blocks[blocks.length - 1];
      if (last && last[last.length - 1] === i - 1) last.push(i);
      else blocks.push([i]);
    });
    var previous = null;
    blocks.forEach(function (block) {
      var afterCode = !!previous && kinds[previous[previous.length - 1]] === "code";
      for (var k = previous ? previous[previous.length - 1] + 1 : 0; afterCode && k < block[0]; k++) {
        if (line(k).trim()) afterCode = false;
      }
      var bodies = [];
      for (var j = 0; j < block.length - 1; j++) {
        if (/:$/.test(line(block[j]).replace(/\s+$/, ""))) bodies.push(block.slice(j + 1));
      }
      if (afterCode) bodies.push(block);
      var body = null; // the lines under the first lead-in whose lines are code
      for (var b = 0; b < bodies.length && !body; b++) {
        var votes = bodies[b].filter(function (i) { return looksLikeCode(line(i)); }).length;
        if (2 * votes >= bodies[b].length) body = bodies[b];
      }
      if (body) {
        body.forEach(function (i) { kinds[i] = "code"; });
      } else {
        block.forEach(function (i) { if (keepsLayout(line(i))) kinds[i] = "code"; });
      }
      previous = block;
    });
    return kinds;
  }

  function tableOf(text, header, rows) {
    var columns = header ? text.slice(header[0], header[1]).split(CELL_SEP).map(function (c) { return c.trim(); }) : [];
    var parsed = rows.map(function (sp) {
      var cells = {};
      var column = -1;
      text.slice(sp[0], sp[1]).split(CELL_SEP).forEach(function (raw) {
        var cell = raw.trim();
        var name = null;
        columns.forEach(function (c) {
          if (c && cell.indexOf(c + ": ") === 0 && (name === null || c.length > name.length)) name = c;
        });
        if (name === null && cell.indexOf(": ") >= 0) {
          name = cell.slice(0, cell.indexOf(": "));
          columns.push(name);
        }
        var value = cell;
        if (name !== null) {
          column = columns.indexOf(name);
          value = cell.slice(name.length + 2);
        } else {
          column = columns.indexOf(cell) >= 0 ? columns.indexOf(cell) : column + 1; // by position
          if (column >= columns.length) columns.push("");
        }
        cells[column] = column in cells ? cells[column] + " " + value : value;
      });
      return { start: sp[0], end: sp[1], cells: cells };
    });
    parsed.forEach(function (r) {
      r.cells = columns.map(function (_, i) { return i in r.cells ? r.cells[i] : ""; });
    });
    return { kind: "table", start: header ? header[0] : rows[0][0], end: rows[rows.length - 1][1], columns: columns, rows: parsed };
  }

  /** The passage cut into text, table and code segments that cover it in order. */
  function segmentsOf(text) {
    var lines = [];
    var at = 0;
    text.split("\n").forEach(function (l) {
      lines.push([at, at + l.length]);
      at += l.length + 1;
    });
    var kinds = lineKinds(text, lines);
    var blankThenCode = function (i) {
      while (i < lines.length && !text.slice(lines[i][0], lines[i][1]).trim()) i++;
      return i < lines.length && kinds[i] === "code";
    };
    var found = [];
    var i = 0;
    while (i < lines.length) {
      var j;
      if (kinds[i] === "header" || kinds[i] === "row") {
        var header = kinds[i] === "header" ? lines[i] : null;
        j = header ? i + 1 : i;
        var rows = [];
        while (j < lines.length && kinds[j] === "row") rows.push(lines[j++]);
        if (rows.length) found.push(tableOf(text, header, rows));
        i = rows.length ? j : i + 1;
      } else if (kinds[i] === "code") {
        j = i;
        while (j + 1 < lines.length && (kinds[j + 1] === "code" || blankThenCode(j + 1))) j++;
        found.push({ kind: "code", start: lines[i][0], end: lines[j][1] });
        i = j + 1;
      } else {
        i++;
      }
    }
    var out = [];
    at = 0;
    found.forEach(function (seg) {
      if (seg.start > at) out.push({ kind: "text", start: at, end: seg.start });
      out.push(seg);
      at = seg.end;
    });
    if (at < text.length || !out.length) out.push({ kind: "text", start: at, end: text.length });
    return out;
  }

  /** ``text[a:b]`` as text nodes, the parts inside ``spans`` marked. */
  function markedNodes(text, spans, a, b) {
    var frag = document.createDocumentFragment();
    var pos = a;
    spans.forEach(function (sp) {
      var x = Math.max(sp[0], pos);
      var y = Math.min(sp[1], b);
      if (y <= x) return;
      frag.appendChild(document.createTextNode(text.slice(pos, x)));
      frag.appendChild(el("mark", { text: text.slice(x, y) }));
      pos = y;
    });
    frag.appendChild(document.createTextNode(text.slice(pos, b)));
    return frag;
  }

  /** A small table of the rows ``[from, to)`` touches; a row an evidence span touches is highlighted. */
  function tableNode(seg, spans, from, to) {
    var head = el("tr", {}, seg.columns.map(function (c) { return el("th", { scope: "col", text: c }); }));
    var body = el("tbody");
    seg.rows.forEach(function (row) {
      if (row.end <= from || row.start >= to) return;
      var hit = spans.some(function (sp) { return sp[0] < row.end && sp[1] > row.start; });
      body.appendChild(el("tr", hit ? { className: "hit" } : {}, row.cells.map(function (c) { return el("td", { text: c }); })));
    });
    return el("div", { className: "tablewrap" }, [el("table", {}, [el("thead", {}, [head]), body])]);
  }

  /** ``text[from:to]`` with its tables and code blocks shown as such; rows and code lines whole. */
  function structureNodes(text, spans, from, to, segs) {
    var frag = document.createDocumentFragment();
    (segs || segmentsOf(text)).forEach(function (seg) {
      if (seg.end <= from || seg.start >= to) return;
      if (seg.kind === "table") {
        frag.appendChild(tableNode(seg, spans, from, to));
      } else if (seg.kind === "code") {
        var a = Math.max(seg.start, text.lastIndexOf("\n", Math.max(seg.start, from) - 1) + 1);
        var nl = text.indexOf("\n", Math.min(seg.end, to));
        var b = nl < 0 ? seg.end : Math.min(nl, seg.end);
        frag.appendChild(el("pre", {}, [el("code", {}, [markedNodes(text, spans, a, b)])]));
      } else {
        var x = Math.max(seg.start, from);
        var y = Math.min(seg.end, to);
        while (x < y && text.charAt(x) === "\n") x++; // the line breaks beside a table or code block
        while (y > x && text.charAt(y - 1) === "\n") y--;
        if (y > x) frag.appendChild(markedNodes(text, spans, x, y));
      }
    });
    return frag;
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
    frag.appendChild(structureNodes(text, spans, from, to));
    if (to < text.length) frag.appendChild(document.createTextNode("…"));
    return frag;
  }

  /** A quoted answer whose evidence is a table row or code: "From FILE, page N:", the lead-in, the row as
   * a small table with its header (or the code), the citation; null for any other answer. The header and
   * the code's extent come from the cited passage the evidence lies in (else the evidence text alone). */
  function quotedStructure(m, sourcesList) {
    var best = (m.evidence || [])[0];
    if (!m.quoted || !best || !best.text) return null;
    var shown = best.lead ? best.lead + " … " + best.text : best.text;
    var text = m.text || "";
    var at = text.indexOf('"' + shown + '"');
    if (at < 0) return null;
    var source = best.text;
    var from = 0;
    var to = best.text.length;
    (m.citations || []).concat(m.related || []).some(function (c) {
      var found = c.n === best.n ? String(c.text || "").indexOf(best.text) : -1;
      if (found < 0) return false;
      source = String(c.text);
      from = found;
      to = found + best.text.length;
      return true;
    });
    var segs = segmentsOf(source);
    if (!segs.some(function (s) { return s.kind !== "text" && s.start < to && s.end > from; })) return null;
    var frag = document.createDocumentFragment();
    frag.appendChild(answerNodes(text.slice(0, at).replace(/\s+$/, ""), sourcesList));
    frag.appendChild(el("div", { className: "quoted" }, [
      best.lead ? el("div", { text: best.lead + " …" }) : null,
      structureNodes(source, [], from, to, segs),
    ]));
    frag.appendChild(answerNodes(text.slice(at + shown.length + 2).trim(), sourcesList));
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
      bubble.appendChild(el("div", {}, [quotedStructure(m, sources) || answerNodes(m.text || "", sources)]));
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
