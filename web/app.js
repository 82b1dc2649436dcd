// The wgrad page: opens the browser's WebGPU adapter through wgrad (compiled to wasm), trains
// the default autoencoder step by step with a live loss curve and reconstructions, compares a
// frozen and a jointly trained classifier, and runs the conformance check.
//
// window.wgrad holds the page's state for anyone (and the end-to-end test) to read.

import init, { Engine, WebTrainer, version as engine_version } from './pkg/wgrad.js';

const state = (window.wgrad = {
  ready: false,
  error: null,
  training: false,
  steps: 0,
  losses: [],
  imagesPerS: 0,
  heldOut: null,
  gridDrawn: 0,
  classify: { frozen: null, joint: null, done: false },
  check: { running: false, done: false, passed: 0, failed: 0, rows: 0 },
});

const $ = (id) => document.getElementById(id);
let engine = null;
let trainer = null;

function fail(where, e) {
  const msg = `${where}: ${e && e.message ? e.message : e}`;
  state.error = msg;
  console.error(msg);
  const el = document.createElement('div');
  el.className = 'error';
  el.textContent = msg;
  $(where === 'check' ? 'check' : where === 'classify' ? 'classify' : 'train').appendChild(el);
}

// --- The adapter ------------------------------------------------------------------------

// WebGPU hides the adapter's name; the browser's own adapter info says what it is.
async function browserAdapter() {
  try {
    const a = await navigator.gpu.requestAdapter();
    const i = a.info || {};
    const what = [i.vendor, i.architecture, i.device, i.description].filter((s) => s).join(' ');
    return { what, fallback: a.isFallbackAdapter === true || i.isFallbackAdapter === true };
  } catch {
    return { what: '', fallback: false };
  }
}

