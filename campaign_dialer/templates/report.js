// The rows table: every row is in the page; filters and the CSV export cover all of them, the
// table draws PAGE matches at a time. Cells are set with textContent only (contact data is
// untrusted); a recording becomes a link only when its URL is http(s).
(function () {
  "use strict";
  var PAGE = 500;
  var MORE = 5000;
  var source = document.getElementById("rows-data");
  var body = document.getElementById("rows-body");
  if (!source || !body) { return; }
  var data = JSON.parse(source.textContent);
  var cols = data.columns;
  var rows = data.rows;
  var text = document.getElementById("f-text");
  var count = document.getElementById("rows-count");
  var more = document.getElementById("rows-more");
  var exportButton = document.getElementById("rows-export");
  var filtersBox = document.getElementById("filters");
  var CODED = { disposition: 1, reason: 1, outcome: 1, status: 1 };
  var BLANK = "\u0000blank";
  var limit = PAGE;
  var hay = null;  // built on the first search: most visits never type one
  var matched = [];

  function label(col, v) {
    if (v === null || v === "") {
      return col === "outcome" ? "No outcome reported" : "(blank)";
    }
    if (!CODED[col]) { return String(v); }
    if (Object.prototype.hasOwnProperty.call(data.codes, v)) { return data.codes[v]; }
    var s = String(v).replace(/_/g, " ");
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  var selects = data.filters.map(function (col, n) {
    var index = cols.indexOf(col);
    var seen = {};
    rows.forEach(function (r) {
      var v = r[index];
      var k = v === null || v === "" ? BLANK : String(v);
      seen[k] = (seen[k] || 0) + 1;
    });
    var wrap = document.createElement("label");
    var std = col.indexOf("input.") !== 0 && data.labels[col] !== col;
    wrap.textContent = (data.labels[col] || col).replace(/^input\./, "") + " ";
    var select = document.createElement("select");
    select.id = std ? "f-" + col : "f-seg-" + n;
    select.setAttribute("data-col", col);
    var all = document.createElement("option");
    all.value = "";
    all.textContent = "all";
    select.appendChild(all);
    Object.keys(seen).sort(function (a, b) { return seen[b] - seen[a] || (a < b ? -1 : 1); })
      .forEach(function (k) {
        var o = document.createElement("option");
        o.value = k;
        o.textContent = label(col, k === BLANK ? null : k) + " (" + seen[k] + ")";
        select.appendChild(o);
      });
    wrap.appendChild(select);
    filtersBox.insertBefore(wrap, text.parentNode);
    select.addEventListener("change", refilter);
    return { index: index, select: select };
  });

  function haystack() {
    if (hay === null) {
      hay = rows.map(function (r) {
        return r.map(function (v) { return v === null ? "" : String(v); })
          .join("\u0001").toLowerCase();
      });
    }
    return hay;
  }

  function filter() {
    var active = selects.filter(function (s) { return s.select.value !== ""; });
    var q = text.value.trim().toLowerCase();
    var h = q ? haystack() : null;
    var out = [];
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var ok = true;
      for (var k = 0; k < active.length; k++) {
        var v = row[active[k].index];
        var want = active[k].select.value;
        if (want === BLANK ? !(v === null || v === "") : String(v) !== want) { ok = false; break; }
      }
      if (ok && q && h[i].indexOf(q) === -1) { ok = false; }
      if (ok) { out.push(i); }
    }
    return out;
  }

  function cell(col, v) {
    var td = document.createElement("td");
    if (col === "recording_url" && typeof v === "string" && /^https?:\/\//i.test(v)) {
      var a = document.createElement("a");
      a.href = v;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.textContent = "listen";
      td.appendChild(a);
      td.title = v;
      return td;
    }
    td.textContent = v === null ? "" : (CODED[col] ? label(col, v) : String(v));
    if (col === "outcome" && (v === null || v === "")) { td.textContent = ""; }
    td.title = v === null ? "" : String(v);
    if (typeof v === "number") { td.className = "n"; }
    return td;
  }

  function render() {
    var frag = document.createDocumentFragment();
    var drawn = Math.min(matched.length, limit);
    for (var m = 0; m < drawn; m++) {
      var row = rows[matched[m]];
      var tr = document.createElement("tr");
      for (var j = 0; j < row.length; j++) { tr.appendChild(cell(cols[j], row[j])); }
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    count.textContent = matched.length.toLocaleString() + " of " + rows.length.toLocaleString() +
      " rows match" + (drawn < matched.length ? "; the first " + drawn.toLocaleString() +
      " are drawn (the export has them all)" : "");
    more.hidden = drawn >= matched.length;
    body.setAttribute("data-matches", String(matched.length));
  }

  function refilter() { limit = PAGE; matched = filter(); render(); }

  // CSV of the matching rows: codes as they are, formula cells neutralised (an E.164 phone
  // or a plain number stays), cells with a comma, quote, CR or LF quoted; CRLF records.
  var PLAIN = /^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$/;
  function neutralize(v) {
    if (typeof v !== "string" || v === "") { return v; }
    var c = v.charAt(0);
    if ("=@\t\r".indexOf(c) !== -1 || ("+-".indexOf(c) !== -1 && !PLAIN.test(v))) {
      return "'" + v;
    }
    return v;
  }
  function field(v) {
    var s = v === null || v === undefined ? "" : String(neutralize(v));
    return /[",\r\n]/.test(s) ? "\"" + s.replace(/"/g, "\"\"") + "\"" : s;
  }
  function csv() {
    var lines = [cols.map(field).join(",")];
    matched.forEach(function (i) { lines.push(rows[i].map(field).join(",")); });
    return lines.join("\r\n") + "\r\n";
  }
  window.reportRowsCsv = csv;

  exportButton.addEventListener("click", function () {
    var blob = new Blob(["\ufeff" + csv()], { type: "text/csv;charset=utf-8" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "rows.csv";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  });
  text.addEventListener("input", refilter);
  more.addEventListener("click", function () { limit += MORE; render(); });
  refilter();
  document.documentElement.setAttribute("data-table", "ready");
})();
