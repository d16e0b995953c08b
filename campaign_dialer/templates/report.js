// The rows table: filter by fate, reason and free text. Cells are set with textContent only.
// At most PAGE matching rows are drawn at once, so a large table stays quick to open.
(function () {
  "use strict";
  var PAGE = 500;
  var source = document.getElementById("rows-data");
  var body = document.getElementById("rows-body");
  if (!source || !body) { return; }
  var data = JSON.parse(source.textContent);
  var cols = data.columns;
  var rows = data.rows;
  var fate = document.getElementById("f-disposition");
  var reason = document.getElementById("f-reason");
  var text = document.getElementById("f-text");
  var count = document.getElementById("rows-count");
  var more = document.getElementById("rows-more");
  var di = cols.indexOf("disposition");
  var ri = cols.indexOf("reason");
  var limit = PAGE;
  var hay = rows.map(function (r) {
    return r.map(function (v) { return v === null ? "" : String(v); }).join("\u0001").toLowerCase();
  });

  function options(select, index) {
    var seen = {};
    rows.forEach(function (r) {
      var v = r[index];
      if (v !== null && v !== "") { seen[v] = (seen[v] || 0) + 1; }
    });
    Object.keys(seen).sort().forEach(function (v) {
      var o = document.createElement("option");
      o.value = v;
      o.textContent = v + " (" + seen[v] + ")";
      select.appendChild(o);
    });
  }

  function render() {
    var f = fate.value, r = reason.value, q = text.value.trim().toLowerCase();
    var frag = document.createDocumentFragment();
    var matches = 0;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      if (f && row[di] !== f) { continue; }
      if (r && row[ri] !== r) { continue; }
      if (q && hay[i].indexOf(q) === -1) { continue; }
      matches++;
      if (matches > limit) { continue; }
      var tr = document.createElement("tr");
      for (var j = 0; j < row.length; j++) {
        var td = document.createElement("td");
        var v = row[j];
        td.textContent = v === null ? "" : String(v);
        td.title = td.textContent;
        if (typeof v === "number") { td.className = "n"; }
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    var drawn = Math.min(matches, limit);
    count.textContent = matches + " of " + rows.length + " rows match" +
      (drawn < matches ? "; the first " + drawn + " are shown" : "");
    more.hidden = drawn >= matches;
    body.setAttribute("data-matches", String(matches));
  }

  function refilter() { limit = PAGE; render(); }

  options(fate, di);
  options(reason, ri);
  fate.addEventListener("change", refilter);
  reason.addEventListener("change", refilter);
  text.addEventListener("input", refilter);
  more.addEventListener("click", function () { limit = Infinity; render(); });
  render();
  document.documentElement.setAttribute("data-table", "ready");
})();
