// seqapp's page: Write (generation over a WebSocket), Listen (the microphone through an AudioWorklet to the
// streaming spotter), File (a recording's detections on its waveform), Record clips (a zip for --recordings).
"use strict";

const $ = (id) => document.getElementById(id);
const wsURL = (path) => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
const COLORS = ["#2457c5", "#c0392b", "#1e8449", "#b9770e", "#7d3c98", "#117a65", "#a93226", "#2e4053", "#d35400", "#5b2c6f"];
let info = { lm: null, kws: null };

function show(view) {
  document.querySelectorAll(".view").forEach((v) => v.classList.toggle("active", v.id === `view-${view}`));
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.view === view));
}

async function start() {
  info = await (await fetch("/api/info")).json();
  $("tab-write").disabled = !info.lm;
  $("tab-listen").disabled = $("tab-file").disabled = !info.kws;
  document.querySelectorAll(".tab").forEach((t) => t.addEventListener("click", () => show(t.dataset.view)));
  $("models").textContent = [info.lm && `LM: ${info.lm.checkpoint}`,
    info.kws && `spotter: ${info.kws.checkpoint} (${info.kws.keywords.join(", ")})`].filter(Boolean).join(" · ");
  if (info.kws) {
    $("legend").innerHTML = info.kws.keywords.map((k, i) => `<span style="color:${COLORS[i % COLORS.length]}">■ ${k}</span>`).join("");
  }
  show(info.lm ? "write" : "listen");
  document.body.dataset.ready = "1";
}

// --- Write ---------------------------------------------------------------------------------------------------
let writer = null;

$("write-form").addEventListener("submit", (event) => {
  event.preventDefault();
  $("output").textContent = $("prompt").value;
  $("write-error").textContent = "";
  $("write-rate").textContent = "";
  const request = {
    prompt: $("prompt").value, length: Number($("length").value), temperature: Number($("temperature").value),
    top_k: $("top-k").value ? Number($("top-k").value) : null, top_p: $("top-p").value ? Number($("top-p").value) : null,
    seed: Number($("seed").value),
  };
  const started = performance.now();
  let chars = 0;
  writer = new WebSocket(wsURL("/ws/write"));
  writer.onopen = () => writer.send(JSON.stringify(request));
  $("generate").disabled = true;
  $("stop-write").disabled = false;
  writer.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.text !== undefined) {
      $("output").textContent += m.text;
      chars += m.text.length;
      $("write-rate").textContent = `${(chars / ((performance.now() - started) / 1000)).toFixed(0)} chars/s`;
    } else if (m.done) {
      $("write-rate").textContent = `${m.chars} chars, ${m.chars_per_s.toFixed(0)} chars/s${m.stopped ? " (stopped)" : ""}`;
      document.body.dataset.written = "1";
      writer.close();
    } else if (m.error) {
      $("write-error").textContent = m.error;
    }
  };
  writer.onclose = () => { $("generate").disabled = false; $("stop-write").disabled = true; };
});

$("stop-write").addEventListener("click", () => writer && writer.readyState === 1 && writer.send(JSON.stringify({ stop: true })));

// --- the microphone, as 16 kHz 16-bit chunks -----------------------------------------------------------------
async function openMicrophone(onChunk) {
  const media = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const context = new AudioContext({ sampleRate: 16000 });
  await context.audioWorklet.addModule("/static/worklet.js");
  const source = context.createMediaStreamSource(media);
  const node = new AudioWorkletNode(context, "pcm-chunker");
  node.port.onmessage = (event) => onChunk(event.data);
  source.connect(node);
  return () => { source.disconnect(); node.disconnect(); media.getTracks().forEach((t) => t.stop()); context.close(); };
}

// --- Listen --------------------------------------------------------------------------------------------------
let listener = null, closeMic = null, history = [];
const PLOT_SECONDS = 5;

