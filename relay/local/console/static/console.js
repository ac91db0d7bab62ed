// Relay local console: draws the state machine graph (ELK layered layout, from elkjs) and keeps
// the execution page live from its server-sent event stream. No framework, no network access
// beyond the console itself; every value from the server is inserted as text, never as HTML,
// except the artifacts, which the server renders from Markdown and sanitises (nh3).
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const STATUS_LABELS = {
    IN_PROGRESS: "In progress", SUCCEEDED: "Succeeded", FAILED: "Failed",
    CAUGHT_ERROR: "Caught error", CANCELLED: "Cancelled", NOT_RUN: "Not run",
  };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  function formatDuration(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1000) return `${ms} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function formatTime(value) {
    if (!value) return "–";
    const date = typeof value === "number" ? new Date(value) : new Date(value);
    return isNaN(date) ? String(value) : date.toISOString().replace("T", " ").replace("Z", " UTC");
  }

  function pretty(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "string") {
      try { return JSON.stringify(JSON.parse(value), null, 2); } catch (e) { return value; }
    }
    return JSON.stringify(value, null, 2);
  }

  function usd(value) {
    if (value === null || value === undefined) return "not priced";
    return "$" + Number(value).toFixed(6);
  }

  // ----- the graph ----------------------------------------------------------------------------
  const measure = document.createElement("canvas").getContext("2d");
  function textWidth(text, font) {
    measure.font = font;
    return measure.measureText(text).width;
  }

  function wrapLabel(label) {
    // Long Choice conditions break at "and"/"or" so the graph stays narrow.
    return label.split(/ (?=and |or )/);
  }

  function nodeSize(node) {
    if (node.type === "Start" || node.type === "End") return { width: 64, height: 28 };
    const width = Math.max(textWidth(node.name, "600 13px system-ui, sans-serif"), node.detail ? textWidth(node.detail, "11px system-ui, sans-serif") : 0);
    return { width: Math.ceil(width) + 32, height: node.detail ? 48 : 34 };
  }

  function elkGraph(graph) {
    const byParent = new Map();
    for (const node of graph.nodes) {
      if (!byParent.has(node.parent)) byParent.set(node.parent, []);
      byParent.get(node.parent).push(node);
    }
    const scopeOf = new Map(graph.nodes.map((n) => [n.id, n.parent]));
    const edgesByScope = new Map();
    for (const edge of graph.edges) {
      const scope = scopeOf.get(edge.source) || "";
      if (!edgesByScope.has(scope)) edgesByScope.set(scope, []);
      const lines = edge.label ? wrapLabel(edge.label) : [];
      const labelWidth = Math.max(0, ...lines.map((l) => textWidth(l, "11px system-ui, sans-serif")));
      edgesByScope.get(scope).push({
        id: edge.id, sources: [edge.source], targets: [edge.target],
        labels: lines.length ? [{ text: lines.join("\n"), width: Math.ceil(labelWidth) + 8, height: lines.length * 14 + 4 }] : [],
      });
    }
    function build(id) {
      const children = (byParent.get(id) || []).map((node) => {
        const child = { id: node.id };
        if (byParent.has(node.id)) {
          Object.assign(child, build(node.id));
          child.layoutOptions = { "elk.padding": "[top=40,left=20,bottom=20,right=20]", "elk.direction": "DOWN" };
        } else {
          Object.assign(child, nodeSize(node));
        }
        return child;
      });
      return { children, edges: edgesByScope.get(id) || [] };
    }
    const root = build("");
    root.id = "root";
    root.layoutOptions = {
      "elk.algorithm": "layered", "elk.direction": "DOWN",
      "elk.layered.spacing.nodeNodeBetweenLayers": "36", "elk.spacing.nodeNode": "28",
      "elk.spacing.edgeLabel": "4", "elk.edgeLabels.inline": "false",
      "elk.layered.cycleBreaking.strategy": "DEPTH_FIRST", "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
      "elk.layered.nodePlacement.strategy": "NETWORK_SIMPLEX", "elk.edgeRouting": "ORTHOGONAL",
    };
    return root;
  }

  async function drawGraph(container, graph, onSelect) {
    if (typeof ELK === "undefined") {
      container.append(el("p", { class: "muted", text: "Graph layout unavailable (elkjs not loaded); see the definition and the event history." }));
      return { nodes: new Map(), edges: new Map() };
    }
    const layout = await new ELK().layout(elkGraph(graph));
    const byId = new Map(graph.nodes.map((n) => [n.id, n]));
    const width = Math.ceil(layout.width) + 2, height = Math.ceil(layout.height) + 2;
    const root = svg("svg", { viewBox: `-1 -1 ${width} ${height}`, width, height, role: "img", "aria-label": "state machine graph" });
    const defs = svg("defs");
    const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
    defs.append(marker);
    root.append(defs);
    const nodes = new Map(), edges = new Map();

    function drawScope(scope, parentGroup) {
      const edgeLayer = svg("g", { class: "edges" });  // under the nodes
      parentGroup.append(edgeLayer);
      for (const child of scope.children || []) {
        const node = byId.get(child.id);
        const group = svg("g", { transform: `translate(${child.x},${child.y})`, class: `node type-${node.type} NOT_RUN`, "data-id": node.id, "data-name": node.name });
        if (child.children && child.children.length) {
          group.classList.add("compound");
          group.append(svg("rect", { width: child.width, height: child.height, rx: 8 }));
          const title = svg("text", { x: 12, y: 20, class: "title" });
          title.textContent = `${node.name}${node.detail ? " · " + node.detail : ""}`;
          group.append(title);
          parentGroup.append(group);
          drawScope(child, group);
        } else {
          const round = node.type === "Start" || node.type === "End";
          group.append(svg("rect", { width: child.width, height: child.height, rx: round ? child.height / 2 : 6 }));
          const name = svg("text", { x: child.width / 2, y: node.detail ? 20 : child.height / 2 + 4, "text-anchor": "middle", class: "name" });
          name.textContent = node.name;
          group.append(name);
          if (node.detail) {
            const detail = svg("text", { x: child.width / 2, y: 37, "text-anchor": "middle", class: "detail" });
            detail.textContent = node.detail;
            group.append(detail);
          }
          parentGroup.append(group);
        }
        if (node.type !== "Start" && node.type !== "End") {
          group.setAttribute("tabindex", "0");
          group.addEventListener("click", (event) => { event.stopPropagation(); onSelect(node); });
          group.addEventListener("keydown", (event) => { if (event.key === "Enter") onSelect(node); });
          const title = svg("title");
          title.textContent = node.comment || node.name;
          group.append(title);
        }
        nodes.set(node.id, group);
      }
      for (const edge of scope.edges || []) {
        const group = svg("g", { class: "edge", "data-id": edge.id });
        for (const section of edge.sections || []) {
          const points = [section.startPoint, ...(section.bendPoints || []), section.endPoint];
          group.append(svg("path", { d: "M " + points.map((p) => `${p.x} ${p.y}`).join(" L "), "marker-end": "url(#arrow)" }));
        }
        for (const label of edge.labels || []) {
          const lines = label.text.split("\n");
          lines.forEach((line, index) => {
            const text = svg("text", { x: label.x + 4, y: label.y + 12 + index * 14, class: "edge-label" });
            text.textContent = line;
            group.append(text);
          });
        }
        edgeLayer.append(group);
        edges.set(edge.id, group);
      }
    }
    const top = svg("g");
    root.append(top);
    drawScope(layout, top);
    container.replaceChildren(root);
    return { nodes, edges };
  }

  function graphData() {
    const script = document.getElementById("graph-data");
    return script ? JSON.parse(script.textContent) : null;
  }

  // ----- the execution page ------------------------------------------------------------------
  function executionPage(page, graph) {
    const state = { view: null, selected: null, drawn: { nodes: new Map(), edges: new Map() }, messages: 0 };
    window.relayConsole = state;  // for people poking at the page (and the browser tests)
    const container = document.getElementById("graph");

    function select(node) {
      state.selected = node;
      for (const group of state.drawn.nodes.values()) group.classList.toggle("selected", group.dataset.id === node.id);
      renderState();
    }

    drawGraph(container, graph, select).then((drawn) => {
      state.drawn = drawn;
      container.dataset.ready = "true";
      if (state.view) paintGraph();
    });

    function paintGraph() {
      const statuses = state.view.statuses || {};
      for (const [id, group] of state.drawn.nodes) {
        const node = graph.nodes.find((n) => n.id === id);
        if (node.type === "Start" || node.type === "End") continue;
        const status = statuses[id] || "NOT_RUN";
        group.classList.remove(...Object.keys(STATUS_LABELS));
        group.classList.add(status);
        group.dataset.status = status;
      }
      const taken = new Set((state.view.transitions || []).map(([a, b]) => `${a === null ? "__start__" : a}->${b === null ? "__end__" : b}`));
      for (const edge of graph.edges) {
        const group = state.drawn.edges.get(edge.id);
        if (group) group.classList.toggle("taken", taken.has(`${edge.source}->${edge.target}`));
      }
    }

    function renderState() {
      const node = state.selected;
      const target = document.getElementById("state-details");
      if (!node || !state.view) return;
      document.getElementById("state-name").textContent = node.name;
      const entries = (state.view.states || {})[node.name] || [];
      const status = (state.view.statuses || {})[node.id] || "NOT_RUN";
      const parts = [el("p", {}, el("span", { class: `badge ${status}`, id: "state-status", text: STATUS_LABELS[status] || status }),
        " ", el("span", { class: "muted", text: `${node.type}${node.detail ? " · " + node.detail : ""}` }))];
      if (node.parent) {
        const run = (state.view.map_runs || []).filter((r) => node.id.startsWith(r.state + "/")).pop();
        parts.push(el("p", { class: "muted", text: run ? `Runs once per Map iteration: see the Map Run below (${run.iterations.length} iterations).` : "Runs once per Map iteration." }));
      }
      if (!entries.length) {
        parts.push(el("p", { class: "muted", text: node.parent ? "Its events are in the Map Run's child executions." : "Not run in this execution." }));
        target.replaceChildren(...parts);
        return;
      }
      const entry = entries[entries.length - 1];
      const rows = [
        ["Entered", formatTime(entry.entered_ms)], ["Exited", formatTime(entry.exited_ms)],
        ["Duration", formatDuration(entry.duration_ms)], ["Attempts", `${entry.attempts || (node.type === "Task" ? 0 : "–")}${entry.retries ? ` (${entry.retries} retries)` : ""}`],
      ];
      if (entries.length > 1) rows.push(["Entries", `${entries.length} (showing the newest)`]);
      parts.push(el("dl", { class: "facts" }, ...rows.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v })))));
      if (entry.error || entry.cause) {
        parts.push(el("div", { class: "alert error", id: "state-error" }, el("strong", { text: entry.error || "Error" }), el("pre", { text: pretty(entry.cause) })));
      }
      if (entry.failures && entry.failures.length) {
        parts.push(el("h3", { text: "Failed attempts" }), el("ol", {}, ...entry.failures.map((f) => el("li", {}, el("code", { text: f.error }), " at ", formatTime(f.at_ms)))));
      }
      for (const [label, value, id] of [["Input", entry.input, "state-input"], ["Parameters", entry.parameters, "state-parameters"], ["Output", entry.output, "state-output"]]) {
        if (value === null || value === undefined) continue;
        parts.push(el("details", { open: label !== "Parameters" }, el("summary", { text: label }), el("pre", { class: "code", id, text: pretty(value) })));
      }
      target.replaceChildren(...parts);
    }

    function renderSummary() {
      const ex = state.view.execution;
      const badge = document.getElementById("status");
      badge.textContent = ex.status;
      badge.className = `badge ${ex.status}`;
      document.getElementById("started").textContent = formatTime(ex.started);
      document.getElementById("duration").textContent = formatDuration(ex.duration_ms);
      document.getElementById("redrive-count").textContent = String(ex.redrive_count);
      document.getElementById("stop-form").hidden = !ex.can_stop;
      document.getElementById("redrive-form").hidden = !ex.can_redrive;
      const error = document.getElementById("execution-error");
      error.hidden = !ex.error;
      if (ex.error) error.replaceChildren(el("strong", { text: ex.error }), el("pre", { text: pretty(ex.cause) }));
      document.getElementById("cost-total").textContent = usd(state.view.cost.usd.total);
    }

    function renderApproval() {
      const target = document.getElementById("approval");
      const approval = state.view.workflow && state.view.workflow.approval;
      if (!approval) { target.replaceChildren(el("p", { class: "muted", text: "No approval requested yet." })); return; }
      const facts = [["Status", approval.status], ["Revision", approval.revision], ["Expires", formatTime(approval.expires_at)]];
      if (approval.decided_by) facts.push(["Decided by", approval.decided_by], ["Decided at", formatTime(approval.decided_at)]);
      if (approval.feedback) facts.push(["Feedback", approval.feedback]);
      const parts = [el("dl", { class: "facts" }, ...facts.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: String(v) }))))];
      if (state.view.approval_link) {
        parts.push(el("p", {}, "Pending: open the emailed link to approve or reject: ",
          el("a", { href: state.view.approval_link, id: "approval-link", target: "_blank", rel: "noopener noreferrer", text: "approval page" })));
      }
      target.replaceChildren(...parts);
    }

    function renderQuality() {
      // The newest analysis's check and, once written, the report's: headline, then the
      // unanswered planned questions by name (relay_core.models.QualityCheck).
      const checks = state.view.quality || [];
      const target = document.getElementById("quality");
      if (!checks.length) { target.replaceChildren(el("p", { class: "muted", text: "No analysis yet." })); return; }
      target.replaceChildren(...checks.map((check) => {
        const parts = [el("h3", {}, el("span", { class: "mono", text: check.artifact }), " ", el("span", { class: "muted", text: `(${check.state})` })),
          el("p", { class: "quality-headline", text: check.headline })];
        if (check.unanswered.length) {
          const items = check.unanswered.map((q) => el("li", { text: q }));
          if (check.unlisted) items.push(el("li", { class: "muted", text: `… and ${check.unlisted} more` }));
          parts.push(el("p", { class: "muted", text: "Unanswered questions:" }), el("ul", { class: "unanswered" }, ...items));
        }
        return el("div", { class: "quality-check", "data-artifact": check.artifact }, ...parts);
      }));
    }

    function renderMapRuns() {
      const runs = state.view.map_runs || [];
      const target = document.getElementById("map-runs");
      if (!runs.length) { target.replaceChildren(el("p", { class: "muted", text: "The Map state has not started." })); return; }
      const run = runs[runs.length - 1];
      const parts = [el("p", {}, el("span", { class: `badge ${run.status}`, id: "map-run-status", text: run.status }), " ",
        el("span", { class: "mono muted", text: run.map_run_arn || "" }))];
      if (runs.length > 1) parts.push(el("p", { class: "muted", text: `${runs.length} Map Runs in this execution (one per attempt); showing the newest.` }));
      if (run.error) parts.push(el("div", { class: "alert error" }, el("strong", { text: run.error }), el("pre", { text: pretty(run.cause) })));
      const beat = (hb) => {
        if (!hb) return "";
        if (hb.last_heartbeat_ms === null) return `waiting since ${formatTime(hb.waiting_since_ms)}, no heartbeat yet`;
        return `${formatTime(hb.last_heartbeat_ms)} (${hb.heartbeats} heartbeat${hb.heartbeats === 1 ? "" : "s"})`;
      };
      const body = el("tbody", {}, ...run.iterations.map((it) => el("tr", { "data-index": it.index },
        el("td", { class: "num", text: it.index }), el("td", {}, el("span", { class: `badge ${it.status}`, text: it.status })),
        el("td", { text: it.item }), el("td", { class: "heartbeat muted", text: beat(it.heartbeat) }),
        el("td", { class: "muted", text: it.summary || "" }))));
      parts.push(el("table", { class: "grid", id: "iterations" },
        el("thead", {}, el("tr", {}, ...["Index", "Status", "Item", "Last heartbeat (local engine)", "Result"].map((h) => el("th", { text: h })))), body));
      parts.push(el("p", { class: "muted", text: "Last heartbeat: the SendTaskHeartbeat calls the local engine accepted for the iteration's waiting AskResearcher task. Step Functions records no history event for a heartbeat; this column is the local engine's own record." }));
      target.replaceChildren(...parts);
    }

    function renderArtifacts() {
      if (!state.view.artifacts) return;  // unchanged since the last message
      document.getElementById("artifacts-location").textContent = state.view.artifacts_location;
      const target = document.getElementById("artifacts");
      if (!state.view.artifacts.length) { target.replaceChildren(el("p", { class: "muted", text: "No artifacts yet." })); return; }
      target.replaceChildren(...state.view.artifacts.map((a) => {
        const body = el("div", { class: "markdown" });
        body.innerHTML = a.html;  // rendered from Markdown and sanitised (nh3) by the server
        return el("details", { "data-key": a.key, open: a.key === "report.md" }, el("summary", {}, el("strong", { text: a.key }), " ", el("span", { class: "muted", text: `${a.bytes} bytes` })), body);
      }));
    }

    function renderCost() {
      const cost = state.view.cost;
      const tokens = cost.model_tokens === null ? "not reported by the agents"
        : cost.model_tokens.map((t) => `${t.model}: ${t.input_tokens} in / ${t.output_tokens} out (${usd(t.usd)})`).join("; ") || "none";
      const rows = [
        ["State transitions", `${cost.state_transitions} (incl. ${cost.retries} retries, ${cost.map_iterations} Map iterations)`, usd(cost.usd.state_transitions)],
        ["Lambda duration", `${cost.lambda_gb_seconds.toFixed(3)} GB-s`, usd(cost.usd.lambda_duration)],
        ["Lambda requests", `${cost.lambda_invocations}`, usd(cost.usd.lambda_requests)],
        ["Model tokens", tokens, cost.model_tokens === null ? "–" : usd(cost.usd.model_tokens)],
        ["Total", "", usd(cost.usd.total)],
      ];
      document.getElementById("cost").replaceChildren(
        el("table", { class: "grid", id: "cost-table" }, el("tbody", {}, ...rows.map(([a, b, c]) => el("tr", {}, el("th", { text: a }), el("td", { text: b }), el("td", { class: "num", text: c }))))),
        el("p", { class: "muted", text: `Prices as of ${cost.prices_as_of}: ${cost.price_source}.` }));
    }

    function renderEvents() {
      const events = state.view.events || [];
      const select = document.getElementById("event-type");
      const types = [...new Set(events.map((e) => e.type))].sort();
      const chosen = select.value;
      if (select.options.length - 1 !== types.length) {
        select.replaceChildren(el("option", { value: "", text: "All types" }), ...types.map((t) => el("option", { value: t, text: t, selected: t === chosen })));
      }
      const query = document.getElementById("event-filter").value.trim().toLowerCase();
      const shown = events.filter((e) => (!select.value || e.type === select.value)
        && (!query || `${e.type} ${e.state || ""} ${JSON.stringify(e.detail)}`.toLowerCase().includes(query)));
      document.getElementById("event-count").textContent = `${shown.length} of ${events.length} events`;
      document.querySelector("#events tbody").replaceChildren(...shown.map((e) => {
        const row = el("tr", { "data-type": e.type, class: /Failed|TimedOut|Aborted/.test(e.type) ? "failed" : null },
          el("td", { class: "num", text: e.id }), el("td", { text: e.type }), el("td", { text: e.state || "" }),
          el("td", { text: formatTime(e.timestamp_ms) }), el("td", { class: "num", text: e.elapsed_ms }));
        row.addEventListener("click", () => {
          const next = row.nextElementSibling;
          if (next && next.classList.contains("event-detail")) { next.remove(); return; }
          row.after(el("tr", { class: "event-detail" }, el("td", { colspan: 5 }, el("pre", { class: "code", text: pretty(e.detail) }))));
        });
        return row;
      }));
    }
    document.getElementById("event-filter").addEventListener("input", () => state.view && renderEvents());
    document.getElementById("event-type").addEventListener("change", () => state.view && renderEvents());

    function apply(view) {
      if (!view.artifacts && state.view) view.artifacts = null;
      state.view = view;
      state.messages += 1;
      renderSummary();
      renderApproval();
      renderQuality();
      renderMapRuns();
      renderArtifacts();
      renderCost();
      renderEvents();
      if (state.drawn.nodes.size) paintGraph();
      if (!state.selected) {
        const failed = graph.nodes.find((n) => (view.statuses || {})[n.id] === "FAILED" && !n.parent);
        const running = graph.nodes.find((n) => (view.statuses || {})[n.id] === "IN_PROGRESS" && !n.parent);
        const first = failed || running;
        if (first) { state.selected = first; }
      }
      if (state.selected) {
        for (const group of state.drawn.nodes.values()) group.classList.toggle("selected", group.dataset.id === state.selected.id);
        renderState();
      }
      document.body.dataset.status = view.execution.status;
    }

    const live = document.getElementById("live");
    const source = new EventSource(page.dataset.stream);
    source.addEventListener("view", (event) => { apply(JSON.parse(event.data)); live.textContent = "live"; });
    source.addEventListener("open", () => { live.textContent = "live"; });
    source.addEventListener("error", () => { live.textContent = "reconnecting…"; });
    window.addEventListener("beforeunload", () => source.close());
  }

  // ----- start -------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    const graph = graphData();
    const page = document.getElementById("execution-page");
    if (page && graph) executionPage(page, graph);
    else if (graph) {
      const container = document.getElementById("graph");
      drawGraph(container, graph, () => {}).then(() => { container.dataset.ready = "true"; });
    }
    for (const cell of document.querySelectorAll("td[data-ms]")) {
      const ms = Number(cell.dataset.ms);
      cell.textContent = cell.dataset.ms === "None" || cell.dataset.ms === "" ? "–" : formatDuration(ms);
    }
    for (const time of document.querySelectorAll("time[datetime]")) time.textContent = formatTime(time.getAttribute("datetime"));
  });
})();
