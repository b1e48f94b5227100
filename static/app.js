// Outside form fields, the arrow keys step the order one event back or forward.
// (The slider handles its own arrows when it has the focus.)
document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
  const field = document.activeElement && document.activeElement.closest("input, select, textarea, button, summary");
  if (field) return;
  const id = { ArrowLeft: "step-back", ArrowRight: "step-forward" }[event.key];
  const link = id && document.getElementById(id);
  if (link && link.getAttribute("aria-disabled") !== "true") {
    event.preventDefault();
    link.click();
  }
});

// A live update must not pull the time-travel controls from under a person using
// them: while the slider is held, or a field of the controls has the focus, the
// section is not replaced; only the slider's range (and, unless it is held, its
// position) follows the log.
let sliderHeld = false;
document.addEventListener("pointerdown", (event) => {
  if (event.target.id === "version-slider") sliderHeld = true;
});
for (const name of ["pointerup", "pointercancel"]) {
  document.addEventListener(name, () => { sliderHeld = false; });
}
function extendSlider(slider, latest, position) {
  slider.max = latest;
  slider.setAttribute("aria-valuetext", `version ${position} of ${latest}`);
  const ends = slider.parentElement.querySelectorAll(":scope > span");
  if (ends.length === 2) ends[1].textContent = latest;
}

// Looking at a past version, a live update brings only a notice ("version N is
// now the latest"): the slider's range grows to N, and its position stays.
document.addEventListener("htmx:sseMessage", (event) => {
  const notice = event.target.id === "live-notice" && event.target.querySelector("[data-latest]");
  const slider = document.getElementById("version-slider");
  if (notice && slider) extendSlider(slider, notice.dataset.latest, slider.value);
});

document.addEventListener("htmx:oobBeforeSwap", (event) => {
  const { target, fragment } = event.detail;
  if (!target || target.id !== "time-travel") return;
  const active = document.activeElement;
  const typing = active && target.contains(active) && active.matches("input:not([type=range]), select");
  if (!sliderHeld && !typing) return;
  event.detail.shouldSwap = false;
  const slider = target.querySelector("#version-slider");
  const fresh = fragment.querySelector("#version-slider");
  if (!slider || !fresh) return;
  extendSlider(slider, fresh.max, sliderHeld ? slider.value : fresh.getAttribute("value"));
  if (!sliderHeld) slider.value = fresh.getAttribute("value");
});
