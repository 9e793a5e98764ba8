/*
 * Figures on narrow screens. The book's figures are drawn for its text column
 * (about 720 CSS pixels). On a phone the column is half as wide, and a figure
 * scaled to fit it has text too small to read. Here every figure keeps at least
 * 62 % of its natural width; its box (see lvae.css) then scrolls sideways.
 * A PNG drawn at twice the density carries a width of half its pixel width.
 */
(function () {
  "use strict";
  var MIN_SHARE = 0.62;

  function naturalWidth(img) {
    var specified = parseFloat(img.getAttribute("width") || img.style.width || "0");
    var density = specified && img.naturalWidth >= 1.9 * specified ? 2 : 1;
    return img.naturalWidth / density;
  }

  function keepLegible(img) {
    if (!img.naturalWidth) return;
    img.style.minWidth = Math.round(MIN_SHARE * naturalWidth(img)) + "px";
  }

  function run() {
    var images = document.querySelectorAll(
      ".bd-content div.cell_output img, .bd-content figure img"
    );
    Array.prototype.forEach.call(images, function (img) {
      if (img.complete) keepLegible(img);
      else img.addEventListener("load", function () { keepLegible(img); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
