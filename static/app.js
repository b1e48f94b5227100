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
