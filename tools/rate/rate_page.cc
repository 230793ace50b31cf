#include "tools/rate/rate_page.h"

#include "common/base/text_format.h"

namespace nd {
namespace {

constexpr char kHead[] = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Rate units &middot; )HTML";

constexpr char kBody[] = R"HTML(</title>
<style>
:root{--bg:#f5f6f8;--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--card:#fff;--accent:#2563eb;--yes:#15803d;--no:#b91c1c}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#0f172a;color:#e2e8f0;padding:12px 0}
.wrap{max-width:1060px;margin:0 auto;padding:0 20px}
header .wrap{display:flex;align-items:center;gap:16px;flex-wrap:wrap}
header h1{font-size:18px;margin:0;color:#fff;font-weight:650}
header .layer{color:#94a3b8;font-size:14px}
header .who{margin-left:auto;font-size:14px;color:#cbd5e1}
header .who b{color:#fff}
button{font:inherit;cursor:pointer;border-radius:8px;border:1px solid #cbd5e1;background:#fff;padding:7px 14px}
button:disabled{opacity:.5;cursor:default}
header button{background:#1e293b;color:#e2e8f0;border-color:#334155;padding:3px 10px;font-size:13px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:20px 24px;margin:20px 0}
.panel h2{margin:0 0 10px;font-size:18px}
input[type=text]{font:inherit;padding:8px 10px;border:1px solid #cbd5e1;border-radius:8px;min-width:280px}
.modes{display:grid;grid-template-columns:repeat(auto-fit,minmax(250px,1fr));gap:14px}
.modes button{text-align:left;padding:14px 16px;border-radius:12px}
.modes button b{display:block;font-size:16px;margin-bottom:4px}
.modes button span{color:var(--muted);font-size:13px}
.bar{height:6px;background:#e2e8f0;border-radius:3px;overflow:hidden;margin:6px 0 2px}
.bar i{display:block;height:100%;background:var(--accent);width:0}
#progress{color:var(--muted);font-size:13px}
.question{font-size:20px;margin:14px 0 12px}
.question b{background:#fef3c7;padding:1px 8px;border-radius:6px}
.grid{display:grid;grid-template-columns:repeat(5,1fr);gap:6px}
.grid img{width:100%;aspect-ratio:1;display:block;border-radius:4px;background:#e2e8f0}
.answers{display:flex;gap:14px;align-items:center;margin:16px 0 4px;flex-wrap:wrap}
.answers .big{font-size:18px;padding:10px 34px;font-weight:600}
#yes{border-color:var(--yes);color:var(--yes)}#no{border-color:var(--no);color:var(--no)}
kbd{font:12px ui-monospace,monospace;border:1px solid #cbd5e1;border-bottom-width:2px;border-radius:4px;padding:0 5px;color:var(--muted)}
#status{min-height:22px;font-size:14px;color:var(--muted)}
#status[data-state=recorded]{color:var(--yes)}#status[data-state=error]{color:var(--no)}
.hint{color:var(--muted);font-size:13px}
[hidden]{display:none!important}
</style>
</head>
<body data-ready="0">
<header><div class="wrap"><h1>Rate units</h1><span class="layer" id="layer"></span>
<span class="who" id="who-bar" hidden>rater <b id="who-name"></b>
<button id="change-rater" type="button">change</button>
<button id="menu" type="button">modes</button></span></div></header>
<main class="wrap">
<section class="panel" id="who" hidden>
<h2>Who is rating?</h2>
<p class="hint">Your name or an alias is stored with every answer (asked once on this browser).</p>
<form id="who-form"><input type="text" id="rater-input" maxlength="40" autocomplete="off" placeholder="your name">
<button id="rater-start" type="submit">Start</button></form>
<p class="hint" id="who-error"></p>
</section>
<section class="panel" id="modes" hidden>
<h2>Choose a task</h2>
<div class="modes">
<button id="mode-label" type="button"><b>Check the label</b><span>Does a given word describe most of the highlighted regions? Yes or no.</span></button>
<button id="mode-name" type="button"><b>Name the unit</b><span>Write a short phrase for what the highlighted regions have in common.</span></button>
<button id="mode-human" type="button"><b>Check a human label</b><span>Does a phrase another rater wrote describe most of the highlighted regions?</span></button>
</div>
</section>
<section class="panel" id="trial" hidden>
<div id="progress"></div><div class="bar"><i id="bar"></i></div>
<p class="question" id="question"><span id="q-before"></span><b id="phrase"></b><span id="q-after"></span></p>
<div class="grid" id="grid"></div>
<div class="answers" id="yesno">
<button class="big" id="yes" type="button">Yes <kbd>Y</kbd></button>
<button class="big" id="no" type="button">No <kbd>N</kbd></button>
</div>
<form class="answers" id="nameform" hidden><input type="text" id="name-input" maxlength="80" autocomplete="off" placeholder="e.g. dog faces, blue sky, grid texture">
<button id="name-submit" type="submit">Submit <kbd>Enter</kbd></button></form>
<div id="status" data-state="idle"></div>
<p class="hint">Bright regions are where the unit is active; the rest of each image is dimmed.</p>
</section>
<section class="panel" id="done" hidden>
<h2>Nothing left here</h2>
<p id="done-text"></p>
<button id="done-menu" type="button">Choose another task</button>
</section>
</main>
<script>
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var params = new URLSearchParams(location.search);
  var token = params.get('token') || '';
  var LAYER = document.body.getAttribute('data-layer');
  $('layer').textContent = 'layer ' + LAYER;
  var rater = localStorage.getItem('nd-rate-rater') || '';
  var mode = '';
  var current = null, busy = false;
  window.ndTimings = [];

  function show(id) {
    ['who', 'modes', 'trial', 'done'].forEach(function (s) { $(s).hidden = s !== id; });
    $('who-bar').hidden = !rater;
    $('who-name').textContent = rater;
  }
  function withToken(url) {
    return token ? url + (url.indexOf('?') < 0 ? '?' : '&') + 'token=' + encodeURIComponent(token) : url;
  }
  function status(state, text) {
    $('status').setAttribute('data-state', state);
    $('status').textContent = text;
  }
  function askName() { $('rater-input').value = rater; show('who'); $('rater-input').focus(); }
  function menu() { mode = ''; current = null; show('modes'); }

  $('who-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var v = $('rater-input').value.trim();
    if (!v) { $('who-error').textContent = 'Please type a name.'; return; }
    rater = v;
    localStorage.setItem('nd-rate-rater', rater);
    menu();
  });
  $('change-rater').addEventListener('click', function () {
    localStorage.removeItem('nd-rate-rater'); rater = ''; askName();
  });
  $('menu').addEventListener('click', menu);
  $('done-menu').addEventListener('click', menu);
  ['label', 'name', 'human'].forEach(function (m) {
    $('mode-' + m).addEventListener('click', function () { mode = m; status('idle', ''); next(); });
  });

  function next() {
    document.body.setAttribute('data-ready', '0');
    // "Recorded" stays up while the next unit loads: it is the only confirmation the rater gets.
    if ($('status').getAttribute('data-state') !== 'recorded') status('idle', '');
    var started = performance.now();
    fetch(withToken('/api/next?rater=' + encodeURIComponent(rater) + '&mode=' + mode))
      .then(function (r) { return r.json().then(function (j) { return {ok: r.ok, j: j}; }); })
      .then(function (res) {
        if (!res.ok) { show('trial'); status('error', res.j.error || 'error'); return; }
        render(res.j, started);
      })
      .catch(function () { show('trial'); status('error', 'The server did not answer. Try again.'); });
  }

  function render(t, started) {
    var pct = t.total ? Math.round(100 * t.complete / t.total) : 0;
    $('progress').textContent = 'You answered ' + t.answered + ' in this task \u00b7 ' +
        t.complete + ' of ' + t.total + ' units have all their answers';
    $('bar').style.width = pct + '%';
    if (t.done) {
      current = null;
      $('done-text').textContent = 'There is no unit left for ' + rater + ' in this task. Thank you!';
      show('done');
      return;
    }
    current = t;
    var trial = $('trial');
    trial.setAttribute('data-unit', String(t.unit));
    trial.setAttribute('data-mode', t.mode);
    trial.setAttribute('data-trial', t.trial);
    var naming = t.mode === 'name';
    $('yesno').hidden = naming;
    $('nameform').hidden = !naming;
    if (naming) {
      $('q-before').textContent = 'What do the highlighted regions have in common? ';
      $('phrase').textContent = '';
      $('phrase').hidden = true;
      $('q-after').textContent = 'Write a short phrase.';
      $('name-input').value = '';
    } else {
      $('q-before').textContent = 'Does ';
      $('phrase').hidden = false;
      $('phrase').textContent = t.phrase;
      $('q-after').textContent = ' describe most of the highlighted regions?';
    }
    var grid = $('grid');
    while (grid.firstChild) grid.removeChild(grid.firstChild);
    var left = t.tiles.length;
    function loaded() {
      if (--left > 0) return;
      window.ndTimings.push({unit: t.unit, ms: performance.now() - started});
      document.body.setAttribute('data-ready', '1');
    }
    t.tiles.forEach(function (url, i) {
      var img = new Image();
      img.className = 'tile';
      img.alt = 'image ' + (i + 1) + ' of unit ' + t.unit;
      img.addEventListener('load', loaded);
      img.addEventListener('error', loaded);
      img.src = url;
      grid.appendChild(img);
    });
    if (!t.tiles.length) document.body.setAttribute('data-ready', '1');
    setBusy(false);
    show('trial');
    if (naming) $('name-input').focus();
  }

  function setBusy(b) {
    busy = b;
    ['yes', 'no', 'name-submit'].forEach(function (id) { $(id).disabled = b; });
  }

  function answer(value, phrase) {
    if (!current || busy) return;
    setBusy(true);
    status('saving', 'Saving\u2026');
    var body = new URLSearchParams();
    body.set('rater', rater);
    body.set('mode', current.mode);
    body.set('unit', String(current.unit));
    body.set('trial', current.trial);
    body.set('phrase', phrase);
    body.set('answer', value);
    if (token) body.set('token', token);
    fetch('/api/answer', {method: 'POST', headers: {'X-ND-Rate': '1',
        'Content-Type': 'application/x-www-form-urlencoded'}, body: body.toString()})
      .then(function (r) { return r.json().then(function (j) { return {ok: r.ok, j: j}; }); })
      .then(function (res) {
        if (!res.ok) { setBusy(false); status('error', res.j.error || 'error'); return; }
        var what = current.mode === 'name' ? 'your name for unit ' + current.unit :
            '\u201c' + value + '\u201d on unit ' + current.unit;
        status('recorded', (res.j.already ? 'Recorded before \u2713 ' : 'Recorded \u2713 ') + what);
        next();
      })
      .catch(function () { setBusy(false); status('error', 'Not saved: the server did not answer. Try again.'); });
  }

  $('yes').addEventListener('click', function () { answer('yes', current.phrase); });
  $('no').addEventListener('click', function () { answer('no', current.phrase); });
  $('nameform').addEventListener('submit', function (e) {
    e.preventDefault();
    var v = $('name-input').value.trim();
    if (!v) { status('error', 'Please write a phrase.'); return; }
    answer('named', v);
  });
  document.addEventListener('keydown', function (e) {
    if (!current || current.mode === 'name' || $('trial').hidden) return;
    if (e.target && e.target.tagName === 'INPUT') return;
    var k = e.key.toLowerCase();
    if (k === 'y') answer('yes', current.phrase);
    else if (k === 'n') answer('no', current.phrase);
  });

  if (rater) menu(); else askName();
})();
</script>
</body>
</html>
)HTML";

}  // namespace

std::string RatePageHtml(const std::string& layer) {
  std::string body(kBody);
  // The layer travels in a data attribute (escaped) and reaches the DOM through textContent.
  const std::string marker = "<body data-ready=\"0\">";
  body.replace(body.find(marker), marker.size(),
               "<body data-ready=\"0\" data-layer=\"" + HtmlEscape(layer) + "\">");
  return std::string(kHead) + HtmlEscape(layer) + body;
}

}  // namespace nd