function plotPosteriors() {
  const canvas = $("posteriors"), g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  if (!history.length || !info.kws) return;
  const end = history[history.length - 1][0], begin = end - PLOT_SECONDS;
  const level = h - info.kws.threshold * (h - 4) - 2; // the decision threshold (per-keyword ones may differ)
  g.strokeStyle = "#c9ced8";
  g.setLineDash([4, 4]);
  g.beginPath(); g.moveTo(0, level); g.lineTo(w, level); g.stroke();
  g.setLineDash([]);
  info.kws.keywords.forEach((_, k) => {
    g.strokeStyle = COLORS[k % COLORS.length];
    g.beginPath();
    history.forEach(([t, ...p], i) => {
      const x = ((t - begin) / PLOT_SECONDS) * w, y = h - p[k] * (h - 4) - 2;
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  });
}

function addRow(table, d) {
  const row = document.createElement("tr");
  row.innerHTML = `<td>${d.time.toFixed(2)}</td><td>${d.label}</td><td>${d.score.toFixed(3)}</td>`;
  $(table).querySelector("tbody").appendChild(row);
}

$("listen-start").addEventListener("click", async () => {
  $("listen-error").textContent = "";
  $("detections").querySelector("tbody").innerHTML = "";
  history = [];
  listener = new WebSocket(wsURL("/ws/listen"));
  listener.binaryType = "arraybuffer";
  listener.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.detection) addRow("detections", m.detection);
    if (m.posteriors) {
      history.push(...m.posteriors);
      const end = history[history.length - 1][0];
      while (history.length && history[0][0] < end - PLOT_SECONDS) history.shift();
      plotPosteriors();
    }
    if (m.error) $("listen-error").textContent = m.error;
    if (m.done) {
      $("listen-status").textContent = `heard ${m.seconds.toFixed(1)} s of audio; spotting took ${(m.compute_s / Math.max(m.seconds, 1e-9)).toFixed(4)} of real time`;
      document.body.dataset.listened = "1";
    }
  };
  listener.onclose = () => stopListening(false);
  listener.onopen = async () => {
    try {
      closeMic = await openMicrophone((chunk) => listener && listener.readyState === 1 && listener.send(chunk));
      $("listen-status").textContent = "listening";
      $("listen-start").disabled = true;
      $("listen-stop").disabled = false;
    } catch (e) {
      $("listen-error").textContent = `the microphone could not be opened: ${e.message}`;
      listener.close();
    }
  };
});

function stopListening(sendEnd) {
  if (closeMic) { closeMic(); closeMic = null; }
  if (sendEnd && listener && listener.readyState === 1) listener.send(JSON.stringify({ end: true }));
  $("listen-start").disabled = false;
  $("listen-stop").disabled = true;
}

$("listen-stop").addEventListener("click", () => stopListening(true));

// --- File ----------------------------------------------------------------------------------------------------
function drawWaveform(result) {
  const canvas = $("waveform"), g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  const n = result.outline.length, mid = h / 2;
  g.fillStyle = "#9aa3b5";
  result.outline.forEach((peak, i) => { const x = (i / n) * w; g.fillRect(x, mid - peak * mid, Math.max(1, w / n), 2 * peak * mid); });
  const keywords = info.kws ? info.kws.keywords : [];
  result.detections.forEach((d) => {
    const x = (d.time / Math.max(result.seconds, 1e-9)) * w;
    g.fillStyle = COLORS[Math.max(0, keywords.indexOf(d.label)) % COLORS.length];
    g.fillRect(x - 1, 0, 2, h);
    g.fillText(d.label, Math.min(x + 3, w - 40), 12);
  });
}

async function spotFile(file) {
  $("file-error").textContent = "";
  $("file-status").textContent = `spotting keywords in ${file.name} ...`;
  $("file-detections").querySelector("tbody").innerHTML = "";
  $("file-json").hidden = true;
  const response = await fetch("/api/spot", { method: "POST", body: file, headers: { "X-Filename": file.name } });
  const result = await response.json();
  if (!response.ok) {
    $("file-error").textContent = result.error;
    $("file-status").textContent = "";
    document.body.dataset.filed = "error";
    return;
  }
  $("file-status").textContent = `${file.name}: ${result.seconds.toFixed(1)} s, ${result.detections.length} detections`;
  result.detections.forEach((d) => addRow("file-detections", d));
  drawWaveform(result);
  const json = JSON.stringify({ file: file.name, detections: result.detections }, null, 2);
  $("file-json").href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
  $("file-json").hidden = false;
  document.body.dataset.filed = "1";
}

$("file-input").addEventListener("change", (e) => e.target.files[0] && spotFile(e.target.files[0]));
$("drop").addEventListener("dragover", (e) => { e.preventDefault(); $("drop").classList.add("over"); });
$("drop").addEventListener("dragleave", () => $("drop").classList.remove("over"));
$("drop").addEventListener("drop", (e) => {
  e.preventDefault();
  $("drop").classList.remove("over");
  if (e.dataTransfer.files[0]) spotFile(e.dataTransfer.files[0]);
});

// --- Record clips --------------------------------------------------------------------------------------------
const CLIP_SECONDS = 1.5, COUNTDOWN_SECONDS = 1;
let clips = [];