function showAdapter(info, browser) {
  const name = info.name || browser.what || 'an unnamed adapter';
  $('adapter-name').textContent = name + (browser.fallback ? ' (software fallback adapter)' : '');
  state.adapter = $('adapter-name').textContent;
  $('adapter-detail').textContent =
    `${info.backend} · ${info.device_type}${info.driver ? ' · ' + info.driver : ''}` +
    ` · timestamp queries ${info.timestamps ? 'yes' : 'no'}`;
  const l = info.limits;
  const mib = (b) => `${Math.round(b / 1048576)} MiB`;
  const rows = [
    ['invocations / workgroup', l.max_compute_invocations_per_workgroup],
    ['workgroup memory', `${l.max_compute_workgroup_storage_size / 1024} KiB`],
    ['storage buffers / stage', l.max_storage_buffers_per_shader_stage],
    ['storage binding', mib(l.max_storage_buffer_binding_size)],
    ['buffer', mib(l.max_buffer_size)],
    ['workgroups / dimension', l.max_compute_workgroups_per_dimension],
  ];
  $('limits').innerHTML = rows
    .map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`)
    .join('');
}

// --- Drawing ----------------------------------------------------------------------------

function drawLoss() {
  const c = $('loss-chart');
  const g = c.getContext('2d');
  const W = c.width, H = c.height, L = 54, R = 14, T = 14, B = 32;
  g.clearRect(0, 0, W, H);
  g.font = '12px system-ui, sans-serif';
  const pts = state.losses;
  g.strokeStyle = '#c9ced9';
  g.strokeRect(L, T, W - L - R, H - T - B);
  if (pts.length === 0) {
    g.fillStyle = '#6b7385';
    g.fillText('press Train', L + 12, T + 22);
    return;
  }
  const maxStep = Math.max(10, pts[pts.length - 1][0]);
  let lo = Math.min(...pts.map((p) => p[1]));
  let hi = Math.max(...pts.map((p) => p[1]));
  if (hi - lo < 1e-6) { hi += 1e-3; lo = Math.max(0, lo - 1e-3); }
  const pad = (hi - lo) * 0.08;
  lo = Math.max(0, lo - pad); hi += pad;
  const x = (s) => L + ((s - 1) / Math.max(1, maxStep - 1)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  g.fillStyle = '#6b7385';
  g.textAlign = 'right';
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    g.fillText(v.toFixed(4), L - 6, y(v) + 4);
    g.strokeStyle = '#eef0f4';
    g.beginPath(); g.moveTo(L + 1, y(v)); g.lineTo(W - R - 1, y(v)); g.stroke();
  }
  g.textAlign = 'center';
  for (let i = 0; i <= 4; i++) {
    const s = Math.round(1 + ((maxStep - 1) * i) / 4);
    g.fillText(String(s), x(s), H - B + 16);
  }
  g.fillText('step', (L + W - R) / 2, H - 4);
  g.strokeStyle = '#2f6fde';
  g.lineWidth = 2;
  g.beginPath();
  pts.forEach(([s, v], i) => (i ? g.lineTo(x(s), y(v)) : g.moveTo(x(s), y(v))));
  g.stroke();
  g.lineWidth = 1;
}

// `pixels`: 2·n images of 28×28 in [0, 1], the originals then their reconstructions.
function drawGrid(pixels, n) {
  const c = $('grid');
  const g = c.getContext('2d');
  g.fillStyle = '#111';
  g.fillRect(0, 0, c.width, c.height);
  const img = g.createImageData(28, 28);
  const scratch = document.createElement('canvas');
  scratch.width = scratch.height = 28;
  const sg = scratch.getContext('2d');
  g.imageSmoothingEnabled = false;
  for (let k = 0; k < 2 * n; k++) {
    for (let p = 0; p < 784; p++) {
      const v = Math.max(0, Math.min(255, Math.round(pixels[k * 784 + p] * 255)));
      img.data.set([v, v, v, 255], p * 4);
    }
    sg.putImageData(img, 0, 0);
    const col = k % n, row = Math.floor(k / n);
    g.drawImage(scratch, 4 + col * 57, 4 + row * 64, 56, 56);
  }
  state.gridDrawn += 1;
}

// --- Training ---------------------------------------------------------------------------

// images/s over the latest steps (the first ones include compiling every pipeline).
const recent = [];
function rate(images) {
  recent.push([performance.now(), images]);
  if (recent.length > 11) recent.shift();
  if (recent.length < 2) return 0;
  const [t0] = recent[0], [t1] = recent[recent.length - 1];
  const n = recent.slice(1).reduce((s, r) => s + r[1], 0);
  return (1000 * n) / Math.max(1, t1 - t0);
}

function showStats(last) {
  $('stat-step').textContent = String(state.steps);
  if (last !== undefined) $('stat-loss').textContent = last.toFixed(5);
  $('stat-ips').textContent = state.imagesPerS.toFixed(1);
}

async function train() {
  const steps = Math.max(1, Math.min(2000, Number($('steps').value) || 60));
  $('train-button').disabled = $('classify-button').disabled = true;
  state.training = true;
  try {
    trainer = await WebTrainer.create(engine, 32, 2048, 3e-3, 1);
    state.losses = [];
    state.steps = 0;
    recent.length = 0;
    let last;
    for (let i = 0; i < steps; i++) {
      const r = JSON.parse(await trainer.step());
      state.steps = r.step;
      state.imagesPerS = rate(r.images);
      for (const l of r.losses) { state.losses.push(l); last = l[1]; }
      showStats(last);
      if (r.losses.length) drawLoss();
      if (i % 10 === 9) drawGrid(await trainer.reconstruct(8), 8);
    }
    for (const l of JSON.parse(await trainer.flush())) { state.losses.push(l); last = l[1]; }
    showStats(last);
    drawLoss();
    drawGrid(await trainer.reconstruct(8), 8);
    state.heldOut = await trainer.held_out_loss();
    $('stat-held').textContent = state.heldOut.toFixed(5);
  } catch (e) {
    fail('train', e);
  }
  state.training = false;
  $('train-button').disabled = false;
  if (trainer) {
    $('classify-button').disabled = false;
    await compare();
  }
}

// --- The classifiers --------------------------------------------------------------------

function showResult(id, r) {
  const el = $(id);
  el.querySelector('.acc').textContent = `${(100 * r.accuracy).toFixed(1)}%`;
  el.querySelector('.bar span').style.width = `${(100 * r.accuracy).toFixed(1)}%`;
  el.querySelector('.detail').textContent =
    `${r.steps} steps in ${r.seconds.toFixed(1)} s (${r.images_per_s.toFixed(0)} images/s) · chance 16.7%`;
}

async function compare() {
  $('classify-button').disabled = $('train-button').disabled = true;
  try {
    const steps = 100;
    state.classify.frozen = JSON.parse(await trainer.classify(false, steps));
    showResult('frozen', state.classify.frozen);
    state.classify.joint = JSON.parse(await trainer.classify(true, steps));
    showResult('joint', state.classify.joint);
    state.classify.done = true;
  } catch (e) {
    fail('classify', e);
  }
  $('classify-button').disabled = $('train-button').disabled = false;
}

// --- The check --------------------------------------------------------------------------

function fmt(v) {
  return v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toExponential(2);
}

async function check() {
  const button = $('check-button');
  button.disabled = true;
  const body = $('check-table').querySelector('tbody');
  body.innerHTML = '';
  Object.assign(state.check, { running: true, done: false, passed: 0, failed: 0, rows: 0 });
  $('check-summary').textContent = 'checking…';
  $('check-summary').className = 'big';
  const onRow = (json) => {
    const r = JSON.parse(json);
    state.check.rows += 1;
    r.passed ? (state.check.passed += 1) : (state.check.failed += 1);
    const tr = document.createElement('tr');
    if (!r.passed) tr.className = 'failed';
    const cells = [r.op, r.shape, fmt(r.max_abs_err), fmt(r.max_rel_err),
      Number.isNaN(r.atol) || r.atol === null ? '–' : `atol ${fmt(r.atol)} rtol ${fmt(r.rtol)}`];
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.appendChild(td);
    }
    const verdict = document.createElement('td');
    verdict.className = r.passed ? 'pass' : 'fail';
    verdict.textContent = r.passed ? 'PASS' : 'FAIL';
    if (!r.passed && r.error) verdict.title = r.error;
    tr.appendChild(verdict);
    body.appendChild(tr);
    $('check-summary').textContent = `checking… ${state.check.passed} passed, ${state.check.failed} failed`;
  };
  const start = performance.now();
  try {
    const report = JSON.parse(await engine.check(onRow));
    const secs = ((performance.now() - start) / 1000).toFixed(1);
    const ok = report.failed === 0 && report.passed > 0;
    $('check-summary').textContent =
      `${ok ? 'PASS' : 'FAIL'}: ${report.passed} passed, ${report.failed} failed in ${secs} s`;
    $('check-summary').className = `big ${ok ? 'summary-pass' : 'summary-fail'}`;
  } catch (e) {
    fail('check', e);
  }
  state.check.running = false;
  state.check.done = true;
  button.disabled = false;
}

// --- Start ------------------------------------------------------------------------------

async function main() {
  drawLoss();
  try {
    await init();
    engine = await Engine.open();
    const info = JSON.parse(engine.adapter_json());
    showAdapter(info, await browserAdapter());
    $('version').textContent = `version ${engine_version()}`;
  } catch (e) {
    $('adapter-name').textContent = 'WebGPU is not available here';
    $('adapter-detail').textContent = String(e && e.message ? e.message : e);
    state.error = String(e);
    return;
  }
  $('train-button').addEventListener('click', train);
  $('classify-button').addEventListener('click', compare);
  $('check-button').addEventListener('click', check);
  $('train-button').disabled = $('check-button').disabled = false;
  state.ready = true;
}

main();
