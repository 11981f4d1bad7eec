// A case page follows the hub's event feed: when an event about this case arrives, the page's content is
// fetched again and swapped in, so a stage change shows without reload.
"use strict";

(function () {
  const root = document.getElementById("case");
  const live = document.getElementById("live");
  if (!root || !window.EventSource) {
    return;
  }
  const number = root.dataset.application;

  async function refresh() {
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (response.redirected) {
      // The session ended (its token expired): the hub sent the request on to the login form.
      window.location.assign(response.url);
      return;
    }
    if (!response.ok) {
      live.textContent = "实时更新: 刷新失败 (" + response.status + ")";
      return;
    }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("case");
    if (fresh) {
      root.innerHTML = fresh.innerHTML;
    }
    document.getElementById("live").textContent =
      "实时更新: " + new Date().toLocaleTimeString("zh-CN") + " 已刷新";
  }

  const source = new EventSource(root.dataset.stream);
  source.onopen = function () {
    document.getElementById("live").textContent = "实时更新: 已连接";
  };
  for (const type of JSON.parse(root.dataset.events)) {
    source.addEventListener(type, function (event) {
      if (JSON.parse(event.data).subject === number) {
        refresh();
      }
    });
  }
})();
