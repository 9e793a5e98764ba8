/*
 * Loaded on pages that embed ipywidgets, after require.js and before the
 * widget manager (embed-amd.js), both served from _static/vendor/.
 *
 * embed-amd.js defines its modules by name ("@jupyter-widgets/base", ...) and
 * webpack derives the URL of the fonts it ships (Font Awesome) from each
 * module's RequireJS URI. Without a path mapping that URI is relative to the
 * page, so the fonts would be requested from e.g. book/@jupyter-widgets/...
 * and fail. Map every bundled module into the vendored dist/ folder.
 *
 * The widgets also typeset their labels with the MathJax 2 API
 * (MathJax.Hub.Queue), which MathJax 3 does not have: every widget label then
 * throws "Cannot read properties of undefined (reading 'Queue')". A small
 * MathJax.Hub.Queue shim forwards those requests to MathJax 3's typesetPromise.
 * It is installed at DOMContentLoaded, after MathJax 3 (a deferred script) has
 * replaced its configuration object, and before the widgets render (at load).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.require || !window.require.config) {
    return;
  }
  var dist = new URL("vendor/html-manager/dist", script.src).href;
  var names = [
    "@jupyter-widgets/base",
    "@jupyter-widgets/base7",
    "@jupyter-widgets/controls",
    "@jupyter-widgets/controls7",
    "@jupyter-widgets/output",
    "@jupyter-widgets/html-manager",
  ];
  var paths = { "@jupyter-widgets/html-manager/dist": dist };
  names.forEach(function (name) {
    paths[name] = dist + "/" + name.split("/")[1];
  });
  window.require.config({ paths: paths });

  function typeset(element) {
    var mj = window.MathJax;
    if (!mj || !mj.typesetPromise) {
      return;
    }
    var ready = mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
    ready
      .then(function () {
        return mj.typesetPromise(element ? [element] : undefined);
      })
      .catch(function (err) {
        console.warn("MathJax could not typeset a widget label:", err);
      });
  }

  function installMathJax2Shim() {
    var mj = window.MathJax;
    if (!mj || mj.Hub || !mj.version || mj.version.charAt(0) !== "3") {
      return;
    }
    mj.Hub = {
      Queue: function () {
        Array.prototype.forEach.call(arguments, function (job) {
          if (Array.isArray(job) && job[0] === "Typeset") {
            typeset(job[2]);
          }
        });
      },
    };
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", installMathJax2Shim);
  } else {
    installMathJax2Shim();
  }
})();
