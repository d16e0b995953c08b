// The rows table: filter by fate, reason and free text. Cells are set with textContent only.
(function () {
  "use strict";
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
  var di = cols.indexOf("disposition");
  var ri = cols.indexOf("reason");
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
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      if (f && row[di] !== f) { continue; }
      if (r && row[ri] !== r) { continue; }
      if (q && hay[i].indexOf(q) === -1) { continue; }
      var tr = document.createElement("tr");
      for (var j = 0; j < row.length; j++) {
        var td = document.createElement("td");
        var v = row[j];
        td.textContent = v === null ? "" : String(v);
        if (typeof v === "number") { td.className = "n"; }
        tr.appendChild(td);
      }
      frag.appendChild(tr);
      shown++;
    }
    body.replaceChildren(frag);
    count.textContent = shown + " of " + rows.length + " rows shown";
    body.setAttribute("data-shown", String(shown));
  }

  options(fate, di);
  options(reason, ri);
  fate.addEventListener("change", render);
  reason.addEventListener("change", render);
  text.addEventListener("input", render);
  render();
  document.documentElement.setAttribute("data-table", "ready");
})();
