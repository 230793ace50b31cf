// The rating page of `nd-pipeline rate`: one self-contained HTML document (inline CSS and JS, no
// network but its own server: /api/next, /api/answer, /tile). Every server-provided text (phrases,
// rater names, the layer) is put into the page with textContent, never as HTML.
//
// Flow: the rater's name is asked once (kept in localStorage, "change" clears it); the rater picks
// a mode; the page shows one unit at a time: progress, the question, the unit's tiles in a grid,
// and yes/no buttons (keys Y and N) or, in name mode, a text field (Enter submits). An answer is
// POSTed with its trial id; "Recorded" appears only after the server answered 200 (the line is on
// disk); a failed request is retried by the rater with the same trial id, which is idempotent.
//
// DOM contract (the browser test relies on it):
//   #who (name form): input#rater-input, button#rater-start; #modes: button#mode-label,
//   #mode-name, #mode-human; #trial[data-unit][data-mode][data-trial]: #phrase, #progress,
//   img.tile (one per top image), button#yes, button#no, input#name-input, button#name-submit;
//   #status[data-state = "idle" | "saving" | "recorded" | "error"]; #done (nothing left in this
//   mode); button#change-rater; button#menu (back to the modes).
//   body[data-ready="1"] once the current trial's tiles have all loaded; window.ndTimings holds,
//   per unit shown, the milliseconds from asking /api/next to the last tile loaded.
//   The query parameter token=… is passed on to every request.
#pragma once

#include <string>

namespace nd {

// The page for `layer` (shown in the title; escaped).
std::string RatePageHtml(const std::string& layer);

}  // namespace nd
