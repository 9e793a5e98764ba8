/*
 * Wide content on narrow screens (the styles are in lvae.css, "scroll cues" and "figures").
 *
 * 1. Figures are drawn for the text column (about 720 CSS pixels at 100 dpi). On a screen
 *    narrower than that they keep their natural width, so their text stays at the size it
 *    was plotted (10 to 11 pt, never below 9), in a box of their own that scrolls
 *    sideways. A tap on such a figure fits it to the screen (an overview); another tap
 *    brings it back to its natural size.
 * 2. An inline formula wider than its line (MathJax 3 does not break inline math) gets a
 *    line of its own, as wide as the text, and scrolls sideways there instead of running
 *    out of its paragraph. The check runs again when the text is resized or a closed box
 *    (a solution) is opened.
 * 3. A printed table wider than its box lets its row labels break between words, then
 *    narrows the padding of its cells (see fitTable).
 * 4. Every box that scrolls sideways (printed tables, tables of the text, figures, wide
 *    inline formulas) fades out on the side where more is hidden: the classes
 *    lvae-more-left and lvae-more-right, kept up to date when it scrolls or is resized.
 *    Touch screens hide scrollbars until one scrolls; the fade says "more this way".
 * 5. Chinese text (the glossary) on a machine without a CJK font is drawn with the book's
 *    Noto Sans SC, whose slices load only for the characters a page shows. Chromium keeps
 *    the empty boxes it drew for text laid out before its slice had loaded; such text is
 *    set again once the page's fonts have loaded.
 */