function wavBytes(pcm) {
  const out = new DataView(new ArrayBuffer(44 + pcm.length * 2));
  const text = (at, s) => [...s].forEach((c, i) => out.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF"); out.setUint32(4, 36 + pcm.length * 2, true); text(8, "WAVE"); text(12, "fmt ");
  out.setUint32(16, 16, true); out.setUint16(20, 1, true); out.setUint16(22, 1, true); out.setUint32(24, 16000, true);
  out.setUint32(28, 32000, true); out.setUint16(32, 2, true); out.setUint16(34, 16, true); text(36, "data");
  out.setUint32(40, pcm.length * 2, true);
  pcm.forEach((s, i) => out.setInt16(44 + i * 2, s, true));
  return new Uint8Array(out.buffer);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
const crc32 = (bytes) => { let c = 0xffffffff; for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };

function zipFiles(files) { // a stored (uncompressed) zip: what train.py --recordings reads once unpacked
  const parts = [], central = [];
  let offset = 0;
  for (const { name, data } of files) {
    const nameBytes = new TextEncoder().encode(name), crc = crc32(data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true); local.setUint16(4, 20, true); local.setUint32(14, crc, true);
    local.setUint32(18, data.length, true); local.setUint32(22, data.length, true); local.setUint16(26, nameBytes.length, true);
    const entry = new DataView(new ArrayBuffer(46));
    entry.setUint32(0, 0x02014b50, true); entry.setUint16(4, 20, true); entry.setUint16(6, 20, true);
    entry.setUint32(16, crc, true); entry.setUint32(20, data.length, true); entry.setUint32(24, data.length, true);
    entry.setUint16(28, nameBytes.length, true); entry.setUint32(42, offset, true);
    parts.push(new Uint8Array(local.buffer), nameBytes, data);
    central.push(new Uint8Array(entry.buffer), nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const size = central.reduce((n, p) => n + p.length, 0), end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true); end.setUint16(8, files.length, true); end.setUint16(10, files.length, true);
  end.setUint32(12, size, true); end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, new Uint8Array(end.buffer)], { type: "application/zip" });
}

const folderOf = (word) => word.trim().toLowerCase().split(/\s+/).join("_");

function recordOne(index) {
  return new Promise(async (resolve, reject) => {
    const need = (COUNTDOWN_SECONDS + CLIP_SECONDS) * 16000, got = [];
    let have = 0, close;
    try {
      close = await openMicrophone((chunk) => {
        const samples = new Int16Array(chunk);
        got.push(samples);
        have += samples.length;
        $("record-status").textContent = have < COUNTDOWN_SECONDS * 16000 ? `clip ${index + 1}: get ready ...` : `clip ${index + 1}: say it now`;
        if (have >= need) {
          close();
          const all = new Int16Array(have);
          let at = 0;
          got.forEach((s) => { all.set(s, at); at += s.length; });
          resolve(all.slice(COUNTDOWN_SECONDS * 16000, need));
        }
      });
    } catch (e) { reject(e); }
  });
}

function listClips() {
  const word = folderOf($("record-word").value);
  $("clips").innerHTML = "";
  clips.forEach((pcm, i) => {
    const li = document.createElement("li");
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.src = URL.createObjectURL(new Blob([wavBytes(pcm)], { type: "audio/wav" }));
    const redo = document.createElement("button");
    redo.textContent = "redo";
    redo.onclick = async () => { clips[i] = await recordOne(i); listClips(); };
    li.append(`${word}_${String(i + 1).padStart(3, "0")}.wav `, audio, redo);
    $("clips").appendChild(li);
  });
  $("record-zip").disabled = !clips.length;
}

$("record-start").addEventListener("click", async () => {
  $("record-error").textContent = "";
  const word = $("record-word").value.trim(), count = Number($("record-count").value);
  if (!/^[a-zA-Z]+(['-][a-zA-Z]+)*( [a-zA-Z]+(['-][a-zA-Z]+)*)*$/.test(word)) {
    $("record-error").textContent = "a keyword is letters, spaces, ' and - only";
    return;
  }
  if (!(count >= 1 && count <= 50)) { $("record-error").textContent = "record 1-50 clips"; return; }
  clips = [];
  try {
    for (let i = 0; i < count; i++) { clips.push(await recordOne(i)); listClips(); }
    $("record-status").textContent = `${count} clips: listen, redo any, then download`;
  } catch (e) {
    $("record-error").textContent = `the microphone could not be opened: ${e.message}`;
  }
});

$("record-zip").addEventListener("click", () => {
  const word = folderOf($("record-word").value);
  const files = clips.map((pcm, i) => ({ name: `${word}/${word}_${String(i + 1).padStart(3, "0")}.wav`, data: wavBytes(pcm) }));
  const link = document.createElement("a");
  link.href = URL.createObjectURL(zipFiles(files));
  link.download = `${word}_clips.zip`;
  link.click();
});

start();
