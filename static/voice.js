// A voice greeting's play button (templates/pages/_gift.html): tap to play, tap again to stop,
// like a voice message in WeChat. Without this script the page still shows the words.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll(".voice-play")) {
    const audio = button.parentElement.querySelector(".voice-audio");
    if (!audio) continue;
    const playing = (on) => {
      button.classList.toggle("playing", on);
      button.setAttribute("aria-pressed", String(on));
    };
    button.addEventListener("click", () => {
      if (audio.paused) {
        audio.currentTime = 0;
        audio.play().catch(() => playing(false));
      } else {
        audio.pause();
      }
    });
    audio.addEventListener("play", () => playing(true));
    for (const end of ["pause", "ended", "error"]) audio.addEventListener(end, () => playing(false));
  }
});
