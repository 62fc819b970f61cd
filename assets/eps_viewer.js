// Page 1's eps slider, answered in the browser: the server sends each model's whole eps grid once (adversarial
// digits, perturbations, probabilities), so moving the slider only redraws what is already here. The server hears
// the eps when the slider is released (state "eps"), which keeps the link and the other pages in step.
// `data.id` names the digit, models and attack: a rerun that sends the same id (e.g. the one that follows a release)
// leaves the view, the slider and its keyboard focus as they are.

const SCALE = 5; // screen pixels per digit pixel, as the server-drawn pictures had
const SETTLE_MS = 300; // arrow keys fire a change per press: the server hears the eps once they stop

function bytes(base64) {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function canvas(title) {
  const figure = element("figure");
  const picture = element("canvas");
  picture.width = picture.height = 28;
  picture.style.width = picture.style.height = `${28 * SCALE}px`;
  picture.setAttribute("role", "img");
  picture.setAttribute("aria-label", title);
  figure.append(picture, element("figcaption", "", title));
  return { figure, picture };
}

// White ink on black, like MNIST; `pixels` are 784 bytes from `offset`.
function drawDigit(picture, pixels, offset) {
  const context = picture.getContext("2d");
  const image = context.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = pixels[offset + i];
    image.data.set([v, v, v, 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
}

// Red where the attack brightened a pixel, blue where it darkened it, full colour at +-eps (bytes: 127 + 127 v).
function drawPerturbation(picture, pixels, offset) {
  const context = picture.getContext("2d");
  const image = context.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = (pixels[offset + i] - 127) / 127;
    const up = Math.max(v, 0), down = Math.max(-v, 0);
    image.data.set([255 - 255 * down, 255 - 255 * Math.abs(v), 255 - 255 * up, 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
}

// The dataset's class names ("0".."9" for MNIST, "T-shirt/top".. for Fashion-MNIST), set by each payload.
let CLASSES = [...Array(10).keys()].map(String);

function bars(label) {
  const chart = element("div", "bars");
  chart.setAttribute("aria-label", "class probabilities: grey clean, red adversarial");
  const columns = [];
  for (let c = 0; c < 10; c++) {
    const column = element("div", "class");
    const pair = element("div", "pair");
    const clean = element("div", "bar clean"), adversarial = element("div", "bar adversarial");
    pair.append(clean, adversarial);
    column.append(pair, element("div", c === label ? "name true" : "name", c === label ? `${CLASSES[c]} (true)` : CLASSES[c]));
    chart.append(column);
    columns.push({ clean, adversarial });
  }
  return { chart, columns };
}

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]; // charts.MODEL_COLOURS, the other pages' colours

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  Object.entries(attributes).forEach(([name, value]) => node.setAttribute(name, value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// The true class's probability against eps, one line per model, the slider's eps marked: how fast each model gives
// the digit up as the attacker's budget grows. The marker follows the slider with the rest of the view.
function trueClassChart(data) {
  const width = 800, height = 250, left = 50, right = 110, top = 30, bottom = 40;
  const x = (eps) => left + (width - left - right) * eps / data.eps[data.eps.length - 1];
  const y = (p) => top + (height - top - bottom) * (1 - p);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "true-class", role: "img",
                             "aria-label": `probability of the true class (${CLASSES[data.label]}) against eps` });
  chart.append(svg("text", { x: left, y: 16, class: "title" },
                   `Probability of the true class (${CLASSES[data.label]}) against eps`));
  [0, 0.5, 1].forEach((p) => {
    chart.append(svg("line", { x1: left, x2: width - right, y1: y(p), y2: y(p), class: "grid" }));
    chart.append(svg("text", { x: left - 6, y: y(p) + 4, class: "tick end" }, p.toFixed(1)));
  });
  data.eps.forEach((eps, step) => {
    if (step % 5 === 0) chart.append(svg("text", { x: x(eps), y: height - bottom + 16, class: "tick middle" },
                                          eps.toFixed(1)));
  });
  chart.append(svg("text", { x: (left + width - right) / 2, y: height - 6, class: "tick middle" }, "eps (L-inf)"));
  data.models.forEach((model, m) => {
    const colour = COLOURS[m % COLOURS.length];
    const points = data.eps.map((eps, step) => `${x(eps)},${y(model.probabilities[step][data.label])}`);
    chart.append(svg("polyline", { points: points.join(" "), stroke: colour, class: "curve" }));
    chart.append(svg("text", { x: width - right + 10, y: top + 16 * m + 4, fill: colour, class: "legend" },
                     model.name));
  });
  const marker = svg("line", { y1: top, y2: height - bottom, class: "marker" });
  chart.append(marker);
  return {
    chart,
    move(eps) {
      marker.setAttribute("x1", x(eps));
      marker.setAttribute("x2", x(eps));
    },
  };
}

function modelColumn(model, label) {
  const column = element("section", "model");
  column.dataset.model = model.name;
  const verdict = element("div", "verdict");
  verdict.setAttribute("role", "status");
  const pictures = element("div", "pictures");
  const clean = canvas("clean"), adversarial = canvas("adversarial"), perturbation = canvas("perturbation (red +, blue -)");
  pictures.append(clean.figure, adversarial.figure, perturbation.figure);
  const flip = element("p", "flip");
  const probabilities = bars(label);
  const download = element("a", "download", "Download adversarial PNG");
  column.append(element("h3", "", model.name), verdict);
  if (model.clean_prediction !== label) {
    column.append(element("p", "note", `${model.name} reads it as ${CLASSES[model.clean_prediction]} before any attack.`));
  }
  column.append(pictures, flip, probabilities.chart, download);
  flip.innerHTML = model.flip === null ? "" : "Smallest eps that flips it: <b></b>";
  if (model.flip === null) flip.textContent = `No eps up to ${model.last_eps} flips it.`;
  else flip.querySelector("b").textContent = model.flip.toFixed(2);
  drawDigit(clean.picture, bytes(model.clean), 0);
  return {
    column,
    draw(step, eps, data) {
      const predicted = model.predictions[step];
      const kept = predicted === label;
      verdict.className = `verdict ${kept ? "kept" : "flipped"}`;
      verdict.innerHTML = "<b></b> at eps = ";
      verdict.querySelector("b").textContent = kept ? `still ${CLASSES[predicted]}` : `now ${CLASSES[predicted]}`;
      verdict.append(eps.toFixed(2));
      drawDigit(adversarial.picture, model.adversarialBytes, step * 784);
      drawPerturbation(perturbation.picture, model.perturbationBytes, step * 784);
      probabilities.columns.forEach((bar, c) => {
        bar.clean.style.height = `${100 * model.probabilities[0][c]}%`;
        bar.adversarial.style.height = `${100 * model.probabilities[step][c]}%`;
        bar.adversarial.title = `adversarial: P(${CLASSES[c]}) = ${model.probabilities[step][c].toFixed(3)}`;
        bar.clean.title = `clean: P(${CLASSES[c]}) = ${model.probabilities[0][c].toFixed(3)}`;
      });
      download.href = adversarial.picture.toDataURL("image/png");
      download.download = `${model.name}-${data.kind}-eps${eps.toFixed(2)}.png`;
    },
  };
}

export default function ({ data, parentElement, setStateValue }) {
  const shown = parentElement.querySelector(".eps-viewer");
  if (shown?.dataset.id === data.id) return;
  shown?.remove();
  CLASSES = data.classes;
  const root = element("div", "eps-viewer");
  root.dataset.id = data.id;
  const heading = element("label", "slider");
  const value = element("output");
  const slider = element("input");
  Object.assign(slider, { type: "range", min: 0, max: data.eps.length - 1, step: 1, value: data.start });
  slider.setAttribute("aria-label", "Perturbation budget eps");
  heading.append("Perturbation budget eps (L-inf, pixels in [0, 1]): ", value);
  if (data.pending) {
    // The first look: the verdicts at the slider's eps while the server attacks the rest of the grid.
    slider.disabled = true;
    heading.append(element("span", "pending", " (attacking the other eps values…)"));
  }
  const models = element("div", "models");
  const columns = data.models.map((model) => {
    model.adversarialBytes = bytes(model.adversarial);
    model.perturbationBytes = bytes(model.perturbation);
    return modelColumn(model, data.label);
  });
  columns.forEach(({ column }) => models.append(column));
  const curves = trueClassChart(data);
  root.append(heading, slider, models, curves.chart);
  parentElement.append(root);

  const draw = () => {
    const step = Number(slider.value);
    const eps = data.eps[step];
    value.textContent = eps.toFixed(2);
    slider.setAttribute("aria-valuetext", `eps ${eps.toFixed(2)}`);
    columns.forEach((column) => column.draw(step, eps, data));
    curves.move(eps);
  };
  slider.addEventListener("input", draw);
  let settling;
  slider.addEventListener("change", () => {
    clearTimeout(settling);
    settling = setTimeout(() => setStateValue("eps", data.eps[Number(slider.value)]), SETTLE_MS);
  });
  draw();
  return () => clearTimeout(settling);
}