(function () {
  "use strict";

  // ---- scroll cues ----------------------------------------------------------------
  function updateCue(box) {
    var hidden = box.scrollWidth - box.clientWidth;
    var left = hidden > 1 && box.scrollLeft > 1;
    var right = hidden > 1 && box.scrollLeft < hidden - 1;
    if (box.classList.contains("lvae-more-left") !== left) {
      box.classList.toggle("lvae-more-left", left);
    }
    if (box.classList.contains("lvae-more-right") !== right) {
      box.classList.toggle("lvae-more-right", right);
    }
  }

  var watched = typeof WeakSet === "function" ? new WeakSet() : null;
  var cueObserver = typeof ResizeObserver === "function"
    ? new ResizeObserver(function (entries) {
        entries.forEach(function (entry) {
          // A table's box resized or shown (a solution opened): fit the table again.
          var table = entry.target.matches("div.cell_output div.output")
            ? entry.target.querySelector("table") : null;
          if (table) fitTable(table);
          updateCue(entry.target);
        });
      })
    : null;

  function watch(box) {
    if (!watched || watched.has(box)) { updateCue(box); return; }
    watched.add(box);
    box.addEventListener("scroll", function () { updateCue(box); }, { passive: true });
    if (cueObserver) cueObserver.observe(box);
    updateCue(box);
  }

  // ---- printed tables ---------------------------------------------------------------
  // A printed table wider than its box first lets its row labels break between words
  // (column names always may, lvae.css), then narrows the padding of its cells; numbers
  // and run names ("lvae-L5-bn-wu") stay whole, the font keeps its size. What is still too
  // wide scrolls, with the fade of the scroll cues.
  function fitTable(table) {
    var box = table.closest("div.output") || table.parentElement;
    if (!box.clientWidth) return;                     // inside a closed box
    table.classList.remove("lvae-wrap-labels", "lvae-compact");
    if (table.offsetWidth <= box.clientWidth + 1) return;
    table.classList.add("lvae-wrap-labels");
    if (table.offsetWidth <= box.clientWidth + 1) return;
    table.classList.add("lvae-compact");
  }

  function fitTables() {
    var tables = document.querySelectorAll(".bd-content div.cell_output table");
    Array.prototype.forEach.call(tables, function (table) {
      Array.prototype.forEach.call(table.querySelectorAll("tbody th"), function (th) {
        if (/\S\s+\S/.test(th.textContent.trim())) th.classList.add("lvae-words");
      });
      fitTable(table);
    });
  }

  function watchTables() {
    fitTables();
    var boxes = document.querySelectorAll(
      ".bd-content div.cell_output div.output.text_html, " +
      ".bd-content div.pst-scrollable-table-container"
    );
    Array.prototype.forEach.call(boxes, watch);
  }

  // ---- figures ----------------------------------------------------------------------
  function naturalWidth(img) {
    var specified = parseFloat(img.getAttribute("width") || img.style.width || "0");
    var density = specified && img.naturalWidth >= 1.9 * specified ? 2 : 1;
    return img.naturalWidth / density;
  }

  function setUpFigure(img) {
    if (!img.naturalWidth) return;
    var parent = img.parentElement;
    var frame = parent;
    if (!parent.classList.contains("lvae-figure-scroll")) {
      // Only a figure's or an output's own image gets a box of its own; an image inside
      // other output (an animation) keeps its place, and the output's box scrolls.
      if (!parent.matches("figure, div.cell_output, div.output")) {
        img.style.setProperty("--lvae-natural-width", Math.round(naturalWidth(img)) + "px");
        img.classList.add("lvae-natural");
        var output = img.closest("div.cell_output");
        if (output) watch(output);
        return;
      }
      frame = document.createElement("div");
      frame.className = "lvae-figure-scroll";
      parent.insertBefore(frame, img);
      frame.appendChild(img);
      img.addEventListener("click", function () {
        if (frame.scrollWidth <= frame.clientWidth + 1
            && !frame.classList.contains("lvae-fit")) return;
        frame.classList.toggle("lvae-fit");
        updateCue(frame);
      });
    }
    img.style.setProperty("--lvae-natural-width", Math.round(naturalWidth(img)) + "px");
    watch(frame);
  }

  function setUpFigures() {
    var images = document.querySelectorAll(
      ".bd-content div.cell_output img, .bd-content figure img"
    );
    Array.prototype.forEach.call(images, function (img) {
      if (img.closest(".sd-card, .headerlink")) return;
      if (img.complete) setUpFigure(img);
      else img.addEventListener("load", function () { setUpFigure(img); });
    });
  }

  // ---- inline formulas --------------------------------------------------------------
  function blockOf(el) {
    for (var e = el.parentElement; e; e = e.parentElement) {
      if (!/^inline/.test(getComputedStyle(e).display)) return e;
    }
    return document.body;
  }

  function fitInlineMath(container) {
    var math = container.querySelector("mjx-math");
    if (!math) return;
    var width = math.getBoundingClientRect().width;
    if (!width) return;                               // inside a closed box
    var block = blockOf(container);
    var s = getComputedStyle(block);
    var room = block.clientWidth - (parseFloat(s.paddingLeft) || 0)
             - (parseFloat(s.paddingRight) || 0);
    var wide = width > room + 0.5;
    if (container.classList.contains("lvae-wide-math") !== wide) {
      container.classList.toggle("lvae-wide-math", wide);
    }
    if (wide) watch(container);
  }

  function setUpInlineMath() {
    var formulas = Array.prototype.filter.call(
      document.querySelectorAll('.bd-content mjx-container:not([display="true"])'),
      function (c) { return !c.closest("table, mjx-container mjx-container"); }
    );
    formulas.forEach(fitInlineMath);
    if (typeof ResizeObserver !== "function") return;
    // Fit again when a formula is shown (a solution opened) or its text resized.
    var byElement = new Map();
    formulas.forEach(function (c) {
      [c, blockOf(c)].forEach(function (el) {
        if (!byElement.has(el)) byElement.set(el, []);
        byElement.get(el).push(c);
      });
    });
    var observer = new ResizeObserver(function (entries) {
      entries.forEach(function (entry) {
        (byElement.get(entry.target) || []).forEach(fitInlineMath);
      });
    });
    byElement.forEach(function (_, el) { observer.observe(el); });
  }

  function whenTypeset(callback) {
    if (!document.querySelector('script[src*="mathjax"], script[id*="MathJax"]')) {
      callback();
      return;
    }
    var tries = 0;
    (function poll() {
      var M = window.MathJax;
      if (M && M.startup && M.startup.promise) M.startup.promise.then(callback);
      else if (++tries < 600) setTimeout(poll, 50);
    })();
  }

  // ---- Chinese text -------------------------------------------------------------------
  var CJK = /[\u3400-\u9fff\uf900-\ufaff]/;

  function redrawChinese() {
    var root = document.querySelector(".bd-content") || document.body;
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    var nodes = [];
    while (walker.nextNode()) {
      if (CJK.test(walker.currentNode.data)) nodes.push(walker.currentNode);
    }
    nodes.forEach(function (node) {
      node.parentNode.replaceChild(document.createTextNode(node.data), node);
    });
  }

  function watchFonts() {
    if (!document.fonts || !document.fonts.addEventListener) return;
    if (!CJK.test(document.body.textContent)) return;
    document.fonts.addEventListener("loadingdone", redrawChinese);
    document.fonts.ready.then(redrawChinese);
  }

  function run() {
    watchFonts();
    setUpFigures();
    watchTables();
    whenTypeset(setUpInlineMath);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
